//! The `COPLAN_*` environment layer: one variable per [`Config`] setting, named after it, read
//! through a lookup function so tests need not touch the process environment. Values stay text;
//! numbers and switches (`true`/`false`, `1`/`0`, `yes`/`no`) are read when resolving. An empty
//! variable counts as unset.

use super::layer::Source;
use super::Config;
use figment::value::{Dict, Value};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The variables `get` finds, as a layer named after them in error messages.
pub(super) fn environment(get: impl Fn(&str) -> Option<String>) -> Source {
    let mut values = Dict::new();
    for field in field_names::<Config>() {
        let Some(name) = variable(field) else {
            continue;
        };
        if let Some(value) = get(&name).filter(|v| !v.trim().is_empty()) {
            values.insert(field.to_string(), Value::from(value));
        }
    }
    Source::new("the environment".into(), Ok(values), |key| {
        variable(key).unwrap_or_else(|| key.to_string())
    })
}

/// The environment variable of a setting: `COPLAN_` and its upper-cased name.
fn variable(field: &str) -> Option<String> {
    match field {
        // Tables of their own: the configuration file only.
        "trusted_issuers" | "required_profiles" => None,
        "log_filter" => Some("COPLAN_LOG".to_string()),
        _ => Some(format!("COPLAN_{}", field.to_ascii_uppercase())),
    }
}

/// The names serde reads a struct's fields by (renames applied), asked of its derived
/// `Deserialize`.
fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field names were wanted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_but_the_tables_has_a_variable() {
        let names: Vec<_> = field_names::<Config>()
            .iter()
            .filter_map(|f| variable(f))
            .collect();
        // trusted_issuers and required_profiles: tables, in the configuration file only.
        assert_eq!(names.len(), field_names::<Config>().len() - 2);
        assert!(!names.iter().any(|n| n == "COPLAN_REQUIRED_PROFILES"));
        for name in [
            "COPLAN_LISTEN",
            "COPLAN_TIMEZONE",
            "COPLAN_LOG",
            "COPLAN_LOG_FORMAT",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "COPLAN_LOG_FILTER"));
    }
}
