//! The `value` part of an operation (fhirpatch.html "Parameters Format" and "Anonymous
//! Types"): a typed `value[x]` (with its `_value[x]` sibling), a `resource`, or nested
//! `part`s that build an element of an anonymous type (or any complex type) member by member
//! — and the check that it suits the element it goes to.

use fhir_validate::{ComplexType, ElementDef, ElementType};
use serde_json::{Map, Value};

use crate::doc::Content;

/// The content of a `value` part (or of one of its nested parts).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValuePart {
    /// `value[x]`: the type as its JSON suffix (`Date`, `HumanName`) and the JSON.
    Typed {
        suffix: String,
        ty: ElementType,
        value: Value,
        companion: Option<Value>,
    },
    /// `resource`.
    Resource(Value),
    /// Nested parts, one per member (a repeating member may be given several times).
    Parts(Vec<(String, ValuePart)>),
}

impl ValuePart {
    /// Reads a `Parameters.parameter.part` as a value.
    pub(crate) fn parse(part: &Map<String, Value>) -> Result<ValuePart, String> {
        let typed: Vec<&String> = part.keys().filter(|k| k.starts_with("value")).collect();
        let mut found = Vec::new();
        if let [key] = typed.as_slice() {
            let suffix = &key["value".len()..];
            let ty = parameter_type(key).ok_or_else(|| {
                format!("{key} is not a value type a Parameters resource can carry")
            })?;
            found.push(ValuePart::Typed {
                suffix: suffix.to_string(),
                ty,
                value: part[key.as_str()].clone(),
                companion: part.get(&format!("_{key}")).cloned(),
            });
        } else if typed.len() > 1 {
            return Err(format!(
                "a value part has one value[x], not {}",
                typed
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        if let Some(resource) = part.get("resource") {
            found.push(ValuePart::Resource(resource.clone()));
        }
        if let Some(parts) = part.get("part") {
            let parts = parts.as_array().ok_or("part must be an array")?;
            let mut members = Vec::with_capacity(parts.len());
            for p in parts {
                let p = p.as_object().ok_or("a part must be an object")?;
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("every nested part needs the name of the element it gives")?;
                members.push((name.to_string(), ValuePart::parse(p)?));
            }
            found.push(ValuePart::Parts(members));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err("a value part needs a value[x], a resource or nested parts".into()),
            _ => Err("a value part has either a value[x], a resource or nested parts".into()),
        }
    }

    /// The type suffix of a typed value (`Boolean` makes `deceased` `deceasedBoolean`).
    fn suffix(&self) -> Option<&str> {
        match self {
            ValuePart::Typed { suffix, .. } => Some(suffix),
            _ => None,
        }
    }
}

/// The type of `Parameters.parameter.value{X}` for the key `value{X}`.
fn parameter_type(key: &str) -> Option<ElementType> {
    ComplexType::named("Parameters.parameter")?
        .element(key)
        .filter(|e| e.choice_group == Some("value"))
        .map(|e| e.ty)
}

/// The element `name` of `parent` that `value` goes to: `name` itself, or for the name of a
/// `[x]` choice (`deceased`) the variant of the value's type (`deceasedBoolean`).
pub(crate) fn resolve_element(
    parent: ComplexType,
    name: &str,
    value: &ValuePart,
) -> Result<ElementDef, String> {
    if let Some(def) = parent.element(name) {
        return Ok(def);
    }
    if !parent.is_choice_group(name) {
        return Err(format!("{} has no element {name:?}", parent.name()));
    }
    let suffix = value
        .suffix()
        .ok_or_else(|| format!("{name}[x] is a choice: its value must be a typed value[x]"))?;
    parent
        .element(&format!("{name}{suffix}"))
        .filter(|def| def.choice_group == Some(name))
        .ok_or_else(|| format!("{name}[x] of {} cannot be a {suffix}", parent.name()))
}

/// Quantity and the data types that constrain it (datatypes.html#Quantity): the same JSON.
const QUANTITIES: [&str; 5] = ["Quantity", "Age", "Count", "Distance", "Duration"];

fn type_name(ty: ElementType) -> &'static str {
    match ty {
        ElementType::Primitive(p) => p,
        ElementType::Complex(c) => c.name(),
        ElementType::Resource => "Resource",
    }
}

/// Builds the content `value` makes for the element `def` (one item of it, when it
/// repeats), refusing a value whose type does not suit the element.
pub(crate) fn build(def: &ElementDef, value: &ValuePart) -> Result<Content, String> {
    let wrong = |given: &str| {
        Err(format!(
            "{} holds a {}, the value given is {given}",
            def.name,
            type_name(def.ty)
        ))
    };
    match (value, def.ty) {
        (
            ValuePart::Typed {
                ty,
                value,
                companion,
                ..
            },
            target,
        ) => {
            let fits = match (target, *ty) {
                (ElementType::Primitive(_), ElementType::Primitive(_)) => true,
                (ElementType::Complex(a), ElementType::Complex(b)) => {
                    a == b || (QUANTITIES.contains(&a.name()) && QUANTITIES.contains(&b.name()))
                }
                _ => false,
            };
            if !fits {
                return wrong(&format!("a {}", type_name(*ty)));
            }
            Ok(Content {
                value: value.clone(),
                companion: companion.clone(),
            })
        }
        (ValuePart::Resource(resource), ElementType::Resource) => Ok(Content {
            value: resource.clone(),
            companion: None,
        }),
        (ValuePart::Resource(_), _) => wrong("a resource"),
        (ValuePart::Parts(members), ElementType::Complex(t)) => Ok(Content {
            value: Value::Object(object_of(t, members)?),
            companion: None,
        }),
        (ValuePart::Parts(_), _) => wrong("a set of parts"),
    }
}

/// An element of type `t` built from nested parts, one member each.
fn object_of(
    t: ComplexType,
    members: &[(String, ValuePart)],
) -> Result<Map<String, Value>, String> {
    let mut obj = Map::new();
    for (name, part) in members {
        let def = resolve_element(t, name, part)?;
        let content = build(&def, part)?;
        let key = def.name.to_string();
        let ext = format!("_{key}");
        if def.repeats {
            let len = obj.get(&key).and_then(Value::as_array).map_or(0, Vec::len);
            if let Value::Array(items) = obj
                .entry(key.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                items.push(content.value);
            }
            if content.companion.is_some() || obj.contains_key(&ext) {
                if let Value::Array(items) =
                    obj.entry(ext).or_insert_with(|| Value::Array(Vec::new()))
                {
                    items.resize(len, Value::Null);
                    items.push(content.companion.unwrap_or(Value::Null));
                }
            }
        } else {
            let taken = obj.contains_key(&key)
                || def.choice_group.is_some_and(|g| {
                    obj.keys()
                        .any(|k| t.element(k).is_some_and(|e| e.choice_group == Some(g)))
                });
            if taken {
                return Err(format!(
                    "{} of {} is given twice, but it does not repeat",
                    def.choice_group.map_or(key.clone(), |g| format!("{g}[x]")),
                    t.name()
                ));
            }
            obj.insert(key, content.value);
            if let Some(c) = content.companion {
                obj.insert(ext, c);
            }
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(v: Value) -> Result<ValuePart, String> {
        ValuePart::parse(v.as_object().unwrap())
    }

    fn element(t: &str, name: &str) -> ElementDef {
        ComplexType::named(t).unwrap().element(name).unwrap()
    }

    #[test]
    fn typed_values_must_suit_their_element() {
        let date = part(json!({"name":"value","valueDate":"1930-01-01"})).unwrap();
        let built = build(&element("Patient", "birthDate"), &date).unwrap();
        assert_eq!(built.value, json!("1930-01-01"));
        // Any primitive for a primitive: the result's validation checks the format.
        assert!(build(
            &element("Annotation", "text"),
            &part(json!({"name":"value","valueString":"s"})).unwrap()
        )
        .is_ok());
        let name = part(json!({"name":"value","valueHumanName":{"text":"a"}})).unwrap();
        let err = build(&element("Patient", "birthDate"), &name).unwrap_err();
        assert_eq!(
            err,
            "birthDate holds a date, the value given is a HumanName"
        );
        assert!(build(&element("Patient", "maritalStatus"), &name).is_err());
        assert!(
            build(&element("Patient", "contact"), &name).is_err(),
            "backbones take parts"
        );
        let age = part(json!({"name":"value","valueAge":{"value":3}})).unwrap();
        assert!(build(&element("Observation", "valueQuantity"), &age).is_ok());
        let with_ext =
            part(json!({"name":"value","valueDate":"2000","_valueDate":{"id":"x"}})).unwrap();
        assert_eq!(
            build(&element("Patient", "birthDate"), &with_ext)
                .unwrap()
                .companion,
            Some(json!({"id":"x"}))
        );
    }

    #[test]
    fn malformed_value_parts() {
        for bad in [
            json!({"name":"value"}),
            json!({"name":"value","valueString":"a","valueCode":"b"}),
            json!({"name":"value","valueString":"a","part":[{"name":"x","valueString":"y"}]}),
            json!({"name":"value","valueBanana":"a"}),
            json!({"name":"value","part":[{"valueString":"y"}]}),
        ] {
            assert!(part(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_build_anonymous_types() {
        let contact = part(json!({"name":"value","part":[
            {"name":"name","valueHumanName":{"text":"a name"}},
            {"name":"telecom","valueContactPoint":{"system":"phone","value":"1"}},
            {"name":"telecom","valueContactPoint":{"system":"email","value":"e"}},
            {"name":"gender","valueCode":"female"}
        ]}))
        .unwrap();
        let built = build(&element("Patient", "contact"), &contact).unwrap();
        assert_eq!(
            built.value,
            json!({"name":{"text":"a name"},"telecom":[{"system":"phone","value":"1"},{"system":"email","value":"e"}],"gender":"female"})
        );
        let twice = part(json!({"name":"value","part":[{"name":"gender","valueCode":"a"},{"name":"gender","valueCode":"b"}]})).unwrap();
        assert!(build(&element("Patient", "contact"), &twice)
            .unwrap_err()
            .contains("given twice"));
        let unknown =
            part(json!({"name":"value","part":[{"name":"banana","valueCode":"a"}]})).unwrap();
        assert_eq!(
            build(&element("Patient", "contact"), &unknown).unwrap_err(),
            "Patient.contact has no element \"banana\""
        );
        let component = part(json!({"name":"value","part":[
            {"name":"code","valueCodeableConcept":{"text":"c"}},
            {"name":"value","valueQuantity":{"value":1}}
        ]}))
        .unwrap();
        let built = build(&element("Observation", "component"), &component).unwrap();
        assert_eq!(
            built.value,
            json!({"code":{"text":"c"},"valueQuantity":{"value":1}})
        );
    }

    #[test]
    fn choices_take_the_variant_of_the_value() {
        let patient = ComplexType::named("Patient").unwrap();
        let boolean = part(json!({"name":"value","valueBoolean":true})).unwrap();
        assert_eq!(
            resolve_element(patient, "deceased", &boolean).unwrap().name,
            "deceasedBoolean"
        );
        let name = part(json!({"name":"value","valueHumanName":{"text":"a"}})).unwrap();
        assert_eq!(
            resolve_element(patient, "deceased", &name).unwrap_err(),
            "deceased[x] of Patient cannot be a HumanName"
        );
        assert_eq!(
            resolve_element(patient, "deceasedBoolean", &boolean)
                .unwrap()
                .name,
            "deceasedBoolean"
        );
        assert!(resolve_element(patient, "banana", &boolean).is_err());
    }
}
