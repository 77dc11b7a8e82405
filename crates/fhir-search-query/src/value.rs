//! Parameter values by type (R4 search.html §3.1.1.4 "Search Parameter
//! Types": string, token, reference, uri, composite, plus `:missing`; date,
//! number and quantity live in their own modules). Values arrive already
//! URL-decoded; `,` separates ORed values, with `\` escapes
//! (see [`crate::escape`]).

use crate::date::parse_date_value;
use crate::escape::{split_unescaped, unescape};
use crate::ir::{Modifier, ParamRef, ReferenceValue, TokenSystem, TokenValue, Value};
use crate::lookup::{ParamInfo, ParamLookup};
use crate::number::{parse_number_value, parse_quantity_value};
use fhir_primitives::ParamType;

/// Parse the whole (comma-separated) value of a filter whose leaf is `leaf`.
/// Returns the values, or one message per bad value.
pub(crate) fn parse_values(
    raw: &str,
    leaf: &ParamRef,
    info: &ParamInfo,
    lookup: &dyn ParamLookup,
) -> Result<Vec<Value>, Vec<String>> {
    let modifier = match leaf {
        ParamRef::Direct { modifier, .. } => modifier.as_ref(),
        _ => None,
    };
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for piece in split_unescaped(raw, ',') {
        if piece.is_empty() {
            errors.push(format!("empty value in the list '{raw}'"));
            continue;
        }
        match parse_one(piece, info, modifier, lookup) {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn parse_one(
    piece: &str,
    info: &ParamInfo,
    modifier: Option<&Modifier>,
    lookup: &dyn ParamLookup,
) -> Result<Value, String> {
    if modifier == Some(&Modifier::Missing) {
        return match piece {
            "true" => Ok(Value::Missing(true)),
            "false" => Ok(Value::Missing(false)),
            _ => Err(format!(
                "':missing' must be 'true' or 'false', not '{piece}'"
            )),
        };
    }
    match info.param_type {
        ParamType::Composite => parse_composite(piece, info, lookup),
        t => parse_simple(piece, t, modifier, lookup),
    }
}

/// A value of a non-composite type (also used for composite components).
fn parse_simple(
    piece: &str,
    t: ParamType,
    modifier: Option<&Modifier>,
    lookup: &dyn ParamLookup,
) -> Result<Value, String> {
    match t {
        ParamType::String => Ok(Value::String(unescape(piece))),
        ParamType::Uri => Ok(Value::Uri(unescape(piece))),
        ParamType::Token => match modifier {
            Some(Modifier::Text) => Ok(Value::String(unescape(piece))),
            Some(Modifier::OfType) => parse_of_type(piece),
            _ => parse_token(piece).map(Value::Token),
        },
        ParamType::Date => parse_date_value(&unescape(piece)).map(Value::Date),
        ParamType::Number => parse_number_value(&unescape(piece)).map(Value::Number),
        ParamType::Quantity => parse_quantity_value(piece).map(Value::Quantity),
        ParamType::Reference => match modifier {
            Some(Modifier::Identifier) => parse_token(piece).map(Value::Token),
            Some(Modifier::Type(ty)) => {
                let r = parse_reference(piece, lookup)?;
                let actual = match &r {
                    ReferenceValue::Typed { resource_type, .. } => Some(resource_type),
                    ReferenceValue::Url { resource_type, .. } => resource_type.as_ref(),
                    ReferenceValue::Id(_) => None,
                };
                match actual {
                    Some(a) if a != ty => Err(format!(
                        "reference '{piece}' is not of type {ty} given by the ':{ty}' modifier"
                    )),
                    _ => Ok(Value::Reference(r)),
                }
            }
            _ => parse_reference(piece, lookup).map(Value::Reference),
        },
        ParamType::Composite | ParamType::Special => Err(format!(
            "a {} parameter cannot be a composite component (value '{piece}')",
            t.code()
        )),
    }
}

/// `code`, `system|code`, `|code`, `system|`.
pub(crate) fn parse_token(piece: &str) -> Result<TokenValue, String> {
    let parts = split_unescaped(piece, '|');
    match parts.as_slice() {
        [code] => Ok(TokenValue {
            system: TokenSystem::Any,
            code: Some(unescape(code)),
        }),
        [system, code] => {
            let (system, code) = (unescape(system), unescape(code));
            match (system.is_empty(), code.is_empty()) {
                (true, true) => Err(format!("token '{piece}' has neither system nor code")),
                (true, false) => Ok(TokenValue {
                    system: TokenSystem::NoSystem,
                    code: Some(code),
                }),
                (false, true) => Ok(TokenValue {
                    system: TokenSystem::Is(system),
                    code: None,
                }),
                (false, false) => Ok(TokenValue {
                    system: TokenSystem::Is(system),
                    code: Some(code),
                }),
            }
        }
        _ => Err(format!(
            "token '{piece}' has more than one unescaped '|' (expected [system|]code)"
        )),
    }
}

/// `:of-type`: `system|code|value`, all three required.
fn parse_of_type(piece: &str) -> Result<Value, String> {
    let parts = split_unescaped(piece, '|');
    match parts.as_slice() {
        [s, c, v] if !s.is_empty() && !c.is_empty() && !v.is_empty() => Ok(Value::OfType {
            system: unescape(s),
            code: unescape(c),
            value: unescape(v),
        }),
        _ => Err(format!(
            "':of-type' value '{piece}' must be system|code|value with all three parts"
        )),
    }
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub(crate) fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// `id`, `Type/id`, `Type/id/_history/vid`, or an absolute URL / URN.
fn parse_reference(piece: &str, lookup: &dyn ParamLookup) -> Result<ReferenceValue, String> {
    let text = unescape(piece);
    if text.contains("://") || text.starts_with("urn:") {
        let (resource_type, id) = url_tail(&text, lookup);
        return Ok(ReferenceValue::Url {
            url: text,
            resource_type,
            id,
        });
    }
    let segments: Vec<&str> = text.split('/').collect();
    let typed = |ty: &str, id: &str, version: Option<&str>| {
        if !lookup.is_resource_type(ty) {
            return Err(format!(
                "'{ty}' in reference '{text}' is not a resource type"
            ));
        }
        if !is_valid_id(id) {
            return Err(format!("'{id}' in reference '{text}' is not a valid id"));
        }
        if let Some(v) = version {
            if !is_valid_id(v) {
                return Err(format!(
                    "'{v}' in reference '{text}' is not a valid version id"
                ));
            }
        }
        Ok(ReferenceValue::Typed {
            resource_type: ty.to_string(),
            id: id.to_string(),
            version: version.map(str::to_string),
        })
    };
    match segments.as_slice() {
        [id] if is_valid_id(id) => Ok(ReferenceValue::Id(id.to_string())),
        [id] => Err(format!("'{id}' is not a valid reference id")),
        [ty, id] => typed(ty, id, None),
        [ty, id, "_history", v] => typed(ty, id, Some(v)),
        _ => Err(format!(
            "'{text}' is not a reference (expected id, Type/id or an absolute URL)"
        )),
    }
}

/// `…/Type/id` or `…/Type/id/_history/vid` at the end of a URL (ignoring a
/// canonical `|version`).
fn url_tail(url: &str, lookup: &dyn ParamLookup) -> (Option<String>, Option<String>) {
    let path = url.split('|').next().unwrap_or(url);
    let segs: Vec<&str> = path.split('/').collect();
    let n = segs.len();
    let candidates = [
        (n >= 4 && segs.get(n - 2) == Some(&"_history"), 4),
        (true, 2),
    ];
    for (applies, back) in candidates {
        if !applies || n < back + 1 {
            continue;
        }
        let (ty, id) = (segs[n - back], segs[n - back + 1]);
        if lookup.is_resource_type(ty) && is_valid_id(id) {
            return (Some(ty.to_string()), Some(id.to_string()));
        }
    }
    (None, None)
}

/// `c1$c2…`: split on unescaped `$`, one part per component.
fn parse_composite(
    piece: &str,
    info: &ParamInfo,
    lookup: &dyn ParamLookup,
) -> Result<Value, String> {
    let parts = split_unescaped(piece, '$');
    if parts.len() != info.components.len() || info.components.is_empty() {
        return Err(format!(
            "composite value '{piece}' has {} part(s); expected {} separated by '$'",
            parts.len(),
            info.components.len()
        ));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (part, (code, t)) in parts.iter().zip(&info.components) {
        if part.is_empty() {
            return Err(format!(
                "composite value '{piece}': empty component '{code}'"
            ));
        }
        let v = parse_simple(part, *t, None, lookup)
            .map_err(|e| format!("composite value '{piece}', component '{code}': {e}"))?;
        out.push(v);
    }
    Ok(Value::Composite(out))
}
