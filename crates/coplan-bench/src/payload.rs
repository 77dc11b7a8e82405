//! FHIR R4 request bodies used by the benchmark: the seeded US Core Patient,
//! its update body, and a realistic (~3-4 KB) US Core CarePlan.

use crate::rng::Rng;
use serde_json::{json, Value};

const GIVEN: [&str; 8] = [
    "Amelia", "Noah", "Olivia", "Liam", "Sofia", "Mateo", "Aisha", "Kenji",
];
const FAMILY: [&str; 8] = [
    "Nguyen", "Okafor", "Schmidt", "Garcia", "Kowalski", "Haddad", "Tanaka", "Brown",
];

/// A US Core Patient for seeding (no `id`: the server assigns it).
pub fn patient(n: usize) -> Value {
    let given = GIVEN[n % GIVEN.len()];
    let family = FAMILY[(n / GIVEN.len()) % FAMILY.len()];
    let gender = if n.is_multiple_of(2) {
        "female"
    } else {
        "male"
    };
    let birth = format!(
        "{:04}-{:02}-{:02}",
        1940 + (n % 60),
        1 + (n % 12),
        1 + (n % 28)
    );
    json!({
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [{
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical Record Number"}]},
            "system": "urn:oid:1.2.36.146.595.217.0.1",
            "value": format!("BENCH-{n:08}")
        }],
        "active": true,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": format!("555-{:04}", n % 10000), "use": "home"}],
        "gender": gender,
        "birthDate": birth,
        "address": [{
            "use": "home",
            "line": [format!("{} Main Street", 1 + n % 999)],
            "city": "Springfield",
            "state": "MA",
            "postalCode": "01101",
            "country": "US"
        }]
    })
}

/// The body of a PUT to `Patient/{id}`: the seeded patient with `id` set and
/// a field that changes with `counter`, so every version really differs.
pub fn patient_update(id: &str, n: usize, counter: u64) -> Value {
    let mut p = patient(n);
    if let Some(obj) = p.as_object_mut() {
        obj.insert("id".to_string(), Value::String(id.to_string()));
        obj.insert(
            "telecom".to_string(),
            json!([{"system": "phone", "value": format!("555-{:04}", counter % 10000), "use": "mobile"},
                   {"system": "email", "value": format!("patient{n}.{counter}@example.org"), "use": "home"}]),
        );
    }
    p
}

/// A US Core CarePlan (status active, intent plan, category assess-plan) for
/// `Patient/{subject_id}`, with narrative, contained goals, five activities
/// and a period. Valid R4 JSON (checked against a strict R4 parser); about
/// 3.7-4.0 KB serialised compactly for ids of 1 to 64 characters.
pub fn careplan(subject_id: &str, rng: &mut Rng) -> Value {
    let subject = format!("Patient/{subject_id}");
    let month = 1 + rng.below(12);
    let day = 1 + rng.below(28);
    let start = format!("2026-{month:02}-{day:02}");
    let end = format!("2027-{month:02}-{day:02}");
    let review = format!("2026-{:02}-{day:02}", 1 + (month + 2) % 12);
    let a1c_target = 6 + rng.below(2);
    let walk_minutes = 20 + 5 * rng.below(5);
    let div = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">\
<p><b>Diabetes self-management plan</b>, {start} to {end}.</p>\
<p>Goals: HbA1c below {a1c_target}% and blood pressure below 130/80 mmHg.</p>\
<ul><li>Diabetic diet with dietitian follow-up</li>\
<li>Walk {walk_minutes} minutes, five days a week</li>\
<li>HbA1c test on {review}</li>\
<li>Metformin 500 mg extended release once daily</li>\
<li>Follow-up visit with primary care on {review}</li></ul></div>"
    );
    let snomed = "http://snomed.info/sct";
    let dm2 = json!([{"coding": [{"system": snomed, "code": "44054006", "display": "Diabetes mellitus type 2"}]}]);
    json!({
        "resourceType": "CarePlan",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan"]},
        "text": {"status": "generated", "div": div},
        "contained": [
            {
                "resourceType": "Goal",
                "id": "goal-a1c",
                "lifecycleStatus": "active",
                "description": {"text": format!("HbA1c below {a1c_target}%")},
                "subject": {"reference": subject},
                "target": [{
                    "measure": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
                    "detailQuantity": {"value": a1c_target, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                    "dueDate": end
                }]
            },
            {
                "resourceType": "Goal",
                "id": "goal-bp",
                "lifecycleStatus": "active",
                "description": {"text": "Blood pressure below 130/80 mmHg"},
                "subject": {"reference": subject}
            }
        ],
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{:08x}-0000-4000-8000-{:012x}", rng.next_u64() as u32, rng.next_u64() & 0xffff_ffff_ffff)}],
        "status": "active",
        "intent": "plan",
        "category": [{
            "coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan", "display": "Assessment and Plan of Treatment"}]
        }],
        "title": "Type 2 diabetes self-management",
        "description": "Jointly agreed plan to bring glycaemic control and blood pressure to target.",
        "subject": {"reference": subject},
        "period": {"start": start, "end": end},
        "created": format!("{start}T09:30:00Z"),
        "goal": [{"reference": "#goal-a1c"}, {"reference": "#goal-bp"}],
        "activity": [
            {"detail": {
                "kind": "NutritionOrder",
                "code": {"coding": [{"system": snomed, "code": "160670007", "display": "Diabetic diet"}]},
                "reasonCode": dm2,
                "goal": [{"reference": "#goal-a1c"}],
                "status": "in-progress",
                "scheduledPeriod": {"start": start, "end": end},
                "description": "Carbohydrate-controlled diet."
            }},
            {"detail": {
                "kind": "Task",
                "code": {"coding": [{"system": snomed, "code": "229065009", "display": "Exercise therapy"}]},
                "goal": [{"reference": "#goal-a1c"}, {"reference": "#goal-bp"}],
                "status": "in-progress",
                "scheduledTiming": {"repeat": {"frequency": 5, "period": 1, "periodUnit": "wk", "duration": walk_minutes, "durationUnit": "min"}},
                "description": format!("Brisk walk of {walk_minutes} minutes.")
            }},
            {"detail": {
                "kind": "ServiceRequest",
                "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
                "goal": [{"reference": "#goal-a1c"}],
                "status": "scheduled",
                "scheduledString": format!("On or after {review}"),
                "description": "Quarterly HbA1c."
            }},
            {"detail": {
                "kind": "MedicationRequest",
                "goal": [{"reference": "#goal-a1c"}],
                "status": "in-progress",
                "productCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975", "display": "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"}]},
                "dailyAmount": {"value": 1, "unit": "tablet", "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm", "code": "TAB"},
                "description": "With the evening meal."
            }},
            {"detail": {
                "kind": "Appointment",
                "code": {"coding": [{"system": snomed, "code": "185389009", "display": "Follow-up visit"}]},
                "goal": [{"reference": "#goal-bp"}],
                "status": "scheduled",
                "scheduledPeriod": {"start": format!("{review}T10:00:00Z"), "end": format!("{review}T10:30:00Z")},
                "location": {"display": "Springfield Family Practice"},
                "performer": [{"display": "Primary care physician"}],
                "description": "Review progress against goals."
            }}
        ],
        "note": [{"text": "Prefers morning appointments."}]
    })
}

/// A transaction Bundle of `n` PHQ-9 total-score Observations for `patient_id`.
pub fn observation_transaction(patient_id: &str, n: usize, salt: usize) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|k| {
            serde_json::json!({
                "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{:06x}{:06x}", salt % 0xffffff, k),
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                    "subject": {"reference": format!("Patient/{patient_id}")},
                    "effectiveDateTime": format!("2026-{:02}-{:02}T10:00:00Z", 1 + (k % 12), 1 + (salt % 28)),
                    "valueQuantity": {"value": (salt + k) % 28, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
                },
                "request": {"method": "POST", "url": "Observation"}
            })
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// The PHQ-9 items (US Core linkIds, LOINC codes) and the LOINC answers by ordinal 0–3.
const PHQ9_ITEMS: [&str; 9] = [
    "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3",
    "44260-8",
];
const PHQ9_ANSWERS: [&str; 4] = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"];

/// A completed PHQ-9 response (to the PHQ-9 that ships with Coplan) by `patient_id`, with
/// random answers: validated, scored, extracted and moving the patient's goal on arrival.
pub fn phq9_response(patient_id: &str, rng: &mut Rng) -> Value {
    let items: Vec<Value> = PHQ9_ITEMS
        .iter()
        .map(|code| {
            json!({
                "linkId": format!("/{code}"),
                "answer": [{"valueCoding": {"system": "http://loinc.org", "code": PHQ9_ANSWERS[rng.below(4)]}}]
            })
        })
        .collect();
    json!({
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://coplan.dev/fhir/Questionnaire/phq-9|1.0.0",
        "status": "completed",
        "subject": {"reference": format!("Patient/{patient_id}")},
        "author": {"reference": format!("Patient/{patient_id}")},
        "authored": format!("2026-{:02}-{:02}T09:00:00Z", 1 + rng.below(12), 1 + rng.below(28)),
        "item": items
    })
}

/// The patient's goal a PHQ-9 total measures: "PHQ-9 below 5".
pub fn phq9_goal(patient_id: &str) -> Value {
    json!({
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "description": {"text": "Feel less low: PHQ-9 below 5"},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "target": [{
            "measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "detailQuantity": {"value": 5, "comparator": "<", "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
        path.iter().fold(v, |acc, k| &acc[*k])
    }

    #[test]
    fn careplan_is_valid_json_of_the_right_size() {
        let mut rng = Rng::new(42);
        for i in 0..200 {
            // Short ids, UUIDs and the 64-character FHIR id maximum.
            let id = match i % 3 {
                0 => format!("{i}"),
                1 => format!("9b2c1c3e-5f0a-4d7e-8a41-{i:012}"),
                _ => format!("{i:0>64}"),
            };
            let bytes = serde_json::to_vec(&careplan(&id, &mut rng)).expect("serialise");
            assert!(
                (3000..=4096).contains(&bytes.len()),
                "careplan size {} out of 3-4 KB",
                bytes.len()
            );
            let back: Value = serde_json::from_slice(&bytes).expect("reparse");
            assert_eq!(back["resourceType"], "CarePlan");
            assert_eq!(back["status"], "active");
            assert_eq!(back["intent"], "plan");
            assert_eq!(
                walk(&back, &["subject", "reference"]),
                &Value::String(format!("Patient/{id}"))
            );
            assert_eq!(back["category"][0]["coding"][0]["code"], "assess-plan");
            assert_eq!(back["text"]["status"], "generated");
            let div = back["text"]["div"].as_str().expect("div");
            assert!(div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"));
            assert!(div.ends_with("</div>"));
            assert!(!div.contains('&'), "unescaped entity in narrative");
        }
    }

    #[test]
    fn careplan_uses_only_r4_codes() {
        const KINDS: [&str; 8] = [
            "Appointment",
            "CommunicationRequest",
            "DeviceRequest",
            "MedicationRequest",
            "NutritionOrder",
            "Task",
            "ServiceRequest",
            "VisionPrescription",
        ];
        const STATUSES: [&str; 9] = [
            "not-started",
            "scheduled",
            "in-progress",
            "on-hold",
            "completed",
            "cancelled",
            "stopped",
            "unknown",
            "entered-in-error",
        ];
        let cp = careplan("1", &mut Rng::new(7));
        let acts = cp["activity"].as_array().expect("activities");
        assert!(acts.len() >= 3);
        for a in acts {
            let d = &a["detail"];
            assert!(KINDS.contains(&d["kind"].as_str().unwrap_or("")));
            assert!(STATUSES.contains(&d["status"].as_str().unwrap_or("")));
            // Exactly one scheduled[x] choice at most.
            let n = ["scheduledPeriod", "scheduledTiming", "scheduledString"]
                .iter()
                .filter(|k| d.get(**k).is_some())
                .count();
            assert!(n <= 1);
            // Every local goal reference resolves to a contained Goal.
            for g in d["goal"].as_array().into_iter().flatten() {
                let r = g["reference"].as_str().expect("ref");
                let id = r.strip_prefix('#').expect("local ref");
                assert!(cp["contained"]
                    .as_array()
                    .expect("contained")
                    .iter()
                    .any(|c| c["id"] == id && c["resourceType"] == "Goal"));
            }
        }
    }

    #[test]
    fn patient_and_update_bodies() {
        let p = patient(3);
        assert_eq!(p["resourceType"], "Patient");
        assert!(p.get("id").is_none());
        let u = patient_update("abc", 3, 9);
        assert_eq!(u["id"], "abc");
        assert_ne!(p["telecom"], u["telecom"]);
        let text = serde_json::to_string(&u).expect("serialise");
        assert!(text.contains("\"id\":\"abc\""));
    }

    #[test]
    fn observation_transactions_have_n_entries_for_the_patient() {
        let bundle = observation_transaction("p1", 10, 7);
        let entries = bundle["entry"].as_array().expect("entries");
        assert_eq!(entries.len(), 10);
        assert!(entries
            .iter()
            .all(|e| e["resource"]["subject"]["reference"] == "Patient/p1"));
        assert_eq!(bundle["type"], "transaction");
    }
}
