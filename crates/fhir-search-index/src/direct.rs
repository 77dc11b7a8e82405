//! Search parameter branches read from the JSON directly, without the FHIRPath engine
//! (FHIRPath N1 §5 path navigation and §5.2 `where`, as the engine evaluates them on R4 JSON).
//!
//! Nearly every R4 search parameter branch is an element path (`CarePlan.activity.detail.code`),
//! a few filter on a field (`Patient.telecom.where(system='phone')`,
//! `PlanDefinition.relatedArtifact.where(type='depends-on').resource`) and one tests a boolean
//! (`Patient.deceased.exists() and Patient.deceased != false`). Converting a resource into the
//! engine's model costs more than all of its paths together, so the extractor reads these
//! shapes itself and converts a resource only when a present branch needs the engine. No
//! FHIRPath crate offers a JSON-direct mode (octofhir-fhirpath converts every resource), hence
//! this walk. Wherever the engine's answer is not a plain read (a number, which it types; a
//! null; a primitive with steps after it; an absent `contained` or `resource`, which it
//! resolves in ways of its own; a choice's time without a zone, which it reads as UTC; a
//! `where` field present only as a choice-style key) [`Direct::read`] answers `None` and the engine decides.
//! `tests/extract_fast_path.rs` shows both ways give the same index rows on every example and
//! fuzz corpus resource and on systematic mutations of the examples.

use std::borrow::Cow;

use fhir_fhirpath::Node;
use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `.name`: the element, arrays flattened, or a choice element `nameType`.
    Element(String),
    /// `.where(field='literal')`, spaces around `=` allowed: the items whose `field` is
    /// that string.
    WhereEquals { field: String, literal: String },
}

/// A branch the extractor can read without the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Direct {
    /// Steps from the resource (none: the resource itself, as composites start).
    Path(Vec<Step>),
    /// `T.e.exists() and T.e != false`, for a choice element `e` (`Patient.deceased`).
    PresentAndNotFalse(String),
}

fn is_element_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

impl Direct {
    /// The direct form of a rewritten branch of `resource_type`, if it has one.
    pub(crate) fn of(source: &str, resource_type: &str) -> Option<Direct> {
        let rest = source.strip_prefix(resource_type)?;
        if let Some(element) = present_and_not_false(rest, resource_type) {
            return Some(Direct::PresentAndNotFalse(element));
        }
        let mut steps = Vec::new();
        let mut rest = rest;
        while !rest.is_empty() {
            rest = rest.strip_prefix('.')?;
            if let Some(filter) = rest.strip_prefix("where(") {
                let (field, tail) = filter.split_once('=')?;
                let field = field.trim_end();
                let (literal, tail) = tail.trim_start().strip_prefix('\'')?.split_once("')")?;
                if !is_element_name(field) || literal.contains(['\'', '\\']) {
                    return None;
                }
                steps.push(Step::WhereEquals {
                    field: field.to_string(),
                    literal: literal.to_string(),
                });
                rest = tail;
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let name = &rest[..end];
                if !is_element_name(name) {
                    return None;
                }
                steps.push(Step::Element(name.to_string()));
                rest = &rest[end..];
            }
        }
        Some(Direct::Path(steps))
    }

    /// The branch's values on `resource`, as the engine gives them; `None` where the engine
    /// must decide (see the module documentation).
    pub(crate) fn read<'v>(&self, resource: &'v Value) -> Option<Vec<Node<'v>>> {
        match self {
            Direct::Path(steps) => follow(resource, steps),
            Direct::PresentAndNotFalse(element) => {
                let object = resource.as_object()?;
                let mut found = object.iter().filter(|(key, _)| is_choice_of(key, element));
                let verdict = match (object.get(element.as_str()), found.next(), found.next()) {
                    (None, None, _) => false,
                    (None, Some((key, Value::Bool(b))), None) if key.ends_with("Boolean") => *b,
                    _ => return None,
                };
                Some(vec![Node::Json(Cow::Owned(Value::Bool(verdict)))])
            }
        }
    }
}

/// `.e.exists() and T.e != false` (after the resource type) → `e`.
fn present_and_not_false(rest: &str, resource_type: &str) -> Option<String> {
    let element = rest.strip_prefix('.')?.strip_suffix(" != false")?;
    let (element, again) = element.split_once(".exists() and ")?;
    (is_element_name(element) && again == format!("{resource_type}.{element}"))
        .then(|| element.to_string())
}

/// Whether `key` is the choice element `name` + a type (`effective` → `effectiveDateTime`).
pub(crate) fn is_choice_of(key: &str, name: &str) -> bool {
    key.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_uppercase()))
}

/// Whether `text` is a date with a time of day but no zone (`2020-01-01T10:00:00`).
fn is_zoneless_time(text: &str) -> bool {
    text.split_once('T').is_some_and(|(date, time)| {
        date.len() >= 10
            && date.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && !time.contains(['Z', '+', '-'])
    })
}

/// Follows `steps` from `resource` (see [`Direct::Path`]).
fn follow<'v>(resource: &'v Value, steps: &[Step]) -> Option<Vec<Node<'v>>> {
    let mut current: Vec<&'v Value> = vec![resource];
    for (at, step) in steps.iter().enumerate() {
        let last = at + 1 == steps.len();
        let mut next = Vec::new();
        for value in current {
            let object = value.as_object()?;
            match step {
                Step::WhereEquals { field, literal } => match object.get(field.as_str()) {
                    Some(Value::String(s)) if s == literal => next.push(value),
                    Some(Value::String(_)) => {}
                    // The engine reads a choice-style key (`systemCode`) as the field.
                    None if !object.keys().any(|key| is_choice_of(key, field)) => {}
                    _ => return None,
                },
                Step::Element(name) => {
                    if let Some(found) = object.get(name.as_str()) {
                        push(found, last, &mut next)?;
                        continue;
                    }
                    let mut any = false;
                    for (_, found) in object.iter().filter(|(key, _)| is_choice_of(key, name)) {
                        // The engine types a choice's temporal value and reads a time without
                        // a zone (invalid FHIR) as UTC, where the extractor uses the server's
                        // zone: the engine's answer stands.
                        if found.as_str().is_some_and(is_zoneless_time) {
                            return None;
                        }
                        push(found, last, &mut next)?;
                        any = true;
                    }
                    if !any && (name == "contained" || name == "resource") {
                        return None;
                    }
                }
            }
        }
        current = next;
    }
    Some(
        current
            .into_iter()
            .map(|value| Node::Json(Cow::Borrowed(value)))
            .collect(),
    )
}

/// Adds `found` (each item, if an array) to `next`: objects go on; a string or boolean only as
/// the last step's value; anything else is the engine's to say.
fn push<'v>(found: &'v Value, last: bool, next: &mut Vec<&'v Value>) -> Option<()> {
    let items = match found {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    for item in items {
        match item {
            Value::Object(_) => next.push(item),
            Value::String(_) | Value::Bool(_) if last => next.push(item),
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn element(name: &str) -> Step {
        Step::Element(name.to_string())
    }

    #[test]
    fn shapes_with_a_direct_form() {
        let of = |s| Direct::of(s, "Patient");
        assert_eq!(
            of("Patient.name.family"),
            Some(Direct::Path(vec![element("name"), element("family")]))
        );
        assert_eq!(of("Patient"), Some(Direct::Path(vec![])));
        assert_eq!(
            of("Patient.telecom.where(system='phone')"),
            Some(Direct::Path(vec![
                element("telecom"),
                Step::WhereEquals {
                    field: "system".into(),
                    literal: "phone".into()
                }
            ]))
        );
        assert_eq!(
            of("Patient.extension.where(url = 'http://x.org/a.b').valueReference"),
            Some(Direct::Path(vec![
                element("extension"),
                Step::WhereEquals {
                    field: "url".into(),
                    literal: "http://x.org/a.b".into()
                },
                element("valueReference")
            ]))
        );
        assert_eq!(
            of("Patient.deceased.exists() and Patient.deceased != false"),
            Some(Direct::PresentAndNotFalse("deceased".into()))
        );
        for engine_only in [
            "Patient.",
            "Goal.subject",
            "Patient.Name",
            "Patient.a..b",
            "(Patient.name)",
            "Patient.name[0]",
            "Patient.name.exists()",
            "Patient.name | Patient.alias",
            "Patient.telecom.where(system='a'or'b')",
            "Patient.telecom.where(system='it\\'s')",
            "Patient.telecom.where(system!='phone')",
            "Patient.telecom.where(system='phone' or system='email')",
            "Patient.telecom.where(system='phone'",
            "Patient.extension('http://x').value",
            "Patient.deceased.exists() and Patient.active != false",
        ] {
            assert_eq!(of(engine_only), None, "{engine_only}");
        }
    }

    #[test]
    fn reads_what_a_path_says_and_leaves_the_rest_to_the_engine() {
        let patient = json!({
            "resourceType": "Patient",
            "name": [{"family": "Chalmers", "given": ["Peter", "James"]}, {"given": ["Jim"]}],
            "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "2"}],
            "deceasedBoolean": true,
            "multipleBirthInteger": 2
        });
        let read = |s: &str| {
            Direct::of(s, "Patient")
                .and_then(|d| d.read(&patient))
                .map(|nodes| nodes.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>())
        };
        let given = read("Patient.name.given").unwrap_or_default();
        assert_eq!(given.len(), 3, "{given:?}");
        let phones = read("Patient.telecom.where(system='phone').value").unwrap_or_default();
        assert_eq!(
            phones,
            [format!("{:?}", Node::Json(Cow::Owned(json!("1"))))]
        );
        assert_eq!(
            read("Patient.deceased.exists() and Patient.deceased != false").map(|v| v.len()),
            Some(1)
        );
        assert_eq!(read("Patient.birthDate"), Some(vec![]));
        assert!(is_zoneless_time("2020-01-01T10:00:00.5"));
        assert!(!is_zoneless_time("2020-01-01T10:00:00-05:00"));
        assert!(!is_zoneless_time("Take 2 tablets"));
        // A number is typed by the engine; an absent `contained` it resolves itself.
        assert_eq!(read("Patient.multipleBirth"), None);
        assert_eq!(read("Patient.contained"), None);
        assert_eq!(read("Patient.extension"), Some(vec![]));
        // A primitive with steps after it.
        assert_eq!(read("Patient.name.family.extension"), None);
    }
}
