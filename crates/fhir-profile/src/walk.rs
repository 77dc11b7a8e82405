//! Applying a profile's element tree to an instance (FHIR R4 validation.html §"Profiles",
//! profiling.html): for every element of the tree, for each instance of its parent, its
//! cardinality, its choice types, and per instance its fixed/pattern value, binding, type
//! profiles and target profiles, invariants and children; then its slices (`slicing`). The
//! per-kind checks live in `binding`, `reference`, `slicing` and `extensions`; this module
//! walks and reports.

use fhir_validate::{Issue, IssueList, Severity};
use serde_json::{Map, Value};

use crate::element::{Access, ElemTy, Max, Node};
use crate::invariant::Outcome;
use crate::loc::Loc;
use crate::profile::{Base, Profile};
use crate::set::Inner;
use crate::values::{equals_fixed, matches_pattern, show};
use crate::{binding, extensions, reference, slicing};

/// Kinds of issue reported once per element (with the element's node key) in a validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Once {
    Binding,
    TargetProfiles,
    ReferenceType,
    TypeProfile,
    Slice,
    Slicing,
    Invariant(usize),
    /// A profile's note (by index), said once however often the profile applies.
    Note(usize),
    /// A profile's base that is not loaded.
    Base,
}

/// One instance of an element in its parent object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inst<'v> {
    pub value: &'v Value,
    /// The JSON member it is in (`valueQuantity` for a choice).
    pub key: &'static str,
    pub index: Option<usize>,
    pub ty: ElemTy,
}

/// One validation call: the resource, the issues so far, what was said once.
pub(crate) struct Ctx<'s, 'v> {
    pub set: &'s Inner,
    pub resource: &'v Value,
    issues: IssueList,
    said: Vec<(usize, Once)>,
}

impl<'s, 'v> Ctx<'s, 'v> {
    pub(crate) fn new(set: &'s Inner, resource: &'v Value) -> Ctx<'s, 'v> {
        Ctx {
            set,
            resource,
            issues: IssueList::default(),
            said: Vec::new(),
        }
    }

    pub(crate) fn finish(self) -> Vec<Issue> {
        self.issues.into_vec()
    }

    /// Validates the resource against profile `index` (and its bases), then its extensions.
    pub(crate) fn validate_resource(&mut self, index: usize) {
        let profile = &self.set.profiles[index];
        let resource = self.resource;
        let resource_type = resource.get("resourceType").and_then(Value::as_str);
        let Some(resource_type) = resource_type.filter(|_| resource.is_object()) else {
            self.push(
                Severity::Error,
                "structure",
                "A resource must be a JSON object with a resourceType".into(),
                String::new(),
            );
            return;
        };
        if resource_type != profile.info.type_name {
            self.push(
                Severity::Error,
                "structure",
                format!(
                    "Resource type {resource_type} does not match profile {}, which constrains {}",
                    profile.canonical, profile.info.type_name
                ),
                resource_type.to_string(),
            );
            return;
        }
        let root = Loc::root(resource_type);
        let ty = match &profile.root.access {
            Access::Root(ty) => *ty,
            _ => return,
        };
        self.apply_chain(index, resource, &root, ty);
        if self.set.has_extensions {
            extensions::check_all(self, resource, &root, 0);
        }
    }

    /// Applies profile `index` and every loaded profile it derives from to `value`.
    pub(crate) fn apply_chain(
        &mut self,
        index: usize,
        value: &'v Value,
        loc: &Loc<'_>,
        ty: ElemTy,
    ) {
        let set = self.set;
        let mut at = Some(index);
        // A chain is at most as long as the set (loops are refused at load).
        for _ in 0..set.profiles.len() {
            let Some(i) = at else { break };
            let profile = &set.profiles[i];
            for (n, note) in profile.notes.iter().enumerate() {
                if !self.first_time(&profile.root, Once::Note(n)) {
                    continue;
                }
                self.push(
                    Severity::Information,
                    "not-supported",
                    format!(
                        "{} (profile {}, element {})",
                        note.message, profile.canonical, note.element
                    ),
                    loc.render(),
                );
            }
            self.check_instance(profile, &profile.root, value, ty, loc);
            at = match &profile.base {
                Base::Loaded(next) => Some(*next),
                Base::Core => None,
                Base::Unknown(_) if !self.first_time(&profile.root, Once::Base) => None,
                Base::Unknown(url) => {
                    self.push(
                        Severity::Information,
                        "not-supported",
                        format!(
                            "Base profile {url} is not loaded: its own constraints were not checked (profile {})",
                            profile.canonical
                        ),
                        loc.render(),
                    );
                    None
                }
            };
        }
    }

    /// Reports an issue (up to `MAX_ISSUES`, the last saying validation stopped).
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        diagnostics: String,
        expression: String,
    ) {
        self.issues.push(severity, code, diagnostics, expression);
    }

    /// Reports an issue about `node` of `profile`: the diagnostics end by naming both.
    pub(crate) fn report(
        &mut self,
        profile: &Profile,
        node: &Node,
        severity: Severity,
        code: &'static str,
        message: String,
        expression: String,
    ) {
        let diagnostics = format!(
            "{message} (profile {}, element {})",
            profile.canonical, node.id
        );
        self.push(severity, code, diagnostics, expression);
    }

    /// An error at `loc` ([`Ctx::report`] with its severity and location).
    pub(crate) fn error(
        &mut self,
        profile: &Profile,
        node: &Node,
        code: &'static str,
        message: String,
        loc: &Loc<'_>,
    ) {
        self.report(profile, node, Severity::Error, code, message, loc.render());
    }

    /// True the first time `what` is asked about `node` in this validation.
    pub(crate) fn first_time(&mut self, node: &Node, what: Once) -> bool {
        if self.said.contains(&(node.key, what)) {
            return false;
        }
        self.said.push((node.key, what));
        true
    }

    /// An information issue, once per element and kind, at the element's path.
    pub(crate) fn inform_once(
        &mut self,
        profile: &Profile,
        node: &Node,
        what: Once,
        message: String,
        loc: &Loc<'_>,
    ) {
        if self.first_time(node, what) {
            let expression = loc.render_path();
            self.report(
                profile,
                node,
                Severity::Information,
                "not-supported",
                message,
                expression,
            );
        }
    }

    /// The rules of `node` that apply to one instance, then its children.
    pub(crate) fn check_instance(
        &mut self,
        profile: &Profile,
        node: &Node,
        value: &'v Value,
        ty: ElemTy,
        loc: &Loc<'_>,
    ) {
        if let Some(fixed) = &node.fixed {
            if !equals_fixed(value, fixed) {
                let message = format!("Value must be exactly {}", show(fixed));
                self.error(profile, node, "value", message, loc);
            }
        }
        if let Some(pattern) = &node.pattern {
            if !matches_pattern(value, pattern) {
                let message = format!("Value must match the pattern {}", show(pattern));
                self.error(profile, node, "value", message, loc);
            }
        }
        if let Some(b) = &node.binding {
            binding::check(self, profile, node, b, value, ty, loc);
        }
        if node.types.is_some() {
            reference::check_types(self, profile, node, value, ty, loc);
        }
        for (i, invariant) in node.invariants.iter().enumerate() {
            match invariant.evaluate(value, ty, self.resource) {
                Outcome::Holds => {}
                Outcome::Fails => {
                    let message = format!("{}: {}", invariant.key, invariant.human);
                    self.report(
                        profile,
                        node,
                        invariant.severity,
                        "invariant",
                        message,
                        loc.render(),
                    );
                }
                Outcome::NotChecked(reason) => {
                    let message = format!("Invariant {} not checked: {reason}", invariant.key);
                    self.inform_once(profile, node, Once::Invariant(i), message, loc);
                }
            }
        }
        if let Value::Object(obj) = value {
            for child in &node.children {
                if self.issues.stopped() {
                    return;
                }
                self.check_element(profile, child, obj, loc);
            }
        }
    }

    /// An element of the tree in one parent instance: cardinality, choice types, each
    /// instance, then slices.
    fn check_element(
        &mut self,
        profile: &Profile,
        node: &Node,
        parent: &'v Map<String, Value>,
        parent_loc: &Loc<'_>,
    ) {
        let insts = instances(node, parent);
        let element_loc = parent_loc.child(element_name(node, &insts), None);
        if let Access::Choice { .. } = node.access {
            for inst in &insts {
                if !node.allows_type(inst.ty.code()) {
                    let allowed: Vec<&str> = node
                        .types
                        .iter()
                        .flatten()
                        .map(|t| t.code.as_str())
                        .collect();
                    let message = format!(
                        "Type {} is not allowed here: the profile allows {}",
                        inst.ty.code(),
                        allowed.join(", ")
                    );
                    let loc = parent_loc.child(inst.key, inst.index);
                    self.error(profile, node, "structure", message, &loc);
                }
            }
        }
        let count = count_with_extensions(node, parent, insts.len());
        self.check_cardinality(profile, node, count, &element_loc, None);
        for inst in &insts {
            let loc = parent_loc.child(inst.key, inst.index);
            self.check_instance(profile, node, inst.value, inst.ty, &loc);
        }
        if !node.slices.is_empty() {
            slicing::check(self, profile, node, &insts, parent_loc, &element_loc);
        }
    }

    /// `min`/`max` of an element (or of a slice, `slice` naming it) against `count`
    /// instances in one parent.
    pub(crate) fn check_cardinality(
        &mut self,
        profile: &Profile,
        node: &Node,
        count: usize,
        loc: &Loc<'_>,
        slice: Option<&str>,
    ) {
        let what = match slice {
            Some(name) => format!("Slice '{name}'"),
            None => format!("Element '{}'", node.name),
        };
        if let Some(min) = node.min {
            // A minimum of 1 the base model already requires is checked by base validation.
            let base_checks = slice.is_none() && node.base_required && min <= 1;
            if count < min as usize && !base_checks {
                let message = format!("{what} requires at least {min}, found {count}");
                self.error(profile, node, "required", message, loc);
            }
        }
        if let Some(Max::Bounded(max)) = node.max {
            // Beyond 1 for a non-repeating element is a structural error of base validation.
            let base_checks = slice.is_none() && !node.repeats && max >= 1;
            if count > max as usize && !base_checks {
                let message = if max == 0 {
                    format!("{what} is not allowed (maximum 0), found {count}")
                } else {
                    format!("{what} allows at most {max}, found {count}")
                };
                self.error(profile, node, "structure", message, loc);
            }
        }
    }
}

/// The name an element is reported under: its JSON name, for a choice the variant present
/// (`valueString`), else the choice itself (`value[x]`, as base validation says it).
fn element_name<'n>(node: &'n Node, insts: &[Inst<'_>]) -> &'n str {
    match (&node.access, insts.first()) {
        (Access::Field { json, .. }, _) => json,
        (Access::Choice { .. }, Some(first)) => first.key,
        (Access::Choice { .. } | Access::Root(_), None) => &node.name,
        (Access::Root(_), Some(_)) => "",
    }
}

/// The instances of `node` in `parent`.
pub(crate) fn instances<'v>(node: &Node, parent: &'v Map<String, Value>) -> Vec<Inst<'v>> {
    let mut out = Vec::new();
    let mut add = |key: &'static str, ty: ElemTy, value: &'v Value| match value {
        Value::Array(items) => out.extend(items.iter().enumerate().map(|(i, value)| Inst {
            value,
            key,
            index: Some(i),
            ty,
        })),
        value => out.push(Inst {
            value,
            key,
            index: None,
            ty,
        }),
    };
    match &node.access {
        Access::Field { json, ty } => {
            if let Some(value) = parent.get(*json) {
                add(json, *ty, value);
            }
        }
        Access::Choice { variants } => {
            for (json, ty) in variants {
                if let Some(value) = parent.get(*json) {
                    add(json, *ty, value);
                }
            }
        }
        Access::Root(_) => {}
    }
    out
}

/// How many instances an element has, counting primitives present only through their
/// extension part (`_birthDate`).
fn count_with_extensions(node: &Node, parent: &Map<String, Value>, values: usize) -> usize {
    if values > 0 {
        // Values and their extension parts pair up (json.html §2.6.2): the values count.
        return values;
    }
    let ext_count = |json: &str| -> usize {
        match parent.get(&format!("_{json}")) {
            Some(Value::Array(items)) => items.len(),
            Some(_) => 1,
            None => 0,
        }
    };
    match &node.access {
        Access::Field {
            json,
            ty: ElemTy::Primitive(_),
        } => values.max(ext_count(json)),
        Access::Choice { variants } => values.max(
            variants
                .iter()
                .filter(|(_, ty)| matches!(ty, ElemTy::Primitive(_)))
                .map(|(json, _)| ext_count(json))
                .sum(),
        ),
        _ => values,
    }
}
