//! Enforcing the access policy (`policy`) inside the FHIR interactions (SMART App Launch 2.2
//! scopes, R4 Patient CompartmentDefinition): 403 when no scope allows an interaction, 404 for
//! a resource outside the caller's compartments (its existence is never revealed), searches
//! confined by extra clauses — including inside chains and `_has` — and writes checked on what
//! they write and on every reference they make.

use super::search::{in_patient_compartment, patients_compartment_clause};
use super::FhirService;
use crate::error::{FhirError, FhirResult};
use crate::policy::{Access, Decision, Permission, Rule};
use crate::store::index::IndexRow;
use crate::store::search::{Clause, Condition, Order, SearchQuery, SystemMatch};
use serde_json::Value;
use std::collections::HashSet;

/// The 404 for a resource the caller may not know of: the same words whether or not it exists.
pub(crate) fn hidden(resource_type: &str, id: &str) -> FhirError {
    FhirError::not_found(format!("{resource_type}/{id} is not known"))
}

impl FhirService {
    /// Whether `permission` on `resource_type` is allowed: `Ok(None)` without limits,
    /// `Ok(Some(rule))` within a rule, a 403 when no scope allows it.
    pub(crate) fn permit(
        &self,
        access: &Access,
        resource_type: &str,
        permission: Permission,
    ) -> FhirResult<Option<Rule>> {
        match access.decide(
            resource_type,
            permission,
            in_patient_compartment(resource_type),
        ) {
            Decision::Unrestricted => Ok(None),
            Decision::Limited(rule) => Ok(Some(rule)),
            Decision::Denied(why) => Err(FhirError::forbidden(why)),
        }
    }

    /// The search clauses that confine `resource_type` to `rule`.
    pub(crate) fn rule_clauses(&self, rule: &Rule, resource_type: &str) -> FhirResult<Vec<Clause>> {
        let mut clauses = Vec::new();
        if let Some(patients) = &rule.patients {
            if let Some(clause) = patients_compartment_clause(resource_type, patients) {
                clauses.push(clause);
            }
        }
        if let Some(query) = &rule.query {
            let (_, granular) = self.compile(resource_type, query, true).map_err(|_| {
                FhirError::forbidden(format!(
                    "the access token's granular scope for {resource_type} has a filter this server cannot apply"
                ))
            })?;
            clauses.extend(granular);
        }
        Ok(clauses)
    }

    async fn count_with(
        &self,
        resource_type: &str,
        clauses: Vec<Clause>,
        ids: &[String],
    ) -> FhirResult<i64> {
        let query = among_ids(resource_type, clauses, ids);
        self.store.count(&query).await.map_err(FhirError::from)
    }

    /// Check that the current `resource_type/id` is within `rule`: a 404 when it is outside the
    /// caller's compartments (or does not exist), a 403 when it is inside but does not match a
    /// granular scope's filter.
    pub(crate) async fn check_visible(
        &self,
        rule: &Rule,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<()> {
        let ids = [id.to_string()];
        let clauses = self.rule_clauses(rule, resource_type)?;
        if self.count_with(resource_type, clauses, &ids).await? > 0 {
            return Ok(());
        }
        if rule.query.is_some() {
            let compartment_only = Rule {
                patients: rule.patients.clone(),
                query: None,
            };
            let clauses = self.rule_clauses(&compartment_only, resource_type)?;
            if self.count_with(resource_type, clauses, &ids).await? > 0 {
                return Err(FhirError::forbidden(format!(
                    "{resource_type}/{id} does not match the filter of the access token's scope"
                )));
            }
        }
        Err(hidden(resource_type, id))
    }

    /// Which of `ids` (all of `resource_type`) are within `rule`.
    pub(crate) async fn visible_ids(
        &self,
        rule: &Rule,
        resource_type: &str,
        ids: &[String],
    ) -> FhirResult<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let clauses = self.rule_clauses(rule, resource_type)?;
        let query = among_ids(resource_type, clauses, ids);
        let rows = self.store.search(&query).await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// Which of `keys` (type, id) the caller may see with `permission`: types no scope allows
    /// are dropped, confined types keep the resources within their rule. `None` when nothing is
    /// filtered (unrestricted access).
    pub(crate) async fn visible_keys(
        &self,
        access: &Access,
        permission: Permission,
        keys: &[(String, String)],
    ) -> FhirResult<Option<HashSet<(String, String)>>> {
        if matches!(access, Access::Unrestricted) {
            return Ok(None);
        }
        let mut by_type: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (rt, id) in keys {
            by_type.entry(rt.as_str()).or_default().push(id.clone());
        }
        let mut visible = HashSet::new();
        for (rt, mut ids) in by_type {
            ids.sort();
            ids.dedup();
            let rule = match self.permit(access, rt, permission) {
                Ok(rule) => rule,
                Err(_) => continue,
            };
            let ids = match rule {
                None => ids,
                Some(rule) => {
                    let mut seen: Vec<String> = Vec::new();
                    for chunk in ids.chunks(500) {
                        seen.extend(self.visible_ids(&rule, rt, chunk).await?);
                    }
                    seen
                }
            };
            visible.extend(ids.into_iter().map(|id| (rt.to_string(), id)));
        }
        Ok(Some(visible))
    }

    /// Whether one stored version (`body`; `None` for a deletion) is within what the caller may
    /// see with `permission`: its own compartments, not the current version's, decide.
    pub(crate) async fn version_visible(
        &self,
        access: &Access,
        permission: Permission,
        resource_type: &str,
        id: &str,
        version_id: i64,
        body: Option<&[u8]>,
    ) -> FhirResult<bool> {
        let rule = match self.permit(access, resource_type, permission) {
            Err(_) => return Ok(false),
            Ok(None) => return Ok(true),
            Ok(Some(rule)) => rule,
        };
        let Some(body) = body else {
            return Ok(false);
        };
        if let Some(allowed) = &rule.patients {
            if in_patient_compartment(resource_type) {
                let patients = self.patients_of(resource_type, id, version_id, body)?;
                if !patients.iter().any(|p| allowed.contains(p)) {
                    return Ok(false);
                }
            }
        }
        if let Some(query) = &rule.query {
            // A granular filter holds for the version's own content (an older version may have
            // had another category) and for the current one (the resource is within reach now).
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(FhirError::internal)?;
            let index = self.search_params.index_rows(&value)?;
            if self.content_matches_filter(query, resource_type, id, &index) != Some(true) {
                return Ok(false);
            }
            let ids = [id.to_string()];
            return Ok(self
                .visible_ids(&rule, resource_type, &ids)
                .await?
                .contains(id));
        }
        Ok(true)
    }

    /// Confine the resources that chains and `_has` look at, so a search cannot learn about
    /// resources the caller may not read: each chained type needs a read or search scope, and
    /// its resources are confined like a search of that type.
    pub(crate) fn confine_chains(&self, access: &Access, clauses: &mut [Clause]) -> FhirResult<()> {
        if matches!(access, Access::Unrestricted) {
            return Ok(());
        }
        for clause in clauses.iter_mut() {
            for condition in clause.any_of.iter_mut() {
                self.confine_condition(access, condition)?;
            }
        }
        Ok(())
    }

    fn confine_condition(&self, access: &Access, condition: &mut Condition) -> FhirResult<()> {
        let (inner_type, inner) = match condition {
            Condition::Chain {
                target_type, inner, ..
            } => (target_type.clone(), inner),
            Condition::Has {
                source_type, inner, ..
            } => (source_type.clone(), inner),
            Condition::All(clauses) => return self.confine_chains(access, clauses),
            _ => return Ok(()),
        };
        self.confine_condition(access, inner)?;
        let Some(rule) = self.permit(access, &inner_type, Permission::Search)? else {
            return Ok(());
        };
        let mut clauses = vec![Clause {
            any_of: vec![(**inner).clone()],
            negated: false,
        }];
        clauses.extend(self.rule_clauses(&rule, &inner_type)?);
        **inner = Condition::All(clauses);
        Ok(())
    }

    /// Check what a write would store: under a rule, the new content must be in the caller's
    /// compartments (403 otherwise) and match the granular filter its index rows can show.
    pub(crate) fn check_new_content(
        &self,
        rule: &Rule,
        resource_type: &str,
        id: &str,
        index: &[IndexRow],
    ) -> FhirResult<()> {
        if let Some(patients) = &rule.patients {
            if in_patient_compartment(resource_type) {
                // In at least one of the caller's compartments, and in no one else's.
                let entered = super::membership::patients_in(resource_type, id, index);
                let outside = entered.iter().find(|p| !patients.contains(p));
                if entered.is_empty() || outside.is_some() {
                    return Err(FhirError::forbidden(format!(
                        "the access token may only write {resource_type} resources in the compartment of Patient/{} (and in no other patient's)",
                        patients.join(", Patient/")
                    )));
                }
            }
        }
        if let Some(query) = &rule.query {
            match self.content_matches_filter(query, resource_type, id, index) {
                Some(true) => {}
                Some(false) => {
                    return Err(FhirError::forbidden(format!(
                        "the {resource_type} does not match the filter of the access token's scope"
                    )))
                }
                None => {
                    return Err(FhirError::forbidden(format!(
                        "the access token's granular scope filter for {resource_type} cannot be checked on a write"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Whether content with `index` rows matches a granular scope's filter (`query`); `None`
    /// when this server cannot decide it from the rows (refused by every caller).
    fn content_matches_filter(
        &self,
        query: &[(String, String)],
        resource_type: &str,
        id: &str,
        index: &[IndexRow],
    ) -> Option<bool> {
        let (_, clauses) = self.compile(resource_type, query, true).ok()?;
        for clause in &clauses {
            let matched = clause
                .any_of
                .iter()
                .map(|c| matches_rows(c, id, index))
                .collect::<Option<Vec<bool>>>()?;
            if matched.iter().any(|m| *m) == clause.negated {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Check every reference a written resource makes: under confined access, a reference to a
    /// resource in the Patient compartment must stay inside the caller's compartments
    /// (`pending` names resources written by the same transaction, checked on their own).
    pub(crate) async fn check_references(
        &self,
        access: &Access,
        resource: &Value,
        pending: &HashSet<(String, String)>,
    ) -> FhirResult<()> {
        if matches!(access, Access::Unrestricted) {
            return Ok(());
        }
        let mut targets = Vec::new();
        collect_references(resource, &self.base_url, &mut targets);
        let mut by_type: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (rt, id) in targets {
            if !in_patient_compartment(&rt) || pending.contains(&(rt.clone(), id.clone())) {
                continue;
            }
            by_type.entry(rt).or_default().push(id);
        }
        for (rt, mut ids) in by_type {
            ids.sort();
            ids.dedup();
            // Confinement only: a reference needs the target to be in reach, not a scope on it.
            let patients = match access.decide(&rt, Permission::Read, true) {
                Decision::Limited(Rule {
                    patients: Some(p), ..
                }) => p,
                Decision::Unrestricted | Decision::Limited(Rule { patients: None, .. }) => continue,
                Decision::Denied(_) => match confinement_of(access) {
                    Some(p) => p,
                    None => continue,
                },
            };
            let rule = Rule {
                patients: Some(patients),
                query: None,
            };
            let mut visible = HashSet::new();
            for chunk in ids.chunks(500) {
                visible.extend(self.visible_ids(&rule, &rt, chunk).await?);
            }
            if let Some(outside) = ids.iter().find(|id| !visible.contains(*id)) {
                return Err(FhirError::forbidden(format!(
                    "the reference to {rt}/{outside} points outside the records this access token reaches"
                )));
            }
        }
        Ok(())
    }
}

/// The resources of `resource_type` among `ids` that match `clauses`.
fn among_ids(resource_type: &str, mut clauses: Vec<Clause>, ids: &[String]) -> SearchQuery {
    clauses.push(Clause {
        any_of: vec![Condition::IdIn(ids.to_vec())],
        negated: false,
    });
    SearchQuery {
        resource_type: resource_type.to_string(),
        clauses,
        order: Order::IdAsc,
        after: None,
        limit: ids.len() as u32,
    }
}

/// The patients a confined access reaches through any of its scopes (`None`: unconfined).
fn confinement_of(access: &Access) -> Option<Vec<String>> {
    let Access::Scoped(scoped) = access else {
        return None;
    };
    let mut all = Vec::new();
    for scope in &scoped.scopes.resources {
        let reach = match scope.context {
            crate::policy::ScopeContext::System => return None,
            crate::policy::ScopeContext::User => scoped.user_reach.clone(),
            crate::policy::ScopeContext::Patient => match &scoped.grant.patient {
                Some(p) => crate::policy::Reach::Patients(vec![p.clone()]),
                None => crate::policy::Reach::Nobody,
            },
        };
        match reach {
            crate::policy::Reach::Everyone => return None,
            crate::policy::Reach::Patients(p) => all.extend(p),
            crate::policy::Reach::Nobody => {}
        }
    }
    Some(all)
}

/// Whether a condition holds for a resource's index rows; `None` for conditions that cannot be
/// decided from them alone.
fn matches_rows(condition: &Condition, id: &str, index: &[IndexRow]) -> Option<bool> {
    Some(match condition {
        Condition::Id(want) => want == id,
        Condition::Token {
            code,
            system,
            value,
        } => index.iter().any(|row| match row {
            IndexRow::Token {
                code: c,
                system: s,
                value: v,
                ..
            } => {
                c == code
                    && (value.is_none() || v == value)
                    && match system {
                        SystemMatch::Any => true,
                        SystemMatch::Absent => s.is_none(),
                        SystemMatch::Is(want) => s.as_deref() == Some(want.as_str()),
                    }
            }
            _ => false,
        }),
        Condition::Reference {
            code,
            target_type,
            target_id,
            url,
        } => index.iter().any(|row| match row {
            IndexRow::Reference {
                code: c,
                target_type: t,
                target_id: i,
                url: u,
            } => {
                c == code
                    && (target_type.is_none() || t == target_type)
                    && (target_id.is_none() || i == target_id)
                    && url.as_ref().is_none_or(|want| want == u)
            }
            _ => false,
        }),
        _ => return None,
    })
}

/// Every literal reference (`Type/id`, or an absolute URL on this server) in a resource.
fn collect_references(value: &Value, base_url: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "reference" {
                    if let Some(text) = v.as_str() {
                        if let Some(target) = parse_reference(text, base_url) {
                            out.push(target);
                        }
                    }
                } else {
                    collect_references(v, base_url, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_references(item, base_url, out);
            }
        }
        _ => {}
    }
}

/// A reference as the index reads it (so as compartments and searches see it): the last
/// `Type/id` of any relative or absolute URL. Contained (`#x`) and `urn:` references point
/// nowhere on this server.
fn parse_reference(text: &str, _base_url: &str) -> Option<(String, String)> {
    if text.starts_with('#') || text.starts_with("urn:") {
        return None;
    }
    match fhir_search_index::parse_reference(text, fhir_search_index::Registry::get()) {
        (Some(rt), Some(id)) => Some((rt, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_local_and_on_this_server() {
        let resource = serde_json::json!({
            "resourceType": "Goal",
            "subject": {"reference": "Patient/p1"},
            "addresses": [{"reference": "http://coplan.test/fhir/Condition/c1/_history/2"}],
            "note": [{"text": "x"}],
            "extension": [{"url": "u", "valueReference": {"reference": "http://elsewhere.org/fhir/Patient/p9"}}],
            "contained": [{"reference": "#x"}],
        });
        let mut out = Vec::new();
        collect_references(&resource, "http://coplan.test/fhir", &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![
                ("Condition".to_string(), "c1".to_string()),
                ("Patient".to_string(), "p1".to_string()),
                ("Patient".to_string(), "p9".to_string())
            ],
            "every reference the index would read as Type/id is checked, wherever it points"
        );
        assert_eq!(parse_reference("Patient", "http://x"), None);
        assert_eq!(parse_reference("NotAType/1", "http://x"), None);
        for sneaky in [
            "Patient/p2/",
            "/Patient/p2",
            "Patient//p2",
            "https://evil.example/Patient/p2",
        ] {
            assert_eq!(
                parse_reference(sneaky, "http://coplan.test/fhir"),
                Some(("Patient".to_string(), "p2".to_string())),
                "{sneaky}"
            );
        }
    }

    #[test]
    fn compartment_membership_from_index_rows() {
        use super::super::membership::patients_in;
        let rows = vec![IndexRow::Reference {
            code: "patient".into(),
            target_type: Some("Patient".into()),
            target_id: Some("p1".into()),
            url: "Patient/p1".into(),
        }];
        assert_eq!(patients_in("Goal", "g1", &rows), ["p1"]);
        assert!(patients_in("Goal", "g1", &[]).is_empty());
        assert_eq!(patients_in("Patient", "p2", &[]), ["p2"]);
    }
}
