//! PHP `json_encode` (default flags) re-emission of raw JSON, which Treezor signs.

use super::AuthError::{self, MalformedBody};
use super::MAX_JSON_DEPTH;

/// Rewrites one JSON value, given as its raw text, into what PHP's `json_encode` with default
/// flags prints for the value `json_decode` would make of it:
///
/// - insignificant whitespace dropped; key order and number lexemes kept as received;
/// - each string decoded (escapes, surrogate pairs) and written again with `\"`, `\\`, `\/`,
///   `\b \f \n \r \t`, other control characters as `\u00XX`, every non-ASCII character as
///   lowercase `\uXXXX`, and characters above U+FFFF as a UTF-16 surrogate pair; DEL and the
///   rest of ASCII as themselves.
///
/// The input must be one RFC 8259 JSON value, optionally surrounded by whitespace. Invalid
/// escapes, unpaired surrogates, raw control characters in strings, malformed numbers or
/// literals and trailing text are refused, as is nesting beyond [`MAX_JSON_DEPTH`].
/// Duplicate keys are kept as sent (PHP would keep the last value at the first position), so
/// a payload with them simply fails its signature check.
pub fn php_json_encode_raw(raw_json_value: &str) -> Result<String, AuthError> {
    let mut emitter = PhpJson {
        text: raw_json_value,
        pos: 0,
        out: String::with_capacity(raw_json_value.len() + 64),
    };
    emitter.skip_ws();
    emitter.value(0)?;
    emitter.skip_ws();
    if emitter.pos != raw_json_value.len() {
        return Err(MalformedBody("text follows the JSON value"));
    }
    Ok(emitter.out)
}

/// Recursive-descent re-emitter behind [`php_json_encode_raw`]. `pos` is always on a char
/// boundary of `text`.
struct PhpJson<'a> {
    text: &'a str,
    pos: usize,
    out: String,
}

impl PhpJson<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// One value; `depth` is the number of arrays and objects around it.
    fn value(&mut self, depth: usize) -> Result<(), AuthError> {
        match self.peek() {
            Some(b'{') => self.container(depth + 1, b'}'),
            Some(b'[') => self.container(depth + 1, b']'),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(_) => Err(MalformedBody(
                "unexpected character where a JSON value should start",
            )),
            None => Err(MalformedBody("the JSON ends where a value should start")),
        }
    }

    /// An object (`close == b'}'`) or an array (`close == b']'`), at `self.pos` on its opener.
    fn container(&mut self, depth: usize, close: u8) -> Result<(), AuthError> {
        if depth > MAX_JSON_DEPTH {
            return Err(AuthError::TooDeep);
        }
        let is_object = close == b'}';
        self.out.push(if is_object { '{' } else { '[' });
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.out.push(char::from(close));
            return Ok(());
        }
        loop {
            self.skip_ws();
            if is_object {
                if self.peek() != Some(b'"') {
                    return Err(MalformedBody("an object key is not a string"));
                }
                self.string()?;
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(MalformedBody("an object key is not followed by ':'"));
                }
                self.pos += 1;
                self.out.push(':');
                self.skip_ws();
            }
            self.value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.out.push(','),
                Some(b) if b == close => {
                    self.pos += 1;
                    self.out.push(char::from(close));
                    return Ok(());
                }
                _ => {
                    return Err(MalformedBody(
                        "expected ',' or the end of an array or object",
                    ));
                }
            }
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), AuthError> {
        if !self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            return Err(MalformedBody("misspelt true, false or null"));
        }
        self.pos += word.len();
        self.out.push_str(word);
        Ok(())
    }

    /// RFC 8259 §6 `number`, copied as its lexeme.
    fn number(&mut self) -> Result<(), AuthError> {
        const BAD: AuthError = MalformedBody("malformed number");
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(BAD),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.digits() {
                return Err(BAD);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.digits() {
                return Err(BAD);
            }
        }
        self.out.push_str(&self.text[start..self.pos]);
        Ok(())
    }

    /// Skips `[0-9]*`; true if there was at least one digit.
    fn digits(&mut self) -> bool {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos > start
    }

    /// A string, at `self.pos` on its opening quote.
    fn string(&mut self) -> Result<(), AuthError> {
        let text = self.text;
        let bytes = text.as_bytes();
        self.pos += 1;
        self.out.push('"');
        loop {
            // Copy the run of bytes that PHP writes as they are in one go.
            let run = self.pos;
            while let Some(&b) = bytes.get(self.pos) {
                if !(0x20..0x80).contains(&b) || matches!(b, b'"' | b'\\' | b'/') {
                    break;
                }
                self.pos += 1;
            }
            self.out.push_str(&text[run..self.pos]);
            match bytes.get(self.pos) {
                None => return Err(MalformedBody("a string is not terminated")),
                Some(b'"') => {
                    self.pos += 1;
                    self.out.push('"');
                    return Ok(());
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    self.push_php_char(c);
                }
                Some(0x00..=0x1f) => {
                    return Err(MalformedBody("a string holds a raw control character"));
                }
                Some(_) => {
                    // '/' or the first byte of a non-ASCII character.
                    let Some(c) = text[self.pos..].chars().next() else {
                        return Err(MalformedBody("a string is not terminated"));
                    };
                    self.pos += c.len_utf8();
                    self.push_php_char(c);
                }
            }
        }
    }

    /// Decodes the escape at `self.pos` (on its backslash), pairing UTF-16 surrogates.
    fn escape(&mut self) -> Result<char, AuthError> {
        let bytes = self.text.as_bytes();
        let Some(&kind) = bytes.get(self.pos + 1) else {
            return Err(MalformedBody("a string is not terminated"));
        };
        self.pos += 2;
        Ok(match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(MalformedBody("an unpaired UTF-16 surrogate"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(MalformedBody("an unpaired UTF-16 surrogate"));
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(MalformedBody("an unpaired UTF-16 surrogate")),
                    _ => unit,
                };
                char::from_u32(code).ok_or(MalformedBody("an unpaired UTF-16 surrogate"))?
            }
            _ => return Err(MalformedBody("an invalid escape in a string")),
        })
    }

    /// The four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, AuthError> {
        let Some(digits) = self.text.as_bytes().get(self.pos..self.pos + 4) else {
            return Err(MalformedBody("a \\u escape needs four hex digits"));
        };
        let mut unit = 0;
        for &digit in digits {
            let nibble = char::from(digit)
                .to_digit(16)
                .ok_or(MalformedBody("a \\u escape needs four hex digits"))?;
            unit = unit << 4 | nibble;
        }
        self.pos += 4;
        Ok(unit)
    }

    /// Writes one decoded character of a string as PHP's `json_encode` does.
    fn push_php_char(&mut self, c: char) {
        match c {
            '"' => self.out.push_str("\\\""),
            '\\' => self.out.push_str("\\\\"),
            '/' => self.out.push_str("\\/"),
            '\u{8}' => self.out.push_str("\\b"),
            '\u{c}' => self.out.push_str("\\f"),
            '\n' => self.out.push_str("\\n"),
            '\r' => self.out.push_str("\\r"),
            '\t' => self.out.push_str("\\t"),
            '\u{20}'..='\u{7f}' => self.out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    self.push_u_escape(unit);
                }
            }
        }
    }

    fn push_u_escape(&mut self, unit: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            self.out
                .push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
        }
    }
}
