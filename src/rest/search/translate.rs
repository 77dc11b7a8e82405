//! From a parsed search request (`fhir-search-query`) to the store's query (search.html):
//! parameters become conditions over the index tables, comma-separated values alternatives,
//! repeated parameters conjunctions, chains and `_has` nested conditions. What the server does
//! not implement yet is refused with a clear `not-supported` error rather than ignored.

use super::ranges::{date_search_range, number_search_range};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::store::search::{Clause, Condition, StringMatch, SystemMatch, UriMatch};
use fhir_search_query::{
    Filter, Modifier, ParamRef, ParamType, ReferenceValue, TokenSystem, Value,
};

/// What translation needs from the server: string folding, its zone, and its base URL.
pub struct Context<'a> {
    pub normalize: &'a (dyn Fn(&str) -> String + Sync),
    pub tz_offset_seconds: i32,
    pub base_url: &'a str,
}

fn not_supported(what: String) -> FhirError {
    FhirError::new(ErrorKind::BadRequest, "not-supported", what)
}

fn table_of(param_type: ParamType) -> &'static str {
    match param_type {
        ParamType::String => "idx_string",
        ParamType::Date => "idx_date",
        ParamType::Number | ParamType::Quantity => "idx_number",
        ParamType::Reference => "idx_reference",
        ParamType::Uri => "idx_uri",
        _ => "idx_token",
    }
}

/// One filter (a parameter occurrence) as a clause of ORed conditions.
pub fn clause(filter: &Filter, ctx: &Context) -> FhirResult<Clause> {
    let negated = matches!(
        filter.param,
        ParamRef::Direct {
            modifier: Some(Modifier::Not),
            ..
        }
    );
    let any_of = filter
        .values
        .iter()
        .map(|v| condition(&filter.param, v, ctx))
        .collect::<FhirResult<Vec<_>>>()?;
    Ok(Clause { any_of, negated })
}

fn condition(param: &ParamRef, value: &Value, ctx: &Context) -> FhirResult<Condition> {
    match param {
        ParamRef::Chain {
            code,
            target_type,
            then,
        } => Ok(Condition::Chain {
            code: code.clone(),
            target_type: target_type.clone(),
            inner: Box::new(condition(then, value, ctx)?),
        }),
        ParamRef::Has {
            target_type,
            reference_param,
            then,
        } => Ok(Condition::Has {
            source_type: target_type.clone(),
            reference_code: reference_param.clone(),
            inner: Box::new(condition(then, value, ctx)?),
        }),
        ParamRef::Direct {
            code,
            param_type,
            modifier,
        } => direct(code, *param_type, modifier.as_ref(), value, ctx),
    }
}

fn direct(
    code: &str,
    param_type: ParamType,
    modifier: Option<&Modifier>,
    value: &Value,
    ctx: &Context,
) -> FhirResult<Condition> {
    let code_s = code.to_string();
    if let Value::Missing(missing) = value {
        return Ok(Condition::Missing {
            code: code_s,
            table: table_of(param_type),
            missing: *missing,
        });
    }
    match (code, value) {
        ("_id", Value::Token(t)) => {
            return match &t.code {
                Some(id) => Ok(Condition::Id(id.clone())),
                None => Err(FhirError::bad_request("_id needs an id")),
            }
        }
        ("_lastUpdated", Value::Date(d)) => {
            return Ok(Condition::LastUpdated(date_search_range(
                d,
                ctx.tz_offset_seconds,
            )));
        }
        _ => {}
    }
    match value {
        Value::String(text) if param_type == ParamType::Token => Ok(Condition::TokenText {
            code: code_s,
            norm_prefix: (ctx.normalize)(text),
        }),
        Value::String(text) => Ok(Condition::String {
            code: code_s,
            matching: match modifier {
                Some(Modifier::Exact) => StringMatch::Exact(text.clone()),
                Some(Modifier::Contains) => StringMatch::Contains((ctx.normalize)(text)),
                _ => StringMatch::StartsWith((ctx.normalize)(text)),
            },
        }),
        Value::Token(token) if param_type == ParamType::Reference => Ok(Condition::Token {
            code: super::params::identifier_code(code),
            system: match &token.system {
                TokenSystem::Any => SystemMatch::Any,
                TokenSystem::NoSystem => SystemMatch::Absent,
                TokenSystem::Is(s) => SystemMatch::Is(s.clone()),
            },
            value: token.code.clone(),
        }),
        Value::Token(token) => Ok(Condition::Token {
            code: code_s,
            system: match &token.system {
                TokenSystem::Any => SystemMatch::Any,
                TokenSystem::NoSystem => SystemMatch::Absent,
                TokenSystem::Is(s) => SystemMatch::Is(s.clone()),
            },
            value: token.code.clone(),
        }),
        Value::OfType {
            system,
            code: type_code,
            value,
        } => Ok(Condition::Token {
            code: super::params::of_type_code(code),
            system: SystemMatch::Is(system.clone()),
            value: Some(format!("{type_code}|{value}")),
        }),
        Value::Date(d) => Ok(Condition::Date {
            code: code_s,
            range: date_search_range(d, ctx.tz_offset_seconds),
        }),
        Value::Number(n) => {
            let range = number_search_range(n).ok_or_else(|| {
                FhirError::bad_request(format!("{code}: {:?} is not a number", n.raw))
            })?;
            Ok(Condition::Number {
                code: code_s,
                range,
                system: None,
                unit: None,
            })
        }
        Value::Quantity(q) => {
            let range = number_search_range(&q.number).ok_or_else(|| {
                FhirError::bad_request(format!("{code}: {:?} is not a number", q.number.raw))
            })?;
            Ok(Condition::Number {
                code: code_s,
                range,
                system: q.system.clone(),
                unit: q.code.clone(),
            })
        }
        Value::Reference(reference) => Ok(reference_condition(code_s, modifier, reference, ctx)),
        Value::Uri(uri) => Ok(Condition::Uri {
            code: code_s,
            value: uri.clone(),
            matching: match modifier {
                Some(Modifier::Below) => UriMatch::Below,
                Some(Modifier::Above) => UriMatch::Above,
                _ => UriMatch::Exact,
            },
        }),
        Value::Composite(parts) => composite(code, parts, ctx),
        Value::Missing(_) => Err(FhirError::internal("missing handled above")),
    }
}

/// A composite of a token and one other component: a search of the other component under the
/// derived code the index keeps it by (see `params::push_composite_rows`).
fn composite(code: &str, parts: &[Value], ctx: &Context) -> FhirResult<Condition> {
    use super::params::{composite_code, CompositeSystem};
    let unsupported = || {
        not_supported(format!(
            "composite parameter {code}: only two components, one of them a token, are supported"
        ))
    };
    let (token, second) = match parts {
        [Value::Token(token), second] => (token, second),
        [first, Value::Token(token)] => (token, first),
        _ => return Err(unsupported()),
    };
    let Some(token_code) = &token.code else {
        return Err(FhirError::invalid_at(
            format!("{code}: the first component needs a code"),
            code.to_string(),
        ));
    };
    let derived = match &token.system {
        TokenSystem::Is(s) => composite_code(code, CompositeSystem::Is(s), token_code),
        TokenSystem::NoSystem => composite_code(code, CompositeSystem::Is(""), token_code),
        TokenSystem::Any => composite_code(code, CompositeSystem::Any, token_code),
    };
    let component_type = match second {
        Value::String(_) => ParamType::String,
        Value::Token(_) => ParamType::Token,
        Value::Date(_) => ParamType::Date,
        Value::Number(_) => ParamType::Number,
        Value::Quantity(_) => ParamType::Quantity,
        Value::Reference(_) => ParamType::Reference,
        Value::Uri(_) => ParamType::Uri,
        _ => return Err(unsupported()),
    };
    direct(&derived, component_type, None, second, ctx)
}

fn reference_condition(
    code: String,
    modifier: Option<&Modifier>,
    reference: &ReferenceValue,
    ctx: &Context,
) -> Condition {
    let modifier_type = match modifier {
        Some(Modifier::Type(t)) => Some(t.clone()),
        _ => None,
    };
    match reference {
        ReferenceValue::Id(id) => Condition::Reference {
            code,
            target_type: modifier_type,
            target_id: Some(id.clone()),
            url: None,
        },
        ReferenceValue::Typed {
            resource_type, id, ..
        } => Condition::Reference {
            code,
            target_type: Some(resource_type.clone()),
            target_id: Some(id.clone()),
            url: None,
        },
        ReferenceValue::Url {
            url,
            resource_type,
            id,
        } => {
            // A URL on this server is the same reference as its relative form.
            let local = url
                .strip_prefix(ctx.base_url)
                .is_some_and(|rest| rest.starts_with('/'));
            match (local, resource_type, id) {
                (true, Some(t), Some(i)) => Condition::Reference {
                    code,
                    target_type: Some(t.clone()),
                    target_id: Some(i.clone()),
                    url: None,
                },
                _ => Condition::Reference {
                    code,
                    target_type: None,
                    target_id: None,
                    url: Some(url.clone()),
                },
            }
        }
    }
}
