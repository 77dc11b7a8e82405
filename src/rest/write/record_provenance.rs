//! The write pipeline's Provenance hook (issue "The shared care plan" §1; R4 provenance.html,
//! US Core Provenance): every commit — a plain, conditional or patch write, a delete, each
//! batch entry, a whole transaction — stores one Provenance in the same atomic batch, so a
//! change never exists without its record and a failed write leaves none. What it says is
//! built by `rest/provenance.rs`; this file gathers the commit's targets and the patients they
//! belong to, makes sure the app's Device exists, and adds the Provenance version.
//!
//! Provenance itself is immutable: [`refuse_changes`] turns away update, patch and delete.

use super::hooks::{WriteContext, WriteHook};
use super::PreparedWrite;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use crate::rest::membership::patients_in;
use crate::rest::meta::stamp;
use crate::rest::provenance::{
    self, provenance_id, Activity, Attribution, Target, SERVER_DEVICE_ID,
};
use crate::rest::FhirService;
use crate::store::{CommitBatch, Expected, StoreError, VersionWrite, WriteMethod};
use crate::validate::check_resource;
use async_trait::async_trait;
use serde_json::Value;

/// Records who changed what, in the commit that changes it.
pub(crate) struct RecordProvenance;

/// The name of the hook (and of the rule that keeps Provenance immutable).
pub const NAME: &str = "provenance";

#[async_trait]
impl WriteHook for RecordProvenance {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn before_commit(
        &self,
        service: &FhirService,
        cx: &WriteContext<'_>,
        writes: &[PreparedWrite],
        batch: &mut CommitBatch,
    ) -> FhirResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // Each target with the patients whose records it is in.
        let mut targets: Vec<(Target, Vec<String>)> = Vec::with_capacity(writes.len());
        let mut patients: Vec<String> = Vec::new();
        for w in writes {
            let v = &w.version;
            let activity = match v.method {
                WriteMethod::Delete => Activity::Delete,
                _ if w.created => Activity::Create,
                _ => Activity::Update,
            };
            let target = Target {
                resource_type: v.resource_type.clone(),
                id: v.id.clone(),
                version_id: v.version_id,
                activity,
            };
            let touched = match (&v.body, &w.current) {
                (Some(_), _) => patients_in(&v.resource_type, &v.id, &v.index),
                // A deletion touches the records the deleted version was in.
                (None, Some(current)) => match &current.body {
                    Some(body) => service
                        .patients_of(&v.resource_type, &v.id, current.version_id, body)?
                        .to_vec(),
                    None => Vec::new(),
                },
                (None, None) => Vec::new(),
            };
            for p in &touched {
                if !patients.contains(p) {
                    patients.push(p.clone());
                }
            }
            targets.push((target, touched));
        }
        let who = Attribution::of(cx.access, &patients);
        service.ensure_device(&who, cx.now_us).await?;
        let all: Vec<Target> = targets.iter().map(|(t, _)| t.clone()).collect();
        // The client's claims are checked against the whole commit.
        if let Some(supplied) = cx.supplied.as_deref() {
            provenance::check_claims(supplied, &who, &all, cx.now_us)?;
        }
        // A Provenance is in the compartment of every patient it names: a commit that touched
        // several patients' records is recorded once per patient, listing only that patient's
        // targets (and once more for targets in no patient's record), so no patient learns
        // from it whose records changed alongside theirs.
        let mut groups: Vec<(Option<String>, Vec<Target>)> = Vec::new();
        if patients.len() <= 1 {
            groups.push((patients.first().cloned(), all.clone()));
        } else {
            for p in &patients {
                let mine = targets
                    .iter()
                    .filter(|(_, of)| of.contains(p))
                    .map(|(t, _)| t.clone())
                    .collect();
                groups.push((Some(p.clone()), mine));
            }
            let nobodys: Vec<Target> = targets
                .iter()
                .filter(|(_, of)| of.is_empty())
                .map(|(t, _)| t.clone())
                .collect();
            if !nobodys.is_empty() {
                groups.push((None, nobodys));
            }
        }
        let split = groups.len() > 1;
        for (patient, group) in groups {
            let named: Vec<String> = patient.iter().cloned().collect();
            let who = Attribution::of(cx.access, &named);
            let additions = cx.supplied.as_deref().map(|s| s.additions_only());
            let record = provenance::record(&who, &group, &named, cx.now_us, additions.as_ref())?;
            let id = match (&patient, split) {
                (Some(p), true) => provenance::provenance_id_for(&group[0], p, cx.now_us),
                _ => provenance_id(&group[0], cx.now_us),
            };
            batch
                .versions
                .push(service.server_version("Provenance", &id, record, cx.now_us)?);
        }
        Ok(())
    }
}

/// Provenance and AuditEvent are records of what happened: once one exists it is never
/// updated, patched or deleted through the API (405). The user-facing apps (`patient/` and
/// `user/` tokens) cannot write one at all (403): the server records who did what, and a
/// patient's or clinician's app could otherwise claim that someone else did. Backend services
/// may still bring in records from other systems (POST, or PUT to a new id).
pub(crate) fn refuse_changes(
    access: &Access,
    resource_type: &str,
    id: &str,
    exists: bool,
) -> FhirResult<()> {
    if !matches!(resource_type, "Provenance" | "AuditEvent") {
        return Ok(());
    }
    if resource_type == "Provenance" && !exists && provenance::is_server_provenance_id(id) {
        return Err(FhirError::new(
            ErrorKind::Forbidden,
            "forbidden",
            "ids of 32 hexadecimal digits are the server's own Provenance ids; choose another id",
        ));
    }
    if exists {
        return Err(FhirError::new(
            ErrorKind::MethodNotAllowed,
            "not-supported",
            format!("{resource_type} records what happened and cannot be changed or deleted"),
        ));
    }
    if access.co_edits() {
        return Err(FhirError::new(
            ErrorKind::Forbidden,
            "forbidden",
            format!(
                "{resource_type} is recorded by the server; an app says why it changed something \
                 with the X-Provenance header instead"
            ),
        ));
    }
    Ok(())
}

/// Version 1 of a resource the server writes itself, indexed with `search_params`.
pub(crate) fn server_version_with(
    search_params: &crate::rest::search::params::R4SearchParams,
    resource_type: &str,
    id: &str,
    content: Value,
    now_us: i64,
) -> FhirResult<VersionWrite> {
    let checked = check_resource(content, resource_type)?;
    let index = search_params.index_rows(checked.value())?;
    let body = stamp(&checked, id, 1, now_us)?;
    Ok(VersionWrite {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        expected: Expected::Absent,
        version_id: 1,
        last_updated_us: now_us,
        method: WriteMethod::Create,
        body: Some(body),
        index,
    })
}

impl FhirService {
    /// Version 1 of a resource the server writes itself (a Provenance, a Device): checked,
    /// indexed and stamped like any other.
    pub(crate) fn server_version(
        &self,
        resource_type: &str,
        id: &str,
        content: Value,
        now_us: i64,
    ) -> FhirResult<VersionWrite> {
        server_version_with(&self.search_params, resource_type, id, content, now_us)
    }

    /// Make sure the Device a Provenance names as transmitter exists (created on first use;
    /// `coplan client add` creates it with the app's name beforehand).
    pub(crate) async fn ensure_device(&self, who: &Attribution, now_us: i64) -> FhirResult<()> {
        let Some(id) = who.transmitter.strip_prefix("Device/") else {
            return Ok(());
        };
        if self.known_devices.contains(id) {
            return Ok(());
        }
        if self.store.current("Device", id).await?.is_none() {
            let name = match &who.client_id {
                Some(client) => client.clone(),
                None if id == SERVER_DEVICE_ID => "Coplan (requests without an app)".into(),
                None => id.to_string(),
            };
            let content = provenance::device(who.client_id.as_deref(), &name);
            self.commit_device(self.server_version("Device", id, content, now_us)?)
                .await?;
        }
        self.known_devices.insert(id);
        Ok(())
    }

    /// Create or rename the Device of OAuth client `client_id` (`coplan client add`).
    pub async fn register_app_device(&self, client_id: &str, name: &str) -> FhirResult<()> {
        let id = provenance::device_id(client_id);
        let now_us = self.now_us();
        let content = provenance::device(Some(client_id), name);
        let mut version = self.server_version("Device", &id, content.clone(), now_us)?;
        if let Some(current) = self.store.current_for_write("Device", &id).await? {
            let checked = check_resource(content, "Device")?;
            version.expected = Expected::Version(current.version_id);
            version.version_id = current.version_id + 1;
            version.method = WriteMethod::Update;
            version.body = Some(stamp(&checked, &id, version.version_id, now_us)?);
        }
        self.commit_device(version).await?;
        self.known_devices.insert(&id);
        Ok(())
    }

    /// Store a Device version on its own; another node creating it first is fine.
    async fn commit_device(&self, version: VersionWrite) -> FhirResult<()> {
        match self.store.commit(&CommitBatch::of(vec![version])).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}
