//! Parameter names (R4 search.html §3.1.1.5 "Modifiers", §3.1.1.4.8
//! "Chained parameters", §3.1.1.4.9 "Reverse Chaining" / `_has`): resolves
//! `code[:modifier]`, `ref[:Type].…` chains and `_has:Type:ref:…` against the
//! caller's registry into a [`ParamRef`].
//!
//! Outcomes: a known parameter; an unknown one (goes to
//! `SearchRequest::unknown`); an unsupported one (type `special`); or an
//! error for a structurally wrong name — an unknown or unsupported modifier
//! on a known parameter (R4: servers reject unsupported modifiers rather than
//! silently widening the search), chaining through a non-reference parameter,
//! an ambiguous chain without `:Type` (R4: servers SHOULD reject), or a
//! `:Type` that is not a resource type / not a target of the parameter.

use crate::ir::{Modifier, ParamRef};
use crate::lookup::{ParamInfo, ParamLookup, MAX_CHAIN_DEPTH};
use fhir_primitives::ParamType;

pub(crate) enum Resolved {
    /// The parameter, and the registry entry of its leaf (direct) parameter.
    Known(ParamRef, ParamInfo),
    Unknown,
    Unsupported,
}

/// Resolve `name` as a search parameter of `resource_type`.
pub(crate) fn resolve(
    name: &str,
    resource_type: &str,
    lookup: &dyn ParamLookup,
) -> Result<Resolved, String> {
    resolve_at(name, resource_type, lookup, 0)
}

fn resolve_at(
    name: &str,
    resource_type: &str,
    lookup: &dyn ParamLookup,
    depth: usize,
) -> Result<Resolved, String> {
    let max = lookup.max_chain_depth().min(MAX_CHAIN_DEPTH);
    if depth > max {
        return Err(format!("chains and _has may nest at most {max} levels"));
    }
    if name == "_has" || name.starts_with("_has:") {
        return resolve_has(name, resource_type, lookup, depth);
    }
    if let Some((head, tail)) = name.split_once('.') {
        return resolve_chain(head, tail, resource_type, lookup, depth);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    let Some(info) = lookup.lookup(resource_type, code) else {
        return Ok(Resolved::Unknown);
    };
    if info.param_type == ParamType::Special {
        return Ok(Resolved::Unsupported);
    }
    let modifier = match modifier {
        None => None,
        Some(m) => Some(check_modifier(code, m, &info, lookup)?),
    };
    Ok(Resolved::Known(
        ParamRef::Direct {
            code: code.to_string(),
            param_type: info.param_type,
            modifier,
        },
        info,
    ))
}

fn check_modifier(
    code: &str,
    m: &str,
    info: &ParamInfo,
    lookup: &dyn ParamLookup,
) -> Result<Modifier, String> {
    use ParamType as T;
    let t = info.param_type;
    let modifier = match (t, m) {
        (_, "missing") => Modifier::Missing,
        (T::String, "exact") => Modifier::Exact,
        (T::String, "contains") => Modifier::Contains,
        (T::Token, "text") => Modifier::Text,
        (T::Token, "not") => Modifier::Not,
        (T::Token, "of-type") => Modifier::OfType,
        (T::Reference, "identifier") => Modifier::Identifier,
        (T::Uri, "above") => Modifier::Above,
        (T::Uri, "below") => Modifier::Below,
        (T::Reference, ty) if lookup.is_resource_type(ty) => {
            check_target(code, ty, info)?;
            Modifier::Type(ty.to_string())
        }
        (_, "") => return Err(format!("empty modifier on '{code}'")),
        (T::Token, "in" | "not-in" | "above" | "below") | (T::Reference, "above" | "below") => {
            return Err(format!(
                "modifier ':{m}' on {} parameter '{code}' is not supported by this server",
                t.code()
            ))
        }
        _ => {
            return Err(format!(
                "unknown modifier ':{m}' for {} parameter '{code}'",
                t.code()
            ))
        }
    };
    Ok(modifier)
}

/// A `:Type` on a reference parameter must be one of its targets (when the
/// registry lists targets).
fn check_target(code: &str, ty: &str, info: &ParamInfo) -> Result<(), String> {
    if !info.targets.is_empty() && !info.targets.iter().any(|t| t == ty) {
        return Err(format!(
            "'{ty}' is not a target type of reference parameter '{code}' (targets: {})",
            info.targets.join(", ")
        ));
    }
    Ok(())
}

fn resolve_chain(
    head: &str,
    tail: &str,
    resource_type: &str,
    lookup: &dyn ParamLookup,
    depth: usize,
) -> Result<Resolved, String> {
    let (code, ty) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let Some(info) = lookup.lookup(resource_type, code) else {
        return Ok(Resolved::Unknown);
    };
    if info.param_type != ParamType::Reference {
        return Err(format!(
            "cannot chain through '{code}': it is a {} parameter, not a reference",
            info.param_type.code()
        ));
    }
    let target_type = match ty {
        Some(t) => {
            if !lookup.is_resource_type(t) {
                return Err(format!(
                    "'{t}' in chain '{head}' is not a resource type"
                ));
            }
            check_target(code, t, &info)?;
            t.to_string()
        }
        None => match info.targets.as_slice() {
            [only] => only.clone(),
            [] => {
                return Err(format!(
                    "chain through '{code}' needs an explicit type ('{code}:Type.…'): the reference may point to any type"
                ))
            }
            many => {
                return Err(format!(
                    "ambiguous chain through '{code}': it may refer to {}; use '{code}:Type.…'",
                    many.join(", ")
                ))
            }
        },
    };
    if tail.is_empty() {
        return Err(format!("empty chained parameter after '{head}.'"));
    }
    Ok(match resolve_at(tail, &target_type, lookup, depth + 1)? {
        Resolved::Known(then, leaf) => Resolved::Known(
            ParamRef::Chain {
                code: code.to_string(),
                target_type,
                then: Box::new(then),
            },
            leaf,
        ),
        other => other,
    })
}

fn resolve_has(
    name: &str,
    resource_type: &str,
    lookup: &dyn ParamLookup,
    depth: usize,
) -> Result<Resolved, String> {
    let rest = name.strip_prefix("_has:").unwrap_or("");
    let mut it = rest.splitn(3, ':');
    let (Some(target_type), Some(reference_param), Some(then)) = (it.next(), it.next(), it.next())
    else {
        return Err(format!(
            "'{name}' is not of the form _has:Type:referenceParam:parameter"
        ));
    };
    if !lookup.is_resource_type(target_type) {
        return Err(format!(
            "'{target_type}' in '{name}' is not a resource type"
        ));
    }
    let Some(info) = lookup.lookup(target_type, reference_param) else {
        return Ok(Resolved::Unknown);
    };
    if info.param_type != ParamType::Reference {
        return Err(format!(
            "'{target_type}:{reference_param}' in _has is a {} parameter, not a reference",
            info.param_type.code()
        ));
    }
    if !info.targets.is_empty() && !info.targets.iter().any(|t| t == resource_type) {
        return Err(format!(
            "'{target_type}:{reference_param}' cannot refer to {resource_type}"
        ));
    }
    if then.is_empty() {
        return Err(format!("empty parameter at the end of '{name}'"));
    }
    Ok(match resolve_at(then, target_type, lookup, depth + 1)? {
        Resolved::Known(then, leaf) => Resolved::Known(
            ParamRef::Has {
                target_type: target_type.to_string(),
                reference_param: reference_param.to_string(),
                then: Box::new(then),
            },
            leaf,
        ),
        other => other,
    })
}
