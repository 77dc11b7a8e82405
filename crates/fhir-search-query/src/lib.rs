//! FHIR R4 search request parsing (search.html §3.1.1): turns the decoded
//! query pairs of `GET /{type}?…` (or a `POST /{type}/_search` form body)
//! into a typed, validated [`SearchRequest`]. Knows nothing of SQL or HTTP;
//! the search parameter registry belongs to the caller ([`ParamLookup`]).
//!
//! ```
//! use fhir_search_query::{parse, self_link_params, ParamInfo, ParamLookup, ParamType, Value};
//!
//! struct Registry;
//! impl ParamLookup for Registry {
//!     fn lookup(&self, _rt: &str, code: &str) -> Option<ParamInfo> {
//!         match code {
//!             "_id" | "gender" => Some(ParamInfo::of(ParamType::Token)),
//!             "birthdate" => Some(ParamInfo::of(ParamType::Date)),
//!             _ => None,
//!         }
//!     }
//!     fn is_resource_type(&self, name: &str) -> bool {
//!         name == "Patient"
//!     }
//! }
//!
//! let query = [("birthdate", "ge1974-12"), ("gender", "male,female"), ("foo", "1")];
//! let req = parse(query, "Patient", &Registry, false).unwrap();
//! assert_eq!(req.filters.len(), 2);
//! assert!(matches!(req.filters[0].values[0], Value::Date(_)));
//! assert_eq!(req.unknown[0].name, "foo");
//! assert_eq!(self_link_params(&req)[0], ("birthdate".to_string(), "ge1974-12".to_string()));
//! // Prefer: handling=strict
//! assert!(parse(query, "Patient", &Registry, true).is_err());
//! ```
//!
//! Decisions where R4 leaves room:
//! * A malformed value of a known parameter is always an error
//!   ([`SearchError`], all collected). Unknown parameters go to
//!   [`SearchRequest::unknown`]; with `strict` (`Prefer: handling=strict`)
//!   they are errors instead.
//! * Unsupported or unknown **modifiers** on a known parameter are errors in
//!   both modes (R4 example `searchfail`): ignoring e.g. `:not` or `:in` would
//!   silently change the meaning of the search. Token `:in`, `:not-in`,
//!   `:above`, `:below` and reference `:above`, `:below` are unsupported.
//! * Parameters of type `special` (e.g. `near`) and the control parameters
//!   `_text`, `_content`, `_list`, `_query`, `_filter`, `_type` (unless the
//!   registry defines them with a non-special type) are listed as
//!   [`IgnoredReason::Unsupported`].
//! * Empty values (`name=`) are ignored as R4 says, in both modes, and listed
//!   as [`IgnoredReason::EmptyValue`]. An empty item inside a list
//!   (`a,,b`) is an error.
//! * `_format` and `_pretty` are dropped silently (the HTTP layer handles them).
//! * A name or value containing a NUL character is an error: no FHIR string holds one.
//! * `_sort` may repeat (keys are appended); `_count`, `_summary`,
//!   `_elements`, `_total`, `_contained`, `_containedType` and `_page` may
//!   appear only once; `_include`/`_revinclude` repeat freely.
//! * `_count` above `u32::MAX` saturates (the caller clamps anyway).
//! * A non-iterate `_include` must start from the searched type, and a
//!   non-iterate `_revinclude` parameter must be able to point at it; both
//!   could otherwise never add anything.
//! * Chains: [`ParamRef::Chain::target_type`] is always resolved (explicit
//!   `:Type`, or the parameter's only target); a parameter with several
//!   targets, or with none listed (any type), needs `:Type` or is an error.
//!   Chains and `_has` nest at most [`ParamLookup::max_chain_depth`] levels
//!   (8 at most). An unknown parameter anywhere
//!   in a chain / `_has` makes the whole parameter unknown.
//! * Reference values: `Type/id` must name a resource type, but is not
//!   checked against the parameter's targets (only a `:Type` modifier is).
//! * Values are kept as given: numbers and dates as exact text plus their
//!   precision (dates read by `fhir_primitives::PartialDateTime`, the reader the
//!   index uses); strings are not case- or accent-folded (the executor does).
//!   A time without a zone is accepted (no offset: the executor reads it in the
//!   server zone); at most nine fraction digits.

mod date;
mod error;
mod escape;
mod ir;
mod lookup;
mod name;
mod number;
mod result;
mod selflink;
mod value;

#[cfg(test)]
mod tests;

pub use error::SearchError;
pub use escape::escape as literal;
pub use fhir_primitives::{ParamType, Prefix};
pub use ir::*;
pub use lookup::{ParamInfo, ParamLookup, MAX_CHAIN_DEPTH};
pub use selflink::{render_param, render_value, self_link_params};

use name::Resolved;
use result::IncludeKind;

/// Control parameters R4 defines that this parser does not implement.
const UNSUPPORTED_CONTROL: &[&str] = &["_text", "_content", "_list", "_query", "_filter", "_type"];

/// Parse a search on `resource_type` from decoded (name, value) pairs.
///
/// Returns every error found, or the request. In lenient mode (`strict =
/// false`) unknown/unsupported parameters are reported in
/// [`SearchRequest::unknown`]; in strict mode they are errors too.
pub fn parse<I, K, V>(
    pairs: I,
    resource_type: &str,
    lookup: &dyn ParamLookup,
    strict: bool,
) -> Result<SearchRequest, Vec<SearchError>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut req = SearchRequest {
        resource_type: resource_type.to_string(),
        ..SearchRequest::default()
    };
    let mut errors = Vec::new();
    if !lookup.is_resource_type(resource_type) {
        errors.push(SearchError::new(
            resource_type,
            format!("'{resource_type}' is not a resource type"),
        ));
        return Err(errors);
    }
    let mut seen_single: Vec<&'static str> = Vec::new();
    for (k, v) in pairs {
        let (name, value) = (k.as_ref(), v.as_ref());
        if name.contains('\0') || value.contains('\0') {
            // No FHIR string holds one (json.html: no characters below U+0020 but
            // whitespace), and PostgreSQL text cannot.
            errors.push(SearchError::new(
                &name.replace('\0', "\\0"),
                "search parameters cannot contain NUL characters".to_string(),
            ));
            continue;
        }
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name, None),
        };
        if matches!(base, "_format" | "_pretty") {
            continue;
        }
        if value.is_empty() {
            req.unknown
                .push(ignored(name, value, IgnoredReason::EmptyValue));
            continue;
        }
        let err = |msg: String| SearchError::new(name, msg);
        if let Some(single) = single_valued(base) {
            if modifier.is_some() {
                errors.push(err(format!("'{base}' takes no modifier")));
                continue;
            }
            if seen_single.contains(&single) {
                errors.push(err(format!("'{base}' may appear only once")));
                continue;
            }
            seen_single.push(single);
            let r = match single {
                "_count" => result::parse_count(value).map(|c| req.count = Some(c)),
                "_summary" => result::parse_summary(value).map(|s| req.summary = Some(s)),
                "_elements" => result::parse_elements(value).map(|e| req.elements = Some(e)),
                "_total" => result::parse_total(value).map(|t| req.total = Some(t)),
                "_contained" => result::parse_contained(value).map(|c| req.contained = Some(c)),
                "_containedType" => {
                    result::parse_contained_type(value).map(|c| req.contained_type = Some(c))
                }
                _ => {
                    req.cursor = Some(value.to_string());
                    Ok(())
                }
            };
            if let Err(e) = r {
                errors.push(err(e));
            }
            continue;
        }
        match base {
            "_sort" => {
                if modifier.is_some() {
                    errors.push(err("'_sort' takes no modifier".to_string()));
                    continue;
                }
                match result::parse_sort(value, resource_type, lookup) {
                    Ok(keys) => req.sort.extend(keys),
                    Err(e) => errors.push(err(e)),
                }
            }
            "_include" | "_revinclude" => {
                let iterate = match modifier {
                    None => false,
                    Some("iterate" | "recurse") => true,
                    Some(m) => {
                        errors.push(err(format!(
                            "unknown modifier ':{m}' on '{base}' (only :iterate)"
                        )));
                        continue;
                    }
                };
                let kind = if base == "_include" {
                    IncludeKind::Include
                } else {
                    IncludeKind::RevInclude
                };
                match result::parse_include(value, kind, iterate, resource_type, lookup) {
                    Ok(inc) if kind == IncludeKind::Include => req.include.push(inc),
                    Ok(inc) => req.revinclude.push(inc),
                    Err(e) => errors.push(err(e)),
                }
            }
            _ => match name::resolve(name, resource_type, lookup) {
                Err(e) => errors.push(err(e)),
                Ok(Resolved::Unknown) if UNSUPPORTED_CONTROL.contains(&base) => {
                    req.unknown
                        .push(ignored(name, value, IgnoredReason::Unsupported));
                }
                Ok(Resolved::Unknown) => {
                    req.unknown
                        .push(ignored(name, value, IgnoredReason::Unknown));
                }
                Ok(Resolved::Unsupported) => {
                    req.unknown
                        .push(ignored(name, value, IgnoredReason::Unsupported));
                }
                Ok(Resolved::Known(param, info)) => {
                    match value::parse_values(value, param.leaf(), &info, lookup) {
                        Ok(values) => req.filters.push(Filter { param, values }),
                        Err(msgs) => errors.extend(msgs.into_iter().map(err)),
                    }
                }
            },
        }
    }
    if strict {
        for u in &req.unknown {
            if u.reason != IgnoredReason::EmptyValue {
                errors.push(SearchError::new(
                    &u.name,
                    format!("{} (value '{}')", u.reason.as_str(), u.value),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(req)
    } else {
        Err(errors)
    }
}

fn single_valued(base: &str) -> Option<&'static str> {
    [
        "_count",
        "_summary",
        "_elements",
        "_total",
        "_contained",
        "_containedType",
        "_page",
    ]
    .into_iter()
    .find(|s| *s == base)
}

fn ignored(name: &str, value: &str, reason: IgnoredReason) -> Ignored {
    Ignored {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    }
}
