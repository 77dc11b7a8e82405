//! Where in the resource a path's results are: the engine evaluates the path; objects it
//! returns are found by identity; primitives (values the engine computed) are found through
//! the path's last member step, from the places of its prefix (see the crate docs).

use std::borrow::Cow;

use fhir_fhirpath::{Engine, Expression, Node};
use serde_json::Value;

use crate::doc::{self, Holds, Pointer, Step};
use crate::path;

/// The places of the results of `expression` (its text `source`) in `resource`, in the
/// order the engine returns them.
pub(crate) fn locate(
    engine: &Engine,
    resource: &Value,
    expression: &Expression,
    source: &str,
) -> Result<Vec<Pointer>, String> {
    let prepared = engine.prepare(resource);
    let nodes = futures::executor::block_on(engine.evaluate(expression, &prepared))
        .map_err(|e| format!("the path cannot be evaluated: {e}"))?;
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let borrowed: Option<Vec<&Value>> = nodes
        .iter()
        .map(|n| match n {
            Node::Json(Cow::Borrowed(v)) => Some(*v),
            _ => None,
        })
        .collect();
    if let Some(values) = borrowed {
        return doc::find_all(resource, &values)
            .ok_or_else(|| "the path selects content outside the resource".to_string());
    }
    let count = nodes.len();
    drop(prepared);
    let not_located = || {
        format!(
            "the path selects {count} value(s) that cannot be told apart from others in the \
             resource; name the element itself, ending the path in its name (and an index: \
             Patient.name[0].given[1])"
        )
    };
    let tail = path::tail(source).ok_or_else(not_located)?;
    let parents = match tail.prefix {
        Some(prefix) => {
            let compiled = engine.compile(prefix).map_err(|_| not_located())?;
            locate(engine, resource, &compiled, prefix)?
        }
        None => vec![Vec::new()],
    };
    let mut found = Vec::new();
    for parent in &parents {
        members(resource, parent, tail.member, &mut found);
    }
    if let Some(i) = tail.index {
        found = found.into_iter().nth(i).into_iter().collect();
    }
    if found.len() != count {
        return Err(not_located());
    }
    Ok(found)
}

/// The places of the element(s) `member` of the element at `parent` (a primitive's members,
/// `id` and `extension`, are in its `_name` sibling; a choice `value` is `valueQuantity`…).
fn members(resource: &Value, parent: &[Step], member: &str, out: &mut Vec<Pointer>) {
    let object_at = match doc::get(resource, parent) {
        Some(Value::Object(_)) => parent.to_vec(),
        Some(Value::Array(_)) | None => return,
        Some(_) => match doc::companion(parent) {
            Some(c) if matches!(doc::get(resource, &c), Some(Value::Object(_))) => c,
            _ => return,
        },
    };
    let Some(obj) = doc::get(resource, &object_at).and_then(Value::as_object) else {
        return;
    };
    let key = if obj.contains_key(member) {
        member.to_string()
    } else {
        let Holds::Complex(t) = doc::holds(resource, &object_at) else {
            return;
        };
        if !t.is_choice_group(member) {
            return;
        }
        match obj
            .keys()
            .find(|k| t.element(k).is_some_and(|e| e.choice_group == Some(member)))
        {
            Some(k) => k.clone(),
            None => return,
        }
    };
    let companions = obj.get(&format!("_{key}")).and_then(Value::as_array);
    let mut at = object_at;
    at.push(Step::Key(key.clone()));
    match &obj[key.as_str()] {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let described = companions
                    .and_then(|c| c.get(i))
                    .is_some_and(|c| !c.is_null());
                if !item.is_null() || described {
                    let mut p = at.clone();
                    p.push(Step::Index(i));
                    out.push(p);
                }
            }
        }
        _ => out.push(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn places(resource: &Value, path: &str) -> Result<Vec<String>, String> {
        let engine = Engine::shared().unwrap();
        let expression = engine.compile(path).unwrap();
        let found = locate(engine, resource, &expression, path)?;
        Ok(found.iter().map(|p| doc::describe(resource, p)).collect())
    }

    #[test]
    fn objects_by_identity_and_primitives_by_their_member_step() {
        let obs = json!({"resourceType":"Observation","status":"final","code":{"text":"c"},
            "valueQuantity":{"value":1.5},
            "note":[{"text":"a"},{"text":"b"}],
            "component":[{"code":{"text":"x"},"valueString":"v1"},{"code":{"text":"y"},"valueString":"v2"}],
            "contained":[{"resourceType":"Patient","id":"p","birthDate":"2000-01-01","_birthDate":{"extension":[{"url":"u","valueString":"s"}]},
                "name":[{"given":["a","b"]},{"given":["c"]}]}]});
        let cases: &[(&str, &[&str])] = &[
            ("Observation", &["Observation"]),
            (
                "Observation.note.where(text = 'b')",
                &["Observation.note[1]"],
            ),
            ("Observation.note[1].text", &["Observation.note[1].text"]),
            (
                "Observation.note.text",
                &["Observation.note[0].text", "Observation.note[1].text"],
            ),
            ("Observation.status", &["Observation.status"]),
            ("status", &["Observation.status"]),
            ("Observation.value", &["Observation.valueQuantity"]),
            (
                "Observation.component.value",
                &[
                    "Observation.component[0].valueString",
                    "Observation.component[1].valueString",
                ],
            ),
            (
                "Observation.component[1].value",
                &["Observation.component[1].valueString"],
            ),
            (
                "Observation.contained.birthDate",
                &["Observation.contained[0].birthDate"],
            ),
            (
                "Observation.contained.birthDate.extension",
                &["Observation.contained[0]._birthDate.extension[0]"],
            ),
            (
                "Observation.contained.name.given[2]",
                &["Observation.contained[0].name[1].given[0]"],
            ),
            (
                "Observation.contained.name.given",
                &[
                    "Observation.contained[0].name[0].given[0]",
                    "Observation.contained[0].name[0].given[1]",
                    "Observation.contained[0].name[1].given[0]",
                ],
            ),
            ("Observation.note.text[5]", &[]),
            ("Observation.issued", &[]),
        ];
        for (path, expected) in cases {
            assert_eq!(&places(&obs, path).unwrap(), expected, "{path}");
        }
        let err = places(&obs, "Observation.note.text.first()").unwrap_err();
        assert!(err.contains("cannot be told apart"), "{err}");
    }
}
