//! Result parameters (R4 search.html §3.1.1.5 "Modifying Search Results"):
//! `_sort`, `_count`, `_include` / `_revinclude` (with `:iterate`, legacy
//! `:recurse`), `_summary`, `_elements`, `_total`, `_contained`,
//! `_containedType`, and the opaque paging cursor `_page`.

use crate::ir::{ContainedMode, ContainedType, Include, SortKey, Summary, TotalMode};
use crate::lookup::ParamLookup;
use fhir_primitives::ParamType;

/// `_count`: a non-negative integer; values above `u32::MAX` saturate (the
/// caller clamps to its page-size limit anyway).
pub(crate) fn parse_count(v: &str) -> Result<u32, String> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("'{v}' is not a non-negative integer"));
    }
    let mut n: u32 = 0;
    for c in v.bytes() {
        n = n.saturating_mul(10).saturating_add(u32::from(c - b'0'));
    }
    Ok(n)
}

/// `_sort=key1,-key2`: each key a known parameter of the type (or `_id` /
/// `_lastUpdated`); no modifiers; not composite/special.
pub(crate) fn parse_sort(
    v: &str,
    resource_type: &str,
    lookup: &dyn ParamLookup,
) -> Result<Vec<SortKey>, String> {
    let mut keys = Vec::new();
    for item in v.split(',') {
        let (descending, code) = match item.strip_prefix('-') {
            Some(c) => (true, c),
            None => (false, item),
        };
        if code.is_empty() {
            return Err(format!("empty sort key in '{v}'"));
        }
        let param_type = match lookup.lookup(resource_type, code) {
            Some(info) => info.param_type,
            None if code == "_id" => ParamType::Token,
            None if code == "_lastUpdated" => ParamType::Date,
            None => {
                return Err(format!(
                    "'{code}' is not a search parameter of {resource_type}; cannot sort by it"
                ))
            }
        };
        if matches!(param_type, ParamType::Composite | ParamType::Special) {
            return Err(format!(
                "cannot sort by {} parameter '{code}'",
                param_type.code()
            ));
        }
        keys.push(SortKey {
            code: code.to_string(),
            param_type,
            descending,
        });
    }
    Ok(keys)
}

/// Which of the two include parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeKind {
    Include,
    RevInclude,
}

/// `*`, `Type:*`, `Type:param`, `Type:param:TargetType`.
///
/// Checks: Type is a resource type; param is a reference parameter of it;
/// TargetType is a resource type and one of the param's targets. Without
/// `:iterate`, an `_include` must start from the searched type and a
/// `_revinclude` parameter must be able to point at the searched type —
/// otherwise it could never add anything, which is almost certainly a
/// client mistake.
pub(crate) fn parse_include(
    v: &str,
    kind: IncludeKind,
    iterate: bool,
    resource_type: &str,
    lookup: &dyn ParamLookup,
) -> Result<Include, String> {
    if v == "*" {
        return Ok(Include {
            source_type: None,
            param: None,
            target_type: None,
            iterate,
        });
    }
    let parts: Vec<&str> = v.split(':').collect();
    let (ty, param, target) = match parts.as_slice() {
        [t, p] => (*t, *p, None),
        [t, p, target] => (*t, *p, Some(*target)),
        _ => {
            return Err(format!(
                "'{v}' is not of the form Type:parameter[:TargetType] or *"
            ))
        }
    };
    if !lookup.is_resource_type(ty) {
        return Err(format!("'{ty}' in '{v}' is not a resource type"));
    }
    if kind == IncludeKind::Include && !iterate && ty != resource_type {
        return Err(format!(
            "'{v}' starts from {ty} but the search is for {resource_type} (use _include:iterate)"
        ));
    }
    if param == "*" {
        if target.is_some() {
            return Err(format!("'{v}': a target type cannot follow '*'"));
        }
        return Ok(Include {
            source_type: Some(ty.to_string()),
            param: None,
            target_type: None,
            iterate,
        });
    }
    let info = match lookup.lookup(ty, param) {
        Some(info) if info.param_type == ParamType::Reference => info,
        Some(info) => {
            return Err(format!(
                "'{param}' in '{v}' is a {} parameter, not a reference",
                info.param_type.code()
            ))
        }
        None => {
            return Err(format!(
                "'{param}' in '{v}' is not a search parameter of {ty}"
            ))
        }
    };
    if let Some(t) = target {
        if !lookup.is_resource_type(t) {
            return Err(format!("'{t}' in '{v}' is not a resource type"));
        }
        if !info.targets.is_empty() && !info.targets.iter().any(|x| x == t) {
            return Err(format!(
                "'{t}' in '{v}' is not a target type of {ty}:{param}"
            ));
        }
    }
    if kind == IncludeKind::RevInclude
        && !iterate
        && !info.targets.is_empty()
        && !info.targets.iter().any(|x| x == resource_type)
    {
        return Err(format!(
            "'{ty}:{param}' in '{v}' cannot refer to {resource_type}"
        ));
    }
    Ok(Include {
        source_type: Some(ty.to_string()),
        param: Some(param.to_string()),
        target_type: target.map(str::to_string),
        iterate,
    })
}

pub(crate) fn parse_summary(v: &str) -> Result<Summary, String> {
    Ok(match v {
        "true" => Summary::True,
        "text" => Summary::Text,
        "data" => Summary::Data,
        "count" => Summary::Count,
        "false" => Summary::False,
        _ => {
            return Err(format!(
                "'{v}' is not one of true, text, data, count, false"
            ))
        }
    })
}

pub(crate) fn parse_total(v: &str) -> Result<TotalMode, String> {
    Ok(match v {
        "none" => TotalMode::None,
        "estimate" => TotalMode::Estimate,
        "accurate" => TotalMode::Accurate,
        _ => return Err(format!("'{v}' is not one of none, estimate, accurate")),
    })
}

pub(crate) fn parse_contained(v: &str) -> Result<ContainedMode, String> {
    Ok(match v {
        "false" => ContainedMode::False,
        "true" => ContainedMode::True,
        "both" => ContainedMode::Both,
        _ => return Err(format!("'{v}' is not one of true, false, both")),
    })
}

pub(crate) fn parse_contained_type(v: &str) -> Result<ContainedType, String> {
    Ok(match v {
        "container" => ContainedType::Container,
        "contained" => ContainedType::Contained,
        _ => return Err(format!("'{v}' is not one of container, contained")),
    })
}

/// `_elements=a,b,Type.c`: element names (letters, digits, `_`, `.`,
/// starting with a letter), order kept.
pub(crate) fn parse_elements(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let ok = item.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
            && item
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
        if !ok {
            return Err(format!("'{item}' in '{v}' is not an element name"));
        }
        out.push(item.to_string());
    }
    Ok(out)
}
