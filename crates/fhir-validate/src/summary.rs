//! The summary form of a resource (search.html#summary, `_summary=true`): the elements its
//! R4 definition marks isSummary (ElementDefinition.isSummary), walked through backbone
//! elements, which keep only their own summary children (a backbone that is not summary goes
//! whole). Data type values are kept whole
//! except `Attachment.data` ("other than Attachment.data, all data type properties are
//! included in the summary form"). A resource held in a summary element (a Bundle entry's
//! resource, a Parameters value) is summarised by its own definition.

use serde_json::{Map, Value};

use crate::model::{model, Kind, Model, Ty};

/// Reduce `resource` (a JSON resource object) to its summary form in place. Returns false,
/// leaving it untouched, when `resourceType` is missing or not an R4 resource type.
pub fn summarise(resource: &mut Map<String, Value>) -> bool {
    let model = model();
    let Some(index) = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(|t| model.concrete_resource(t))
    else {
        return false;
    };
    keep_summary(model, index, resource, 0);
    true
}

/// Deeper than this, content is left as it is (the validator refuses such depth on write).
const MAX_DEPTH: usize = crate::MAX_DEPTH;

/// Keep the summary elements of an object of resource or backbone type `index`.
fn keep_summary(model: &Model, index: usize, object: &mut Map<String, Value>, depth: usize) {
    let def = &model.types[index];
    object.retain(|key, value| {
        if key == "resourceType" && def.kind == Kind::Resource {
            return true;
        }
        let name = key.strip_prefix('_').unwrap_or(key);
        let Some(element) = def.element(name) else {
            return false;
        };
        if !element.summary {
            return false;
        }
        if depth < MAX_DEPTH && !key.starts_with('_') {
            for_each_object(value, |child| prune(model, element.ty, child, depth + 1));
            if let Value::Array(items) = value {
                items.retain(|item| !is_empty_object(item));
            }
        }
        !is_empty_object(value) && !matches!(value, Value::Array(items) if items.is_empty())
    });
}

/// Summarise one value of type `ty` in place.
fn prune(model: &Model, ty: Ty, object: &mut Map<String, Value>, depth: usize) {
    match ty {
        Ty::Primitive(_) => {}
        Ty::Resource => {
            if let Some(index) = object
                .get("resourceType")
                .and_then(Value::as_str)
                .and_then(|t| model.concrete_resource(t))
            {
                keep_summary(model, index, object, depth);
            }
        }
        Ty::Complex(index) => match model.types[index].kind {
            Kind::Resource => keep_summary(model, index, object, depth),
            Kind::Backbone if is_resource_backbone(model, index) => {
                keep_summary(model, index, object, depth)
            }
            _ => drop_attachment_data(model, index, object, depth),
        },
    }
}

/// Backbone types are named by path; those of data types (`Timing.repeat`) are data type
/// content, kept whole.
fn is_resource_backbone(model: &Model, index: usize) -> bool {
    let name = &model.types[index].name;
    let owner = name.split('.').next().unwrap_or(name);
    model.concrete_resource(owner).is_some()
}

/// Data type content: everything but `Attachment.data`, at any depth.
fn drop_attachment_data(
    model: &Model,
    index: usize,
    object: &mut Map<String, Value>,
    depth: usize,
) {
    let def = &model.types[index];
    if def.name == "Attachment" {
        object.remove("data");
        object.remove("_data");
    }
    if depth >= MAX_DEPTH {
        return;
    }
    for (key, value) in object.iter_mut() {
        if let Some(element) = def.element(key) {
            if let Ty::Complex(child) = element.ty {
                for_each_object(value, |o| drop_attachment_data(model, child, o, depth + 1));
            }
        }
    }
}

fn for_each_object(value: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) {
    match value {
        Value::Object(o) => f(o),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(f),
        _ => {}
    }
}

fn is_empty_object(value: &Value) -> bool {
    matches!(value, Value::Object(o) if o.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary_of(v: Value) -> Value {
        let Value::Object(mut o) = v else { panic!() };
        assert!(summarise(&mut o));
        Value::Object(o)
    }

    #[test]
    fn patient_keeps_summary_elements_and_whole_data_types() {
        let out = summary_of(json!({
            "resourceType": "Patient", "id": "p", "meta": {"versionId": "2"},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
            "extension": [{"url": "http://example.org/x", "valueString": "y"}],
            "name": [{"family": "Chalmers", "given": ["Peter"], "period": {"start": "2001"}}],
            "_birthDate": {"extension": [{"url": "http://example.org/t", "valueString": "t"}]},
            "birthDate": "1974-12-25", "deceasedBoolean": false,
            "maritalStatus": {"text": "M"},
            "contact": [{"name": {"family": "Du Marché"}}],
            "link": [{"other": {"reference": "Patient/q"}, "type": "seealso"}]
        }));
        assert_eq!(
            out,
            json!({
                "resourceType": "Patient", "id": "p", "meta": {"versionId": "2"},
                "name": [{"family": "Chalmers", "given": ["Peter"], "period": {"start": "2001"}}],
                "_birthDate": {"extension": [{"url": "http://example.org/t", "valueString": "t"}]},
                "birthDate": "1974-12-25", "deceasedBoolean": false,
                "link": [{"other": {"reference": "Patient/q"}, "type": "seealso"}]
            })
        );
    }

    #[test]
    fn backbones_keep_only_their_summary_children() {
        let out = summary_of(json!({
            "resourceType": "Observation", "status": "final", "code": {"text": "BP"},
            "component": [
                {"code": {"text": "systolic"}, "valueQuantity": {"value": 150},
                 "interpretation": [{"text": "high"}]},
                {"dataAbsentReason": {"text": "n/a"}}
            ],
            "note": [{"text": "n"}]
        }));
        assert_eq!(
            out,
            json!({
                "resourceType": "Observation", "status": "final", "code": {"text": "BP"},
                "component": [{"code": {"text": "systolic"}, "valueQuantity": {"value": 150}}]
            })
        );
        // A backbone that is not summary goes whole, summary children and all.
        let plan = summary_of(json!({
            "resourceType": "CarePlan", "status": "active", "intent": "plan",
            "subject": {"reference": "Patient/p"},
            "activity": [{"modifierExtension": [{"url": "http://example.org/m", "valueBoolean": true}]}]
        }));
        assert!(plan.get("activity").is_none());
    }

    #[test]
    fn attachment_data_is_dropped_inside_summary_elements() {
        let out = summary_of(json!({
            "resourceType": "DocumentReference", "status": "current",
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGk=", "title": "t"}}]
        }));
        assert_eq!(
            out["content"],
            json!([{"attachment": {"contentType": "text/plain", "title": "t"}}])
        );
    }

    #[test]
    fn resources_inside_summary_elements_are_summarised() {
        let out = summary_of(json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {"resourceType": "Goal", "lifecycleStatus": "active",
                "description": {"text": "walk"}, "subject": {"reference": "Patient/p"},
                "note": [{"text": "n"}]}}]
        }));
        assert_eq!(
            out["entry"][0]["resource"],
            json!({"resourceType": "Goal", "lifecycleStatus": "active",
                "description": {"text": "walk"}, "subject": {"reference": "Patient/p"}})
        );
    }

    #[test]
    fn unknown_types_are_left_alone() {
        let mut o = Map::new();
        o.insert("resourceType".into(), json!("Nope"));
        assert!(!summarise(&mut o));
        assert_eq!(o.len(), 1);
    }
}
