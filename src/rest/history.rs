//! history at instance, type and system level (http.html#history): a Bundle of type
//! `history`, newest first, each entry with its `request` and `response`; deletions appear as
//! entries without a resource. `_since` and `_count` are honoured; paging is by keyset on the
//! version sequence (`_page`), so pages stay correct while new versions are written.
//! Stored resource bytes are spliced into the Bundle as they are, never re-parsed.

use super::bundle_json::{push_json_string, BundleJson};
use super::instant::parse_instant;
use super::{check_known_type, FhirService};
use crate::error::{FhirError, FhirResult};
use crate::policy::{Access, Permission};
use crate::store::search::TypeReach;
use crate::store::{HistoryQuery, HistoryRow, HistoryScope, WriteMethod};
use bytes::Bytes;
use fhir_primitives::format_instant;

/// The query parameters of a history interaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryParams {
    pub since: Option<String>,
    pub count: Option<String>,
    pub page: Option<String>,
}

impl HistoryParams {
    /// Collect the history parameters from decoded query pairs; others are ignored
    /// (`_format` is handled by the HTTP layer).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut params = HistoryParams::default();
        for (key, value) in pairs {
            match key {
                "_since" => params.since = Some(value.to_string()),
                "_count" => params.count = Some(value.to_string()),
                "_page" => params.page = Some(value.to_string()),
                _ => {}
            }
        }
        params
    }
}

enum ScopeKind {
    Instance,
    Collection,
}

/// A rendered history Bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub body: Bytes,
}

impl FhirService {
    /// One page of history for `scope`.
    pub async fn history(
        &self,
        access: &Access,
        scope: HistoryScope,
        params: &HistoryParams,
    ) -> FhirResult<HistoryPage> {
        let scope_kind = match &scope {
            HistoryScope::Instance(..) => ScopeKind::Instance,
            _ => ScopeKind::Collection,
        };
        if let (HistoryScope::System, Access::Scoped(scoped)) = (&scope, access) {
            if !scoped
                .scopes
                .resources
                .iter()
                .any(|r| r.allows(Permission::Search))
            {
                return Err(FhirError::forbidden(
                    "the access token has no scope allowing search, which system history needs",
                ));
            }
        }
        let path = match &scope {
            HistoryScope::System => "_history".to_string(),
            HistoryScope::Type(rt) => {
                check_known_type(rt)?;
                self.permit(access, rt, Permission::Search)?;
                format!("{rt}/_history")
            }
            HistoryScope::Instance(rt, id) => {
                check_known_type(rt)?;
                if let Some(rule) = self.permit(access, rt, Permission::Read)? {
                    self.check_visible(&rule, rt, id).await?;
                }
                if self.store.current(rt, id).await?.is_none() {
                    return Err(FhirError::not_found(format!("{rt}/{id} is not known")));
                }
                format!("{rt}/{id}/_history")
            }
        };
        if match &scope {
            HistoryScope::System => true,
            HistoryScope::Type(rt) | HistoryScope::Instance(rt, _) => rt == "AuditEvent",
        } {
            self.audit_caught_up().await;
        }
        let since_us = params
            .since
            .as_deref()
            .map(|s| parse_instant(s, "_since"))
            .transpose()?;
        let count = match params.count.as_deref() {
            None => self.default_page_size,
            Some(text) => text
                .parse::<u32>()
                .map_err(|_| {
                    FhirError::bad_request(format!("_count must be a whole number, got {text:?}"))
                })?
                .min(self.max_page_size),
        };
        let permission = match scope_kind {
            ScopeKind::Instance => Permission::Read,
            ScopeKind::Collection => Permission::Search,
        };
        let within = self.history_reach(access, &scope)?;
        let cursor = match params.page.as_deref() {
            None => None,
            Some(text) => Some(
                self.history_cursor(access, permission, &scope, text)
                    .await?,
            ),
        };
        // Confined callers get the reach in the query, so a page is filtered before it is cut;
        // a version whose own content was another patient's is then dropped here, and the page
        // refilled, so no page is short while more follows.
        let mut rows = Vec::new();
        let mut has_more = false;
        let mut before_seq = cursor;
        // `_count=0` asks for no entries: no store read at all.
        if count > 0 {
            loop {
                let batch = self
                    .store
                    .history(&HistoryQuery {
                        scope: scope.clone(),
                        since_us,
                        before_seq,
                        limit: count + 1,
                        within: within.clone(),
                    })
                    .await?;
                let exhausted = batch.len() <= count as usize;
                for row in batch {
                    before_seq = Some(row.seq);
                    let shown = matches!(access, Access::Unrestricted)
                        || self
                            .version_visible(
                                access,
                                permission,
                                &row.resource_type,
                                &row.id,
                                row.version.version_id,
                                row.version.body.as_deref(),
                            )
                            .await?;
                    if !shown {
                        continue;
                    }
                    if rows.len() == count as usize {
                        has_more = true;
                        break;
                    }
                    rows.push(row);
                }
                if has_more || exhausted {
                    break;
                }
            }
        }

        let mut query = Vec::new();
        if let Some(since) = &params.since {
            query.push(format!("_since={}", encode(since)));
        }
        query.push(format!("_count={count}"));
        // The cursor names the last version shown (type/id/version): nothing the caller has
        // not seen, never the server-wide sequence number.
        let link = |page: Option<&str>| {
            let mut q = query.clone();
            if let Some(p) = page {
                q.push(format!("_page={}", encode(p)));
            }
            format!("{}/{}?{}", self.base_url, path, q.join("&"))
        };
        let next = rows
            .last()
            .filter(|_| has_more)
            .map(|r| format!("{}/{}/{}", r.resource_type, r.id, r.version.version_id));
        let capacity = rows
            .iter()
            .map(|r| r.version.body.as_ref().map_or(0, |b| b.len()) + 256)
            .sum::<usize>();
        let mut bundle = BundleJson::new("history", capacity);
        bundle.link("self", &link(params.page.as_deref()));
        if let Some(next) = &next {
            bundle.link("next", &link(Some(next)));
        }
        for row in &rows {
            self.push_entry(bundle.entry(), row);
        }
        if self.audit.is_some() {
            let returned = rows.iter().map(|r| {
                (
                    r.resource_type.as_str(),
                    r.id.as_str(),
                    r.version.version_id,
                    r.version.body.as_deref(),
                )
            });
            let patients = self.patients_returned(returned)?;
            if !patients.is_empty() {
                let subtype = match &scope {
                    HistoryScope::Instance(..) => "history-instance",
                    HistoryScope::Type(_) => "history-type",
                    HistoryScope::System => "history-system",
                };
                let what = match &scope {
                    HistoryScope::Instance(rt, id) => super::audit::Named::Resource(rt, id, None),
                    _ => super::audit::Named::Nothing,
                };
                // No query: the paging cursor names the versions around the page.
                self.audit_read_of(access, subtype, &patients, what, None)
                    .await;
            }
        }
        Ok(HistoryPage {
            body: bundle.finish(),
        })
    }

    /// What a confined caller's type or system history may list: each type it may search,
    /// whole or through the clauses its rule gives (`None`: no limit).
    fn history_reach(
        &self,
        access: &Access,
        scope: &HistoryScope,
    ) -> FhirResult<Option<Vec<TypeReach>>> {
        if matches!(access, Access::Unrestricted) {
            return Ok(None);
        }
        let types: Vec<&str> = match scope {
            // Instance history is checked whole before it is listed.
            HistoryScope::Instance(..) => return Ok(None),
            HistoryScope::Type(rt) => vec![rt.as_str()],
            HistoryScope::System => crate::validate::resource_types().to_vec(),
        };
        let mut within = Vec::new();
        for rt in types {
            match self.permit(access, rt, Permission::Search) {
                Err(_) => {}
                Ok(None) => within.push(TypeReach::All(rt.to_string())),
                Ok(Some(rule)) => within.push(TypeReach::Matching(
                    rt.to_string(),
                    self.rule_clauses(&rule, rt)?,
                )),
            }
        }
        Ok(Some(within))
    }

    /// The position a `_page` cursor (`Type/id/version`, the last version a previous page
    /// showed) names. The same 400 for a cursor that names nothing and for one that names a
    /// resource outside the caller's reach, so a cursor cannot probe.
    async fn history_cursor(
        &self,
        access: &Access,
        permission: Permission,
        scope: &HistoryScope,
        text: &str,
    ) -> FhirResult<i64> {
        let refused =
            || FhirError::bad_request(format!("_page {text:?} is not a page of this history"));
        let mut parts = text.split('/');
        let (Some(rt), Some(id), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused());
        };
        let version = super::read::parse_version(version).ok_or_else(refused)?;
        let in_scope = match scope {
            HistoryScope::System => crate::validate::is_resource_type(rt),
            HistoryScope::Type(t) => t == rt,
            HistoryScope::Instance(t, i) => t == rt && i == id,
        };
        if !in_scope {
            return Err(refused());
        }
        if !matches!(access, Access::Unrestricted) {
            let reachable = match self.permit(access, rt, permission) {
                Err(_) => false,
                Ok(None) => true,
                Ok(Some(rule)) => self
                    .visible_ids(&rule, rt, &[id.to_string()])
                    .await?
                    .contains(id),
            };
            if !reachable {
                return Err(refused());
            }
        }
        self.store
            .version_seq(rt, id, version)
            .await?
            .ok_or_else(refused)
    }

    fn push_entry(&self, out: &mut Vec<u8>, row: &HistoryRow) {
        out.extend_from_slice(br#"{"fullUrl":"#);
        push_json_string(
            out,
            &format!("{}/{}/{}", self.base_url, row.resource_type, row.id),
        );
        if let Some(body) = &row.version.body {
            out.extend_from_slice(br#","resource":"#);
            out.extend_from_slice(body);
        }
        let (url, status) = match row.method {
            WriteMethod::Create => (row.resource_type.clone(), "201 Created"),
            WriteMethod::Update | WriteMethod::Patch => {
                (format!("{}/{}", row.resource_type, row.id), "200 OK")
            }
            WriteMethod::Delete => (
                format!("{}/{}", row.resource_type, row.id),
                "204 No Content",
            ),
        };
        out.extend_from_slice(br#","request":{"method":"#);
        push_json_string(out, row.method.as_str());
        out.extend_from_slice(br#","url":"#);
        push_json_string(out, &url);
        out.extend_from_slice(br#"},"response":{"status":"#);
        push_json_string(out, status);
        out.extend_from_slice(br#","etag":"#);
        push_json_string(out, &format!("W/\"{}\"", row.version.version_id));
        out.extend_from_slice(br#","lastModified":"#);
        push_json_string(out, &format_instant(row.version.last_updated_us));
        out.extend_from_slice(b"}}");
    }
}

/// Percent-encode a query value, leaving RFC 3986 unreserved characters as they are.
fn encode(text: &str) -> String {
    const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, QUERY_VALUE).to_string()
}
