//! Constraint kind 5: slicing (FHIR R4 profiling.html §5.1.0.8): instances assigned to slices
//! by `value`/`pattern` discriminators (a fixed or pattern value, or membership in a required
//! binding), then each slice's cardinality and own constraints; closed slicing; extension
//! slices by url; slices a derived profile constrains without restating the base's slicing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use common::*;
use fhir_profile::ProfileSet;
use fhir_validate::Severity::{Error, Information};
use serde_json::{json, Value};

fn screening_info() -> Said {
    issue(
        Information,
        "not-supported",
        "Observation.category",
        &format!("Slice 'screening-assessment' not assessed: value set http://hl7.org/fhir/us/core/ValueSet/us-core-screening-assessment-observation-maximum-category is not loaded (profile {SCREENING}, element Observation.category:screening-assessment)"),
    )
}

#[test]
fn screening_assessment_without_the_survey_category() {
    let set = us_core();
    let mut obs = fixture("uscore-Observation-PHQ9-total-score-44261-6.json");
    obs["category"].as_array_mut().unwrap().remove(0);
    assert_eq!(
        validate(&set, &obs, SCREENING),
        vec![
            issue(
                Error,
                "required",
                "Observation.category",
                &format!("Slice 'survey' requires at least 1, found 0 (profile {SCREENING}, element Observation.category:survey)")
            ),
            screening_info(),
        ]
    );
}

#[test]
fn screening_assessment_with_two_survey_categories() {
    let set = us_core();
    let mut obs = fixture("uscore-Observation-PHQ9-total-score-44261-6.json");
    let survey = obs["category"][0].clone();
    obs["category"].as_array_mut().unwrap().push(survey);
    assert_eq!(
        validate(&set, &obs, SCREENING),
        vec![
            issue(
                Error,
                "structure",
                "Observation.category",
                &format!("Slice 'survey' allows at most 1, found 2 (profile {SCREENING}, element Observation.category:survey)")
            ),
            screening_info(),
        ]
    );
}

#[test]
fn condition_category_sliced_by_required_binding() {
    let set = us_core();
    let mut condition = fixture("uscore-Condition-health-concern.json");
    condition["category"][0] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}]});
    let issues = validate(&set, &condition, CONDITION);
    let slicing: Vec<_> = issues
        .iter()
        .filter(|i| i.2 == "Condition.category")
        .cloned()
        .collect();
    assert_eq!(
        slicing,
        vec![
            issue(
                Error,
                "required",
                "Condition.category",
                &format!("Slice 'us-core' requires at least 1, found 0 (profile {CONDITION}, element Condition.category:us-core)")
            ),
            issue(
                Information,
                "not-supported",
                "Condition.category",
                &format!("Slice 'screening-assessment' not assessed: value set http://hl7.org/fhir/us/core/ValueSet/us-core-simple-observation-category is not loaded (profile {CONDITION}, element Condition.category:screening-assessment)")
            ),
        ]
    );
    assert_eq!(issues.iter().filter(|i| i.0 == Error).count(), 1);
}

fn provenance() -> Value {
    fixture("uscore-Bundle-searchset-with-Provenance-revinclude.json")["entry"][1]["resource"]
        .clone()
}

fn agent(kind: &str, who: &str, on_behalf_of: bool) -> Value {
    let mut agent = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": kind}]},
        "who": {"reference": who}
    });
    if on_behalf_of {
        agent["onBehalfOf"] = json!({"reference": "Organization/o1"});
    }
    agent
}

const STRICT_PROVENANCE: &str = "http://example.org/fhir/StructureDefinition/test-provenance";

/// A derived profile constraining US Core's agent slices without restating their slicing or
/// patterns: a transmitter is required, and authors must say on whose behalf.
fn strict_provenance() -> ProfileSet {
    us_core_with(vec![profile(
        STRICT_PROVENANCE,
        "Provenance",
        PROVENANCE,
        json!([
            {"id": "Provenance", "path": "Provenance"},
            {"id": "Provenance.agent:ProvenanceAuthor", "path": "Provenance.agent", "sliceName": "ProvenanceAuthor"},
            {"id": "Provenance.agent:ProvenanceAuthor.onBehalfOf", "path": "Provenance.agent.onBehalfOf", "min": 1},
            {"id": "Provenance.agent:ProvenanceTransmitter", "path": "Provenance.agent", "sliceName": "ProvenanceTransmitter", "min": 1, "max": "1"}
        ]),
    )])
}

fn us_core_provenance_infos() -> Vec<Said> {
    vec![
        issue(Information, "not-supported", "Provenance.agent", &format!("Invariant provenance-1 not checked: it uses resolve, which needs more than the resource itself (profile {PROVENANCE}, element Provenance.agent)")),
        issue(Information, "not-supported", "Provenance.agent.type", &format!("Binding (extensible) not checked: value set http://terminology.hl7.org/ValueSet/provenance-agent-type is not loaded (profile {PROVENANCE}, element Provenance.agent.type)")),
        issue(Information, "not-supported", "Provenance.agent.onBehalfOf", &format!("Reference to a resource of type Organization, not among the loaded target types (none); target profiles http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization are not loaded, so the reference's type and conformance are not checked (profile {PROVENANCE}, element Provenance.agent.onBehalfOf)")),
    ]
}

#[test]
fn provenance_agents_assigned_to_author_and_transmitter_slices() {
    let set = strict_provenance();
    // The US Core example has two authors and no transmitter.
    let mut expected = vec![issue(
        Error,
        "required",
        "Provenance.agent",
        &format!("Slice 'ProvenanceTransmitter' requires at least 1, found 0 (profile {STRICT_PROVENANCE}, element Provenance.agent:ProvenanceTransmitter)"),
    )];
    expected.extend(us_core_provenance_infos());
    assert_eq!(validate(&set, &provenance(), STRICT_PROVENANCE), expected);

    // An author without onBehalfOf breaks the author slice's own constraint; a transmitter
    // without it is not an author; a second transmitter is one too many.
    let mut prov = provenance();
    prov["agent"] = json!([
        agent("author", "Practitioner/practitioner-1", true),
        agent("author", "Practitioner/practitioner-2", false),
        agent("transmitter", "Practitioner/practitioner-3", false),
    ]);
    let mut expected = vec![issue(
        Error,
        "required",
        "Provenance.agent[1].onBehalfOf",
        &format!("Element 'onBehalfOf' requires at least 1, found 0 (profile {STRICT_PROVENANCE}, element Provenance.agent:ProvenanceAuthor.onBehalfOf)"),
    )];
    expected.extend(us_core_provenance_infos());
    assert_eq!(validate(&set, &prov, STRICT_PROVENANCE), expected);

    prov["agent"][1]["onBehalfOf"] = json!({"reference": "Organization/o1"});
    let transmitter = prov["agent"][2].clone();
    prov["agent"].as_array_mut().unwrap().push(transmitter);
    let mut expected = vec![issue(
        Error,
        "structure",
        "Provenance.agent",
        &format!("Slice 'ProvenanceTransmitter' allows at most 1, found 2 (profile {STRICT_PROVENANCE}, element Provenance.agent:ProvenanceTransmitter)"),
    )];
    expected.extend(us_core_provenance_infos());
    assert_eq!(validate(&set, &prov, STRICT_PROVENANCE), expected);

    prov["agent"].as_array_mut().unwrap().pop();
    assert_eq!(
        validate(&set, &prov, STRICT_PROVENANCE),
        us_core_provenance_infos()
    );
}

const CLOSED: &str = "http://example.org/fhir/StructureDefinition/test-closed-categories";
const EXISTS: &str = "http://example.org/fhir/StructureDefinition/test-exists-slicing";

fn category(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

#[test]
fn closed_slicing_and_unsupported_discriminators() {
    let obs_category = "http://terminology.hl7.org/CodeSystem/observation-category";
    let set = us_core_with(vec![
        profile(
            CLOSED,
            "Observation",
            &core("Observation"),
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.category", "path": "Observation.category",
                 "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "closed"}},
                {"id": "Observation.category:survey", "path": "Observation.category", "sliceName": "survey",
                 "patternCodeableConcept": category(obs_category, "survey")},
                {"id": "Observation.category:exam", "path": "Observation.category", "sliceName": "exam",
                 "patternCodeableConcept": category(obs_category, "exam")}
            ]),
        ),
        profile(
            EXISTS,
            "Observation",
            &core("Observation"),
            json!([
                {"id": "Observation", "path": "Observation"},
                {"id": "Observation.component", "path": "Observation.component",
                 "slicing": {"discriminator": [{"type": "exists", "path": "value"}], "rules": "closed"}},
                {"id": "Observation.component:valued", "path": "Observation.component", "sliceName": "valued", "min": 1}
            ]),
        ),
    ]);
    let mut obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [category(obs_category, "exam"), category(obs_category, "survey")],
        "code": {"text": "x"},
        "component": [{"code": {"text": "a"}, "valueInteger": 1}]
    });
    assert_eq!(validate(&set, &obs, CLOSED), vec![]);
    obs["category"]
        .as_array_mut()
        .unwrap()
        .push(category(obs_category, "vital-signs"));
    assert_eq!(
        validate(&set, &obs, CLOSED),
        vec![issue(
            Error,
            "structure",
            "Observation.category[2]",
            &format!("Matches none of the slices, and the slicing is closed (profile {CLOSED}, element Observation.category)")
        )]
    );
    assert_eq!(
        validate(&set, &obs, EXISTS),
        vec![issue(
            Information,
            "not-supported",
            "Observation.component",
            &format!("Slice 'valued' not assessed: discriminator type 'exists' (path 'value') is not supported (profile {EXISTS}, element Observation.component:valued)")
        )]
    );
}

#[test]
fn patient_extension_slices_by_url() {
    let set = us_core();
    let mut patient = fixture("uscore-Patient-example.json");
    let race = patient["extension"][0].clone();
    let extensions = patient["extension"].as_array_mut().unwrap();
    extensions.push(race);
    // An extension no slice names is fine (the slicing is open).
    extensions.push(json!({"url": "http://example.org/fhir/StructureDefinition/favourite-colour", "valueString": "green"}));
    let issues = validate(&set, &patient, PATIENT);
    let errors: Vec<_> = issues.iter().filter(|i| i.0 == Error).cloned().collect();
    assert_eq!(
        errors,
        vec![issue(
            Error,
            "structure",
            "Patient.extension",
            &format!("Slice 'race' allows at most 1, found 2 (profile {PATIENT}, element Patient.extension:race)")
        )]
    );
    // The race definition is not loaded: said once, though two extensions are races.
    let race_infos = issues
        .iter()
        .filter(|i| i.3.contains("us-core-race is not loaded"))
        .count();
    assert_eq!(race_infos, 1);
}
