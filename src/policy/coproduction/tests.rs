//! The coproduction rule table, row by row: every rule with the changes it allows and the
//! ones it refuses, for each side (`mod.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use super::*;
use serde_json::json;

fn goal(expressed_by: Option<&str>) -> Value {
    let mut g = json!({"resourceType": "Goal", "id": "g", "lifecycleStatus": "active",
        "description": {"text": "walk"}, "subject": {"reference": "Patient/p1"}});
    if let Some(by) = expressed_by {
        g["expressedBy"] = json!({"reference": by});
    }
    g
}

fn with(mut v: Value, path: &str, value: Value) -> Value {
    v[path] = value;
    v
}

#[test]
fn every_row_of_the_table() {
    use Side::*;
    let theirs = goal(Some("Patient/p1"));
    let carers = goal(Some("RelatedPerson/r1"));
    let clinicians = goal(Some("Practitioner/dr"));
    let set = goal(None);
    let note = json!([{"text": "seen"}]);
    let accept =
        json!([{"url": GOAL_ACCEPTANCE, "extension": [{"url": "status", "valueCode": "agree"}]}]);
    let plan = json!({"resourceType": "CarePlan", "id": "c", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/p1"}, "author": {"reference": "Practitioner/dr"},
        "activity": [{"detail": {"status": "in-progress", "code": {"text": "walk"}}}]});
    let team = json!({"resourceType": "CareTeam", "id": "t", "status": "active",
        "participant": [{"member": {"reference": "Patient/p1"}}]});
    let team_of_p1 = with(team.clone(), "subject", json!({"reference": "Patient/p1"}));
    let no = Facts::default();
    let on_team = Facts {
        on_care_team: true,
        ..Facts::default()
    };
    let made_by_patient = Facts {
        goal_created_by: Some(Side::Patient),
        ..Facts::default()
    };
    // (editor, type, current, proposed, facts, the rule broken or None)
    type Row<'a> = (
        Side,
        &'a str,
        Option<Value>,
        Option<Value>,
        Facts,
        Option<&'a str>,
    );
    let table: Vec<Row> = vec![
        // goal-expressed-by-patient
        (
            Clinician,
            "Goal",
            Some(theirs.clone()),
            Some(with(theirs.clone(), "note", note.clone())),
            no,
            None,
        ),
        (
            Clinician,
            "Goal",
            Some(theirs.clone()),
            Some(with(
                theirs.clone(),
                "achievementStatus",
                json!({"text": "improving"}),
            )),
            no,
            None,
        ),
        (
            Clinician,
            "Goal",
            Some(theirs.clone()),
            Some(with(theirs.clone(), "description", json!({"text": "run"}))),
            no,
            Some("goal-expressed-by-patient"),
        ),
        (
            Clinician,
            "Goal",
            Some(carers.clone()),
            Some(with(carers.clone(), "lifecycleStatus", json!("cancelled"))),
            no,
            Some("goal-expressed-by-patient"),
        ),
        (
            Unknown,
            "Goal",
            Some(theirs.clone()),
            Some(with(theirs.clone(), "priority", json!({"text": "high"}))),
            no,
            Some("goal-expressed-by-patient"),
        ),
        (
            Patient,
            "Goal",
            Some(theirs.clone()),
            Some(with(theirs.clone(), "description", json!({"text": "run"}))),
            no,
            None,
        ),
        (
            Patient,
            "Goal",
            Some(theirs.clone()),
            Some(with(theirs.clone(), "lifecycleStatus", json!("cancelled"))),
            no,
            None,
        ),
        // goal-set-by-clinician
        (
            Patient,
            "Goal",
            Some(clinicians.clone()),
            Some(with(clinicians.clone(), "extension", accept.clone())),
            no,
            None,
        ),
        (
            Patient,
            "Goal",
            Some(set.clone()),
            Some(with(set.clone(), "note", note.clone())),
            no,
            None,
        ),
        (
            Patient,
            "Goal",
            Some(set.clone()),
            Some(with(set.clone(), "description", json!({"text": "nap"}))),
            no,
            Some("goal-set-by-clinician"),
        ),
        (
            Patient,
            "Goal",
            Some(set.clone()),
            Some(with(
                set.clone(),
                "extension",
                json!([{"url": "http://x", "valueString": "y"}]),
            )),
            no,
            Some("goal-set-by-clinician"),
        ),
        (
            Clinician,
            "Goal",
            Some(set.clone()),
            Some(with(set.clone(), "description", json!({"text": "nap"}))),
            no,
            None,
        ),
        // A goal without expressedBy is whoever created it: the patient side's when its
        // creating Provenance names a patient or their RelatedPerson.
        (
            Patient,
            "Goal",
            Some(set.clone()),
            Some(with(set.clone(), "description", json!({"text": "nap"}))),
            made_by_patient,
            None,
        ),
        (
            Clinician,
            "Goal",
            Some(set.clone()),
            Some(with(set.clone(), "description", json!({"text": "nap"}))),
            made_by_patient,
            Some("goal-expressed-by-patient"),
        ),
        (
            Clinician,
            "Goal",
            Some(set.clone()),
            Some(with(set.clone(), "note", note.clone())),
            made_by_patient,
            None,
        ),
        // ... and the patient side cannot relabel its own goal as a clinician's.
        (
            Patient,
            "Goal",
            Some(set.clone()),
            Some(with(
                set.clone(),
                "expressedBy",
                json!({"reference": "Practitioner/dr"}),
            )),
            made_by_patient,
            Some("goal-set-by-clinician"),
        ),
        (
            Patient,
            "Goal",
            Some(theirs.clone()),
            Some(with(
                theirs.clone(),
                "expressedBy",
                json!({"reference": "Practitioner/dr"}),
            )),
            no,
            Some("goal-set-by-clinician"),
        ),
        (
            Patient,
            "Goal",
            Some(theirs.clone()),
            Some(with(
                theirs.clone(),
                "expressedBy",
                json!({"reference": "RelatedPerson/r1"}),
            )),
            no,
            None,
        ),
        // expressedBy, when there is one, says whose it is whoever created it.
        (
            Patient,
            "Goal",
            Some(clinicians.clone()),
            Some(with(
                clinicians.clone(),
                "description",
                json!({"text": "nap"}),
            )),
            made_by_patient,
            Some("goal-set-by-clinician"),
        ),
        // team-includes-patient: a team of a patient lists them, whoever writes it.
        (
            Clinician,
            "CareTeam",
            None,
            Some(
                json!({"resourceType": "CareTeam", "subject": {"reference": "Patient/p1"},
                "participant": [{"member": {"reference": "Practitioner/dr"}}]}),
            ),
            on_team,
            Some("team-includes-patient"),
        ),
        (
            Clinician,
            "CareTeam",
            Some(team_of_p1.clone()),
            Some(with(
                team_of_p1.clone(),
                "participant",
                json!([{"member": {"reference": "Practitioner/dr"}}]),
            )),
            on_team,
            Some("team-includes-patient"),
        ),
        (
            Clinician,
            "CareTeam",
            Some(team_of_p1.clone()),
            Some(with(team_of_p1.clone(), "name", json!("Walking group"))),
            no,
            None,
        ),
        (
            Service,
            "CareTeam",
            None,
            Some(with(team_of_p1.clone(), "participant", json!([]))),
            no,
            None,
        ),
        // no-hard-delete (and creating is not governed)
        (
            Patient,
            "Goal",
            Some(theirs.clone()),
            None,
            no,
            Some("no-hard-delete"),
        ),
        (
            Clinician,
            "CarePlan",
            Some(plan.clone()),
            None,
            no,
            Some("no-hard-delete"),
        ),
        (
            Clinician,
            "CareTeam",
            Some(team.clone()),
            None,
            no,
            Some("no-hard-delete"),
        ),
        (Service, "Goal", Some(theirs.clone()), None, no, None),
        (Patient, "Goal", None, Some(set.clone()), no, None),
        // plan-subject, plan-authorship
        (
            Clinician,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "subject",
                json!({"reference": "Patient/p2"}),
            )),
            no,
            Some("plan-subject"),
        ),
        (
            Patient,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "author",
                json!({"reference": "Patient/p1"}),
            )),
            no,
            Some("plan-authorship"),
        ),
        (
            Patient,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "contributor",
                json!([{"reference": "Patient/p1"}]),
            )),
            no,
            None,
        ),
        (
            Clinician,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "author",
                json!({"reference": "Practitioner/dr2"}),
            )),
            no,
            None,
        ),
        // plan-activities
        (
            Patient,
            "CarePlan",
            Some(plan.clone()),
            Some(with(plan.clone(), "activity", json!([]))),
            no,
            Some("plan-activities"),
        ),
        (
            Clinician,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "activity",
                json!([{"detail": {"status": "in-progress", "code": {"text": "swim"}}}]),
            )),
            no,
            Some("plan-activities"),
        ),
        (
            Patient,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "activity",
                json!([{"detail": {"status": "cancelled", "code": {"text": "walk"}}}]),
            )),
            no,
            Some("plan-activities"),
        ),
        (
            Patient,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "activity",
                json!([{"detail": {"status": "cancelled", "code": {"text": "walk"}, "statusReason": {"text": "knee pain"}}}]),
            )),
            no,
            None,
        ),
        (
            Patient,
            "CarePlan",
            Some(plan.clone()),
            Some(with(
                plan.clone(),
                "activity",
                json!([{"detail": {"status": "in-progress", "code": {"text": "walk"}}}, {"detail": {"status": "not-started", "code": {"text": "swim"}}}]),
            )),
            no,
            None,
        ),
        // team-members
        (
            Patient,
            "CareTeam",
            Some(team.clone()),
            Some(with(team.clone(), "participant", json!([]))),
            no,
            Some("team-members"),
        ),
        (
            Clinician,
            "CareTeam",
            Some(team.clone()),
            Some(with(
                team.clone(),
                "participant",
                json!([{"member": {"reference": "Practitioner/dr"}}]),
            )),
            no,
            Some("team-members"),
        ),
        (
            Clinician,
            "CareTeam",
            Some(team.clone()),
            Some(with(
                team.clone(),
                "participant",
                json!([{"member": {"reference": "Practitioner/dr"}}]),
            )),
            on_team,
            None,
        ),
        (
            Patient,
            "CareTeam",
            Some(team.clone()),
            Some(with(team.clone(), "name", json!("my team"))),
            no,
            None,
        ),
        // creating: nobody claims the other side's authority
        (
            Patient,
            "Goal",
            None,
            Some(clinicians.clone()),
            no,
            Some("goal-set-by-clinician"),
        ),
        (Patient, "Goal", None, Some(theirs.clone()), no, None),
        (Clinician, "Goal", None, Some(clinicians.clone()), no, None),
        (
            Patient,
            "CarePlan",
            None,
            Some(plan.clone()),
            no,
            Some("plan-authorship"),
        ),
        (Clinician, "CarePlan", None, Some(plan.clone()), no, None),
        (
            Clinician,
            "CareTeam",
            None,
            Some(team.clone()),
            no,
            Some("team-members"),
        ),
        (
            Patient,
            "CareTeam",
            None,
            Some(team.clone()),
            no,
            Some("team-members"),
        ),
        (
            Clinician,
            "CareTeam",
            None,
            Some(team.clone()),
            on_team,
            None,
        ),
    ];
    for (i, (editor, rt, cur, new, facts, broken)) in table.into_iter().enumerate() {
        let got = check(editor, rt, cur.as_ref(), new.as_ref(), facts)
            .err()
            .map(|r| r.rule);
        assert_eq!(got, broken, "row {i}: {editor:?} {rt}");
    }
    // Every rule of the table is exercised above.
    for rule in RULES {
        assert!(
            [
                "goal-expressed-by-patient",
                "goal-set-by-clinician",
                "plan-subject",
                "plan-authorship",
                "plan-activities",
                "no-hard-delete",
                "team-members",
                "team-includes-patient"
            ]
            .contains(&rule.id),
            "{}",
            rule.id
        );
    }
}

#[test]
fn refusals_name_their_rule_and_what_changed() {
    let theirs = goal(Some("Patient/p1"));
    let refusal = check(
        Side::Clinician,
        "Goal",
        Some(&theirs),
        Some(&with(theirs.clone(), "description", json!({"text": "run"}))),
        Facts::default(),
    )
    .unwrap_err();
    assert!(
        refusal.message.starts_with(
            "description of a goal the patient expressed [rule goal-expressed-by-patient:"
        ),
        "{}",
        refusal.message
    );
}

#[test]
fn the_table_in_markdown_has_a_row_per_rule() {
    let md = table_markdown();
    assert_eq!(md.lines().count(), RULES.len() + 2);
    assert!(md.contains("| `no-hard-delete` | CarePlan, Goal, CareTeam |"));
}
