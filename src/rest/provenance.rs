//! The Provenance the server records with every write (R4 provenance.html; US Core 9
//! Provenance profile; R4 http.html "X-Provenance"): who made the change (`author`: the token's
//! `fhirUser`, or the app itself for a backend service), through which app (`transmitter`: the
//! client's Device), what changed (`target`: the versions written), when (`recorded`: their
//! `meta.lastUpdated`) and how (`activity`: v3-DataOperation). A client may add `reason`,
//! `activity` and `policy` in an `X-Provenance` header; it can never change who, what or when.
//!
//! Pure: the write pipeline's hook (`write/record_provenance.rs`) supplies the writes and
//! stores the result in the same commit.
//!
//! Deviation from US Core, on purpose: a RelatedPerson's author agent carries `onBehalfOf` the
//! patient (the issue's rule: a carer acts for the patient), where US Core allows only an
//! Organization there. The base R4 Provenance allows a Patient.

use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use fhir_primitives::format_instant;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The extension naming the patients whose records a Provenance's targets are in, so that the
/// Provenance is in the same Patient compartments (its `patient` search parameter reads it):
/// whoever may read a patient's plan may read who changed it.
pub const PATIENT_EXTENSION: &str = fhir_search_index::PROVENANCE_PATIENT_EXTENSION;

/// Who made a change and through which app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// The author's reference (`Patient/1`, `Practitioner/7`, `RelatedPerson/3`, or the
    /// app's Device).
    pub author: String,
    /// For a RelatedPerson author: the patient they act for.
    pub on_behalf_of: Option<String>,
    /// The app's Device (`Device/app-portal`), or the server's own for requests without a
    /// token.
    pub transmitter: String,
    /// The OAuth client, when there is one (named on its Device).
    pub client_id: Option<String>,
}

/// The Device of requests that carry no token (`--insecure-no-auth`) and of the server's own
/// tooling.
pub const SERVER_DEVICE_ID: &str = "coplan";

/// The id of the Device that stands for OAuth client `client_id`: `app-{client_id}` when that
/// is a valid FHIR id, otherwise `app-` and a digest of it.
pub fn device_id(client_id: &str) -> String {
    let plain = format!("app-{client_id}");
    if crate::validate::is_valid_id(&plain) {
        plain
    } else {
        format!("app-{}", &hex(&Sha256::digest(client_id.as_bytes()))[..40])
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Attribution {
    /// Whether [`Attribution::of`] `access` depends on the patients passed: only for a
    /// RelatedPerson whose token names no patient (the first patient is whom they act for).
    pub fn needs_patients(access: &Access) -> bool {
        access.grant().is_some_and(|grant| {
            grant.patient.is_none()
                && grant
                    .fhir_user
                    .as_deref()
                    .is_some_and(|u| u.starts_with("RelatedPerson/"))
        })
    }

    /// The attribution of a request with `access`; `patients` are those whose records the
    /// write touches (the patient a RelatedPerson acts for, when the token names none).
    pub fn of(access: &Access, patients: &[String]) -> Attribution {
        let Some(grant) = access.grant() else {
            let server = format!("Device/{SERVER_DEVICE_ID}");
            return Attribution {
                author: server.clone(),
                on_behalf_of: None,
                transmitter: server,
                client_id: None,
            };
        };
        let transmitter = format!("Device/{}", device_id(&grant.client_id));
        let author = grant
            .fhir_user
            .clone()
            .unwrap_or_else(|| transmitter.clone());
        let on_behalf_of = author
            .starts_with("RelatedPerson/")
            .then(|| grant.patient.clone().or_else(|| patients.first().cloned()))
            .flatten()
            .map(|p| format!("Patient/{p}"));
        Attribution {
            author,
            on_behalf_of,
            transmitter,
            client_id: Some(grant.client_id.clone()),
        }
    }
}

/// What a client may add to the Provenance of its write (`X-Provenance`), and what it claimed
/// about the rest (checked against the server's own record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuppliedProvenance {
    reason: Option<Value>,
    activity: Option<Value>,
    policy: Option<Value>,
    /// `target.reference`s the client named.
    targets: Vec<String>,
    /// `agent.who.reference`s the client named.
    agents: Vec<String>,
    recorded: Option<String>,
}

fn bad(message: impl Into<String>) -> FhirError {
    FhirError::new(ErrorKind::BadRequest, "invalid", message)
}

impl SuppliedProvenance {
    /// What the client adds (reason, activity, policy), without its claims about who, what and
    /// when (already checked against the whole commit).
    pub fn additions_only(&self) -> SuppliedProvenance {
        SuppliedProvenance {
            reason: self.reason.clone(),
            activity: self.activity.clone(),
            policy: self.policy.clone(),
            ..SuppliedProvenance::default()
        }
    }

    /// Parse an `X-Provenance` header: a Provenance resource in JSON. Elements other than
    /// `reason`, `activity`, `policy` and the server-owned `target`, `agent`, `recorded` are
    /// refused rather than silently dropped.
    pub fn parse(header: &str) -> FhirResult<SuppliedProvenance> {
        let value: Value = serde_json::from_str(header).map_err(|e| {
            bad(format!(
                "X-Provenance is not a JSON Provenance resource: {e}"
            ))
        })?;
        let Value::Object(fields) = value else {
            return Err(bad("X-Provenance must be a JSON Provenance resource"));
        };
        if fields.get("resourceType") != Some(&Value::from("Provenance")) {
            return Err(bad("X-Provenance must be a Provenance resource"));
        }
        let mut supplied = SuppliedProvenance::default();
        for (name, value) in fields {
            match name.as_str() {
                "resourceType" => {}
                "reason" => supplied.reason = Some(array(&name, value)?),
                "policy" => supplied.policy = Some(array(&name, value)?),
                "activity" if value.is_object() => supplied.activity = Some(value),
                "target" => supplied.targets = references(&name, &array(&name, value)?, None)?,
                "agent" => supplied.agents = references(&name, &array(&name, value)?, Some("who"))?,
                "recorded" => match value {
                    Value::String(at) => supplied.recorded = Some(at),
                    _ => return Err(bad("X-Provenance recorded must be an instant")),
                },
                other => {
                    return Err(bad(format!(
                        "X-Provenance may add reason, activity and policy; {other} is not taken \
                         (the server records who, what and when itself)"
                    )))
                }
            }
        }
        Ok(supplied)
    }
}

fn array(name: &str, value: Value) -> FhirResult<Value> {
    match value {
        Value::Array(items) if !items.is_empty() => Ok(Value::Array(items)),
        _ => Err(bad(format!(
            "X-Provenance {name} must be a non-empty array"
        ))),
    }
}

/// The `reference` of each item (or of each item's `inner` element).
fn references(name: &str, items: &Value, inner: Option<&str>) -> FhirResult<Vec<String>> {
    let mut out = Vec::new();
    for item in items.as_array().into_iter().flatten() {
        let holder = match inner {
            Some(field) => &item[field],
            None => item,
        };
        match holder.get("reference").and_then(Value::as_str) {
            Some(reference) => out.push(reference.to_string()),
            None => {
                return Err(bad(format!(
                    "X-Provenance {name} entries must be references"
                )))
            }
        }
    }
    Ok(out)
}

/// How a write changed its target (v3-DataOperation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Create,
    Update,
    Delete,
}

impl Activity {
    fn coding(self) -> Value {
        let (code, display) = match self {
            Activity::Create => ("CREATE", "create"),
            Activity::Update => ("UPDATE", "revise"),
            Activity::Delete => ("DELETE", "delete"),
        };
        json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": code,
            "display": display,
        }]})
    }
}

/// One version a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub activity: Activity,
}

impl Target {
    fn versioned(&self) -> String {
        format!(
            "{}/{}/_history/{}",
            self.resource_type, self.id, self.version_id
        )
    }
}

/// The id of the Provenance of a commit at `recorded_us` whose first target is `first`: the
/// commit's instant (13 hexadecimal digits of its microseconds) then 19 of a digest of that
/// version's reference. Each version is written once, so the id is unique; it takes no id from
/// the generator that names the resources clients write; and it can be derived again from the
/// version (whose `lastUpdated` is the commit's instant).
///
/// The instant comes first so that ids sort by time, as the generator's UUIDv7s do: each
/// index keyed by a resource's id then takes a commit's Provenance at its end, not at a random
/// page. With a digest alone, each Provenance dirtied a random page of each of those indexes:
/// in a SQLite `create-careplan` run (`benches/RESULTS.md`, 2026-12-07 session 10), ~690
/// pages a group commit, most of them those.
pub fn provenance_id(first: &Target, recorded_us: i64) -> String {
    time_ordered(recorded_us, &Sha256::digest(first.versioned().as_bytes()))
}

/// The id of the Provenance of a commit's targets in `patient`'s record, when one commit is
/// recorded once per patient.
pub fn provenance_id_for(first: &Target, patient: &str, recorded_us: i64) -> String {
    let key = format!("{}|Patient/{patient}", first.versioned());
    time_ordered(recorded_us, &Sha256::digest(key.as_bytes()))
}

/// 13 hexadecimal digits of `recorded_us` and the first 19 of `digest`: 32 in all, the
/// server's namespace.
fn time_ordered(recorded_us: i64, digest: &[u8]) -> String {
    let mut id = instant_prefix(recorded_us);
    id.push_str(&hex(digest)[..19]);
    id
}

/// `micros` as 13 hexadecimal digits, so that ids beginning with it sort by time (enough until
/// the year 2112; an instant outside them is clamped).
pub(crate) fn instant_prefix(micros: i64) -> String {
    const LIMIT: i64 = (1 << 52) - 1;
    format!("{:013x}", micros.clamp(0, LIMIT))
}

/// Whether `id` is in the namespace of the Provenance ids the server derives (32 lowercase hex
/// digits): clients may not create a Provenance there, or they could take the id of a record
/// the server is about to write.
pub fn is_server_provenance_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The Provenance of one commit.
pub fn record(
    who: &Attribution,
    targets: &[Target],
    patients: &[String],
    recorded_us: i64,
    supplied: Option<&SuppliedProvenance>,
) -> FhirResult<Value> {
    let recorded = format_instant(recorded_us);
    if let Some(s) = supplied {
        check_claims(s, who, targets, recorded_us)?;
    }
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("Provenance"));
    if !patients.is_empty() {
        let extension: Vec<Value> = patients
            .iter()
            .map(|p| json!({"url": PATIENT_EXTENSION, "valueReference": {"reference": format!("Patient/{p}")}}))
            .collect();
        out.insert("extension".into(), Value::from(extension));
    }
    let target: Vec<Value> = targets
        .iter()
        .map(|t| json!({"reference": t.versioned()}))
        .collect();
    out.insert("target".into(), Value::from(target));
    out.insert("recorded".into(), json!(recorded));
    if let Some(policy) = supplied.and_then(|s| s.policy.clone()) {
        out.insert("policy".into(), policy);
    }
    let server_activity = targets.first().and_then(|first| {
        targets
            .iter()
            .all(|t| t.activity == first.activity)
            .then(|| first.activity.coding())
    });
    // The server's v3-DataOperation stays first; a client's activity adds its codings and text
    // (it can describe the change, never turn an update into a create).
    let activity = match (server_activity, supplied.and_then(|s| s.activity.as_ref())) {
        (Some(mut server), Some(client)) => {
            if let (Some(codings), Some(more)) = (
                server["coding"].as_array_mut(),
                client.get("coding").and_then(Value::as_array),
            ) {
                codings.extend(more.iter().cloned());
            }
            if let Some(text) = client.get("text") {
                server["text"] = text.clone();
            }
            Some(server)
        }
        (server, client) => server.or_else(|| client.cloned()),
    };
    if let Some(activity) = activity {
        out.insert("activity".into(), activity);
    }
    if let Some(reason) = supplied.and_then(|s| s.reason.clone()) {
        out.insert("reason".into(), reason);
    }
    let mut author = json!({
        "type": participant("author", "Author"),
        "who": {"reference": who.author},
    });
    if let Some(patient) = &who.on_behalf_of {
        author["onBehalfOf"] = json!({"reference": patient});
    }
    out.insert(
        "agent".into(),
        json!([author, {
            "type": participant("transmitter", "Transmitter"),
            "who": {"reference": who.transmitter},
        }]),
    );
    Ok(Value::Object(out))
}

fn participant(code: &str, display: &str) -> Value {
    json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
        "code": code,
        "display": display,
    }]})
}

/// A client's claims about who, what and when must agree with the server's record of a commit
/// of `targets` at `recorded_us`.
pub fn check_claims(
    s: &SuppliedProvenance,
    who: &Attribution,
    targets: &[Target],
    recorded_us: i64,
) -> FhirResult<()> {
    let recorded = format_instant(recorded_us);
    for claimed in &s.targets {
        let names_a_target = targets.iter().any(|t| {
            let plain = format!("{}/{}", t.resource_type, t.id);
            claimed == &plain || claimed == &t.versioned()
        });
        if !names_a_target {
            return Err(bad(format!(
                "X-Provenance names target {claimed}, which this request does not write"
            )));
        }
    }
    for claimed in &s.agents {
        if claimed != &who.author && claimed != &who.transmitter {
            return Err(bad(format!(
                "X-Provenance names agent {claimed}, but the access token says {} through {}",
                who.author, who.transmitter
            )));
        }
    }
    if let Some(at) = &s.recorded {
        if *at != recorded {
            return Err(bad(format!(
                "X-Provenance says recorded {at}; the server records {recorded}"
            )));
        }
    }
    Ok(())
}

/// The Device resource standing for an app (or for the server itself).
pub fn device(client_id: Option<&str>, name: &str) -> Value {
    let mut device = json!({
        "resourceType": "Device",
        "status": "active",
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "type": {"text": "software application"},
    });
    if let Some(client) = client_id {
        device["identifier"] = json!([{
            "system": "urn:ietf:params:oauth:client-id",
            "value": client,
        }]);
    }
    device
}

tokio::task_local! {
    /// The `X-Provenance` of the request being served, for the duration of its writes.
    static SUPPLIED: Option<std::sync::Arc<SuppliedProvenance>>;
}

/// Run `writes` (one request's calls into the service) with the client's `X-Provenance`: the
/// HTTP layer's one way to hand request-scoped attribution to the write pipeline without
/// threading it through every interaction's signature.
pub async fn with_supplied<F: std::future::Future>(
    supplied: Option<SuppliedProvenance>,
    writes: F,
) -> F::Output {
    SUPPLIED
        .scope(supplied.map(std::sync::Arc::new), writes)
        .await
}

/// The `X-Provenance` of the request being served, if any.
pub fn supplied() -> Option<std::sync::Arc<SuppliedProvenance>> {
    SUPPLIED.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::policy::{Grant, ScopeSet, ScopedAccess};
    use std::sync::Arc;

    fn token(client: &str, fhir_user: Option<&str>, patient: Option<&str>) -> Access {
        Access::Scoped(Arc::new(ScopedAccess {
            grant: Grant {
                client_id: client.into(),
                subject: "u".into(),
                scope: "patient/*.cruds".into(),
                patient: patient.map(str::to_string),
                fhir_user: fhir_user.map(str::to_string),
                expires_at: 0,
            },
            scopes: ScopeSet::parse("patient/*.cruds"),
            user_reach: crate::policy::Reach::Nobody,
        }))
    }

    fn target(t: &str, id: &str, v: i64, activity: Activity) -> Target {
        Target {
            resource_type: t.into(),
            id: id.into(),
            version_id: v,
            activity,
        }
    }

    #[test]
    fn who_made_a_change_comes_from_the_token() {
        let table = [
            (
                token("portal", Some("Patient/p1"), Some("p1")),
                ("Patient/p1", None, "Device/app-portal"),
            ),
            (
                token("carer-app", Some("RelatedPerson/r1"), Some("p1")),
                (
                    "RelatedPerson/r1",
                    Some("Patient/p1"),
                    "Device/app-carer-app",
                ),
            ),
            (
                token("ehr", Some("Practitioner/dr"), None),
                ("Practitioner/dr", None, "Device/app-ehr"),
            ),
            (
                token("backend", None, None),
                ("Device/app-backend", None, "Device/app-backend"),
            ),
            (
                Access::Unrestricted,
                ("Device/coplan", None, "Device/coplan"),
            ),
        ];
        for (access, (author, on_behalf_of, transmitter)) in table {
            let who = Attribution::of(&access, &["p9".into()]);
            assert_eq!(who.author, author);
            assert_eq!(who.on_behalf_of.as_deref(), on_behalf_of);
            assert_eq!(who.transmitter, transmitter);
        }
        // A carer's token without a launch patient acts for the patient whose record changed.
        let carer = Attribution::of(&token("c", Some("RelatedPerson/r1"), None), &["p9".into()]);
        assert_eq!(carer.on_behalf_of.as_deref(), Some("Patient/p9"));
    }

    #[test]
    fn device_ids_are_valid_fhir_ids() {
        assert_eq!(device_id("portal"), "app-portal");
        let odd = device_id("https://apps.example/my app");
        assert!(crate::validate::is_valid_id(&odd), "{odd}");
        assert_ne!(odd, device_id("https://apps.example/other app"));
    }

    #[test]
    fn the_record_of_a_commit() {
        let who = Attribution::of(&token("portal", Some("Patient/p1"), Some("p1")), &[]);
        let targets = [target("Goal", "g1", 3, Activity::Update)];
        let p = record(&who, &targets, &["p1".into()], 1_767_225_600_123_000, None).unwrap();
        assert_eq!(
            p,
            json!({
                "resourceType": "Provenance",
                "extension": [{"url": PATIENT_EXTENSION, "valueReference": {"reference": "Patient/p1"}}],
                "target": [{"reference": "Goal/g1/_history/3"}],
                "recorded": "2026-01-01T00:00:00.123Z",
                "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE", "display": "revise"}]},
                "agent": [
                    {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}]}, "who": {"reference": "Patient/p1"}},
                    {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "transmitter", "display": "Transmitter"}]}, "who": {"reference": "Device/app-portal"}}
                ]
            })
        );
        // A transaction that creates and updates: every target, no single activity.
        let mixed = [
            target("Goal", "g1", 3, Activity::Update),
            target("CarePlan", "c1", 1, Activity::Create),
        ];
        let p = record(&who, &mixed, &[], 0, None).unwrap();
        assert_eq!(p["target"].as_array().unwrap().len(), 2);
        assert!(p.get("activity").is_none() && p.get("extension").is_none());
        assert_ne!(provenance_id(&mixed[0], 0), provenance_id(&mixed[1], 0));
        assert_eq!(provenance_id(&mixed[0], 0).len(), 32);
    }

    #[test]
    fn server_provenance_ids_sort_by_the_commits_instant() {
        let first = target("Goal", "g1", 1, Activity::Create);
        let at = 1_796_611_324_865_000; // 2026-12-07T02:42:04.865Z
        let id = provenance_id(&first, at);
        assert_eq!(&id[..13], "662022bd169e8");
        assert_eq!(i64::from_str_radix(&id[..13], 16).unwrap(), at);
        assert!(is_server_provenance_id(&id));
        // Derived again from the same version and instant; another version, patient or
        // instant gives another id.
        assert_eq!(provenance_id(&first, at), id);
        let second = target("Goal", "g1", 2, Activity::Update);
        assert_ne!(provenance_id(&second, at)[13..], id[13..]);
        assert_ne!(provenance_id_for(&first, "p1", at), id);
        assert_ne!(
            provenance_id_for(&first, "p1", at),
            provenance_id_for(&first, "p2", at)
        );
        // Later commits sort after earlier ones, whatever their targets.
        let ids: Vec<String> = (0..50)
            .map(|k| {
                provenance_id(
                    &target("CarePlan", &format!("c{k}"), 1, Activity::Create),
                    at + k * 7,
                )
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        // Instants outside the 13 digits are clamped, never longer or shorter ids.
        assert_eq!(&provenance_id(&first, -5)[..13], "0000000000000");
        assert_eq!(&provenance_id(&first, i64::MAX)[..13], "fffffffffffff");
        assert!(is_server_provenance_id(&provenance_id(&first, i64::MAX)));
    }

    #[test]
    fn a_client_adds_reason_activity_and_policy_but_never_who_what_or_when() {
        let who = Attribution::of(&token("portal", Some("Patient/p1"), Some("p1")), &[]);
        let targets = [target("Goal", "g1", 2, Activity::Update)];
        let supplied = SuppliedProvenance::parse(
            r#"{"resourceType":"Provenance","reason":[{"text":"after my review"}],
                "policy":["http://example.org/consent/1"],
                "activity":{"text":"patient review"},
                "target":[{"reference":"Goal/g1"}],
                "agent":[{"who":{"reference":"Patient/p1"}}]}"#,
        )
        .unwrap();
        let p = record(&who, &targets, &[], 0, Some(&supplied)).unwrap();
        assert_eq!(p["reason"][0]["text"], "after my review");
        assert_eq!(p["policy"][0], "http://example.org/consent/1");
        assert_eq!(p["activity"]["text"], "patient review");
        assert_eq!(p["agent"][0]["who"]["reference"], "Patient/p1");

        let refused = [
            r#"{"resourceType":"Provenance","agent":[{"who":{"reference":"Practitioner/dr"}}]}"#,
            r#"{"resourceType":"Provenance","target":[{"reference":"Goal/other"}]}"#,
            r#"{"resourceType":"Provenance","recorded":"2020-01-01T00:00:00Z"}"#,
        ];
        for header in refused {
            let s = SuppliedProvenance::parse(header).unwrap();
            let err = record(&who, &targets, &[], 0, Some(&s)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest, "{header}");
        }
        for malformed in [
            "not json",
            "[]",
            r#"{"resourceType":"Patient"}"#,
            r#"{"resourceType":"Provenance","entity":[{"role":"source"}]}"#,
            r#"{"resourceType":"Provenance","reason":[]}"#,
            r#"{"resourceType":"Provenance","target":[{"display":"x"}]}"#,
        ] {
            let err = SuppliedProvenance::parse(malformed).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest, "{malformed}");
        }
    }
}
