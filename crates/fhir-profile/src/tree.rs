//! Builds a profile's element tree from its differential (FHIR R4 profiling.html §5.1.0.5
//! "Differential", elementdefinition.html §2.24.0.2 paths and ids): each `path` is resolved
//! against the R4 model (choices `value[x]` and named variants `valueQuantity` mapped to their
//! JSON names), each `id` places the element in its slice context
//! (`Provenance.agent:ProvenanceAuthor.type`), and the constraints are read and compiled once.
//! Paths that do not exist in the base type are refused.

use std::collections::HashSet;

use fhir_primitives::PrimitiveType;
use fhir_validate::ComplexType;
use serde_json::{Map, Value};

use crate::element::{read_rules, Access, ElemTy, Node, Strength};
use crate::invariant::Invariant;
use crate::terminology::strip_version;

/// Something in a differential that is valid FHIR but not checked here; reported as an
/// information issue with every validation against the profile.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub element: String,
    pub message: String,
}

/// Hands out node keys unique within one load.
#[derive(Debug, Default)]
pub(crate) struct Keys(usize);

impl Keys {
    pub(crate) fn next(&mut self) -> usize {
        self.0 += 1;
        self.0
    }
}

/// The R4 type named `name` as the root of a tree (a resource, data type or primitive).
pub(crate) fn root_type(name: &str) -> Option<ElemTy> {
    if let Some(c) = ComplexType::named(name) {
        return (!c.is_backbone()).then_some(ElemTy::Complex(c));
    }
    PrimitiveType::from_name(name).map(|p| ElemTy::Primitive(p.name()))
}

/// One segment of an element id: the path segment and the slice it names.
struct Segment<'a> {
    name: &'a str,
    slice: Option<&'a str>,
}

fn segments(id: &str) -> Vec<Segment<'_>> {
    id.split('.')
        .map(|s| match s.split_once(':') {
            Some((name, slice)) => Segment {
                name,
                slice: Some(slice),
            },
            None => Segment {
                name: s,
                slice: None,
            },
        })
        .collect()
}

/// Builds the tree of a profile of `type_name` from its differential elements.
pub(crate) fn build(
    type_name: &str,
    elements: &[Value],
    keys: &mut Keys,
) -> Result<(Node, Vec<Note>), String> {
    let root_ty =
        root_type(type_name).ok_or_else(|| format!("type '{type_name}' is not an R4 type"))?;
    let mut root = Node::new(
        keys.next(),
        type_name.to_string(),
        type_name.to_string(),
        Access::Root(root_ty),
    );
    let mut notes = Vec::new();
    let mut seen = HashSet::new();
    for el in elements {
        let el = el
            .as_object()
            .ok_or("a differential element is not an object")?;
        let path = el
            .get("path")
            .and_then(Value::as_str)
            .ok_or("a differential element has no path")?;
        let id = match el.get("id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => match el.get("sliceName").and_then(Value::as_str) {
                Some(slice) => format!("{path}:{slice}"),
                None => path.to_string(),
            },
        };
        if !seen.insert(id.clone()) {
            return Err(format!("element id '{id}' appears twice"));
        }
        add_element(&mut root, &id, path, el, keys, &mut notes)
            .map_err(|e| format!("element '{id}': {e}"))?;
    }
    Ok((root, notes))
}

fn add_element(
    root: &mut Node,
    id: &str,
    path: &str,
    el: &Map<String, Value>,
    keys: &mut Keys,
    notes: &mut Vec<Note>,
) -> Result<(), String> {
    let segs = segments(id);
    let id_path: Vec<&str> = segs.iter().map(|s| s.name).collect();
    // `value[x]:valueQuantity` may come with the path `...valueQuantity`.
    let variant_path: Vec<&str> = segs
        .iter()
        .map(|s| match (s.name.strip_suffix("[x]"), s.slice) {
            (Some(group), Some(slice)) if slice.starts_with(group) => slice,
            _ => s.name,
        })
        .collect();
    if id_path.join(".") != path && variant_path.join(".") != path {
        return Err(format!("the id does not match the path '{path}'"));
    }
    if segs[0].name != root.name || segs[0].slice.is_some() {
        return Err(format!(
            "the path does not start with the profile's type '{}'",
            root.name
        ));
    }
    if let Some(slice) = el.get("sliceName").and_then(Value::as_str) {
        if segs.last().and_then(|s| s.slice) != Some(slice) {
            return Err(format!(
                "sliceName '{slice}' is not the last part of the id"
            ));
        }
    }
    let unchecked: Vec<&str> = el
        .keys()
        .map(String::as_str)
        .filter(|k| {
            *k == "maxLength"
                || *k == "contentReference"
                || k.starts_with("minValue")
                || k.starts_with("maxValue")
        })
        .collect();
    if !unchecked.is_empty() {
        notes.push(Note {
            element: id.to_string(),
            message: format!("{} not checked", unchecked.join(", ")),
        });
    }
    let mut prefix = root.name.clone();
    let mut node = root;
    let mut parent_type: Option<ComplexType> = None;
    for seg in &segs[1..] {
        if seg.slice.is_some_and(|s| s.contains('/')) {
            notes.push(Note {
                element: id.to_string(),
                message: "re-slicing is not supported: the element's constraints were not checked"
                    .into(),
            });
            return Ok(());
        }
        let ty = match node.child_type() {
            Some(ElemTy::Complex(c)) => c,
            Some(ElemTy::Primitive(p)) => {
                if matches!(seg.name, "extension" | "id") {
                    // Extensions of primitives live in the `_element` JSON member: not checked,
                    // and said so when the element constrains anything.
                    if constrains(el) {
                        notes.push(Note {
                            element: id.to_string(),
                            message: format!(
                                "constraints on the {} of a primitive ('{}') are not checked",
                                seg.name, node.id
                            ),
                        });
                    }
                    return Ok(());
                }
                return Err(format!(
                    "'{}' is a {p}, which has no element '{}'",
                    node.id, seg.name
                ));
            }
            Some(ElemTy::Resource) => {
                notes.push(Note {
                    element: id.to_string(),
                    message: "constraints inside a nested resource are not checked".into(),
                });
                return Ok(());
            }
            None => {
                notes.push(Note {
                    element: id.to_string(),
                    message: format!(
                        "'{}' is a choice of several types: constraints on its children were not checked",
                        node.id
                    ),
                });
                return Ok(());
            }
        };
        prefix.push('.');
        prefix.push_str(seg.name);
        // A type slice of a choice (`value[x]:valueQuantity`) is that variant's element.
        let (name, slice) = match (seg.name.strip_suffix("[x]"), seg.slice) {
            (Some(group), Some(slice))
                if ty
                    .element(slice)
                    .is_some_and(|e| e.choice_group == Some(group)) =>
            {
                prefix.push(':');
                prefix.push_str(slice);
                (slice, None)
            }
            _ => (seg.name, seg.slice),
        };
        let child_index = match node.children.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                let child = new_child(ty, name, &prefix, keys)?;
                node.children.push(child);
                node.children.len() - 1
            }
        };
        parent_type = Some(ty);
        node = &mut node.children[child_index];
        if let Some(slice) = slice {
            prefix.push(':');
            prefix.push_str(slice);
            node = slice_node(node, slice, &prefix, keys);
        }
    }
    read_rules(node, el)?;
    check_types(node)?;
    drop_redundant_binding(node, parent_type);
    let types = node.instance_types();
    for constraint in el
        .get("constraint")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        node.invariants
            .push(Invariant::compile(constraint, &types)?);
    }
    Ok(())
}

/// A new child element `name` of type `ty`.
fn new_child(ty: ComplexType, name: &str, id: &str, keys: &mut Keys) -> Result<Node, String> {
    let missing = || format!("'{}' has no element '{name}'", ty.name());
    let (access, repeats, required) = match name.strip_suffix("[x]") {
        Some(group) => {
            if !ty.is_choice_group(group) {
                return Err(missing());
            }
            let variants: Vec<_> = ty
                .elements()
                .filter(|e| e.choice_group == Some(group))
                .map(|e| (e.name, ElemTy::of(e.ty)))
                .collect();
            (Access::Choice { variants }, false, ty.is_required(group))
        }
        None => {
            let def = ty.element(name).ok_or_else(missing)?;
            let access = Access::Field {
                json: def.name,
                ty: ElemTy::of(def.ty),
            };
            let required =
                ty.is_required(name) || def.choice_group.is_some_and(|g| ty.is_required(g));
            (access, def.repeats, required)
        }
    };
    let mut node = Node::new(keys.next(), id.to_string(), name.to_string(), access);
    node.repeats = repeats;
    node.base_required = required;
    Ok(node)
}

/// The slice `slice` of `element` (created on first mention).
fn slice_node<'n>(element: &'n mut Node, slice: &str, id: &str, keys: &mut Keys) -> &'n mut Node {
    let index = match element
        .slices
        .iter()
        .position(|s| s.slice_name.as_deref() == Some(slice))
    {
        Some(i) => i,
        None => {
            let mut node = Node::new(
                keys.next(),
                id.to_string(),
                element.name.clone(),
                element.access.clone(),
            );
            node.slice_name = Some(slice.to_string());
            node.repeats = element.repeats;
            element.slices.push(node);
            element.slices.len() - 1
        }
    };
    &mut element.slices[index]
}

/// The profile's `type` codes must be types the base element allows.
fn check_types(node: &Node) -> Result<(), String> {
    let Some(types) = &node.types else {
        return Ok(());
    };
    for t in types {
        if t.code.starts_with("http://hl7.org/fhirpath/System.") {
            continue;
        }
        let allowed = match &node.access {
            Access::Root(ty) | Access::Field { ty, .. } => {
                ty.code() == t.code
                    || (ty.code() == "BackboneElement" && t.code == "Element")
                    || (*ty == ElemTy::Resource && fhir_validate::is_resource_type(&t.code))
            }
            Access::Choice { variants } => variants.iter().any(|(_, ty)| ty.code() == t.code),
        };
        if !allowed {
            return Err(format!(
                "type '{}' is not allowed by the base element",
                t.code
            ));
        }
    }
    Ok(())
}

/// A required binding the base model already has on a `code` element is checked by the base
/// validation (fhir-validate): dropped so the issue is not reported twice.
fn drop_redundant_binding(node: &mut Node, parent: Option<ComplexType>) {
    let (Some(binding), Some(parent), Access::Field { json, .. }) =
        (&node.binding, parent, &node.access)
    else {
        return;
    };
    if binding.strength == Strength::Required
        && parent.required_binding(json) == Some(strip_version(&binding.value_set))
    {
        node.binding = None;
    }
}

/// Whether a differential element constrains anything (beyond documenting it).
fn constrains(el: &Map<String, Value>) -> bool {
    const DOCUMENTATION: &[&str] = &[
        "id",
        "path",
        "short",
        "definition",
        "comment",
        "requirements",
        "alias",
        "label",
        "mustSupport",
        "isModifier",
        "isModifierReason",
        "isSummary",
        "mapping",
        "example",
        "extension",
        "meaningWhenMissing",
        "orderMeaning",
        "condition",
    ];
    el.keys().any(|k| !DOCUMENTATION.contains(&k.as_str()))
}
