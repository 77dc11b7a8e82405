//! search (search.html, http.html#search): type-level and Patient-compartment search over the
//! index tables, answered with a `searchset` Bundle built from the stored bytes. Parameters the
//! server does not know are reported in an outcome entry (or refused under
//! `Prefer: handling=strict`); malformed values are always a 400 naming the parameter.
//! Paging is by keyset (`_page`), so pages stay correct while data changes.

mod compartment;
pub mod params;
pub mod patient_code;
#[cfg(test)]
mod range_agreement;
mod ranges;
mod subset;
mod translate;

pub use compartment::{
    in_patient_compartment, patient_compartment_clause, patient_compartment_params,
    patient_compartment_types, patients_compartment_clause,
};

use super::bundle_json::BundleJson;
use super::{check_known_type, FhirService};
use crate::error::{operation_outcome, ErrorKind, FhirError, FhirResult, Issue, Severity};
use crate::policy::{Access, Permission};
use crate::store::search::{
    Clause, Cursor, IncludeDirection, IncludeQuery, Order, SearchQuery, SortKey, SortKind,
    SortSource,
};
use crate::store::IncludedRow;
use bytes::Bytes;
use fhir_search_query::{parse, self_link_params, Include, SearchRequest, Summary, TotalMode};
use std::collections::{BTreeMap, HashSet};
use translate::{clause, Context};

/// A search to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchInput {
    pub resource_type: String,
    /// Decoded query (and form body) pairs, in order.
    pub pairs: Vec<(String, String)>,
    /// `Prefer: handling=strict`
    pub strict: bool,
    /// `GET /Patient/{id}/{type}`: confine to that patient's compartment.
    pub patient_compartment: Option<String>,
}

fn parse_errors(errors: Vec<fhir_search_query::SearchError>) -> FhirError {
    FhirError::with_issues(
        ErrorKind::BadRequest,
        errors
            .into_iter()
            .map(|e| {
                Issue::error(
                    "invalid",
                    format!("search parameter {}: {}", e.param, e.message),
                )
                .at(e.param)
            })
            .collect(),
    )
}

fn encode(text: &str) -> String {
    const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b':')
        .remove(b'|')
        .remove(b',')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(text, QUERY).to_string()
}

fn cursor_text(cursor: &Cursor) -> String {
    if cursor.sort_values.is_empty() {
        return format!("{}.{}", cursor.last_updated_us, cursor.id);
    }
    // Under `_sort` keys: the last row's sort values and id, as hex-encoded JSON.
    let json = serde_json::to_vec(&(&cursor.sort_values, &cursor.id)).unwrap_or_default();
    let mut text = String::with_capacity(1 + json.len() * 2);
    text.push('k');
    for byte in json {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn parse_sorted_cursor(hex: &str) -> Option<Cursor> {
    if !hex.len().is_multiple_of(2) || hex.len() > 16_384 {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let (sort_values, id): (Vec<Option<String>>, String) = serde_json::from_slice(&bytes).ok()?;
    if sort_values.is_empty() {
        return None;
    }
    Some(Cursor {
        last_updated_us: 0,
        id,
        sort_values,
    })
}

fn parse_cursor(text: &str) -> FhirResult<Cursor> {
    let invalid = || {
        FhirError::invalid_at(
            format!("_page {text:?} is not a page of this search"),
            "_page",
        )
    };
    if let Some(hex) = text.strip_prefix('k') {
        return parse_sorted_cursor(hex).ok_or_else(invalid);
    }
    let (us, id) = text.split_once('.').ok_or_else(invalid)?;
    Ok(Cursor {
        last_updated_us: us.parse().map_err(|_| invalid())?,
        id: id.to_string(),
        sort_values: Vec::new(),
    })
}

/// Whether a search may find, filter by or include AuditEvents: a search of them, an
/// `_include`/`_revinclude` (with `:iterate`) naming them or every type (`*`), or a `_has`
/// through them.
fn may_touch_audit_events(input: &SearchInput) -> bool {
    input.resource_type == "AuditEvent"
        || input.pairs.iter().any(|(k, v)| {
            k.contains("AuditEvent")
                || (k.starts_with("_include") || k.starts_with("_revinclude"))
                    && (v.contains("AuditEvent") || v.starts_with('*'))
        })
}

/// Refuse result parameters this server does not apply yet (rather than silently ignoring them).
fn refuse_unimplemented(request: &SearchRequest) -> FhirResult<()> {
    if request.contained.is_some() || request.contained_type.is_some() {
        return Err(FhirError::new(
            ErrorKind::BadRequest,
            "not-supported",
            "_contained not supported yet",
        ));
    }
    Ok(())
}

fn order_of(request: &SearchRequest) -> FhirResult<Order> {
    match request.sort.as_slice() {
        [] => Ok(Order::LastUpdatedDesc),
        [key] if key.code == "_lastUpdated" && key.descending => Ok(Order::LastUpdatedDesc),
        [key] if key.code == "_lastUpdated" => Ok(Order::LastUpdatedAsc),
        [key] if key.code == "_id" && key.descending => Ok(Order::IdDesc),
        [key] if key.code == "_id" => Ok(Order::IdAsc),
        keys => keys
            .iter()
            .map(store_sort_key)
            .collect::<FhirResult<Vec<_>>>()
            .map(Order::Keys),
    }
}

/// A `_sort` key as the store sorts it: by the resource's lowest (ascending) or highest
/// (descending) indexed value of the parameter; resources without one come last.
fn store_sort_key(key: &fhir_search_query::SortKey) -> FhirResult<SortKey> {
    use fhir_search_query::ParamType;
    let index = |table, column, column_desc, kind| SortSource::Index {
        table,
        code: key.code.clone(),
        column,
        column_desc,
        kind,
    };
    let source = match (key.code.as_str(), key.param_type) {
        ("_lastUpdated", _) => SortSource::LastUpdated,
        ("_id", _) => SortSource::Id,
        (_, ParamType::String) => index("idx_string", "norm", "norm", SortKind::Text),
        (_, ParamType::Token) => index("idx_token", "value", "value", SortKind::Text),
        (_, ParamType::Date) => index("idx_date", "low_us", "high_us", SortKind::Int),
        (_, ParamType::Number | ParamType::Quantity) => {
            index("idx_number", "value", "value", SortKind::Float)
        }
        (_, ParamType::Reference) => index("idx_reference", "url", "url", SortKind::Text),
        (_, ParamType::Uri) => index("idx_uri", "value", "value", SortKind::Text),
        (code, _) => {
            return Err(FhirError::invalid_at(
                format!("cannot sort by {code}"),
                "_sort",
            ))
        }
    };
    Ok(SortKey {
        source,
        descending: key.descending,
    })
}

/// Parse a search on `resource_type` and translate its filters into store clauses for the FHIR
/// base `base_url`: what a search becomes before any query runs. [`FhirService`] compiles every
/// search and conditional match with it; public for the fuzz target in `fuzz/`.
pub fn compile_search(
    search_params: &params::R4SearchParams,
    base_url: &str,
    resource_type: &str,
    pairs: &[(String, String)],
    strict: bool,
) -> FhirResult<(SearchRequest, Vec<Clause>)> {
    let (request, mut clauses) =
        translate_search(search_params, base_url, resource_type, pairs, strict)?;
    patient_code::rewrite(resource_type, &mut clauses);
    Ok((request, clauses))
}

/// [`compile_search`] without the patient-and-code rewrite: the clauses as the filters say them.
fn translate_search(
    search_params: &params::R4SearchParams,
    base_url: &str,
    resource_type: &str,
    pairs: &[(String, String)],
    strict: bool,
) -> FhirResult<(SearchRequest, Vec<Clause>)> {
    check_known_type(resource_type)?;
    let pairs = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let request = parse(pairs, resource_type, search_params, strict).map_err(parse_errors)?;
    let normalize = |t: &str| search_params.normalize(t);
    let ctx = Context {
        normalize: &normalize,
        tz_offset_seconds: search_params.tz_offset_seconds,
        base_url,
    };
    let clauses = request
        .filters
        .iter()
        .map(|f| clause(f, &ctx))
        .collect::<FhirResult<Vec<_>>>()?;
    Ok((request, clauses))
}

impl FhirService {
    /// Parse a search on `resource_type` and translate its filters into store clauses — the
    /// one path shared by search and by the matching of conditional interactions.
    pub(crate) fn compile(
        &self,
        resource_type: &str,
        pairs: &[(String, String)],
        strict: bool,
    ) -> FhirResult<(SearchRequest, Vec<Clause>)> {
        if pairs.len() > self.max_query_params {
            return Err(FhirError::new(
                ErrorKind::BadRequest,
                "too-costly",
                format!(
                    "a search may have at most {} parameters; this one has {}",
                    self.max_query_params,
                    pairs.len()
                ),
            ));
        }
        compile_search(
            &self.search_params,
            &self.base_url,
            resource_type,
            pairs,
            strict,
        )
    }

    /// Run a search and render its `searchset` Bundle.
    pub async fn search(&self, access: &Access, input: &SearchInput) -> FhirResult<Bytes> {
        let (mut request, mut clauses) =
            self.compile(&input.resource_type, &input.pairs, input.strict)?;
        let rule = self.permit(access, &input.resource_type, Permission::Search)?;
        if let Some(rule) = &rule {
            clauses.extend(self.rule_clauses(rule, &input.resource_type)?);
        }
        if may_touch_audit_events(input) {
            self.audit_caught_up().await;
        }
        self.confine_chains(access, &mut clauses)?;
        refuse_unimplemented(&request)?;
        let order = order_of(&request)?;
        let after = request.cursor.as_deref().map(parse_cursor).transpose()?;
        let wanted_values = match &order {
            Order::Keys(keys) => keys.len(),
            _ => 0,
        };
        if after
            .as_ref()
            .is_some_and(|c| c.sort_values.len() != wanted_values)
        {
            return Err(FhirError::invalid_at(
                "_page is not a page of this search (its sort order differs)",
                "_page",
            ));
        }
        let count = request
            .count
            .unwrap_or(self.default_page_size)
            .min(self.max_page_size);
        request.count = Some(count);

        if let Some(patient) = &input.patient_compartment {
            let confine =
                patient_compartment_clause(&input.resource_type, patient).ok_or_else(|| {
                    FhirError::not_found(format!(
                        "{} is not part of the Patient compartment",
                        input.resource_type
                    ))
                })?;
            clauses.push(confine);
        }
        let query = SearchQuery {
            resource_type: input.resource_type.clone(),
            clauses,
            order,
            after,
            limit: count + 1,
        };

        let summary_count = request.summary == Some(Summary::Count);
        // `_count=0` asks for no entries, only how many there are (search.html#count).
        let total = if summary_count
            || count == 0
            || matches!(
                request.total,
                Some(TotalMode::Accurate | TotalMode::Estimate)
            ) {
            Some(self.store.count(&query).await?)
        } else {
            None
        };
        let mut rows = if summary_count || count == 0 {
            Vec::new()
        } else {
            self.store.search(&query).await?
        };
        let has_more = rows.len() > count as usize;
        rows.truncate(count as usize);
        // When the whole result is on the first page its size is the total, at no cost: give
        // it (clients' paging UIs rely on `total`) unless `_total=none` declines it.
        let total = match total {
            Some(total) => Some(total),
            None if query.after.is_none()
                && !has_more
                && request.total != Some(TotalMode::None) =>
            {
                Some(rows.len() as i64)
            }
            None => None,
        };
        let matches: Vec<(String, String)> = rows
            .iter()
            .map(|r| (input.resource_type.clone(), r.id.clone()))
            .collect();
        let included = self.resolve_includes(access, &request, matches).await?;
        let subsetting = match (&request.elements, request.summary) {
            (Some(names), _) => Some(subset::Subset::Elements(names.clone())),
            (None, Some(Summary::Data)) => Some(subset::Subset::NoText),
            (None, Some(Summary::Text)) => Some(subset::Subset::TextOnly),
            (None, Some(Summary::True)) => Some(subset::Subset::Summary),
            _ => None,
        };

        let path = match &input.patient_compartment {
            Some(patient) => format!(
                "{}/Patient/{}/{}",
                self.base_url, patient, input.resource_type
            ),
            None => format!("{}/{}", self.base_url, input.resource_type),
        };
        let params = self_link_params(&request);
        let link = |page: Option<&Cursor>| {
            let mut parts: Vec<String> = params
                .iter()
                .filter(|(k, _)| k != "_page")
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            if let Some(c) = page {
                parts.push(format!("_page={}", encode(&cursor_text(c))));
            }
            format!("{path}?{}", parts.join("&"))
        };

        let capacity = rows
            .iter()
            .map(|r| r.version.body.as_ref().map_or(0, |b| b.len()) + 128)
            .sum::<usize>();
        let mut bundle = BundleJson::new("searchset", capacity);
        if let Some(total) = total {
            bundle.field("total", total.to_string().as_bytes());
        }
        bundle.link("self", &link(query.after.as_ref()));
        if let (true, Some(last)) = (has_more, rows.last()) {
            let next = Cursor {
                last_updated_us: last.version.last_updated_us,
                id: last.id.clone(),
                sort_values: last.sort_values.clone(),
            };
            bundle.link("next", &link(Some(&next)));
        }
        for row in &rows {
            let Some(body) = &row.version.body else {
                continue;
            };
            let full_url = format!("{}/{}/{}", self.base_url, input.resource_type, row.id);
            match &subsetting {
                Some(which) => {
                    bundle.search_entry(&full_url, &subset::subset(body, which)?, "match")
                }
                None => bundle.search_entry(&full_url, body, "match"),
            }
        }
        for row in &included {
            let Some(body) = &row.version.body else {
                continue;
            };
            let full_url = format!("{}/{}/{}", self.base_url, row.resource_type, row.id);
            bundle.search_entry(&full_url, body, "include");
        }
        if !request.unknown.is_empty() {
            let issues: Vec<Issue> = request
                .unknown
                .iter()
                .map(|ignored| Issue {
                    severity: Severity::Warning,
                    code: "not-supported",
                    diagnostics: format!(
                        "search parameter {}={} was not applied: {}",
                        ignored.name,
                        ignored.value,
                        ignored.reason.as_str()
                    ),
                    expression: vec![ignored.name.clone()],
                })
                .collect();
            let outcome =
                serde_json::to_vec(&operation_outcome(&issues)).map_err(FhirError::internal)?;
            let out = bundle.entry();
            out.extend_from_slice(br#"{"resource":"#);
            out.extend_from_slice(&outcome);
            out.extend_from_slice(br#","search":{"mode":"outcome"}}"#);
        }
        if self.audits(&input.resource_type) {
            // Whose data the answer holds: the patients of every resource it returns.
            let returned = rows
                .iter()
                .map(|r| (input.resource_type.as_str(), r.id.as_str(), &r.version))
                .chain(
                    included
                        .iter()
                        .map(|r| (r.resource_type.as_str(), r.id.as_str(), &r.version)),
                )
                .map(|(rt, id, v)| (rt, id, v.version_id, v.body.as_deref()));
            let mut patients = self.patients_returned(returned)?;
            if patients.is_empty() {
                // Nothing returned (or only a count): the search still asked about a patient.
                let confined_to = rule.as_ref().and_then(|r| r.patients.as_deref());
                let named = super::audit::patients_searched(
                    &input.resource_type,
                    &input.pairs,
                    input.patient_compartment.as_deref(),
                    confined_to,
                );
                patients = self.reachable_patients(named, confined_to).await?;
            }
            if !patients.is_empty() {
                // Which parameters were searched, not their values nor the paging cursor:
                // those can name other patients, and the event is in this patient's record.
                let names: Vec<&str> = params
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .filter(|k| *k != "_page")
                    .collect();
                let query = format!("{}?{}", input.resource_type, names.join("&"));
                let nothing = super::audit::Named::Nothing;
                self.audit_read_of(access, "search-type", &patients, nothing, Some(&query))
                    .await;
            }
        }
        Ok(bundle.finish())
    }
}

/// A resource matched by a conditional interaction's search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub id: String,
    pub version_id: i64,
}

impl FhirService {
    /// The resources of `resource_type` that the search `query` (a raw query string, as in
    /// `If-None-Exist` or a conditional URL) matches, at most `limit` of them. The search is
    /// strict — an unknown parameter is a 400, never "match everything" — and takes filters only.
    pub async fn matching(
        &self,
        access: &Access,
        resource_type: &str,
        query: &str,
        limit: u32,
    ) -> FhirResult<Vec<Match>> {
        Ok(self
            .matching_search(access, resource_type, query, limit)
            .await?
            .0)
    }

    /// [`FhirService::matching`], with the search it ran — for a conditional create, which
    /// commits only if that search still matches nothing then (`store::NoneMatching`).
    pub(crate) async fn matching_search(
        &self,
        access: &Access,
        resource_type: &str,
        query: &str,
        limit: u32,
    ) -> FhirResult<(Vec<Match>, SearchQuery)> {
        let query = query.trim_start_matches('?');
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let (request, mut clauses) = self.compile(resource_type, &pairs, true)?;
        if request.filters.is_empty() {
            return Err(FhirError::bad_request(
                "a conditional interaction needs search criteria (e.g. identifier=system|value)",
            ));
        }
        // The match sees only what the caller may search, so it cannot reveal anything else.
        if let Some(rule) = self.permit(access, resource_type, Permission::Search)? {
            clauses.extend(self.rule_clauses(&rule, resource_type)?);
        }
        self.confine_chains(access, &mut clauses)?;
        let query = SearchQuery {
            resource_type: resource_type.to_string(),
            clauses,
            order: Order::IdAsc,
            after: None,
            limit,
        };
        let rows = self.store.search(&query).await?;
        let matches = rows
            .into_iter()
            .map(|r| Match {
                id: r.id,
                version_id: r.version.version_id,
            })
            .collect();
        Ok((matches, query))
    }
}

impl FhirService {
    /// The current versions of `resource_type` that the filters `pairs` match, as the caller
    /// may search them, in the `_sort` order of the pairs (strict: unknown parameters are
    /// refused), at most `limit`. For operations that search and then pick (`$lastn`).
    pub(crate) async fn rows_matching(
        &self,
        access: &Access,
        resource_type: &str,
        pairs: &[(String, String)],
        limit: u32,
    ) -> FhirResult<Vec<crate::store::SearchRow>> {
        let (request, mut clauses) = self.compile(resource_type, pairs, true)?;
        if let Some(rule) = self.permit(access, resource_type, Permission::Search)? {
            clauses.extend(self.rule_clauses(&rule, resource_type)?);
        }
        self.confine_chains(access, &mut clauses)?;
        refuse_unimplemented(&request)?;
        let query = SearchQuery {
            resource_type: resource_type.to_string(),
            clauses,
            order: order_of(&request)?,
            after: None,
            limit,
        };
        Ok(self.store.search(&query).await?)
    }
}

/// Most rounds of `:iterate` followed (each round follows references from what the previous one
/// added; real graphs settle in a few).
const MAX_INCLUDE_ROUNDS: usize = 8;

/// The 400 for a page whose includes would add more than `limit` resources.
fn too_many_included(limit: usize) -> FhirError {
    FhirError::new(
        ErrorKind::BadRequest,
        "too-costly",
        format!(
            "_include and _revinclude would add more than {limit} resources to this page; \
             ask for fewer (a smaller _count, fewer or narrower includes, no :iterate)"
        ),
    )
}

impl FhirService {
    /// `_include` and `_revinclude` (search.html#include): one query per include parameter and
    /// resource type per round — never one per resource — repeated for `:iterate` until nothing
    /// new is added. Resources already in the result are not repeated. At most
    /// `max_include_results` are added: more is a 400, never a silently shortened page — each
    /// query fetches at most what could still fit plus what it may repeat, and one that fills
    /// that up counts as too many.
    async fn resolve_includes(
        &self,
        access: &Access,
        request: &SearchRequest,
        matches: Vec<(String, String)>,
    ) -> FhirResult<Vec<IncludedRow>> {
        if request.include.is_empty() && request.revinclude.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen: HashSet<(String, String)> = matches.iter().cloned().collect();
        let mut frontier = matches;
        let mut included = Vec::new();
        for round in 0..MAX_INCLUDE_ROUNDS {
            if frontier.is_empty() {
                break;
            }
            let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (rt, id) in &frontier {
                by_type.entry(rt.clone()).or_default().push(id.clone());
            }
            let mut steps = Vec::new();
            let applies = |inc: &Include| round == 0 || inc.iterate;
            for inc in request.include.iter().filter(|i| applies(i)) {
                for (rt, ids) in &by_type {
                    if inc.source_type.as_ref().is_none_or(|s| s == rt) {
                        steps.push(IncludeQuery {
                            direction: IncludeDirection::Forward,
                            source_type: Some(rt.clone()),
                            code: inc.param.clone(),
                            target_type: inc.target_type.clone(),
                            ids: ids.clone(),
                            limit: None,
                        });
                    }
                }
            }
            for inc in request.revinclude.iter().filter(|i| applies(i)) {
                for (rt, ids) in &by_type {
                    if inc.target_type.as_ref().is_none_or(|t| t == rt) {
                        steps.push(IncludeQuery {
                            direction: IncludeDirection::Reverse,
                            source_type: inc.source_type.clone(),
                            code: inc.param.clone(),
                            target_type: Some(rt.clone()),
                            ids: ids.clone(),
                            limit: None,
                        });
                    }
                }
            }
            let mut next = Vec::new();
            for step in &mut steps {
                // Rows already in the result may come back too; invisible ones are dropped.
                // Only an unrestricted caller's rows are capped before that filter: counting
                // rows a restricted caller cannot see would tell it how many exist (404, never
                // a hint); its visible rows are counted below.
                let unrestricted = matches!(access, Access::Unrestricted);
                let room = self.max_include_results - included.len();
                let fetch = room + seen.len() + 1;
                if unrestricted {
                    step.limit = Some(u32::try_from(fetch).unwrap_or(u32::MAX));
                }
                let mut rows = self.store.include(step).await?;
                if unrestricted && rows.len() >= fetch {
                    return Err(too_many_included(self.max_include_results));
                }
                // Only what the caller may read is included, or followed by `:iterate`.
                let keys: Vec<(String, String)> = rows
                    .iter()
                    .map(|r| (r.resource_type.clone(), r.id.clone()))
                    .collect();
                if let Some(visible) = self.visible_keys(access, Permission::Read, &keys).await? {
                    rows.retain(|r| visible.contains(&(r.resource_type.clone(), r.id.clone())));
                }
                for row in rows {
                    let key = (row.resource_type.clone(), row.id.clone());
                    if seen.insert(key.clone()) {
                        next.push(key);
                        included.push(row);
                    }
                }
                if included.len() > self.max_include_results {
                    return Err(too_many_included(self.max_include_results));
                }
            }
            frontier = next;
        }
        Ok(included)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            last_updated_us: 1_700_000_000_000_000,
            id: "a.b-c".into(),
            sort_values: Vec::new(),
        };
        let sorted = Cursor {
            last_updated_us: 0,
            id: "p-1".into(),
            sort_values: vec![Some("smith".into()), None, Some("1.5".into())],
        };
        assert_eq!(parse_cursor(&cursor_text(&sorted)).unwrap(), sorted);
        assert!(parse_cursor("kzz").is_err());
        assert!(
            parse_cursor("k5b5d").is_err(),
            "an empty key list is not a sorted cursor"
        );
        assert_eq!(parse_cursor(&cursor_text(&c)).unwrap(), c);
        assert!(parse_cursor("nonsense").is_err());
        assert!(parse_cursor("x.y").is_err());
    }
}
