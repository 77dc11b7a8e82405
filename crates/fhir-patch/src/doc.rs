//! Places in a FHIR JSON resource and the edits made there, keeping FHIR JSON's rules: a
//! primitive's id and extensions live in its `_name` sibling (an array of the same length
//! for a repeating primitive, `null` where an item has none), and nothing is left empty.

use fhir_validate::{ComplexType, ElementDef, ElementType};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A place in the document: the steps from the root.
pub(crate) type Pointer = Vec<Step>;

pub(crate) fn get<'v>(root: &'v Value, at: &[Step]) -> Option<&'v Value> {
    at.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.get(k.as_str()),
        Step::Index(i) => v.get(*i),
    })
}

pub(crate) fn get_mut<'v>(root: &'v mut Value, at: &[Step]) -> Option<&'v mut Value> {
    at.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// The places of `targets` (elements of `root`, by identity), in their order; `None` when one
/// is not in `root`. One walk of `root` however many targets there are: finding each by a walk
/// of its own took 28 s for the 30,000 values of `Patient.identifier.value` (a 2 MB resource
/// the body limit allows), a walk per match.
pub(crate) fn find_all(root: &Value, targets: &[&Value]) -> Option<Vec<Pointer>> {
    fn walk(
        v: &Value,
        wanted: &HashMap<*const Value, Vec<usize>>,
        at: &mut Pointer,
        found: &mut [Option<Pointer>],
    ) {
        if let Some(indices) = wanted.get(&std::ptr::from_ref(v)) {
            for &i in indices {
                found[i] = Some(at.clone());
            }
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    at.push(Step::Key(k.clone()));
                    walk(child, wanted, at, found);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    at.push(Step::Index(i));
                    walk(child, wanted, at, found);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut wanted: HashMap<*const Value, Vec<usize>> = HashMap::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        wanted
            .entry(std::ptr::from_ref(*target))
            .or_default()
            .push(i);
    }
    let mut found = vec![None; targets.len()];
    walk(root, &wanted, &mut Vec::new(), &mut found);
    found.into_iter().collect()
}

/// FHIRPath-like text of a place (`contact[0].name`), for messages.
pub(crate) fn describe(root: &Value, at: &[Step]) -> String {
    let mut out = root
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    for step in at {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A place split into the object that holds the element, the element's name and, for an
/// item of a list, its index.
pub(crate) struct Member<'p> {
    pub object: &'p [Step],
    pub key: &'p str,
    pub index: Option<usize>,
}

pub(crate) fn member(at: &[Step]) -> Option<Member<'_>> {
    match at {
        [object @ .., Step::Key(key), Step::Index(i)] => Some(Member {
            object,
            key,
            index: Some(*i),
        }),
        [object @ .., Step::Key(key)] => Some(Member {
            object,
            key,
            index: None,
        }),
        _ => None,
    }
}

/// The `_name` sibling's place of a primitive at `at` (`birthDate` → `_birthDate`,
/// `given[1]` → `_given[1]`).
pub(crate) fn companion(at: &[Step]) -> Option<Pointer> {
    let m = member(at)?;
    if m.key.starts_with('_') {
        return None;
    }
    let mut p = m.object.to_vec();
    p.push(Step::Key(format!("_{}", m.key)));
    if let Some(i) = m.index {
        p.push(Step::Index(i));
    }
    Some(p)
}

/// The `_name` sibling of the primitive at `at`, created (empty) when it is not there yet.
pub(crate) fn ensure_companion(root: &mut Value, at: &[Step]) -> Result<Pointer, String> {
    let place = companion(at).ok_or("the path selects a value, not an element")?;
    if matches!(get(root, &place), Some(Value::Object(_))) {
        return Ok(place);
    }
    let m = member(at).ok_or("the path selects a value, not an element")?;
    let obj = object_mut(root, m.object)?;
    let ext = format!("_{}", m.key);
    match m.index {
        None => {
            obj.insert(ext, Value::Object(Map::new()));
        }
        Some(i) => {
            let len = list_len(obj, m.key)?;
            let mut items = match obj.shift_remove(&ext) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            items.resize(len, Value::Null);
            if let Some(slot) = items.get_mut(i) {
                *slot = Value::Object(Map::new());
            }
            obj.insert(ext, Value::Array(items));
        }
    }
    Ok(place)
}

/// What the base model says a place holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holds {
    Complex(ComplexType),
    Primitive(&'static str),
    Unknown,
}

/// What the object or value at `at` is, following the model from the resource type down (a
/// contained resource by its own `resourceType`, a `_name` sibling as an `Element`).
pub(crate) fn holds(root: &Value, at: &[Step]) -> Holds {
    let of_resource = |v: &Value| {
        v.get("resourceType")
            .and_then(Value::as_str)
            .and_then(ComplexType::named)
            .map_or(Holds::Unknown, Holds::Complex)
    };
    let mut here = of_resource(root);
    let mut value = root;
    let mut resource_slot = false;
    for step in at {
        let Some(next) = (match step {
            Step::Key(k) => value.get(k.as_str()),
            Step::Index(i) => value.get(*i),
        }) else {
            return Holds::Unknown;
        };
        value = next;
        if let Step::Key(k) = step {
            resource_slot = false;
            here = if k.starts_with('_') {
                ComplexType::named("Element").map_or(Holds::Unknown, Holds::Complex)
            } else {
                match here {
                    Holds::Complex(t) => match t.element(k).map(|e| e.ty) {
                        Some(ElementType::Complex(c)) => Holds::Complex(c),
                        Some(ElementType::Primitive(p)) => Holds::Primitive(p),
                        Some(ElementType::Resource) => {
                            resource_slot = true;
                            Holds::Unknown
                        }
                        None => Holds::Unknown,
                    },
                    _ => Holds::Unknown,
                }
            };
        }
        if resource_slot && value.is_object() {
            here = of_resource(value);
        }
    }
    here
}

/// The model's definition of the element at `at` (`None` for the root, or where the model
/// does not know the place).
pub(crate) fn element_at(root: &Value, at: &[Step]) -> Option<ElementDef> {
    let m = member(at)?;
    match holds(root, m.object) {
        Holds::Complex(t) => t.element(m.key),
        _ => None,
    }
}

/// An element's new content: the JSON value and the `_name` sibling of a primitive.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Content {
    pub value: Value,
    pub companion: Option<Value>,
}

fn object_mut<'v>(root: &'v mut Value, at: &[Step]) -> Result<&'v mut Map<String, Value>, String> {
    get_mut(root, at)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| "the element's parent is not an object".to_string())
}

/// Sets the single (non-repeating) element `key` of the object at `object`, in place of the
/// element `replaced` (which keeps its position; `None`: appended).
pub(crate) fn set(
    root: &mut Value,
    object: &[Step],
    key: &str,
    replaced: Option<&str>,
    content: Content,
) -> Result<(), String> {
    let obj = object_mut(root, object)?;
    let position = replaced.and_then(|r| obj.keys().position(|k| k == r));
    if let Some(old) = replaced {
        obj.shift_remove(old);
        obj.shift_remove(&format!("_{old}"));
    }
    match position {
        Some(p) => {
            obj.shift_insert(p.min(obj.len()), key.to_string(), content.value);
        }
        None => {
            obj.insert(key.to_string(), content.value);
        }
    }
    let ext = format!("_{key}");
    match content.companion {
        Some(c) => {
            obj.insert(ext, c);
        }
        None => {
            obj.shift_remove(&ext);
        }
    }
    Ok(())
}

/// Replaces item `index` of the list `key` of the object at `object`.
pub(crate) fn set_item(
    root: &mut Value,
    object: &[Step],
    key: &str,
    index: usize,
    content: Content,
) -> Result<(), String> {
    let obj = object_mut(root, object)?;
    let len = list_len(obj, key)?;
    if index >= len {
        return Err(format!("there is no item {index} in {key}"));
    }
    if let Some(Value::Array(items)) = obj.get_mut(key) {
        items[index] = content.value;
    }
    set_companion_item(obj, key, len, index, content.companion, false);
    tidy_companions(obj, key);
    Ok(())
}

/// Inserts an item into the list `key` of the object at `object` (`index` ≤ its length;
/// the list is created when absent).
pub(crate) fn insert_item(
    root: &mut Value,
    object: &[Step],
    key: &str,
    index: usize,
    content: Content,
) -> Result<(), String> {
    let obj = object_mut(root, object)?;
    let len = match obj.get(key) {
        None => 0,
        Some(_) => list_len(obj, key)?,
    };
    if index > len {
        return Err(format!(
            "index {index} is beyond the end of the list (it has {len} item(s))"
        ));
    }
    match obj.get_mut(key) {
        Some(Value::Array(items)) => items.insert(index, content.value),
        _ => {
            obj.insert(key.to_string(), Value::Array(vec![content.value]));
        }
    }
    set_companion_item(obj, key, len, index, content.companion, true);
    tidy_companions(obj, key);
    Ok(())
}

/// Removes item `index` of the list `key` of the object at `object`, with its `_key` entry.
pub(crate) fn remove_item(
    root: &mut Value,
    object: &[Step],
    key: &str,
    index: usize,
) -> Result<Content, String> {
    let obj = object_mut(root, object)?;
    let len = list_len(obj, key)?;
    if index >= len {
        return Err(format!("there is no item {index} in {key}"));
    }
    let value = match obj.get_mut(key) {
        Some(Value::Array(items)) => items.remove(index),
        _ => Value::Null,
    };
    let ext = format!("_{key}");
    let companion = match obj.get_mut(&ext) {
        Some(Value::Array(items)) if index < items.len() => Some(items.remove(index)),
        _ => None,
    }
    .filter(|c| !c.is_null());
    if matches!(obj.get(key), Some(Value::Array(items)) if items.is_empty()) {
        obj.shift_remove(key);
        obj.shift_remove(&ext);
    }
    tidy_companions(obj, key);
    Ok(Content { value, companion })
}

fn list_len(obj: &Map<String, Value>, key: &str) -> Result<usize, String> {
    match obj.get(key) {
        Some(Value::Array(items)) => Ok(items.len()),
        _ => Err(format!("{key} is not a list")),
    }
}

/// Puts `companion` at `index` of the `_key` list that parallels a list of `len` items
/// (before an insertion when `inserting`), creating it only when there is something to say.
fn set_companion_item(
    obj: &mut Map<String, Value>,
    key: &str,
    len: usize,
    index: usize,
    companion: Option<Value>,
    inserting: bool,
) {
    let ext = format!("_{key}");
    if companion.is_none() && !obj.contains_key(&ext) {
        return;
    }
    let mut items = match obj.shift_remove(&ext) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    items.resize(len, Value::Null);
    let entry = companion.unwrap_or(Value::Null);
    if inserting {
        items.insert(index.min(items.len()), entry);
    } else if let Some(slot) = items.get_mut(index) {
        *slot = entry;
    }
    obj.insert(ext, Value::Array(items));
}

/// Drops a `_key` list that says nothing (all `null`).
fn tidy_companions(obj: &mut Map<String, Value>, key: &str) {
    let ext = format!("_{key}");
    if matches!(obj.get(&ext), Some(Value::Array(items)) if items.iter().all(Value::is_null)) {
        obj.shift_remove(&ext);
    }
}

/// Removes the element at `at` (with its `_name` sibling), then every parent the removal
/// left empty, up to (not including) the resource.
pub(crate) fn remove(root: &mut Value, at: &[Step]) -> Result<(), String> {
    let mut at = at.to_vec();
    loop {
        let m = member(&at).ok_or("the resource itself cannot be removed")?;
        let object = m.object.to_vec();
        match m.index {
            Some(i) if m.key.starts_with('_') => {
                // An entry of a `_name` list keeps its place: it becomes null.
                let obj = object_mut(root, &object)?;
                if let Some(Value::Array(items)) = obj.get_mut(m.key) {
                    if let Some(slot) = items.get_mut(i) {
                        *slot = Value::Null;
                    }
                }
                let base = m.key.trim_start_matches('_').to_string();
                tidy_companions(obj, &base);
            }
            Some(i) => {
                remove_item(root, &object, m.key, i)?;
            }
            None => {
                let obj = object_mut(root, &object)?;
                obj.shift_remove(m.key);
                if !m.key.starts_with('_') {
                    obj.shift_remove(&format!("_{}", m.key));
                }
            }
        }
        // The parent element (an object; a list item's list is gone with its last item).
        let parent = object;
        let empty = matches!(get(root, &parent), Some(Value::Object(o)) if o.is_empty());
        if parent.is_empty() || !empty {
            return Ok(());
        }
        at = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Step {
        Step::Key(k.to_string())
    }

    #[test]
    fn identity_and_places() {
        let doc = json!({"resourceType":"Patient","name":[{"given":["a","b"]}]});
        let given = &doc["name"][0];
        let at = find_all(&doc, &[given]).unwrap().remove(0);
        assert_eq!(at, vec![key("name"), Step::Index(0)]);
        assert_eq!(describe(&doc, &at), "Patient.name[0]");
        let equal = json!({"given":["a","b"]});
        assert!(
            find_all(&doc, &[given, &equal]).is_none(),
            "equal is not the same"
        );
        let b = &doc["name"][0]["given"][1];
        assert_eq!(
            find_all(&doc, &[&doc, b, given, b]),
            Some(vec![
                vec![],
                vec![key("name"), Step::Index(0), key("given"), Step::Index(1)],
                vec![key("name"), Step::Index(0)],
                vec![key("name"), Step::Index(0), key("given"), Step::Index(1)],
            ]),
            "in the targets' order, a target named twice found twice"
        );
        let at = vec![key("name"), Step::Index(0), key("given"), Step::Index(1)];
        assert_eq!(
            companion(&at),
            Some(vec![
                key("name"),
                Step::Index(0),
                key("_given"),
                Step::Index(1)
            ])
        );
        assert_eq!(holds(&doc, &at), Holds::Primitive("string"));
        assert_eq!(
            holds(&doc, &at[..2]),
            Holds::Complex(ComplexType::named("HumanName").unwrap())
        );
        assert!(element_at(&doc, &at).unwrap().repeats);
    }

    #[test]
    fn contained_resources_by_their_own_type() {
        let doc =
            json!({"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}]});
        let at = vec![key("contained"), Step::Index(0)];
        assert_eq!(
            holds(&doc, &at),
            Holds::Complex(ComplexType::named("Patient").unwrap())
        );
        let mut at = at;
        at.push(key("birthDate"));
        assert_eq!(holds(&doc, &at), Holds::Unknown, "no such element yet");
        assert_eq!(element_at(&doc, &at).unwrap().name, "birthDate");
    }

    #[test]
    fn companions_follow_their_items() {
        let mut doc = json!({"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{"id":"x"}]}]});
        let name = vec![key("name"), Step::Index(0)];
        insert_item(
            &mut doc,
            &name,
            "given",
            0,
            Content {
                value: json!("z"),
                companion: None,
            },
        )
        .unwrap();
        assert_eq!(doc["name"][0]["_given"], json!([null, null, {"id":"x"}]));
        let removed = remove_item(&mut doc, &name, "given", 2).unwrap();
        assert_eq!(removed.companion, Some(json!({"id":"x"})));
        assert_eq!(
            doc["name"][0],
            json!({"given":["z","a"]}),
            "an all-null _given goes"
        );
        set_item(
            &mut doc,
            &name,
            "given",
            1,
            Content {
                value: json!("q"),
                companion: Some(json!({"id":"y"})),
            },
        )
        .unwrap();
        assert_eq!(
            doc["name"][0],
            json!({"given":["z","q"],"_given":[null,{"id":"y"}]})
        );
        assert!(insert_item(
            &mut doc,
            &name,
            "given",
            3,
            Content {
                value: json!("w"),
                companion: None
            }
        )
        .is_err());
    }

    #[test]
    fn removal_prunes_emptied_parents() {
        let mut doc = json!({"resourceType":"Patient","contact":[{"name":{"text":"a"}}],"birthDate":"2000","_birthDate":{"id":"b"}});
        remove(
            &mut doc,
            &[key("contact"), Step::Index(0), key("name"), key("text")],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"resourceType":"Patient","birthDate":"2000","_birthDate":{"id":"b"}})
        );
        remove(&mut doc, &[key("birthDate")]).unwrap();
        assert_eq!(doc, json!({"resourceType":"Patient"}));
        let mut doc = json!({"resourceType":"Patient","name":[{"given":["a","b"],"_given":[{"extension":[{"url":"u","valueString":"v"}]},null]}]});
        remove(
            &mut doc,
            &[
                key("name"),
                Step::Index(0),
                key("_given"),
                Step::Index(0),
                key("extension"),
                Step::Index(0),
            ],
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"resourceType":"Patient","name":[{"given":["a","b"]}]})
        );
        assert!(remove(&mut doc, &[]).is_err());
    }

    #[test]
    fn set_keeps_the_position_of_what_it_replaces() {
        let mut doc = json!({"resourceType":"Observation","status":"final","valueQuantity":{"value":1},"note":[{"text":"n"}]});
        set(
            &mut doc,
            &[],
            "valueString",
            Some("valueQuantity"),
            Content {
                value: json!("s"),
                companion: None,
            },
        )
        .unwrap();
        let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["resourceType", "status", "valueString", "note"]);
    }
}
