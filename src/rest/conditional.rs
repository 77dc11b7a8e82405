//! Conditional create, update and delete (http.html#ccreate, #cond-update, #cdelete): the
//! target is found by a search instead of an id. No match, one match and several matches each
//! have the outcome the spec gives; the search is strict, so a misspelt parameter is a 400
//! rather than a match on everything.
//!
//! The match and the write are two steps. A conditional create (and a conditional update that
//! creates) commits only if its search still matches nothing inside the commit's own
//! transaction (`CommitBatch::none_matching`; on PostgreSQL behind an advisory lock on the
//! criteria), else it searches again and finds what the other request made — so racing
//! clients get one resource on one node or several on one database. Within a process the
//! same criteria also wait for each other first (`keyed_lock.rs`), so they seldom race at all.

use super::keyed_lock::criteria_key;
use super::search::Match;
use super::write::{now_matches, WriteFailure};
use super::{DeleteOutcome, FhirService, UpdateOutcome, VersionedResource, WRITE_RETRIES};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use crate::store::NoneMatching;
use serde_json::Value;

/// The outcome of a conditional create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionalCreate {
    /// Nothing matched: the resource was created (201).
    Created(VersionedResource),
    /// Exactly one resource matched: nothing was created (200 with the existing resource).
    Existing(VersionedResource),
}

/// Most resources a conditional delete removes in one request.
pub const MAX_CONDITIONAL_DELETE: u32 = 100;

fn several(resource_type: &str, query: &str) -> FhirError {
    FhirError::new(
        ErrorKind::PreconditionFailed,
        "multiple-matches",
        format!("more than one {resource_type} matches {query:?}; the criteria must select one resource"),
    )
}

impl FhirService {
    /// `POST /{type}` with `If-None-Exist: query`.
    pub async fn create_if_none_exist(
        &self,
        access: &Access,
        resource_type: &str,
        body: Value,
        query: &str,
    ) -> FhirResult<ConditionalCreate> {
        let key = criteria_key(resource_type, query);
        let _serialised = self.conditional_locks.lock(key.clone()).await;
        for _ in 0..WRITE_RETRIES {
            let (matches, query_run) = self
                .matching_search(access, resource_type, query, 2)
                .await?;
            let search = NoneMatching {
                key: key.clone(),
                query: query_run,
            };
            match matches.as_slice() {
                [] => {
                    match self
                        .create_unless_matching(access, resource_type, body.clone(), Some(search))
                        .await
                    {
                        Ok(created) => return Ok(ConditionalCreate::Created(created)),
                        // Another node's conditional create won: search again.
                        Err(WriteFailure::NowMatches { .. }) => continue,
                        Err(WriteFailure::Refused(err)) => return Err(err),
                    }
                }
                [one] => {
                    return Ok(ConditionalCreate::Existing(
                        self.read(access, resource_type, &one.id).await?,
                    ))
                }
                _ => return Err(several(resource_type, query)),
            }
        }
        Err(now_matches(resource_type))
    }

    /// `PUT /{type}?query`: update the one match, or create when there is none.
    pub async fn update_where(
        &self,
        access: &Access,
        resource_type: &str,
        query: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> FhirResult<UpdateOutcome> {
        let key = criteria_key(resource_type, query);
        let _serialised = self.conditional_locks.lock(key.clone()).await;
        for _ in 0..WRITE_RETRIES {
            let (matches, query_run) = self
                .matching_search(access, resource_type, query, 2)
                .await?;
            let search = NoneMatching {
                key: key.clone(),
                query: query_run,
            };
            let body_id = body.get("id").and_then(Value::as_str).map(str::to_string);
            let outcome = match matches.as_slice() {
                // Nothing matches: create (with the body's id, or a new one), unless a
                // concurrent create under the same criteria won meanwhile.
                [] => match body_id {
                    Some(id) => {
                        self.update_unless_matching(
                            access,
                            resource_type,
                            &id,
                            body.clone(),
                            if_match,
                            Some(search),
                        )
                        .await
                    }
                    None => self
                        .create_unless_matching(access, resource_type, body.clone(), Some(search))
                        .await
                        .map(|resource| UpdateOutcome {
                            resource,
                            created: true,
                        }),
                },
                [Match { id, .. }] => {
                    if body_id.as_deref().is_some_and(|b| b != id) {
                        return Err(FhirError::invalid_at(
                            format!(
                                "the resource id {:?} differs from the matched {resource_type}/{id}",
                                body_id.unwrap_or_default()
                            ),
                            format!("{resource_type}.id"),
                        ));
                    }
                    let mut body = body.clone();
                    if let Value::Object(map) = &mut body {
                        map.insert("id".into(), Value::String(id.clone()));
                    }
                    return self.update(access, resource_type, id, body, if_match).await;
                }
                _ => return Err(several(resource_type, query)),
            };
            match outcome {
                Ok(outcome) => return Ok(outcome),
                Err(WriteFailure::NowMatches { .. }) => continue,
                Err(WriteFailure::Refused(err)) => return Err(err),
            }
        }
        Err(now_matches(resource_type))
    }

    /// `DELETE /{type}?query`: delete every match (up to [`MAX_CONDITIONAL_DELETE`]); returns how
    /// many were deleted. With `If-Match` the criteria must match exactly one resource, at that
    /// version (412 otherwise): a version condition names one version of one resource.
    pub async fn delete_where(
        &self,
        access: &Access,
        resource_type: &str,
        query: &str,
        if_match: Option<i64>,
    ) -> FhirResult<usize> {
        let matches = self
            .matching(access, resource_type, query, MAX_CONDITIONAL_DELETE + 1)
            .await?;
        if let Some(wanted) = if_match {
            return match matches.as_slice() {
                [one] => match self.delete(access, resource_type, &one.id, Some(wanted)).await? {
                    DeleteOutcome::Deleted { .. } => Ok(1),
                    _ => Ok(0),
                },
                _ => Err(FhirError::new(
                    ErrorKind::PreconditionFailed,
                    if matches.is_empty() { "not-found" } else { "multiple-matches" },
                    format!(
                        "If-Match W/\"{wanted}\" needs the criteria to match exactly one {resource_type}; they match {}",
                        if matches.is_empty() { "none" } else { "several" }
                    ),
                )),
            };
        }
        if matches.len() > MAX_CONDITIONAL_DELETE as usize {
            return Err(FhirError::new(
                ErrorKind::PreconditionFailed,
                "too-costly",
                format!("more than {MAX_CONDITIONAL_DELETE} {resource_type} resources match; narrow the criteria"),
            ));
        }
        let mut deleted = 0;
        for m in &matches {
            if let DeleteOutcome::Deleted { .. } =
                self.delete(access, resource_type, &m.id, None).await?
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// The conditional-create criteria of a POST to a type: the `If-None-Exist` header (or a Bundle
/// entry's `ifNoneExist`), or search terms in the URL (`POST /Patient?identifier=…`, as
/// fhirpy's `get_or_create()` sends them, is the same request and is honoured as such — never
/// silently a plain create). Both at once must agree. `_format` and `_pretty` shape the
/// response and are not criteria.
pub fn create_criteria<'a>(
    stated: Option<&str>,
    url_pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> FhirResult<Option<String>> {
    let terms: Vec<(&str, &str)> = url_pairs
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "_format" | "_pretty"))
        .collect();
    let parse = |text: &str| -> Vec<(String, String)> {
        form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    };
    let in_url = (!terms.is_empty()).then(|| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(terms)
            .finish()
    });
    match (stated, in_url) {
        (Some(stated), Some(in_url)) if parse(stated) == parse(&in_url) => {
            Ok(Some(stated.to_string()))
        }
        (Some(_), Some(_)) => Err(FhirError::bad_request(
            "a create carries both If-None-Exist and different search terms in the URL; \
             send the criteria once (If-None-Exist is the standard place)",
        )),
        (Some(stated), None) => Ok(Some(stated.to_string())),
        (None, in_url) => Ok(in_url),
    }
}
