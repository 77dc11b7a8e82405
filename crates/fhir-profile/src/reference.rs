//! `ElementDefinition.type` beyond the type code (FHIR R4 elementdefinition.html
//! §2.24.0.6 "Type", references.html): `targetProfile` on References, checked locally by the
//! referenced resource's type, and `profile` on other types (an Extension's definition, a
//! data type profile). What cannot be checked without the referenced resource, or without a
//! profile that is not loaded, is said once per element as information.

use serde_json::Value;

use crate::element::{ElemTy, Node, Target, TypeRule};
use crate::loc::Loc;
use crate::profile::{core_type, Profile};
use crate::walk::{Ctx, Once};

/// The resource type a reference string names: `Type/id`, `Type/id/_history/v`, or an
/// absolute URL ending so. Fragments, URNs and other forms name none.
fn type_of_reference(reference: &str) -> Option<&str> {
    let path = reference.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.rsplit('/').filter(|p| !p.is_empty());
    let _id_or_version = segments.next()?;
    let candidate = match segments.next()? {
        "_history" => {
            let _id = segments.next()?;
            segments.next()?
        }
        ty => ty,
    };
    fhir_validate::is_resource_type(candidate).then_some(candidate)
}

/// The type code an instance is checked under: its type, or for a resource element (such as
/// `contained` or `Bundle.entry.resource`) its `resourceType`.
fn instance_code(value: &Value, ty: ElemTy) -> &str {
    match ty {
        ElemTy::Resource => value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("Resource"),
        other => other.code(),
    }
}

/// Checks the type rules of `node` that apply to one instance of type `ty`.
pub(crate) fn check_types<'v>(
    ctx: &mut Ctx<'_, 'v>,
    profile: &Profile,
    node: &Node,
    value: &'v Value,
    ty: ElemTy,
    loc: &Loc<'_>,
) {
    let Some(rules) = &node.types else { return };
    let code = instance_code(value, ty);
    let is_resource = ty == ElemTy::Resource;
    let applies = |r: &&TypeRule| r.code == code || (is_resource && r.code == "Resource");
    if is_resource && !rules.iter().any(|r| applies(&r)) {
        let allowed: Vec<&str> = rules.iter().map(|r| r.code.as_str()).collect();
        let message = format!(
            "Resource type {code} is not allowed here: the profile allows {}",
            allowed.join(", ")
        );
        ctx.error(profile, node, "structure", message, loc);
        return;
    }
    // One rule per type code is the norm: then nothing is collected.
    let mut matching = rules.iter().filter(applies);
    match (matching.next(), matching.next()) {
        (None, _) => {}
        (Some(rule), None) => check_rule(
            ctx,
            profile,
            node,
            (code, &rule.targets, &rule.profiles),
            value,
            ty,
            loc,
        ),
        (Some(_), Some(_)) => {
            let all: Vec<&TypeRule> = rules.iter().filter(applies).collect();
            let targets: Vec<Target> = all.iter().flat_map(|r| r.targets.clone()).collect();
            let profiles: Vec<String> = all.iter().flat_map(|r| r.profiles.clone()).collect();
            check_rule(
                ctx,
                profile,
                node,
                (code, &targets, &profiles),
                value,
                ty,
                loc,
            );
        }
    }
}

/// The target profiles and profiles that apply to one instance of type `code`.
fn check_rule<'v>(
    ctx: &mut Ctx<'_, 'v>,
    profile: &Profile,
    node: &Node,
    (code, targets, profiles): (&str, &[Target], &[String]),
    value: &'v Value,
    ty: ElemTy,
    loc: &Loc<'_>,
) {
    if code == "Reference" && !targets.is_empty() {
        check_reference(ctx, profile, node, targets, value, loc);
    }
    if !profiles.is_empty() {
        check_profiles(ctx, profile, node, profiles, value, ty, loc);
    }
}

/// A reference's target type against `targets`.
fn check_reference(
    ctx: &mut Ctx<'_, '_>,
    profile: &Profile,
    node: &Node,
    targets: &[Target],
    value: &Value,
    loc: &Loc<'_>,
) {
    let reference = value.get("reference").and_then(Value::as_str);
    let declared = value.get("type").and_then(Value::as_str);
    if reference.is_some_and(|r| r.starts_with('#')) {
        let message = "Reference to a contained resource: its target profile is not checked".into();
        ctx.inform_once(profile, node, Once::ReferenceType, message, loc);
        return;
    }
    let Some(found) = reference.and_then(type_of_reference).or(declared) else {
        let message =
            "Reference without a resource type (no Type/id reference, no type): its target profile is not checked"
                .into();
        ctx.inform_once(profile, node, Once::ReferenceType, message, loc);
        return;
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for target in targets {
        match target {
            Target::Any => return,
            Target::Type(t) if t == found => return,
            Target::Type(t) => known.push(t.as_str()),
            Target::Unknown(u) => unknown.push(u.as_str()),
        }
    }
    known.dedup();
    if unknown.is_empty() {
        let message = format!(
            "Reference to a resource of type {found}, but the target profiles allow only {}",
            known.join(", ")
        );
        ctx.error(profile, node, "structure", message, loc);
    } else {
        let message = format!(
            "Reference to a resource of type {found}, not among the loaded target types ({}); target profiles {} are not loaded, so the reference's type and conformance are not checked",
            if known.is_empty() { "none".to_string() } else { known.join(", ") },
            unknown.join(", ")
        );
        ctx.inform_once(profile, node, Once::TargetProfiles, message, loc);
    }
}

/// `type.profile`: an Extension's definition (applied by the extension pass when loaded), or
/// a data type profile applied here.
fn check_profiles<'v>(
    ctx: &mut Ctx<'_, 'v>,
    profile: &Profile,
    node: &Node,
    profiles: &[String],
    value: &'v Value,
    ty: ElemTy,
    loc: &Loc<'_>,
) {
    let set = ctx.set;
    let code = instance_code(value, ty);
    let is_extension = code == "Extension";
    let mut missing = Vec::new();
    let mut other_types = Vec::new();
    for url in profiles {
        if core_type(url) == Some(code) {
            return;
        }
        match set.lookup(url) {
            Some(_) if is_extension => return,
            // A resource conforms to a profile of its own type only.
            Some(i) if ty == ElemTy::Resource && set.profiles[i].info.type_name != code => {
                other_types.push(url.as_str())
            }
            Some(i) => {
                ctx.apply_chain(i, value, loc, ty);
                return;
            }
            None => missing.push(url.as_str()),
        }
    }
    if missing.is_empty() {
        let message = format!(
            "Resource type {code} cannot conform to {}: they constrain other types",
            other_types.join(", ")
        );
        ctx.error(profile, node, "structure", message, loc);
        return;
    }
    let message = if is_extension {
        format!(
            "Extension definition {} is not loaded: the extension's content is not checked",
            missing.join(", ")
        )
    } else {
        format!(
            "Profile {} is not loaded: conformance of the {code} is not checked",
            missing.join(", ")
        )
    };
    ctx.inform_once(profile, node, Once::TypeProfile, message, loc);
}

#[cfg(test)]
mod tests {
    use super::type_of_reference;

    #[test]
    fn reference_types() {
        assert_eq!(type_of_reference("Patient/example"), Some("Patient"));
        assert_eq!(
            type_of_reference("AllergyIntolerance/79613/_history/1"),
            Some("AllergyIntolerance")
        );
        assert_eq!(
            type_of_reference("https://example.org/fhir/Practitioner/p1"),
            Some("Practitioner")
        );
        assert_eq!(
            type_of_reference("https://example.org/fhir/Practitioner/p1/_history/2"),
            Some("Practitioner")
        );
        assert_eq!(type_of_reference("urn:uuid:1234"), None);
        assert_eq!(type_of_reference("Banana/1"), None);
        assert_eq!(type_of_reference("example"), None);
    }
}
