//! history at instance, type and system level (http.html#history): a Bundle of type
//! `history`, newest first, each entry with its `request` and `response`; deletions appear as
//! entries without a resource. `_since` and `_count` are honoured; paging is by keyset on the
//! version sequence (`_page`), so pages stay correct while new versions are written.
//! Stored resource bytes are spliced into the Bundle as they are, never re-parsed.

use super::bundle_json::{push_json_string, BundleJson};
use super::instant::{format_instant, parse_instant};
use super::{check_known_type, store_error, FhirService};
use crate::error::{FhirError, FhirResult};
use crate::policy::{Access, Permission};
use crate::store::{HistoryQuery, HistoryRow, HistoryScope, WriteMethod};
use bytes::Bytes;

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
                if self
                    .store
                    .current(rt, id)
                    .await
                    .map_err(store_error)?
                    .is_none()
                {
                    return Err(FhirError::not_found(format!("{rt}/{id} is not known")));
                }
                format!("{rt}/{id}/_history")
            }
        };
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
        let before_seq = params
            .page
            .as_deref()
            .map(|text| {
                text.parse::<i64>().map_err(|_| {
                    FhirError::bad_request(format!("_page {text:?} is not a page of this history"))
                })
            })
            .transpose()?;
        let mut rows = if count == 0 {
            Vec::new()
        } else {
            self.store
                .history(&HistoryQuery {
                    scope,
                    since_us,
                    before_seq,
                    limit: count + 1,
                })
                .await
                .map_err(store_error)?
        };
        let has_more = rows.len() > count as usize;
        rows.truncate(count as usize);
        // The next link follows the unfiltered rows, so paging never skips; a confined caller
        // sees only the versions of resources currently within reach.
        let next_seq = rows.last().map(|r| r.seq);
        if !matches!(access, Access::Unrestricted) {
            // Each version is judged by its own content (an old version may have been in
            // another patient's record).
            let permission = match scope_kind {
                ScopeKind::Instance => Permission::Read,
                ScopeKind::Collection => Permission::Search,
            };
            let mut kept = Vec::with_capacity(rows.len());
            for row in rows {
                if self
                    .version_visible(
                        access,
                        permission,
                        &row.resource_type,
                        &row.id,
                        row.version.version_id,
                        row.version.body.as_deref(),
                    )
                    .await?
                {
                    kept.push(row);
                }
            }
            rows = kept;
        }

        let mut query = Vec::new();
        if let Some(since) = &params.since {
            query.push(format!("_since={}", encode(since)));
        }
        query.push(format!("_count={count}"));
        let link = |page: Option<i64>| {
            let mut q = query.clone();
            if let Some(p) = page {
                q.push(format!("_page={p}"));
            }
            format!("{}/{}?{}", self.base_url, path, q.join("&"))
        };
        let capacity = rows
            .iter()
            .map(|r| r.version.body.as_ref().map_or(0, |b| b.len()) + 256)
            .sum::<usize>();
        let mut bundle = BundleJson::new("history", capacity);
        bundle.link("self", &link(before_seq));
        if let (true, Some(last_seq)) = (has_more, next_seq) {
            bundle.link("next", &link(Some(last_seq)));
        }
        for row in &rows {
            self.push_entry(bundle.entry(), row);
        }
        Ok(HistoryPage {
            body: bundle.finish(),
        })
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
