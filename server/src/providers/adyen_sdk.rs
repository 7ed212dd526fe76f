//! Adyen's `sdkInput`: read from `WWW-Authenticate` or from a header named
//! `sdkInput` (configurable, `providers.adyen.sdk_input_headers`), as
//! `SCA realm="Challenge" authparm1="…"` or, outside `WWW-Authenticate`, a bare token.

use axum::http::{HeaderMap, HeaderName, header};

/// The `sdkInput` carried by header `name`: `SCA realm="Challenge" authparm1="…"` in
/// any header; in a header other than `WWW-Authenticate` (Adyen's `sdkInput` header
/// parameter) also a bare base64/base64url token of at least 8 characters.
pub fn sdk_input_from(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let bare_allowed = name != header::WWW_AUTHENTICATE;
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            sdk_input_of(v).or_else(|| {
                let v = v.trim();
                (bare_allowed
                    && v.len() >= 8
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/_-=".contains(&b)))
                .then(|| v.to_owned())
            })
        })
}

/// The `sdkInput` from `SCA realm="Challenge" authparm1="{sdkInput}"`: the value of the
/// `authparm1` (or `auth-param1`) parameter, quoted or not, in any position.
pub fn sdk_input_of(value: &str) -> Option<String> {
    auth_params(value)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authparm1") || k.eq_ignore_ascii_case("auth-param1"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The `name=value` parameters of a challenge header (RFC 9110 §11.2), after the scheme;
/// separators may be commas or spaces, values tokens or quoted strings.
fn auth_params(value: &str) -> Vec<(String, String)> {
    let s = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip = |i: &mut usize, set: &[u8]| {
        while s.get(*i).is_some_and(|b| set.contains(b)) {
            *i += 1;
        }
    };
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    loop {
        skip(&mut i, b" \t,");
        let start = i;
        while s.get(i).is_some_and(|&b| tchar(b)) {
            i += 1;
        }
        if i == start {
            return out;
        }
        let name = &value[start..i];
        let mut j = i;
        skip(&mut j, b" \t");
        if s.get(j) != Some(&b'=') {
            // A scheme (or token68) rather than a parameter.
            continue;
        }
        j += 1;
        skip(&mut j, b" \t");
        let mut v = String::new();
        if s.get(j) == Some(&b'"') {
            j += 1;
            let mut closed = false;
            while let Some(&b) = s.get(j) {
                j += 1;
                match b {
                    b'"' => {
                        closed = true;
                        break;
                    }
                    b'\\' => {
                        if let Some(&e) = s.get(j) {
                            v.push(char::from(e));
                            j += 1;
                        }
                    }
                    _ => v.push(char::from(b)),
                }
            }
            if !closed {
                return out;
            }
        } else {
            let vstart = j;
            while s.get(j).is_some_and(|&b| !matches!(b, b' ' | b'\t' | b',')) {
                j += 1;
            }
            v.push_str(&value[vstart..j]);
        }
        out.push((name.to_owned(), v));
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_input_header_parsing() {
        let blob = "Ed/7NHSAcIK4kq43+JlcWow==";
        for header in [
            format!("SCA realm=\"Challenge\" authparm1=\"{blob}\""),
            format!("SCA realm=\"Challenge\", authparm1=\"{blob}\""),
            format!("sca authparm1={blob} realm=Challenge"),
            format!("SCA realm = \"Challenge\" , AUTHPARM1 = \"{blob}\""),
            format!("SCA realm=\"Chal\\\"lenge\" auth-param1=\"{blob}\""),
        ] {
            assert_eq!(sdk_input_of(&header).as_deref(), Some(blob), "{header}");
        }
        for header in [
            "",
            "SCA",
            "SCA realm=\"Challenge\"",
            "SCA authparm1=\"\"",
            "SCA authparm1=\"unterminated",
            "Basic dXNlcjpwYXNz",
        ] {
            assert_eq!(sdk_input_of(header), None, "{header}");
        }
    }
}
