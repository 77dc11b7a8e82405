//! `coplan seed`: realistic synthetic data at scale, for demos and benchmarks — patients with
//! care teams, care plans (several categories and statuses), goals (some expressed by the
//! patient: "what matters to you"), health concerns, PHQ-9 and GAD-7 QuestionnaireResponses and
//! their score Observations over time. Every patient is one transaction through the normal
//! write path (validated, indexed, versioned). Deterministic for a given `seed`; no real data.

use crate::error::FhirResult;
use crate::policy::Access;
use crate::rest::FhirService;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const FAMILY: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Nakamura",
    "García",
    "Ó Briain",
    "Kowalski",
    "Haddad",
    "Müller",
    "Nguyen",
    "Mensah",
    "Rossi",
    "Dubois",
    "Patel",
    "Jensen",
    "Moreau",
    "Silva",
];
const GIVEN_F: &[&str] = &[
    "Amara", "Ingrid", "Yuki", "Lucía", "Siobhán", "Zofia", "Layla", "Zoë", "Mai", "Efua",
];
const GIVEN_M: &[&str] = &[
    "Chidi", "Erik", "Haruto", "Mateo", "Cian", "Piotr", "Omar", "Jonas", "Minh", "Kwame",
];
const WHAT_MATTERS: &[&str] = &[
    "Walk to the park with my grandchildren",
    "Sleep through the night",
    "Go back to choir practice",
    "Cook for my family again",
    "Return to work three days a week",
    "Feel less worried when I leave the house",
];
const CONCERNS: &[(&str, &str)] = &[
    ("35489007", "Depressive disorder"),
    ("197480006", "Anxiety disorder"),
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
];
const PLAN_STATUS: &[&str] = &[
    "active",
    "active",
    "active",
    "completed",
    "draft",
    "on-hold",
];
const CATEGORY: &[(&str, &str)] = &[
    (
        "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
        "assess-plan",
    ),
    ("http://snomed.info/sct", "736271009"),
    ("http://snomed.info/sct", "734163000"),
];

/// A small deterministic PRNG (xorshift64*), so a seed always produces the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn entry(full_url: &str, resource: Value) -> Value {
    let rt = resource["resourceType"]
        .as_str()
        .unwrap_or("Basic")
        .to_string();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": rt}})
}

/// One patient's transaction Bundle.
fn patient_bundle(n: u64, rng: &mut Rng, practitioners: &[String]) -> Value {
    let u = |k: &str| {
        format!(
            "urn:uuid:00000000-0000-4000-8000-{:06x}{:06x}",
            n % 0xffffff,
            k.bytes().map(u64::from).sum::<u64>() % 0xffffff
        )
    };
    let female = rng.below(2) == 0;
    let given = if female {
        *rng.pick(GIVEN_F)
    } else {
        *rng.pick(GIVEN_M)
    };
    let year = 1940 + rng.below(65);
    let patient = json!({"resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.99999", "value": format!("SYN{n:07}")}],
        "name": [{"family": *rng.pick(FAMILY), "given": [given]}],
        "gender": if female { "female" } else { "male" },
        "birthDate": format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))});
    let clinician = rng.pick(practitioners).clone();
    let (concern_code, concern_text) = *rng.pick(CONCERNS);
    let mut entries = vec![
        entry(&u("patient"), patient),
        entry(
            &u("team"),
            json!({"resourceType": "CareTeam", "status": "active", "subject": {"reference": u("patient")},
            "participant": [
                {"role": [{"coding": [{"system": "http://snomed.info/sct", "code": "446050000", "display": "Primary care physician"}]}], "member": {"reference": clinician}},
                {"role": [{"coding": [{"system": "http://snomed.info/sct", "code": "116154003", "display": "Patient"}]}], "member": {"reference": u("patient")}}]}),
        ),
        entry(
            &u("concern"),
            json!({"resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/condition-category", "code": "health-concern"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": concern_code, "display": concern_text}], "text": concern_text},
            "subject": {"reference": u("patient")}}),
        ),
        entry(
            &u("goal-patient"),
            json!({"resourceType": "Goal", "lifecycleStatus": "active",
            "description": {"text": *rng.pick(WHAT_MATTERS)}, "subject": {"reference": u("patient")},
            "expressedBy": {"reference": u("patient")},
            "target": [{"dueDate": format!("2027-{:02}-01", 1 + rng.below(12))}]}),
        ),
        entry(
            &u("goal-clinical"),
            json!({"resourceType": "Goal", "lifecycleStatus": *rng.pick(&["active", "completed", "proposed"]),
            "description": {"text": "PHQ-9 score below 10"}, "subject": {"reference": u("patient")},
            "expressedBy": {"reference": clinician},
            "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]}, "detailQuantity": {"value": 10, "comparator": "<", "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}, "dueDate": "2027-06-30"}]}),
        ),
    ];
    let plans = 1 + rng.below(2);
    for p in 0..plans {
        let (system, code) = *rng.pick(CATEGORY);
        let start_month = 1 + rng.below(12);
        entries.push(entry(
            &u(&format!("plan{p}")),
            json!({"resourceType": "CarePlan",
            "status": *rng.pick(PLAN_STATUS), "intent": "plan",
            "category": [{"coding": [{"system": system, "code": code}]}],
            "title": "Shared care plan", "subject": {"reference": u("patient")},
            "period": {"start": format!("2026-{start_month:02}-01")},
            "careTeam": [{"reference": u("team")}], "addresses": [{"reference": u("concern")}],
            "goal": [{"reference": u("goal-patient")}, {"reference": u("goal-clinical")}]}),
        ));
    }
    for (k, (questionnaire, loinc, max)) in [
        ("http://loinc.org/q/44249-1", "44261-6", 27),
        ("http://loinc.org/q/69737-5", "70274-6", 21),
    ]
    .into_iter()
    .enumerate()
    {
        for visit in 0..(1 + rng.below(3)) {
            let score = rng.below(max + 1);
            let when = format!(
                "2026-{:02}-{:02}T{:02}:00:00Z",
                1 + (visit * 3 + k) % 12,
                1 + rng.below(28),
                8 + rng.below(10)
            );
            let qr = u(&format!("qr{k}{visit}"));
            entries.push(entry(&qr, json!({"resourceType": "QuestionnaireResponse", "questionnaire": questionnaire,
                "status": "completed", "subject": {"reference": u("patient")}, "authored": when,
                "basedOn": [{"reference": u("plan0")}],
                "item": [{"linkId": "total", "text": "Total score", "answer": [{"valueInteger": score}]}]})));
            entries.push(entry(&u(&format!("obs{k}{visit}")), json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "subject": {"reference": u("patient")}, "effectiveDateTime": when,
                "valueQuantity": {"value": score, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"},
                "derivedFrom": [{"reference": qr}]})));
        }
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Seed `patients` synthetic patients (and a pool of practitioners) with `concurrency` parallel
/// transactions; `progress(patients_done, resources_written)` is called as work completes.
/// Ends by refreshing the database's planner statistics. Returns the number of resources
/// written.
pub async fn seed(
    fhir: Arc<FhirService>,
    patients: u64,
    seed: u64,
    concurrency: usize,
    progress: impl Fn(u64, u64) + Send + Sync + 'static,
) -> FhirResult<u64> {
    let mut rng = Rng(seed.max(1));
    let mut practitioners = Vec::new();
    for n in 0..50u64 {
        let practitioner = json!({"resourceType": "Practitioner",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": format!("99{n:08}")}],
            "name": [{"family": *rng.pick(FAMILY), "given": [*rng.pick(GIVEN_F)], "prefix": ["Dr"]}]});
        let created = fhir
            .create(&Access::Unrestricted, "Practitioner", practitioner)
            .await?;
        practitioners.push(format!("Practitioner/{}", created.id));
    }
    let practitioners = Arc::new(practitioners);
    let done = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(50));
    let progress = Arc::new(progress);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let (fhir, practitioners, done, written, progress, next) = (
            fhir.clone(),
            practitioners.clone(),
            done.clone(),
            written.clone(),
            progress.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(seed.wrapping_add(w as u64 * 7919).max(1));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= patients {
                    return Ok::<(), crate::error::FhirError>(());
                }
                let bundle = patient_bundle(n, &mut rng, &practitioners);
                let count = bundle["entry"].as_array().map_or(0, Vec::len) as u64;
                fhir.process_bundle(&Access::Unrestricted, bundle).await?;
                let total = written.fetch_add(count, Ordering::Relaxed) + count;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % 500 == 0 || finished == patients {
                    progress(finished, total);
                }
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(crate::error::FhirError::internal)??;
    }
    fhir.refresh_statistics()
        .await
        .map_err(crate::error::FhirError::internal)?;
    Ok(written.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_deterministic_and_reference_within_themselves() {
        let a = patient_bundle(7, &mut Rng(42), &["Practitioner/x".to_string()]);
        let b = patient_bundle(7, &mut Rng(42), &["Practitioner/x".to_string()]);
        assert_eq!(a, b);
        let entries = a["entry"].as_array().unwrap();
        assert!(entries.len() >= 8);
        let patient_url = entries[0]["fullUrl"].as_str().unwrap();
        assert!(entries
            .iter()
            .skip(1)
            .all(|e| e.to_string().contains(patient_url)));
    }
}
