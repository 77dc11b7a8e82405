//! Slicing (FHIR R4 profiling.html §5.1.0.8 "Slicing", §5.1.0.9 discriminators): each
//! instance of a sliced element is assigned to the first slice it matches by the
//! discriminators (`value`/`pattern`: the slice's fixed or pattern value at the discriminator
//! path, or membership in its required binding there; extensions are sliced by `url`, from the
//! slice's `url` fixed value or its `type.profile`). Then each slice's cardinality and own
//! constraints are checked on its members, and `rules: closed` refuses instances in no slice.
//! A slice that cannot be assessed (other discriminator types, a value set not loaded) is
//! said to be so, once, and its members are not checked.

use serde_json::Value;

use crate::binding::{any_in, codes_of, Codes};
use crate::element::{Discriminator, DiscriminatorKind, Node, Strength};
use crate::loc::Loc;
use crate::profile::Profile;
use crate::terminology::strip_version;
use crate::values::{equals_fixed, matches_pattern};
use crate::walk::{Ctx, Inst, Once};

enum Match {
    Yes,
    No,
    /// Cannot tell, and why.
    Unknown(String),
}

/// The discriminator extensions are sliced by when no slicing is declared.
fn url_discriminator() -> Vec<Discriminator> {
    vec![Discriminator {
        kind: DiscriminatorKind::Value,
        path: vec!["url".to_string()],
    }]
}

/// Assigns the instances of `element` (all in one parent) to its slices and checks them.
pub(crate) fn check<'v>(
    ctx: &mut Ctx<'_, 'v>,
    profile: &Profile,
    element: &Node,
    insts: &[Inst<'v>],
    parent_loc: &Loc<'_>,
    element_loc: &Loc<'_>,
) {
    let implied;
    let (discriminators, closed) = match &element.slicing {
        Some(s) => (&s.discriminators, s.closed),
        None if element.is_extension() => {
            implied = url_discriminator();
            (&implied, false)
        }
        None => {
            let message =
                "Slices are declared without slicing discriminators: the slices were not checked"
                    .into();
            ctx.inform_once(profile, element, Once::Slicing, message, element_loc);
            return;
        }
    };
    if discriminators.is_empty() {
        let message = "Slicing has no discriminators: the slices were not checked".into();
        ctx.inform_once(profile, element, Once::Slicing, message, element_loc);
        return;
    }
    let slices = &element.slices;
    let mut not_assessed: Vec<Option<String>> = vec![None; slices.len()];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); slices.len()];
    let mut unmatched = Vec::new();
    for (i, inst) in insts.iter().enumerate() {
        let mut assigned = false;
        for (s, slice) in slices.iter().enumerate() {
            if not_assessed[s].is_some() {
                continue;
            }
            match slice_matches(ctx, discriminators, element, slice, inst.value) {
                Match::Yes => {
                    members[s].push(i);
                    assigned = true;
                    break;
                }
                Match::No => {}
                Match::Unknown(reason) => not_assessed[s] = Some(reason),
            }
        }
        if !assigned {
            unmatched.push(i);
        }
    }
    for (s, slice) in slices.iter().enumerate() {
        let name = slice.slice_name.as_deref().unwrap_or_default();
        if let Some(reason) = &not_assessed[s] {
            let message = format!("Slice '{name}' not assessed: {reason}");
            ctx.inform_once(profile, slice, Once::Slice, message, element_loc);
            continue;
        }
        ctx.check_cardinality(profile, slice, members[s].len(), element_loc, Some(name));
        for &i in &members[s] {
            let inst = &insts[i];
            let loc = parent_loc.child(inst.key, inst.index);
            ctx.check_instance(profile, slice, inst.value, inst.ty, &loc);
        }
    }
    if closed && not_assessed.iter().all(Option::is_none) {
        for &i in &unmatched {
            let inst = &insts[i];
            let loc = parent_loc.child(inst.key, inst.index);
            let message = "Matches none of the slices, and the slicing is closed".to_string();
            ctx.error(profile, element, "structure", message, &loc);
        }
    }
}

/// Does `value` belong to `slice` by every discriminator?
fn slice_matches(
    ctx: &Ctx<'_, '_>,
    discriminators: &[Discriminator],
    element: &Node,
    slice: &Node,
    value: &Value,
) -> Match {
    let mut unknown = None;
    for d in discriminators {
        let outcome = match &d.kind {
            DiscriminatorKind::Other(kind) => Match::Unknown(format!(
                "discriminator type '{kind}' (path '{}') is not supported",
                show_path(&d.path)
            )),
            DiscriminatorKind::Value if d.path.iter().any(|s| s.contains('(')) => {
                Match::Unknown(format!(
                    "discriminator path '{}' uses a function, which is not supported",
                    show_path(&d.path)
                ))
            }
            DiscriminatorKind::Value => by_value(ctx, d, element, slice, value),
        };
        match outcome {
            Match::Yes => {}
            Match::No => return Match::No,
            Match::Unknown(reason) => unknown = unknown.or(Some(reason)),
        }
    }
    match unknown {
        Some(reason) => Match::Unknown(reason),
        None => Match::Yes,
    }
}

fn show_path(path: &[String]) -> String {
    if path.is_empty() {
        "$this".into()
    } else {
        path.join(".")
    }
}

/// A `value`/`pattern` discriminator: the slice's value at the path against the instance's.
fn by_value(
    ctx: &Ctx<'_, '_>,
    d: &Discriminator,
    element: &Node,
    slice: &Node,
    value: &Value,
) -> Match {
    let found = values_at(value, &d.path);
    let Some(target) = slice.descend(&d.path) else {
        return extension_url(d, element, slice, &found).unwrap_or_else(|| no_value(d));
    };
    if let Some(fixed) = &target.fixed {
        return yes_if(found.iter().any(|v| equals_fixed(v, fixed)));
    }
    if let Some(pattern) = &target.pattern {
        return yes_if(found.iter().any(|v| matches_pattern(v, pattern)));
    }
    if let Some(b) = target
        .binding
        .as_ref()
        .filter(|b| b.strength == Strength::Required)
    {
        let ty = target.instance_types().first().map_or("", |t| t.code());
        let mut codes = Vec::new();
        for v in &found {
            if let Codes::Coded(c) = codes_of(v, ty) {
                codes.extend(c);
            }
        }
        return match any_in(&ctx.set.terminology, &b.value_set, &codes) {
            Ok(inside) => yes_if(inside),
            Err(unknown) => Match::Unknown(unknown.reason(strip_version(&b.value_set))),
        };
    }
    extension_url(d, element, slice, &found).unwrap_or_else(|| no_value(d))
}

fn no_value(d: &Discriminator) -> Match {
    Match::Unknown(format!(
        "the slice fixes no value at discriminator path '{}'",
        show_path(&d.path)
    ))
}

fn yes_if(b: bool) -> Match {
    if b {
        Match::Yes
    } else {
        Match::No
    }
}

/// An extension slice is identified by its `type.profile` (the extension's url).
fn extension_url(
    d: &Discriminator,
    element: &Node,
    slice: &Node,
    found: &[&Value],
) -> Option<Match> {
    if !(element.is_extension() && d.path == ["url"]) {
        return None;
    }
    let urls: Vec<&str> = slice
        .types
        .iter()
        .flatten()
        .flat_map(|t| t.profiles.iter().map(|p| strip_version(p)))
        .collect();
    if urls.is_empty() {
        return None;
    }
    Some(yes_if(
        found
            .iter()
            .any(|v| v.as_str().is_some_and(|u| urls.contains(&u))),
    ))
}

/// The values at a discriminator path in an instance (arrays flattened; a name also matches
/// the variants of a choice: `value` finds `valueCodeableConcept`).
fn values_at<'v>(value: &'v Value, path: &[String]) -> Vec<&'v Value> {
    let mut current = vec![value];
    for seg in path {
        let mut next = Vec::new();
        for v in current {
            let Value::Object(obj) = v else { continue };
            let hits = obj.iter().filter(|(k, _)| {
                *k == seg
                    || k.strip_prefix(seg.as_str())
                        .and_then(|rest| rest.chars().next())
                        .is_some_and(char::is_uppercase)
            });
            for (_, hit) in hits {
                match hit {
                    Value::Array(items) => next.extend(items.iter()),
                    other => next.push(other),
                }
            }
        }
        current = next;
    }
    current
}
