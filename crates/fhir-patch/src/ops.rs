//! The five operations (fhirpatch.html "Conceptual FHIRPath Operations"), each applied to
//! the result of the one before.

use fhir_fhirpath::Engine;
use serde_json::Value;

use crate::doc::{self, Holds, Pointer, Step};
use crate::locate::locate;
use crate::parse::{Operation, OperationType};
use crate::value::{build, resolve_element, ValuePart};

/// Applies one operation to `resource`; the error says why it cannot be.
pub(crate) fn apply(engine: &Engine, op: &Operation, resource: &mut Value) -> Result<(), String> {
    let found = locate(engine, resource, &op.expression, &op.source)?;
    match op.kind {
        OperationType::Delete => match found.as_slice() {
            [] => Ok(()),
            [one] => {
                if one.is_empty() {
                    return Err("the resource itself cannot be deleted".into());
                }
                doc::remove(resource, one)
            }
            many => Err(more_than_one(resource, many, "delete removes one element")),
        },
        OperationType::Replace => {
            let at = single(resource, &found, "replace")?;
            replace(resource, &at, value(op)?)
        }
        OperationType::Add => {
            let at = single(resource, &found, "add")?;
            let name = op.name.as_deref().ok_or("add needs a name")?;
            add(resource, &at, name, value(op)?)
        }
        OperationType::Insert => {
            let list = whole_list(resource, &found)?;
            let index = op.index.ok_or("insert needs an index")?;
            let def = element(resource, &found[0])?;
            let content = build(&def, value(op)?)?;
            doc::insert_item(resource, list.object, list.key, index, content)
        }
        OperationType::Move => {
            let list = whole_list(resource, &found)?;
            let (from, to) = (op.from.unwrap_or(0), op.to.unwrap_or(0));
            let len = found.len();
            for (what, i) in [("source", from), ("destination", to)] {
                if i >= len {
                    return Err(format!(
                        "{what} {i} is not an index of the list (it has {len} item(s))"
                    ));
                }
            }
            let (object, key) = (list.object.to_vec(), list.key.to_string());
            let item = doc::remove_item(resource, &object, &key, from)?;
            doc::insert_item(resource, &object, &key, to, item)
        }
    }
}

fn value(op: &Operation) -> Result<&ValuePart, String> {
    op.value
        .as_ref()
        .ok_or_else(|| format!("{} needs a value", op.kind.name()))
}

/// The one place a path selected (fhirpatch.html: "The FHIRPath statement must return a
/// single element"; "except for the delete operation, it is an error if no element matches").
fn single(resource: &Value, found: &[Pointer], what: &str) -> Result<Pointer, String> {
    match found {
        [] => Err(format!(
            "no element matches the path ({what} needs exactly one; only delete accepts none)"
        )),
        [one] => Ok(one.clone()),
        many => Err(more_than_one(
            resource,
            many,
            &format!("{what} needs exactly one"),
        )),
    }
}

fn more_than_one(resource: &Value, found: &[Pointer], rule: &str) -> String {
    let shown: Vec<String> = found
        .iter()
        .take(3)
        .map(|p| doc::describe(resource, p))
        .collect();
    let more = if found.len() > 3 { ", …" } else { "" };
    format!(
        "the path matches {} elements ({}{more}); {rule}",
        found.len(),
        shown.join(", ")
    )
}

/// The model's definition of the element at `at`.
fn element(resource: &Value, at: &[Step]) -> Result<fhir_validate::ElementDef, String> {
    doc::element_at(resource, at).ok_or_else(|| {
        format!(
            "{} is not an element the R4 model knows",
            doc::describe(resource, at)
        )
    })
}

struct List<'p> {
    object: &'p [Step],
    key: &'p str,
}

/// The list whose items `found` are, all of them in order (insert and move name "the
/// collection": a whole list, not a selection from it).
fn whole_list<'p>(resource: &Value, found: &'p [Pointer]) -> Result<List<'p>, String> {
    let first = found.first().ok_or(
        "no element matches the path (insert and move need an existing list; add starts one)",
    )?;
    let m = doc::member(first).ok_or("the path selects the resource, not a list")?;
    let list = List {
        object: m.object,
        key: m.key,
    };
    let len = match doc::get(resource, m.object).and_then(|o| o.get(m.key)) {
        Some(Value::Array(items)) if m.index.is_some() => items.len(),
        _ => return Err(format!("{} is not a list", doc::describe(resource, first))),
    };
    let whole = found.len() == len
        && found.iter().enumerate().all(|(i, p)| {
            doc::member(p)
                .is_some_and(|m| m.object == list.object && m.key == list.key && m.index == Some(i))
        });
    if !whole {
        return Err(format!(
            "the path must select a whole list (all {len} item(s) of {}.{}), not part of one \
             or items of several",
            doc::describe(resource, list.object),
            list.key
        ));
    }
    Ok(list)
}

/// `replace`: the element at `at` becomes `value` (a choice element may change its type:
/// `valueQuantity` → `valueString`).
fn replace(resource: &mut Value, at: &[Step], value: &ValuePart) -> Result<(), String> {
    let m = doc::member(at).ok_or("the resource itself cannot be replaced")?;
    let current = element(resource, at)?;
    let def = match (current.choice_group, doc::holds(resource, m.object)) {
        (Some(group), Holds::Complex(parent)) => resolve_element(parent, group, value)?,
        _ => current,
    };
    let content = build(&def, value)?;
    match m.index {
        Some(i) => doc::set_item(resource, m.object, m.key, i, content),
        None => doc::set(resource, m.object, def.name, Some(m.key), content),
    }
}

/// `add`: a new element `name` in the element at `at` (appended to a repeating element;
/// a single one must not exist yet).
fn add(resource: &mut Value, at: &[Step], name: &str, value: &ValuePart) -> Result<(), String> {
    let object: Pointer = match doc::get(resource, at) {
        Some(Value::Object(_)) => at.to_vec(),
        Some(Value::Array(_)) | None => return Err("the path does not select an element".into()),
        // A primitive's members (id, extension) live in its `_name` sibling.
        Some(_) => doc::ensure_companion(resource, at)?,
    };
    let Holds::Complex(parent) = doc::holds(resource, &object) else {
        return Err(format!(
            "{} is not an element the R4 model knows",
            doc::describe(resource, &object)
        ));
    };
    let def = resolve_element(parent, name, value)?;
    let content = build(&def, value)?;
    let obj = doc::get(resource, &object)
        .and_then(Value::as_object)
        .ok_or("the path does not select an element")?;
    if def.repeats {
        let len = obj
            .get(def.name)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        return doc::insert_item(resource, &object, def.name, len, content);
    }
    let existing = obj.keys().find(|k| {
        k.trim_start_matches('_') == def.name
            || def
                .choice_group
                .is_some_and(|g| parent.element(k).is_some_and(|e| e.choice_group == Some(g)))
    });
    if let Some(existing) = existing {
        return Err(format!(
            "{} already has {} and it does not repeat; use replace",
            doc::describe(resource, &object),
            existing.trim_start_matches('_')
        ));
    }
    doc::set(resource, &object, def.name, None, content)
}
