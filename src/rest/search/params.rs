//! The R4 search parameters as the server uses them: the registry (from `fhir-search-index`)
//! answers the query parser's lookups, and extraction turns a resource into the store's index
//! rows at write time (search.html, searchparameter.html).

use crate::error::{FhirError, FhirResult};
use crate::store::index::IndexRow;
use fhir_search_index::{extract, normalize_string, ExtractOptions, IndexValue, Registry};
use fhir_search_query::{ParamInfo, ParamLookup, ParamType};
use serde_json::Value;

/// The registry, extraction and string folding, configured with the server's time zone and
/// how deep search chains may nest.
#[derive(Debug, Clone, Copy)]
pub struct R4SearchParams {
    pub tz_offset_seconds: i32,
    pub max_chain_depth: usize,
}

impl Default for R4SearchParams {
    /// UTC, and chains as deep as the parser follows them.
    fn default() -> Self {
        R4SearchParams {
            tz_offset_seconds: 0,
            max_chain_depth: fhir_search_query::MAX_CHAIN_DEPTH,
        }
    }
}

impl ParamLookup for R4SearchParams {
    fn lookup(&self, resource_type: &str, code: &str) -> Option<ParamInfo> {
        let registry = Registry::get();
        let param = registry.lookup(resource_type, code)?;
        Some(ParamInfo {
            param_type: param.param_type,
            targets: param.targets.clone(),
            components: param
                .components
                .iter()
                .map(|c| {
                    let component_type = registry
                        .lookup(resource_type, &c.code)
                        .map(|p| p.param_type)
                        .unwrap_or(ParamType::Token);
                    (c.code.clone(), component_type)
                })
                .collect(),
        })
    }

    fn is_resource_type(&self, name: &str) -> bool {
        crate::validate::is_resource_type(name)
    }

    fn max_chain_depth(&self) -> usize {
        self.max_chain_depth
    }
}

/// The index code under which a token parameter's identifier types are kept for `:of-type`.
pub fn of_type_code(code: &str) -> String {
    format!("{code}:of-type")
}

/// The index code under which a reference parameter's logical identifiers are kept.
pub fn identifier_code(code: &str) -> String {
    format!("{code}:identifier")
}

impl R4SearchParams {
    /// Case- and accent-folded form of a string, as stored for string parameters.
    pub fn normalize(&self, text: &str) -> String {
        normalize_string(text)
    }

    /// The index rows of a resource about to be stored.
    pub fn index_rows(&self, resource: &Value) -> FhirResult<Vec<IndexRow>> {
        let entries = extract(
            resource,
            &ExtractOptions {
                tz_offset_seconds: self.tz_offset_seconds,
                ..ExtractOptions::default()
            },
        )
        .map_err(|e| FhirError::internal(format!("search indexing failed: {e}")))?;
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            push_rows(entry.code.to_string(), entry.value, &mut rows);
        }
        if let Some(resource_type) = resource["resourceType"].as_str() {
            super::patient_code::push_rows(resource_type, &mut rows);
        }
        Ok(rows)
    }
}

/// The index rows of one extracted value of parameter `code`.
fn push_rows(code: String, value: IndexValue, rows: &mut Vec<IndexRow>) {
    match value {
        IndexValue::String { normalized, exact } => rows.push(IndexRow::String {
            code,
            norm: normalized,
            exact,
        }),
        IndexValue::Token {
            system,
            code: value,
            text,
            of_type,
        } => {
            // `identifier:of-type` (search.html#token): a second row under a derived
            // code, holding the identifier type's system and `type-code|value`.
            if let (Some((type_system, type_code)), Some(v)) = (of_type, &value) {
                rows.push(IndexRow::Token {
                    code: of_type_code(&code),
                    system: Some(type_system),
                    value: Some(format!("{type_code}|{v}")),
                    text_norm: None,
                });
            }
            rows.push(IndexRow::Token {
                code,
                system,
                value,
                text_norm: text.map(|t| normalize_string(&t)),
            })
        }
        IndexValue::Date { low_us, high_us } => rows.push(IndexRow::Date {
            code,
            low_us,
            high_us,
        }),
        IndexValue::Number { value_f64, .. } => rows.push(IndexRow::Number {
            code,
            value: value_f64,
            system: None,
            unit: None,
        }),
        IndexValue::Quantity {
            value_f64,
            system,
            code: unit_code,
            unit,
            ..
        } => rows.push(IndexRow::Number {
            code,
            value: value_f64,
            system,
            unit: unit_code.or(unit),
        }),
        IndexValue::Reference {
            target_type,
            target_id,
            url,
        } => rows.push(IndexRow::Reference {
            code,
            target_type,
            target_id,
            url,
        }),
        IndexValue::Uri { value } => rows.push(IndexRow::Uri { code, value }),
        // `reference:identifier` (search.html#reference): a token row under a derived code.
        IndexValue::ReferenceIdentifier { system, value, .. } => rows.push(IndexRow::Token {
            code: identifier_code(&code),
            system,
            value: Some(value),
            text_norm: None,
        }),
        IndexValue::Composite { parts } => push_composite_rows(&code, parts, rows),
    }
}

/// A composite of two components, one a token (`code-value-quantity`, `relationship`, …), is
/// kept as rows of its other component under derived codes naming the token — once with its
/// system, once for "any system" — so `code-value-quantity=http://loinc.org|44261-6$gt10` is an
/// ordinary quantity search (search.html#composite). The token is the key: the first
/// component when it is a token, else the second. Other shapes are not indexed.
fn push_composite_rows(code: &str, parts: Vec<IndexValue>, rows: &mut Vec<IndexRow>) {
    let mut parts = parts.into_iter();
    let (Some(first), Some(second), None) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (key, other) = match (first, second) {
        (key @ IndexValue::Token { code: Some(_), .. }, other) => (key, other),
        (other, key @ IndexValue::Token { code: Some(_), .. }) => (key, other),
        _ => return,
    };
    let IndexValue::Token {
        system,
        code: Some(token_code),
        ..
    } = key
    else {
        return;
    };
    let mut component_rows = Vec::new();
    push_rows(String::new(), other, &mut component_rows);
    for derived in [
        composite_code(
            code,
            CompositeSystem::Is(system.as_deref().unwrap_or("")),
            &token_code,
        ),
        composite_code(code, CompositeSystem::Any, &token_code),
    ] {
        for row in &component_rows {
            let mut row = row.clone();
            set_code(&mut row, derived.clone());
            rows.push(row);
        }
    }
}

fn set_code(row: &mut IndexRow, derived: String) {
    match row {
        IndexRow::String { code, .. }
        | IndexRow::Token { code, .. }
        | IndexRow::Date { code, .. }
        | IndexRow::Number { code, .. }
        | IndexRow::Reference { code, .. }
        | IndexRow::Uri { code, .. } => *code = derived,
    }
}

/// The token system a composite's derived code names.
pub enum CompositeSystem<'a> {
    /// This system (`""` for a coding without one).
    Is(&'a str),
    /// Any system.
    Any,
}

/// The index code of a composite parameter's second component for one token.
pub fn composite_code(code: &str, system: CompositeSystem<'_>, token_code: &str) -> String {
    match system {
        CompositeSystem::Is(s) => format!("{code}${s}|{token_code}"),
        CompositeSystem::Any => format!("{code}$\u{1}|{token_code}"),
    }
}
