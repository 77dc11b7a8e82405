//! `Patient/{id}/$everything` (patient-operation-everything.html): the patient, every resource
//! in their compartment (R4 Patient CompartmentDefinition), and the resources those reference
//! (practitioners, organisations, …), as a paged searchset Bundle. `_since` keeps resources
//! changed since an instant, `_type` restricts the types, `_count` sizes the pages; paging is
//! by keyset over (type, id), so pages stay correct while data changes.

use crate::error::{FhirError, FhirResult};
use crate::policy::{Access, Permission};
use crate::rest::audit::Named;
use crate::rest::bundle_json::{push_json_string, BundleJson};
use crate::rest::search::{patient_compartment_clause, patient_compartment_types};
use crate::rest::{format_instant, parse_instant, FhirService};
use crate::store::search::{
    Clause, Condition, IncludeDirection, IncludeQuery, Order, Range, RangeOp, SearchQuery,
};
use crate::store::StoredVersion;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

/// The most resources one patient's `$everything` gathers before paging.
const MAX_EVERYTHING: u32 = 10_000;

/// The parameters of `$everything`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EverythingParams {
    pub since: Option<String>,
    pub types: Option<String>,
    pub count: Option<String>,
    pub page: Option<String>,
}

impl FhirService {
    /// `GET /Patient/{id}/$everything`.
    pub async fn everything(
        &self,
        access: &Access,
        patient_id: &str,
        params: &EverythingParams,
    ) -> FhirResult<Bytes> {
        // Recorded once, as the operation, with everything it returned (below).
        let patient = self.read_unaudited(access, "Patient", patient_id).await?;
        // The Patient compartment holds the AuditEvents about the patient.
        self.audit_caught_up().await;
        let since = params
            .since
            .as_deref()
            .map(|s| parse_instant(s, "_since"))
            .transpose()?;
        let wanted: Option<BTreeSet<String>> = params
            .types
            .as_deref()
            .map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
        if let Some(types) = &wanted {
            for t in types {
                crate::rest::check_known_type(t)?;
            }
        }
        let count = match params.count.as_deref() {
            None => self.default_page_size,
            Some(text) => text.parse::<u32>().map_err(|_| {
                FhirError::bad_request(format!("_count must be a whole number, got {text:?}"))
            })?,
        }
        .clamp(1, self.max_page_size);
        let type_ok = |t: &str| wanted.as_ref().is_none_or(|w| w.contains(t));
        let since_ok = |v: &StoredVersion| since.is_none_or(|s| v.last_updated_us >= s);

        // (type, id) → version, ordered: the keyset of the paging.
        let mut all: BTreeMap<(String, String), StoredVersion> = BTreeMap::new();
        let patient_version = StoredVersion {
            version_id: patient.version_id,
            last_updated_us: patient.last_updated_us,
            body: Some(patient.body.clone()),
        };
        if type_ok("Patient") && since_ok(&patient_version) {
            all.insert(("Patient".into(), patient_id.to_string()), patient_version);
        }
        for rt in patient_compartment_types() {
            let Some(confine) = patient_compartment_clause(rt, patient_id) else {
                continue;
            };
            let mut clauses = vec![confine];
            match self.permit(access, rt, Permission::Search) {
                Err(_) => continue,
                Ok(None) => {}
                Ok(Some(rule)) => clauses.extend(self.rule_clauses(&rule, rt)?),
            }
            if let Some(s) = since {
                clauses.push(Clause {
                    any_of: vec![Condition::LastUpdated(Range {
                        op: RangeOp::Ge,
                        low: s,
                        high: s,
                    })],
                    negated: false,
                });
            }
            let query = SearchQuery {
                resource_type: rt.to_string(),
                clauses,
                order: Order::IdAsc,
                after: None,
                limit: MAX_EVERYTHING,
            };
            for row in self.store.search(&query).await? {
                all.insert((rt.to_string(), row.id), row.version);
            }
        }
        // Resources the compartment references (one round of `_include=*`).
        let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (rt, id) in all.keys() {
            by_type.entry(rt.clone()).or_default().push(id.clone());
        }
        for (rt, ids) in by_type {
            let step = IncludeQuery {
                direction: IncludeDirection::Forward,
                source_type: Some(rt),
                code: None,
                target_type: None,
                ids,
                limit: None,
            };
            for row in self.store.include(&step).await? {
                all.entry((row.resource_type, row.id))
                    .or_insert(row.version);
            }
        }
        all.retain(|(rt, _), v| type_ok(rt) && since_ok(v));
        let keys: Vec<(String, String)> = all.keys().cloned().collect();
        if let Some(visible) = self.visible_keys(access, Permission::Read, &keys).await? {
            all.retain(|key, _| visible.contains(key));
        }

        let after: Option<(String, String)> = params.page.as_deref().map(|p| {
            let (rt, id) = p.split_once('/').unwrap_or((p, ""));
            (rt.to_string(), id.to_string())
        });
        let page: Vec<(&(String, String), &StoredVersion)> = all
            .iter()
            .filter(|(key, _)| after.as_ref().is_none_or(|a| *key > a))
            .take(count as usize + 1)
            .collect();
        let has_more = page.len() > count as usize;
        let page = &page[..page.len().min(count as usize)];

        let mut query = Vec::new();
        if let Some(s) = &params.since {
            query.push(format!(
                "_since={}",
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        if let Some(t) = &params.types {
            query.push(format!(
                "_type={}",
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        query.push(format!("_count={count}"));
        let link = |cursor: Option<String>| {
            let mut q = query.clone();
            if let Some(c) = cursor {
                q.push(format!(
                    "_page={}",
                    percent_encoding::utf8_percent_encode(&c, percent_encoding::NON_ALPHANUMERIC)
                ));
            }
            format!(
                "{}/Patient/{patient_id}/$everything?{}",
                self.base_url,
                q.join("&")
            )
        };
        let mut bundle = BundleJson::new("searchset", 1024);
        bundle.field("total", all.len().to_string().as_bytes());
        let mut meta = br#"{"lastUpdated":"#.to_vec();
        push_json_string(&mut meta, &format_instant(self.now_us()));
        meta.push(b'}');
        bundle.field("meta", &meta);
        bundle.link("self", &link(params.page.clone()));
        if let (true, Some(((rt, id), _))) = (has_more, page.last()) {
            bundle.link("next", &link(Some(format!("{rt}/{id}"))));
        }
        for ((rt, id), version) in page {
            let Some(body) = &version.body else { continue };
            bundle.search_entry(&format!("{}/{rt}/{id}", self.base_url), body, "match");
        }
        if self.audits("Patient") {
            // The patient's event names the operation (which parameters were given, not their
            // values); anyone else whose data the page holds gets their own event, which names
            // neither the patient nor the query.
            let names: Vec<&str> = query
                .iter()
                .filter_map(|q| q.split_once('=').map(|(name, _)| name))
                .collect();
            let query = format!("Patient/{patient_id}/$everything?{}", names.join("&"));
            self.audit_read_of(
                access,
                "operation",
                &[patient_id.to_string()],
                Named::Resource("Patient", patient_id, None),
                Some(&query),
            )
            .await;
            let returned = page
                .iter()
                .map(|((rt, id), v)| (rt.as_str(), id.as_str(), v.version_id, v.body.as_deref()));
            let others: Vec<String> = self
                .patients_returned(returned)?
                .into_iter()
                .filter(|p| p != patient_id)
                .collect();
            if !others.is_empty() {
                self.audit_read_of(access, "operation", &others, Named::Nothing, None)
                    .await;
            }
        }
        Ok(bundle.finish())
    }
}
