//! batch and transaction (http.html#transaction): `POST /` with a Bundle. A transaction is
//! all or nothing — every write is prepared first (ids assigned, `urn:uuid:` and conditional
//! references resolved, resources validated and indexed, patches applied) and then committed in
//! ONE database transaction, in the order the spec gives (DELETE, POST, PUT and PATCH, then
//! GET). Every entry, reads included, is answered before the commit, so a transaction whose
//! answer is a failure has written nothing.
//! A batch runs each entry on its own, each with its own status or OperationOutcome. The
//! response entries follow the request entries' order.

mod entries;

use super::keyed_lock::criteria_key;
use super::search::SearchInput;
use super::write::{
    check_id, Change, CommitError, Intent, Patch, PatchBody, PreparedWrite, WriteContext,
    WriteFailure,
};
use super::{FhirService, VersionedResource};
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::{Access, Permission};
use crate::store::{NoneMatching, VersionWrite, WriteMethod};
use crate::validate::{check_resource, CheckedResource};
use bytes::Bytes;
use entries::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Most entries accepted in one Bundle.
pub const MAX_BUNDLE_ENTRIES: usize = 1000;

/// Most runs of a transaction whose conditional creates keep losing races to other nodes.
const TRANSACTION_RERUNS: u32 = 5;

impl FhirService {
    /// Process a batch or transaction Bundle and render the response Bundle.
    pub async fn process_bundle(&self, access: &Access, bundle: Value) -> FhirResult<Bytes> {
        let (kind, entries) = parse_entries(&bundle)?;
        let responses = if kind == "transaction" {
            self.transaction_settled(access, entries).await?
        } else {
            self.batch(access, entries).await
        };
        let mut out = json!({
            "resourceType": "Bundle",
            "type": format!("{kind}-response"),
        });
        // FHIR JSON has no empty arrays: an empty Bundle answers with no `entry`.
        if !responses.is_empty() {
            out["entry"] = Value::from(responses);
        }
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .map_err(FhirError::internal)
    }

    async fn get_entry(&self, access: &Access, e: &Entry) -> FhirResult<Value> {
        let t = target(&e.url)?;
        match (t.id, t.version, t.query) {
            (Some(id), Some(vid), _) => {
                let r = self.vread(access, &t.resource_type, &id, &vid).await?;
                Ok(
                    json!({"resource": serde_json::from_slice::<Value>(&r.body).map_err(FhirError::internal)?, "response": {"status": "200 OK", "etag": format!("W/\"{}\"", r.version_id)}}),
                )
            }
            (Some(id), None, _) => {
                let r = self.read(access, &t.resource_type, &id).await?;
                Ok(
                    json!({"resource": serde_json::from_slice::<Value>(&r.body).map_err(FhirError::internal)?, "response": {"status": "200 OK", "etag": format!("W/\"{}\"", r.version_id)}}),
                )
            }
            (None, _, query) => {
                let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
                let input = SearchInput {
                    resource_type: t.resource_type.clone(),
                    pairs,
                    strict: false,
                    patient_compartment: None,
                };
                let bundle = self.search(access, &input).await?;
                Ok(
                    json!({"resource": serde_json::from_slice::<Value>(&bundle).map_err(FhirError::internal)?, "response": {"status": "200 OK"}}),
                )
            }
        }
    }

    async fn batch(&self, access: &Access, entries: Vec<Entry>) -> Vec<Value> {
        let mut responses = Vec::with_capacity(entries.len());
        for e in entries {
            let result = self.batch_entry(access, &e).await;
            responses.push(match result {
                Ok(v) => v,
                Err(err) => error_entry(&at(e.index, err)),
            });
        }
        responses
    }

    async fn batch_entry(&self, access: &Access, e: &Entry) -> FhirResult<Value> {
        let t = target(&e.url)?;
        match e.verb {
            Verb::Get => self.get_entry(access, e).await,
            Verb::Post => {
                let body = e
                    .resource
                    .clone()
                    .ok_or_else(|| FhirError::bad_request("a POST entry needs a resource"))?;
                match &e.if_none_exist {
                    Some(cond) => match self
                        .create_if_none_exist(access, &t.resource_type, body, cond)
                        .await?
                    {
                        super::ConditionalCreate::Created(r) => Ok(written(201, &r)),
                        super::ConditionalCreate::Existing(r) => Ok(written(200, &r)),
                    },
                    None => Ok(written(
                        201,
                        &self.create(access, &t.resource_type, body).await?,
                    )),
                }
            }
            Verb::Put => {
                let body = e
                    .resource
                    .clone()
                    .ok_or_else(|| FhirError::bad_request("a PUT entry needs a resource"))?;
                let outcome = match (&t.id, &t.query) {
                    (Some(id), _) => {
                        self.update(access, &t.resource_type, id, body, e.if_match)
                            .await?
                    }
                    (None, Some(q)) => {
                        self.update_where(access, &t.resource_type, q, body, e.if_match)
                            .await?
                    }
                    (None, None) => {
                        return Err(FhirError::bad_request(
                            "a PUT entry needs Type/id or Type?criteria",
                        ))
                    }
                };
                Ok(written(
                    if outcome.created { 201 } else { 200 },
                    &outcome.resource,
                ))
            }
            Verb::Patch => {
                let id = patch_target(&t)?;
                let body = patch_body(e)?;
                let patched = self
                    .patch(access, &t.resource_type, &id, body, e.if_match)
                    .await?;
                Ok(written(200, &patched))
            }
            Verb::Delete => {
                match (&t.id, &t.query) {
                    (Some(id), _) => {
                        self.delete(access, &t.resource_type, id, e.if_match)
                            .await?;
                    }
                    (None, Some(q)) => {
                        self.delete_where(access, &t.resource_type, q, e.if_match)
                            .await?;
                    }
                    (None, None) => {
                        return Err(FhirError::bad_request(
                            "a DELETE entry needs Type/id or Type?criteria",
                        ))
                    }
                }
                Ok(json!({"response": {"status": "204 No Content"}}))
            }
        }
    }

    /// A transaction, run again from the start (it wrote nothing) when one of its conditional
    /// creates lost a race to a concurrent one: searching again finds what that one made.
    async fn transaction_settled(
        &self,
        access: &Access,
        entries: Vec<Entry>,
    ) -> FhirResult<Vec<Value>> {
        // The criteria of its conditional creates (ifNoneExist, a conditional PUT) wait for
        // other requests with the same ones in this process first (in one order, so two
        // transactions cannot deadlock), as single conditional creates do: only another node
        // can then win a race, and a re-run is rare and bounded.
        let mut keys: Vec<String> = entries
            .iter()
            .filter_map(|e| {
                let t = target(&e.url).ok()?;
                match (&e.if_none_exist, &t.query) {
                    (Some(cond), _) => Some(criteria_key(&t.resource_type, cond)),
                    (None, Some(query)) if e.verb == Verb::Put => {
                        Some(criteria_key(&t.resource_type, query))
                    }
                    _ => None,
                }
            })
            .collect();
        if keys.is_empty() {
            return self
                .transaction(access, entries)
                .await
                .map_err(WriteFailure::into_error);
        }
        keys.sort();
        keys.dedup();
        let mut _held = Vec::with_capacity(keys.len());
        for key in keys {
            _held.push(self.conditional_locks.lock(key).await);
        }
        for attempt in 0..TRANSACTION_RERUNS {
            crate::rest::backoff(attempt).await;
            match self.transaction(access, entries.clone()).await {
                Ok(responses) => return Ok(responses),
                Err(WriteFailure::NowMatches { .. }) => continue,
                Err(WriteFailure::Refused(err)) => return Err(err),
            }
        }
        Err(FhirError::new(
            ErrorKind::Conflict,
            "conflict",
            "the transaction's conditional creates kept racing other requests; nothing was written, try again",
        ))
    }

    async fn transaction(
        &self,
        access: &Access,
        mut entries: Vec<Entry>,
    ) -> Result<Vec<Value>, WriteFailure> {
        // 1. Identities: POSTs get their ids now (or the existing match of ifNoneExist);
        //    conditional PUT/DELETE URLs are resolved to one resource.
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut existing: HashMap<usize, VersionedResource> = HashMap::new();
        let mut new_ids: HashMap<usize, String> = HashMap::new();
        let mut targets: HashMap<usize, (String, Option<String>)> = HashMap::new();
        // Entries that create because their criteria matched nothing: the search that must
        // still match nothing when the transaction commits.
        let mut unless_matching: HashMap<usize, NoneMatching> = HashMap::new();
        for e in &entries {
            let t = target(&e.url).map_err(|err| at(e.index, err))?;
            match e.verb {
                Verb::Post => {
                    let mut id = None;
                    if let Some(cond) = &e.if_none_exist {
                        let (matches, search) = self
                            .matching_search(access, &t.resource_type, cond, 2)
                            .await
                            .map_err(|err| at(e.index, err))?;
                        match matches.as_slice() {
                            [] => {
                                let key = criteria_key(&t.resource_type, cond);
                                unless_matching
                                    .insert(e.index, NoneMatching { key, query: search });
                            }
                            [one] => {
                                existing.insert(
                                    e.index,
                                    self.read(access, &t.resource_type, &one.id)
                                        .await
                                        .map_err(|err| at(e.index, err))?,
                                );
                                id = Some(one.id.clone());
                            }
                            _ => {
                                return Err(WriteFailure::from(at(
                                    e.index,
                                    FhirError::new(
                                        ErrorKind::PreconditionFailed,
                                        "multiple-matches",
                                        format!("ifNoneExist {cond:?} matches several resources"),
                                    ),
                                )))
                            }
                        }
                    }
                    let id = match id {
                        Some(id) => id,
                        None => {
                            let id = self.ids.new_id();
                            new_ids.insert(e.index, id.clone());
                            id
                        }
                    };
                    if let Some(full) = &e.full_url {
                        resolved.insert(full.clone(), format!("{}/{id}", t.resource_type));
                    }
                    targets.insert(e.index, (t.resource_type, Some(id)));
                }
                Verb::Patch => {
                    let id = patch_target(&t).map_err(|err| at(e.index, err))?;
                    if let Some(full) = &e.full_url {
                        resolved.insert(full.clone(), format!("{}/{id}", t.resource_type));
                    }
                    targets.insert(e.index, (t.resource_type, Some(id)));
                }
                Verb::Put | Verb::Delete => {
                    let id = match (&t.id, &t.query) {
                        (Some(id), _) => Some(id.clone()),
                        (None, Some(q)) => {
                            let (matches, search) = self
                                .matching_search(access, &t.resource_type, q, 2)
                                .await
                                .map_err(|err| at(e.index, err))?;
                            match matches.as_slice() {
                                [] => {
                                    if e.verb == Verb::Put {
                                        let key = criteria_key(&t.resource_type, q);
                                        unless_matching
                                            .insert(e.index, NoneMatching { key, query: search });
                                    }
                                    None
                                }
                                [one] => Some(one.id.clone()),
                                _ => {
                                    return Err(WriteFailure::from(at(
                                        e.index,
                                        FhirError::new(
                                            ErrorKind::PreconditionFailed,
                                            "multiple-matches",
                                            format!("{} matches several resources", e.url),
                                        ),
                                    )))
                                }
                            }
                        }
                        (None, None) => {
                            return Err(WriteFailure::from(at(
                                e.index,
                                FhirError::bad_request("entry needs Type/id or Type?criteria"),
                            )))
                        }
                    };
                    let id = match (id, e.verb) {
                        (Some(id), _) => Some(id),
                        (None, Verb::Put) => {
                            let body_id = e
                                .resource
                                .as_ref()
                                .and_then(|r| r.get("id"))
                                .and_then(Value::as_str)
                                .map(str::to_string);
                            Some(body_id.unwrap_or_else(|| self.ids.new_id()))
                        }
                        (None, _) => None,
                    };
                    if let (Some(full), Some(id)) = (&e.full_url, &id) {
                        resolved.insert(full.clone(), format!("{}/{id}", t.resource_type));
                    }
                    targets.insert(e.index, (t.resource_type, id));
                }
                Verb::Get => {}
            }
        }
        // 2. References: Bundle fullUrls and conditional references become Type/id.
        for e in &entries {
            let mut conditional = Vec::new();
            if let Some(r) = &e.resource {
                conditional_references(r, &mut conditional);
            }
            for reference in conditional {
                if resolved.contains_key(&reference) {
                    continue;
                }
                let (rt, query) = reference.split_once('?').unwrap_or((&reference, ""));
                let matches = self
                    .matching(access, rt, query, 2)
                    .await
                    .map_err(|err| at(e.index, err))?;
                match matches.as_slice() {
                    [one] => {
                        resolved.insert(reference.clone(), format!("{rt}/{}", one.id));
                    }
                    _ => return Err(WriteFailure::from(at(e.index, FhirError::new(ErrorKind::PreconditionFailed, "not-found", format!("conditional reference {reference:?} must match exactly one resource, it matches {}", matches.len()))))),
                }
            }
        }
        for e in &mut entries {
            if let Some(r) = &mut e.resource {
                rewrite_references(r, &resolved);
            }
        }
        // Resources this transaction writes: references between them are checked through
        // the checks on each of them.
        let pending: HashSet<(String, String)> = entries
            .iter()
            .filter(|e| matches!(e.verb, Verb::Post | Verb::Put))
            .filter_map(|e| targets.get(&e.index))
            .filter_map(|(rt, id)| id.clone().map(|id| (rt.clone(), id)))
            .collect();
        // 3. Prepare every write in the spec's order, then commit them all at once.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (entries[i].verb.step(), i));
        let mut writes = Vec::new();
        let mut results: HashMap<usize, Value> = HashMap::new();
        let now = self.now_us();
        for &i in &order {
            let e = &entries[i];
            if e.verb == Verb::Get {
                continue;
            }
            if let Some(r) = existing.get(&e.index) {
                results.insert(e.index, written(200, r));
                continue;
            }
            let Some((rt, id)) = targets.get(&e.index).cloned() else {
                continue;
            };
            let prepared = self
                .prepare_entry(
                    access,
                    &pending,
                    e,
                    &rt,
                    id.as_deref(),
                    now,
                    new_ids.contains_key(&e.index),
                )
                .await
                .map_err(|err| at(e.index, err))?;
            match prepared {
                Some(mut write) => {
                    write.none_matching = unless_matching.remove(&e.index);
                    let status = match write.version.method {
                        WriteMethod::Delete => None,
                        _ if write.created => Some(201),
                        _ => Some(200),
                    };
                    let response = match status {
                        Some(status) => written(status, &write.resource()),
                        None => {
                            json!({"response": {"status": "204 No Content", "etag": format!("W/\"{}\"", write.version.version_id)}})
                        }
                    };
                    writes.push(write);
                    results.insert(e.index, response);
                }
                None => {
                    results.insert(e.index, json!({"response": {"status": "204 No Content"}}));
                }
            }
        }
        // 4. Reads, in the spec's place after the writes, are answered before anything is
        //    committed, so a failing read fails the whole transaction and writes nothing. A
        //    read of a resource this transaction writes is answered from the prepared version;
        //    a search is checked now (parameters, scopes) and run again after the commit so
        //    that it sees the writes.
        let mut searches = Vec::new();
        for e in &entries {
            if e.verb != Verb::Get {
                continue;
            }
            let t = target(&e.url).map_err(|err| at(e.index, err))?;
            let pending_write = t.id.as_ref().and_then(|id| {
                writes
                    .iter()
                    .rev()
                    .map(|w| &w.version)
                    .find(|w| w.resource_type == t.resource_type && &w.id == id)
            });
            let answer = match pending_write {
                Some(w) => self
                    .pending_read(access, w, t.version.as_deref())
                    .map_err(|err| at(e.index, err))?,
                None => None,
            };
            let answer = match answer {
                Some(answer) => answer,
                None => self
                    .get_entry(access, e)
                    .await
                    .map_err(|err| at(e.index, err))?,
            };
            if t.id.is_none() {
                searches.push(e.index);
            }
            results.insert(e.index, answer);
        }
        let cx = WriteContext::new(access, now, true);
        let mut attempt = 0;
        let committed = loop {
            let outcome = self.commit_prepared(&cx, &writes).await;
            match &outcome {
                // What lost the race is an update a hook derived (a Goal a score moves), not an
                // entry: the hooks run again over what is there now.
                Err(CommitError::Conflict {
                    derived_update: true,
                    ..
                }) if attempt + 1 < crate::rest::WRITE_RETRIES => {
                    attempt += 1;
                    crate::rest::backoff(attempt).await;
                }
                _ => break outcome,
            }
        };
        match committed {
            Ok(_) => {}
            Err(CommitError::Conflict {
                resource_type, id, ..
            }) => {
                return Err(FhirError::new(
                    ErrorKind::Conflict,
                    "conflict",
                    format!("{resource_type}/{id} changed while the transaction ran, or the transaction writes it twice; nothing was written"),
                ).into())
            }
            Err(CommitError::NowMatches { resource_type }) => {
                return Err(WriteFailure::NowMatches { resource_type })
            }
            Err(CommitError::Failed(err)) => return Err(err.into()),
        }
        // 5. Searches see the committed state. The writes are durable by now: a search that
        //    fails here (the database went away) is reported in its own entry, never as a
        //    failed transaction.
        for index in searches {
            let answer = match self.get_entry(access, &entries[index]).await {
                Ok(answer) => answer,
                Err(err) => error_entry(&at(index, err)),
            };
            results.insert(index, answer);
        }
        Ok((0..entries.len())
            .map(|i| results.remove(&i).unwrap_or(Value::Null))
            .collect())
    }

    /// A read entry of a resource this transaction writes, answered from the prepared version
    /// `w` (`None`: a vread of an older version, which the store answers). The caller's read
    /// access is checked on the new content, as a read after the commit would check it.
    fn pending_read(
        &self,
        access: &Access,
        w: &VersionWrite,
        version: Option<&str>,
    ) -> FhirResult<Option<Value>> {
        let (rt, id) = (w.resource_type.as_str(), w.id.as_str());
        if let Some(text) = version {
            match super::read::parse_version(text) {
                Some(v) if v == w.version_id => {}
                Some(v) if v < w.version_id => return Ok(None),
                _ => {
                    return Err(FhirError::not_found(format!(
                        "{rt}/{id} has no version {text:?}"
                    )))
                }
            }
        }
        let rule = self.permit(access, rt, Permission::Read)?;
        if let Some(rule) = &rule {
            if w.body.is_none() || self.check_new_content(rule, rt, id, &w.index).is_err() {
                return Err(super::guard::hidden(rt, id));
            }
        }
        let Some(body) = &w.body else {
            return Err(FhirError::new(
                ErrorKind::Gone,
                "deleted",
                format!(
                    "{rt}/{id} is deleted by this transaction (version {})",
                    w.version_id
                ),
            ));
        };
        let resource: Value = serde_json::from_slice(body).map_err(FhirError::internal)?;
        Ok(Some(
            json!({"resource": resource, "response": {"status": "200 OK", "etag": format!("W/\"{}\"", w.version_id)}}),
        ))
    }

    /// Prepare the write one transaction entry makes through the write pipeline (`None`: a
    /// delete of nothing).
    #[allow(clippy::too_many_arguments)]
    async fn prepare_entry(
        &self,
        access: &Access,
        pending: &HashSet<(String, String)>,
        e: &Entry,
        rt: &str,
        id: Option<&str>,
        now: i64,
        fresh_id: bool,
    ) -> FhirResult<Option<PreparedWrite>> {
        let Some(id) = id else {
            // A conditional delete that matched nothing: a version condition cannot hold.
            if let Some(wanted) = e.if_match {
                return Err(FhirError::new(
                    ErrorKind::PreconditionFailed,
                    "not-found",
                    format!("ifMatch W/\"{wanted}\": {} matches no {rt}", e.url),
                ));
            }
            return Ok(None);
        };
        let method = match e.verb {
            Verb::Delete => WriteMethod::Delete,
            Verb::Post => WriteMethod::Create,
            Verb::Put => WriteMethod::Update,
            Verb::Patch => WriteMethod::Patch,
            Verb::Get => return Ok(None),
        };
        // The permission is decided before the body is checked.
        let rule = self.authorize(access, rt, id, method, fresh_id).await?;
        let change = match method {
            WriteMethod::Create => Change::Create(Arc::new(entry_content(e, rt, id)?)),
            WriteMethod::Delete => Change::Delete,
            WriteMethod::Patch => Change::Patch(Arc::new(Patch::read(patch_body(e)?)?)),
            _ => Change::Update(Arc::new(entry_content(e, rt, id)?)),
        };
        let intent = Intent::new(rt, change, e.if_match).with_id(id.to_string(), fresh_id);
        self.prepare(access, &intent, rule.as_ref(), pending, now)
            .await
    }
}

/// The one resource a PATCH entry names (`Type/id`: a conditional patch is not offered).
fn patch_target(t: &Target) -> FhirResult<String> {
    match (&t.id, &t.query, &t.version) {
        (Some(id), None, None) => Ok(id.clone()),
        _ => Err(FhirError::bad_request(
            "a PATCH entry's url must be Type/id (conditional patch is not supported)",
        )),
    }
}

/// A PATCH entry's patch: its resource, a Parameters (FHIRPath Patch) or a Binary holding a
/// JSON Patch (http.html#transaction).
fn patch_body(e: &Entry) -> FhirResult<PatchBody> {
    e.resource.clone().map(PatchBody::Resource).ok_or_else(|| {
        FhirError::bad_request(
            "a PATCH entry needs a resource: a Parameters (FHIRPath Patch) or a Binary with \
             contentType application/json-patch+json",
        )
    })
}

/// The checked content of a POST or PUT entry, with the id the transaction gave it (a PUT's
/// body id must agree with its URL).
fn entry_content(e: &Entry, rt: &str, id: &str) -> FhirResult<CheckedResource> {
    check_id(rt, id)?;
    let mut body = e
        .resource
        .clone()
        .ok_or_else(|| FhirError::bad_request("the entry needs a resource"))?;
    if let Value::Object(map) = &mut body {
        if e.verb == Verb::Put {
            if let Some(Value::String(body_id)) = map.get("id") {
                if body_id != id {
                    return Err(FhirError::invalid_at(
                        format!(
                            "the resource id {body_id:?} does not match the entry URL id {id:?}"
                        ),
                        format!("{rt}.id"),
                    ));
                }
            }
        }
        map.insert("id".into(), Value::String(id.to_string()));
    }
    check_resource(body, rt)
}
