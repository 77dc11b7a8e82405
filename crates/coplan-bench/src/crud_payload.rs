//! FHIR R4 bodies of the cross-server `crud` scenario: the nine linked resources of one
//! synthetic visit (a Patient, then an Encounter, Condition, Observation, Procedure,
//! MedicationRequest, AllergyIntolerance, Immunization and DiagnosticReport, each referencing
//! the patient and, where R4 has the element, the encounter) and the small change each update
//! makes. Plain R4 with no profile claimed, so that any R4 server takes them; codes from
//! published examples (LOINC, SNOMED CT, CVX, RxNorm); made-up people only.

use serde_json::{json, Value};

/// The resource types of one cycle, in creation order (deleted in the reverse order, so that
/// nothing is deleted while another resource of the cycle still references it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Res {
    Patient,
    Encounter,
    Condition,
    Observation,
    Procedure,
    MedicationRequest,
    AllergyIntolerance,
    Immunization,
    DiagnosticReport,
}

/// Creation order.
pub const ORDER: [Res; 9] = [
    Res::Patient,
    Res::Encounter,
    Res::Condition,
    Res::Observation,
    Res::Procedure,
    Res::MedicationRequest,
    Res::AllergyIntolerance,
    Res::Immunization,
    Res::DiagnosticReport,
];

impl Res {
    pub fn name(self) -> &'static str {
        match self {
            Res::Patient => "Patient",
            Res::Encounter => "Encounter",
            Res::Condition => "Condition",
            Res::Observation => "Observation",
            Res::Procedure => "Procedure",
            Res::MedicationRequest => "MedicationRequest",
            Res::AllergyIntolerance => "AllergyIntolerance",
            Res::Immunization => "Immunization",
            Res::DiagnosticReport => "DiagnosticReport",
        }
    }

    /// The element that references the patient (`None` for the Patient itself).
    pub fn patient_element(self) -> Option<&'static str> {
        match self {
            Res::Patient => None,
            Res::AllergyIntolerance | Res::Immunization => Some("patient"),
            _ => Some("subject"),
        }
    }

    /// Whether the resource references the cycle's Encounter (every type after it: all have an
    /// R4 `encounter` element).
    pub fn has_encounter(self) -> bool {
        !matches!(self, Res::Patient | Res::Encounter)
    }
}

/// The server ids the later resources of a cycle reference.
pub struct Links<'a> {
    pub patient: &'a str,
    pub encounter: &'a str,
}

const SNOMED: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const GIVEN: [&str; 6] = ["Ada", "Bao", "Chiara", "Dmitri", "Esi", "Farid"];
const FAMILY: [&str; 6] = ["Lindqvist", "Mwangi", "Ortega", "Petrov", "Quinn", "Rahman"];

/// A date in 2025 that varies with `n`.
fn day(n: u64) -> String {
    format!("2025-{:02}-{:02}", 1 + (n / 28) % 12, 1 + n % 28)
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

/// The body to POST for `res` in cycle `n` (no `id`: the server assigns it).
pub fn resource(res: Res, links: &Links<'_>, n: u64) -> Value {
    let patient = json!({"reference": format!("Patient/{}", links.patient)});
    let encounter = json!({"reference": format!("Encounter/{}", links.encounter)});
    let date = day(n);
    let at = format!("{date}T09:15:00Z");
    let mut body = match res {
        Res::Patient => json!({
            "identifier": [{"system": "http://example.org/fhir/sid/crud-bench", "value": format!("CRUD-{n:012}")}],
            "active": true,
            "name": [{"use": "official", "family": FAMILY[(n / 6 % 6) as usize], "given": [GIVEN[(n % 6) as usize]]}],
            "telecom": [{"system": "phone", "value": format!("555-{:04}", n % 10_000), "use": "home"}],
            "gender": if n.is_multiple_of(2) { "female" } else { "male" },
            "birthDate": format!("{:04}-{:02}-{:02}", 1940 + n % 60, 1 + n % 12, 1 + n % 28),
            "address": [{"use": "home", "line": [format!("{} Elm Street", 1 + n % 999)], "city": "Springfield", "postalCode": "01101", "country": "US"}]
        }),
        Res::Encounter => json!({
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
            "type": [concept(SNOMED, "185349003", "Encounter for check up (procedure)")],
            "period": {"start": format!("{date}T09:00:00Z")}
        }),
        Res::Condition => json!({
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
            "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")],
            "code": concept(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
            "onsetDateTime": date,
            "recordedDate": at
        }),
        Res::Observation => json!({
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")],
            "code": concept(LOINC, "8867-4", "Heart rate"),
            "effectiveDateTime": at,
            "valueQuantity": {"value": 58 + n % 40, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}
        }),
        Res::Procedure => json!({
            "status": "completed",
            "code": concept(SNOMED, "430193006", "Medication reconciliation (procedure)"),
            "performedDateTime": at
        }),
        Res::MedicationRequest => json!({
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": concept("http://www.nlm.nih.gov/research/umls/rxnorm", "860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"),
            "authoredOn": at,
            "dosageInstruction": [{"sequence": 1, "text": "One tablet daily with the evening meal", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]
        }),
        Res::AllergyIntolerance => json!({
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
            "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
            "type": "allergy",
            "category": ["food"],
            "criticality": "low",
            "code": concept(SNOMED, "227493005", "Cashew nuts"),
            "recordedDate": at
        }),
        Res::Immunization => json!({
            "status": "completed",
            "vaccineCode": concept("http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal, injectable, preservative free"),
            "occurrenceDateTime": at,
            "primarySource": true
        }),
        Res::DiagnosticReport => json!({
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
            "code": concept(LOINC, "58410-2", "CBC panel - Blood by Automated count"),
            "effectiveDateTime": at,
            "issued": format!("{date}T11:00:00Z")
        }),
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert("resourceType".to_string(), json!(res.name()));
        if let Some(element) = res.patient_element() {
            obj.insert(element.to_string(), patient);
        }
        if res.has_encounter() {
            obj.insert("encounter".to_string(), encounter);
        }
    }
    body
}

/// The body of the PUT that updates the created `body` as `id`: the same resource with its
/// `id` and one small change (the Encounter finishes, the Patient gets a mobile number, the
/// report a conclusion, everything else a note).
pub fn updated(res: Res, body: &Value, id: &str, n: u64) -> Value {
    let mut out = body.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.insert("id".to_string(), json!(id));
        match res {
            Res::Patient => {
                obj.insert(
                    "telecom".to_string(),
                    json!([{"system": "phone", "value": format!("555-{:04}", (n + 1) % 10_000), "use": "mobile"}]),
                );
            }
            Res::Encounter => {
                obj.insert("status".to_string(), json!("finished"));
                obj.insert(
                    "period".to_string(),
                    json!({"start": format!("{}T09:00:00Z", day(n)), "end": format!("{}T09:40:00Z", day(n))}),
                );
            }
            Res::DiagnosticReport => {
                obj.insert("conclusion".to_string(), json!("Within normal limits."));
            }
            _ => {
                obj.insert(
                    "note".to_string(),
                    json!([{"text": format!("Reviewed at follow-up {n}.")}]),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: Links<'static> = Links {
        patient: "pat-1",
        encounter: "enc-1",
    };

    /// Every body, created and updated, passes the workspace's R4 validator (unknown elements,
    /// cardinality, required elements and choices, primitive formats, required bindings).
    #[test]
    fn bodies_are_valid_r4() {
        for n in [0, 1, 27, 365, 10_007] {
            for res in ORDER {
                let created = resource(res, &LINKS, n);
                let issues = fhir_validate::validate_resource(&created);
                let errors: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
                assert!(errors.is_empty(), "{} #{n}: {errors:?}", res.name());
                let put = updated(res, &created, "id-9", n);
                let issues = fhir_validate::validate_resource(&put);
                let errors: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
                assert!(errors.is_empty(), "{} update #{n}: {errors:?}", res.name());
            }
        }
        // The check is live: a body missing a required element, or with one R4 lacks, fails.
        let mut broken = resource(Res::Encounter, &LINKS, 1);
        broken.as_object_mut().expect("object").remove("class");
        assert!(fhir_validate::validate_resource(&broken)
            .iter()
            .any(|i| i.is_error()));
        let mut broken = resource(Res::Procedure, &LINKS, 1);
        broken["performedDateTime"] = json!("not a date");
        assert!(fhir_validate::validate_resource(&broken)
            .iter()
            .any(|i| i.is_error()));
    }

    #[test]
    fn required_elements_are_present() {
        let required: [(Res, &[&str]); 9] = [
            (Res::Patient, &["name", "gender", "birthDate"]),
            (Res::Encounter, &["status", "class", "subject"]),
            (Res::Condition, &["code", "subject", "clinicalStatus"]),
            (Res::Observation, &["status", "code", "subject"]),
            (Res::Procedure, &["status", "subject"]),
            (
                Res::MedicationRequest,
                &["status", "intent", "medicationCodeableConcept", "subject"],
            ),
            (Res::AllergyIntolerance, &["patient", "code"]),
            (
                Res::Immunization,
                &["status", "vaccineCode", "patient", "occurrenceDateTime"],
            ),
            (Res::DiagnosticReport, &["status", "code", "subject"]),
        ];
        for (res, names) in required {
            let body = resource(res, &LINKS, 3);
            assert_eq!(body["resourceType"], res.name());
            assert!(body.get("id").is_none(), "{} has an id", res.name());
            for name in names {
                assert!(body.get(*name).is_some(), "{} lacks {name}", res.name());
            }
        }
    }

    #[test]
    fn every_resource_references_the_patient_and_encounter() {
        for res in ORDER.into_iter().skip(1) {
            let body = resource(res, &LINKS, 5);
            let element = res.patient_element().expect("not the patient");
            assert_eq!(
                body[element]["reference"],
                "Patient/pat-1",
                "{}",
                res.name()
            );
            if res == Res::Encounter {
                assert!(body.get("encounter").is_none());
            } else {
                assert_eq!(
                    body["encounter"]["reference"],
                    "Encounter/enc-1",
                    "{}",
                    res.name()
                );
            }
        }
        let patient = resource(Res::Patient, &LINKS, 5);
        let text = serde_json::to_string(&patient).expect("serialise");
        assert!(!text.contains("pat-1") && !text.contains("enc-1"));
        assert_eq!(Res::Immunization.patient_element(), Some("patient"));
        assert_eq!(Res::AllergyIntolerance.patient_element(), Some("patient"));
        assert_eq!(ORDER[0], Res::Patient);
        assert_eq!(ORDER[1], Res::Encounter);
    }

    #[test]
    fn updates_keep_the_links_set_the_id_and_change_something() {
        for res in ORDER {
            let created = resource(res, &LINKS, 8);
            let put = updated(res, &created, "abc", 8);
            assert_eq!(put["id"], "abc");
            assert_eq!(put["resourceType"], res.name());
            assert_ne!(put, created);
            let mut without_id = put.clone();
            without_id.as_object_mut().expect("object").remove("id");
            assert_ne!(without_id, created, "{}: no change", res.name());
            if let Some(element) = res.patient_element() {
                assert_eq!(put[element], created[element]);
            }
            assert_eq!(put.get("encounter"), created.get("encounter"));
        }
    }
}
