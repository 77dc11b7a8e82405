//! One node of a profile's element tree and the constraints read from its differential
//! ElementDefinition (FHIR R4 elementdefinition.html: `min`/`max`, `fixed[x]`, `pattern[x]`,
//! `binding`, `type` with `profile`/`targetProfile`, `slicing`, `constraint`). The tree itself
//! is built by `tree`; the constraints are checked by `walk`.

use fhir_validate::{ComplexType, ElementType};
use serde_json::{Map, Value};

use crate::invariant::Invariant;

/// What an element instance holds, from the R4 model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemTy {
    Primitive(&'static str),
    Complex(ComplexType),
    Resource,
}

impl ElemTy {
    pub(crate) fn of(ty: ElementType) -> ElemTy {
        match ty {
            ElementType::Primitive(p) => ElemTy::Primitive(p),
            ElementType::Complex(c) => ElemTy::Complex(c),
            ElementType::Resource => ElemTy::Resource,
        }
    }

    /// The FHIR type code (`dateTime`, `Quantity`, `BackboneElement`, `Resource`).
    pub(crate) fn code(self) -> &'static str {
        match self {
            ElemTy::Primitive(p) => p,
            ElemTy::Complex(c) if c.is_backbone() => "BackboneElement",
            ElemTy::Complex(c) => c.name(),
            ElemTy::Resource => "Resource",
        }
    }
}

/// How the instances of an element are found in its parent object.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// The instance the tree is applied to (the resource, or an extension).
    Root(ElemTy),
    /// One JSON member (`category`, or one choice variant such as `valueQuantity`).
    Field { json: &'static str, ty: ElemTy },
    /// A `[x]` choice: whichever of its variants is present.
    Choice {
        variants: Vec<(&'static str, ElemTy)>,
    },
}

/// Maximum cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Max {
    Bounded(u32),
    Unbounded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strength {
    Required,
    Extensible,
}

impl Strength {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Strength::Required => "required",
            Strength::Extensible => "extensible",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub strength: Strength,
    pub value_set: String,
}

/// One `type` entry.
#[derive(Debug, Clone)]
pub(crate) struct TypeRule {
    pub code: String,
    pub profiles: Vec<String>,
    pub target_profiles: Vec<String>,
    /// `target_profiles` resolved once the whole set is loaded (same order).
    pub targets: Vec<Target>,
}

/// What a `targetProfile` says about the referenced resource's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Any resource type (`.../Resource`).
    Any,
    /// A core type or a loaded profile's type.
    Type(String),
    /// A profile that is not loaded (its url): its type is not known.
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiscriminatorKind {
    /// `value` and `pattern` are handled alike: the slice's fixed or pattern value (or its
    /// required binding) at the path.
    Value,
    Other(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Discriminator {
    pub kind: DiscriminatorKind,
    /// The FHIRPath path, split on `.` (`$this` is empty).
    pub path: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Slicing {
    pub discriminators: Vec<Discriminator>,
    pub closed: bool,
}

/// One element of a profile's tree: the constraints of its differential entry (if any) and
/// its children and slices.
#[derive(Debug)]
pub(crate) struct Node {
    /// Unique within a `ProfileSet`: issues said once per element are keyed by it.
    pub key: usize,
    /// The element id (`Provenance.agent:ProvenanceAuthor.type`).
    pub id: String,
    /// The path segment (`agent`, `value[x]`, `valueQuantity`).
    pub name: String,
    pub access: Access,
    pub slice_name: Option<String>,
    /// The base element repeats (a JSON array).
    pub repeats: bool,
    /// The base model requires the element.
    pub base_required: bool,
    pub min: Option<u32>,
    pub max: Option<Max>,
    pub fixed: Option<Value>,
    pub pattern: Option<Value>,
    pub binding: Option<Binding>,
    pub types: Option<Vec<TypeRule>>,
    pub invariants: Vec<Invariant>,
    pub slicing: Option<Slicing>,
    pub children: Vec<Node>,
    pub slices: Vec<Node>,
}

impl Node {
    pub(crate) fn new(key: usize, id: String, name: String, access: Access) -> Node {
        Node {
            key,
            id,
            name,
            access,
            slice_name: None,
            repeats: false,
            base_required: false,
            min: None,
            max: None,
            fixed: None,
            pattern: None,
            binding: None,
            types: None,
            invariants: Vec::new(),
            slicing: None,
            children: Vec::new(),
            slices: Vec::new(),
        }
    }

    /// The type a child path resolves against: the element's own type, or for a choice the
    /// one type the profile restricts it to.
    pub(crate) fn child_type(&self) -> Option<ElemTy> {
        match &self.access {
            Access::Root(ty) | Access::Field { ty, .. } => Some(*ty),
            Access::Choice { variants } => {
                let types = self.types.as_ref()?;
                match types.as_slice() {
                    [only] => variants
                        .iter()
                        .find(|(_, ty)| ty.code() == only.code)
                        .map(|(_, ty)| *ty),
                    _ => None,
                }
            }
        }
    }

    /// The types an instance of this element can have (the profile's restriction applied to
    /// a choice).
    pub(crate) fn instance_types(&self) -> Vec<ElemTy> {
        match &self.access {
            Access::Root(ty) | Access::Field { ty, .. } => vec![*ty],
            Access::Choice { variants } => variants
                .iter()
                .filter(|(_, ty)| self.allows_type(ty.code()))
                .map(|(_, ty)| *ty)
                .collect(),
        }
    }

    /// Does the profile's `type` list allow `code` (no list: anything the base allows)?
    pub(crate) fn allows_type(&self, code: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t.code == code))
    }

    /// The node at a discriminator path below this one (child names; a choice also by its
    /// group name without `[x]`).
    pub(crate) fn descend(&self, path: &[String]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = node.children.iter().find(|c| c.answers_to(seg))?;
        }
        Some(node)
    }

    /// Is this node the child named `seg` in a path (`value` also names `value[x]`)?
    pub(crate) fn answers_to(&self, seg: &str) -> bool {
        self.name == seg
            || self.name.strip_suffix("[x]") == Some(seg)
            || matches!(&self.access, Access::Field { json, .. } if *json == seg)
    }

    /// Does the differential fix a value for this node (what value discriminators read)?
    pub(crate) fn fixes_value(&self) -> bool {
        self.fixed.is_some() || self.pattern.is_some() || self.binding.is_some()
    }

    /// Is this node an `extension` / `modifierExtension` element?
    pub(crate) fn is_extension(&self) -> bool {
        self.name == "extension" || self.name == "modifierExtension"
    }
}

fn str_of<'v>(v: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `min`, `max`, `fixed[x]`, `pattern[x]`, `binding`, `type` and `slicing` of one differential
/// element (constraints are compiled separately, once the types are known). `Err` says what is
/// malformed.
pub(crate) fn read_rules(node: &mut Node, el: &Map<String, Value>) -> Result<(), String> {
    if let Some(min) = el.get("min") {
        let min = min.as_u64().ok_or("min is not a non-negative integer")?;
        node.min = Some(u32::try_from(min).map_err(|_| "min is too large")?);
    }
    if let Some(max) = el.get("max") {
        let max = max.as_str().ok_or("max is not a string")?;
        node.max = Some(match max {
            "*" => Max::Unbounded,
            n => Max::Bounded(
                n.parse()
                    .map_err(|_| format!("max '{n}' is neither '*' nor an integer"))?,
            ),
        });
    }
    if let (Some(min), Some(Max::Bounded(max))) = (node.min, node.max) {
        if min > max {
            return Err(format!("min {min} is greater than max {max}"));
        }
    }
    for (key, value) in el {
        let upper_after = |prefix: &str| {
            key.strip_prefix(prefix)
                .and_then(|rest| rest.chars().next())
                .is_some_and(char::is_uppercase)
        };
        if upper_after("fixed") {
            node.fixed = Some(value.clone());
        } else if upper_after("pattern") {
            node.pattern = Some(value.clone());
        }
    }
    if let Some(binding) = el.get("binding").and_then(Value::as_object) {
        let strength = str_of(binding, "strength").ok_or("binding has no strength")?;
        let strength = match strength {
            "required" => Some(Strength::Required),
            "extensible" => Some(Strength::Extensible),
            "preferred" | "example" => None,
            other => return Err(format!("binding strength '{other}' is not a FHIR strength")),
        };
        if let Some(strength) = strength {
            let value_set = str_of(binding, "valueSet")
                .ok_or("a required or extensible binding has no valueSet")?;
            node.binding = Some(Binding {
                strength,
                value_set: value_set.to_string(),
            });
        }
    }
    if let Some(types) = el.get("type") {
        let types = types.as_array().ok_or("type is not an array")?;
        let rules = types
            .iter()
            .map(|t| {
                let code = t
                    .get("code")
                    .and_then(Value::as_str)
                    .ok_or("a type has no code")?;
                Ok(TypeRule {
                    code: code.to_string(),
                    profiles: strings(t.get("profile")),
                    target_profiles: strings(t.get("targetProfile")),
                    targets: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if !rules.is_empty() {
            node.types = Some(rules);
        }
    }
    if let Some(slicing) = el.get("slicing").and_then(Value::as_object) {
        let discriminators = slicing
            .get("discriminator")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|d| {
                let kind = d
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or("a slicing discriminator has no type")?;
                let path = d
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or("a slicing discriminator has no path")?;
                let kind = match kind {
                    "value" | "pattern" => DiscriminatorKind::Value,
                    other => DiscriminatorKind::Other(other.to_string()),
                };
                let path = path
                    .split('.')
                    .filter(|s| *s != "$this")
                    .map(str::to_string)
                    .collect();
                Ok(Discriminator { kind, path })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let closed = str_of(slicing, "rules") == Some("closed");
        node.slicing = Some(Slicing {
            discriminators,
            closed,
        });
    }
    Ok(())
}
