//! Strict JSON: the one entry point for parsing what a peer sends (request bodies,
//! processor webhooks).
//!
//! serde_json alone accepts more than JSON objects where a derived struct is
//! expected: a struct also deserializes from a JSON **array** of its fields in order
//! (`["https://…/cb"]` for `{"callback": …}`), a `Deserializer` that is not told to
//! `end()` ignores **trailing bytes** (`{…}{…}`), and strings inside ignored fields
//! are skipped without checking them, so **invalid UTF-8** and **lone surrogate
//! escapes** (`"\ud800"`) pass. [`from_slice`] refuses all three:
//!
//! - the input must be UTF-8 and no `\u` escape may be half a surrogate pair;
//! - it is read through [`Strict`], a deserializer wrapper that refuses a sequence
//!   wherever a struct (or a struct variant) is expected, at every depth: every
//!   nested deserializer, seed and access is wrapped again;
//! - after the value only whitespace may follow.
//!
//! Limitation: values that serde buffers first (`#[serde(flatten)]`, untagged and
//! internally tagged enums) are deserialized from serde's buffer, outside the
//! wrapper; the types we parse from peers do not rely on them for structs.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// Parses `bytes` as exactly one JSON value of type `T`, strictly (see the module).
pub fn from_slice<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let text = check_text(bytes)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Strict(&mut de))?;
    de.end()?;
    Ok(value)
}

/// [`from_slice`] for text.
pub fn from_str<T: de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    from_slice(text.as_bytes())
}

/// The input as text if it is UTF-8 without a lone surrogate escape. The error is a
/// data error that does not quote the input.
pub fn check_text(bytes: &[u8]) -> Result<&str, serde_json::Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        de::Error::custom(format_args!(
            "the body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    if let Some(at) = lone_surrogate(text.as_bytes()) {
        return Err(de::Error::custom(format_args!(
            "lone surrogate escape in a string (at byte {at})"
        )));
    }
    Ok(text)
}

/// Where a `\u` escape that is half a surrogate pair starts, if any. Only escapes
/// inside strings are looked at; malformed escapes are left to the parser.
fn lone_surrogate(b: &[u8]) -> Option<usize> {
    let hex4 = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u32> {
        (b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'u'))
            .then(|| hex4(at + 2))
            .flatten()
    };
    let (mut i, mut in_string) = (0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                match escape_at(i) {
                    Some(0xD800..=0xDBFF) => match escape_at(i + 6) {
                        Some(0xDC00..=0xDFFF) => i += 12,
                        _ => return Some(i),
                    },
                    Some(0xDC00..=0xDFFF) => return Some(i),
                    Some(_) => i += 6,
                    // `\"`, `\\` and the other one-letter escapes
                    None => i += 2,
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A deserializer that refuses a JSON array where a struct is expected, at any
/// depth (see the module).
#[derive(Debug)]
pub struct Strict<D>(pub D);

/// A visitor (or access, or seed) wrapped so that what it hands out is wrapped too.
struct Wrap<X> {
    inner: X,
    /// The visitor of a struct: a sequence is refused.
    object_only: bool,
}

impl<X> Wrap<X> {
    fn new(inner: X) -> Self {
        Wrap {
            inner,
            object_only: false,
        }
    }
    fn object(inner: X) -> Self {
        Wrap {
            inner,
            object_only: true,
        }
    }
}

macro_rules! forward {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(Wrap::new(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap::new(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap::new(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap::new(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Wrap::new(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, Wrap::object(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap::new(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! visit_forward {
    ($($method:ident: $ty:ty)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit_forward! {
        visit_bool: bool visit_i8: i8 visit_i16: i16 visit_i32: i32 visit_i64: i64
        visit_i128: i128 visit_u8: u8 visit_u16: u16 visit_u32: u32 visit_u64: u64
        visit_u128: u128 visit_f32: f32 visit_f64: f64 visit_char: char
        visit_str: &str visit_borrowed_str: &'de str visit_string: String
        visit_bytes: &[u8] visit_borrowed_bytes: &'de [u8] visit_byte_buf: Vec<u8>
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Strict(d))
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.object_only {
            return Err(de::Error::invalid_type(
                de::Unexpected::Seq,
                &"a JSON object",
            ));
        }
        self.inner.visit_seq(Wrap::new(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Wrap::new(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Wrap::new(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Strict(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Wrap::new(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Wrap::new(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(Wrap::new(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Wrap<A::Variant>), A::Error> {
        let (value, variant) = self.inner.variant_seed(Wrap::new(seed))?;
        Ok((value, Wrap::new(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Wrap::new(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Wrap::new(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, Wrap::object(visitor))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Inner {
        n: i64,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Kind {
        Pair { a: i64 },
        Plain,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        many: Vec<Inner>,
        #[serde(default)]
        maybe: Option<Inner>,
        #[serde(default)]
        kind: Option<Kind>,
    }

    fn parse(text: &str) -> Result<Outer, serde_json::Error> {
        from_str(text)
    }

    #[test]
    fn objects_parse() {
        let o = parse(
            r#" {"name":"é\ud83d\ude00","inner":{"n":1},"many":[{"n":2}],"maybe":{"n":3},"kind":{"Pair":{"a":4}},"extra":"\"\\"} "#,
        );
        // unknown fields are the type's business: Outer does not deny them
        let o = o.unwrap();
        assert_eq!(o.inner, Inner { n: 1 });
        assert_eq!(o.name, "é😀");
        assert_eq!(o.kind, Some(Kind::Pair { a: 4 }));
        assert_eq!(
            parse(r#"{"name":"x","inner":{"n":1},"kind":"Plain"}"#)
                .unwrap()
                .kind,
            Some(Kind::Plain)
        );
    }

    #[test]
    fn arrays_refused_where_objects_are_expected_at_any_depth() {
        // plain serde_json accepts each of these
        for text in [
            r#"["x",{"n":1}]"#,
            r#"{"name":"x","inner":[1]}"#,
            r#"{"name":"x","inner":{"n":1},"many":[[2]]}"#,
            r#"{"name":"x","inner":{"n":1},"maybe":[3]}"#,
            r#"{"name":"x","inner":{"n":1},"kind":{"Pair":[4]}}"#,
        ] {
            assert!(serde_json::from_str::<Outer>(text).is_ok(), "{text}");
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains("a JSON object"), "{text}: {e}");
        }
    }

    #[test]
    fn trailing_bytes_refused() {
        for text in [
            r#"{"name":"x","inner":{"n":1}}{"name":"y","inner":{"n":2}}"#,
            r#"{"name":"x","inner":{"n":1}} x"#,
            r#"{"name":"x","inner":{"n":1}}]"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        assert!(parse("{\"name\":\"x\",\"inner\":{\"n\":1}}\r\n\t ").is_ok());
    }

    #[test]
    fn invalid_utf8_and_lone_surrogates_refused_even_in_ignored_fields() {
        let mut bytes = br#"{"name":"x","inner":{"n":1},"ignored":""#.to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(br#""}"#);
        // plain serde_json skips the ignored string without looking
        assert!(serde_json::from_slice::<Outer>(&bytes).is_ok());
        assert!(
            from_slice::<Outer>(&bytes)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        for text in [
            r#"{"name":"x","inner":{"n":1},"ignored":"\ud800"}"#,
            r#"{"name":"x","inner":{"n":1},"ignored":"\udc00 after"}"#,
            r#"{"name":"x","inner":{"n":1},"ignored":"\ud800\u0041"}"#,
            r#"{"name":"x","inner":{"n":1},"ignored":"\uDBFF"}"#,
        ] {
            assert!(serde_json::from_str::<Outer>(text).is_ok(), "{text}");
            assert!(
                parse(text).unwrap_err().to_string().contains("surrogate"),
                "{text}"
            );
        }
        // an escaped backslash before "u" is not an escape
        assert!(parse(r#"{"name":"\\ud800","inner":{"n":1}}"#).is_ok());
    }

    #[test]
    fn maps_and_values_unchanged() {
        let v: serde_json::Value = from_str(r#"[1,{"a":[2]}]"#).unwrap();
        assert_eq!(v, serde_json::json!([1, {"a": [2]}]));
        let m: std::collections::BTreeMap<String, Vec<i64>> = from_str(r#"{"a":[1]}"#).unwrap();
        assert_eq!(m["a"], vec![1]);
    }
}
