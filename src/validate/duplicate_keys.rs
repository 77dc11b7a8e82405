//! FHIR JSON forbids repeated property names in one object (json.html: "a property SHALL NOT
//! appear more than once"). serde_json keeps the last of them silently, so this pass walks the
//! raw document once, without building values, and reports the first repeated key.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Check `json` for repeated keys; `Err` carries a message naming the key.
pub fn check_no_duplicate_keys(json: &[u8]) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    NoDuplicateKeys::deserialize(&mut deserializer)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format!(
                    "the property {key:?} appears more than once in one object"
                )));
            }
            map.next_value::<NoDuplicateKeys>()?;
            seen.push(key);
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::check_no_duplicate_keys;

    #[test]
    fn finds_repeated_keys_at_any_depth() {
        assert!(check_no_duplicate_keys(br#"{"a":1,"b":[{"c":2.50,"d":null}],"e":"x"}"#).is_ok());
        let top = check_no_duplicate_keys(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(top.contains("\"a\""), "{top}");
        assert!(check_no_duplicate_keys(br#"{"a":[{"b":{"c":1,"c":1}}]}"#).is_err());
        assert!(
            check_no_duplicate_keys(br#"{"a":1,"\u0061":2}"#).is_err(),
            "escaped spellings are the same key"
        );
    }
}
