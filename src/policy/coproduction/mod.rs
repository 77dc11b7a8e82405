//! Coproduction rules: who may change whose contributions to the shared care plan (issue "The
//! shared care plan" §3). One table, [`RULES`], as data: each row names the resource, whose
//! contribution it protects, from whom, and what that other side may still do. The README
//! prints the table ([`table_markdown`]); a test keeps the two the same.
//!
//! Pure: [`check`] takes the editor's side and the current and proposed content and returns
//! the first rule a change breaks. Whose a contribution is comes from the content itself
//! (a Goal's `expressedBy`); the write pipeline's hook (`rest/write/coproduction.rs`) adds the
//! one fact that needs a lookup (is a clinician on the patient's active CareTeam).
//!
//! Backend services (`system/` tokens) and the server's own tooling are outside the table:
//! they keep plain R4 (migrations, integrations, corrections by an administrator).

use super::Access;
use serde_json::{Map, Value};

/// Which side of the care relationship a caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The patient, or a RelatedPerson acting for them (`fhirUser` Patient / RelatedPerson).
    Patient,
    /// A professional (`fhirUser` Practitioner / PractitionerRole).
    Clinician,
    /// A user-facing app whose user is not known (`patient/` or `user/` scopes, no
    /// `fhirUser`): bound by every side's protections.
    Unknown,
    /// A backend service or the server's own tooling: the table does not apply.
    Service,
}

impl Side {
    /// The side of the caller behind `access`.
    pub fn of(access: &Access) -> Side {
        let Some(grant) = access.grant() else {
            return Side::Service;
        };
        match grant.fhir_user.as_deref().and_then(side_of_reference) {
            Some(side) => side,
            None if access.co_edits() => Side::Unknown,
            None => Side::Service,
        }
    }
}

/// What a rule protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protects {
    /// A Goal the patient expressed (`expressedBy` a Patient or RelatedPerson), from the
    /// clinician side: they may only touch `may_change`.
    GoalExpressedByPatient,
    /// A Goal a clinician set (any other `expressedBy`, or none), from the patient side.
    GoalSetByClinician,
    /// A CarePlan's `subject`, from everyone.
    PlanSubject,
    /// A CarePlan's `author`, from the patient side (R4 CarePlan has no `custodian`; its
    /// `contributor` list is open to both sides, who both contribute).
    PlanAuthorship,
    /// A CarePlan's activities: never removed; a cancelled, stopped or on-hold activity says
    /// why (`detail.statusReason`).
    PlanActivities,
    /// CarePlan, Goal, CareTeam: retired, never hard-deleted by a user-facing app.
    NoHardDelete,
    /// A CareTeam's members, from the patient side and from clinicians not on the patient's
    /// active care team.
    TeamMembers,
    /// A CareTeam's patient is one of its members.
    TeamIncludesPatient,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct CoproductionRule {
    /// The rule's name, as refusals quote it.
    pub id: &'static str,
    pub resource_type: &'static str,
    pub protects: Protects,
    /// Who is limited by it.
    pub binds: &'static [Side],
    /// The elements the limited side may still change (for the element rules).
    pub may_change: &'static [&'static str],
    /// The rule in words, for the README and refusals.
    pub says: &'static str,
}

/// Elements that are the server's or narrative only: changing them breaks no rule.
const ALWAYS_CHANGEABLE: &[&str] = &["meta", "text"];

/// The extension a patient uses to agree or disagree with a clinician's goal.
pub const GOAL_ACCEPTANCE: &str = "http://hl7.org/fhir/StructureDefinition/goal-acceptance";

/// The table.
pub const RULES: &[CoproductionRule] = &[
    CoproductionRule {
        id: "goal-expressed-by-patient",
        resource_type: "Goal",
        protects: Protects::GoalExpressedByPatient,
        binds: &[Side::Clinician, Side::Unknown],
        may_change: &["note", "achievementStatus"],
        says: "A goal the patient expressed is theirs: only the patient side changes its \
               description, targets or priority or retires it; clinicians add notes and set \
               achievementStatus.",
    },
    CoproductionRule {
        id: "goal-set-by-clinician",
        resource_type: "Goal",
        protects: Protects::GoalSetByClinician,
        binds: &[Side::Patient, Side::Unknown],
        may_change: &["note", "extension:goal-acceptance"],
        says: "A goal a clinician set: the patient side records agreement or disagreement \
               (goal-acceptance extension) and adds notes; it does not rewrite it, nor write a \
               goal that says a clinician set it.",
    },
    CoproductionRule {
        id: "plan-subject",
        resource_type: "CarePlan",
        protects: Protects::PlanSubject,
        binds: &[Side::Patient, Side::Clinician, Side::Unknown],
        may_change: &[],
        says: "A care plan's subject never changes: a plan belongs to one patient.",
    },
    CoproductionRule {
        id: "plan-authorship",
        resource_type: "CarePlan",
        protects: Protects::PlanAuthorship,
        binds: &[Side::Patient, Side::Unknown],
        may_change: &[],
        says: "A care plan's author is set by clinicians: a plan the patient side writes has \
               none (both sides may be listed as contributors; R4 CarePlan has no custodian).",
    },
    CoproductionRule {
        id: "plan-activities",
        resource_type: "CarePlan",
        protects: Protects::PlanActivities,
        binds: &[Side::Patient, Side::Clinician, Side::Unknown],
        may_change: &[],
        says: "Nobody removes an activity from a care plan (whoever added it): its status \
               changes instead, and a cancelled, stopped or on-hold activity says why \
               (detail.statusReason).",
    },
    CoproductionRule {
        id: "no-hard-delete",
        resource_type: "CarePlan Goal CareTeam",
        protects: Protects::NoHardDelete,
        binds: &[Side::Patient, Side::Clinician, Side::Unknown],
        may_change: &[],
        says: "Care plans, goals and care teams are retired (revoked, cancelled, \
               entered-in-error), not deleted, by the patient's and the clinicians' apps; \
               backend services may delete.",
    },
    CoproductionRule {
        id: "team-members",
        resource_type: "CareTeam",
        protects: Protects::TeamMembers,
        binds: &[Side::Patient, Side::Clinician, Side::Unknown],
        may_change: &[],
        says: "Only clinicians on an active care team of the patient create care teams or add \
               or remove members; the patient sees the team.",
    },
    CoproductionRule {
        id: "team-includes-patient",
        resource_type: "CareTeam",
        protects: Protects::TeamIncludesPatient,
        binds: &[Side::Patient, Side::Clinician, Side::Unknown],
        may_change: &[],
        says: "A patient is a member of their own care team: a team whose subject is a patient \
               lists them as a participant (MCC marks the role SNOMED 116154003 Patient).",
    },
];

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: &'static str,
    pub message: String,
}

/// What [`check`] needs to know beyond the content.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// The editing clinician is on an active CareTeam of the patient.
    pub on_care_team: bool,
    /// For a Goal without `expressedBy`: the side whose author created it, from the server's
    /// Provenance of its first version (`None`: not known — a bulk load wrote none, or a
    /// backend service created it).
    pub goal_created_by: Option<Side>,
}

/// The first rule that `editor` changing `current` into `proposed` (`None`: a deletion;
/// `current` `None`: a creation) of `resource_type` breaks.
pub fn check(
    editor: Side,
    resource_type: &str,
    current: Option<&Value>,
    proposed: Option<&Value>,
    facts: Facts,
) -> Result<(), Refusal> {
    if editor == Side::Service {
        return Ok(());
    }
    for rule in RULES
        .iter()
        .filter(|r| r.resource_type.split(' ').any(|t| t == resource_type))
        .filter(|r| r.binds.contains(&editor))
    {
        if let Some(message) = breaks(rule, editor, current, proposed, facts) {
            return Err(Refusal {
                rule: rule.id,
                message,
            });
        }
    }
    Ok(())
}

fn breaks(
    rule: &CoproductionRule,
    editor: Side,
    current: Option<&Value>,
    proposed: Option<&Value>,
    facts: Facts,
) -> Option<String> {
    let refuse = |what: String| Some(format!("{what} [rule {}: {}]", rule.id, rule.says));
    match (rule.protects, current, proposed) {
        (Protects::NoHardDelete, Some(_), None) => {
            refuse("this cannot be deleted; retire it".into())
        }
        // Creating: nobody claims the other side's authority for what they write.
        (Protects::GoalSetByClinician, None, Some(new)) => (goal_side(new, None)
            == Side::Clinician
            && new.get("expressedBy").is_some())
        .then(|| refuse("a goal the patient side writes cannot say a clinician set it".into()))
        .flatten(),
        (Protects::PlanAuthorship, None, Some(new)) => new
            .get("author")
            .is_some()
            .then(|| refuse("a care plan the patient side writes has no author".into()))
            .flatten(),
        (Protects::TeamIncludesPatient, _, Some(new)) => {
            let patient = new["subject"]["reference"]
                .as_str()
                .filter(|r| r.starts_with("Patient/"))?;
            let listed = new["participant"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["member"]["reference"] == patient);
            (!listed)
                .then(|| refuse(format!("{patient} is not one of the team's participants")))
                .flatten()
        }
        (Protects::TeamMembers, None, Some(_)) => (!(editor == Side::Clinician
            && facts.on_care_team))
            .then(|| {
                refuse(
                    "a care team is created by a clinician on the patient's active care team \
                     or by a backend service"
                        .into(),
                )
            })
            .flatten(),
        (_, None, _) | (_, _, None) => None,
        (Protects::GoalExpressedByPatient, Some(cur), Some(new)) => {
            if goal_side(cur, facts.goal_created_by) != Side::Patient {
                return None;
            }
            changed_outside(cur, new, rule.may_change)
                .and_then(|e| refuse(format!("{e} of a goal the patient expressed")))
        }
        (Protects::GoalSetByClinician, Some(cur), Some(new)) => {
            if goal_side(cur, facts.goal_created_by) != Side::Clinician {
                // The patient side's own goal: it may not relabel it as a clinician's either.
                let relabelled = cur.get("expressedBy") != new.get("expressedBy")
                    && new.get("expressedBy").is_some()
                    && goal_side(new, None) == Side::Clinician;
                return relabelled
                    .then(|| {
                        refuse(
                            "a goal the patient side writes cannot say a clinician set it".into(),
                        )
                    })
                    .flatten();
            }
            changed_outside(cur, new, rule.may_change)
                .and_then(|e| refuse(format!("{e} of a goal a clinician set")))
        }
        (Protects::PlanSubject, Some(cur), Some(new)) => (cur.get("subject") != new.get("subject"))
            .then(|| refuse("the plan's subject changed".into()))
            .flatten(),
        (Protects::PlanAuthorship, Some(cur), Some(new)) => (cur.get("author")
            != new.get("author"))
        .then(|| refuse("author changed".into()))
        .flatten(),
        (Protects::PlanActivities, Some(cur), Some(new)) => {
            activities_break(cur, new).and_then(refuse)
        }
        (Protects::TeamMembers, Some(cur), Some(new)) => {
            let allowed = editor == Side::Clinician && facts.on_care_team;
            (!allowed && cur.get("participant") != new.get("participant"))
                .then(|| refuse("the team's members changed".into()))
                .flatten()
        }
        (Protects::NoHardDelete, _, _) => None,
    }
}

/// Whose a goal is: the patient side when a Patient or RelatedPerson expressed it; without
/// `expressedBy`, the side of whoever created it (`created_by`, from its creating
/// Provenance); otherwise — a clinician or a service expressed it, or nobody knows — the
/// clinicians'.
pub fn goal_side(goal: &Value, created_by: Option<Side>) -> Side {
    match goal["expressedBy"]["reference"].as_str() {
        Some(r) => side_of_reference(r).unwrap_or(Side::Clinician),
        None if created_by == Some(Side::Patient) => Side::Patient,
        None => Side::Clinician,
    }
}

/// The side a reference to a person is on: Patient or RelatedPerson the patient side,
/// Practitioner or PractitionerRole clinicians; anything else (a Device, an Organization) none.
pub fn side_of_reference(reference: &str) -> Option<Side> {
    match reference.split_once('/') {
        Some(("Patient" | "RelatedPerson", _)) => Some(Side::Patient),
        Some(("Practitioner" | "PractitionerRole", _)) => Some(Side::Clinician),
        _ => None,
    }
}

/// The first top-level element (other than `allowed`) whose value differs; `extension:URL`
/// in `allowed` lets that one extension change and keeps the others fixed.
fn changed_outside(current: &Value, proposed: &Value, allowed: &[&str]) -> Option<String> {
    let empty = Map::new();
    let cur = current.as_object().unwrap_or(&empty);
    let new = proposed.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = cur.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if ALWAYS_CHANGEABLE.contains(&name.as_str()) || allowed.contains(&name.as_str()) {
            continue;
        }
        if name == "extension" {
            let open: Vec<&str> = allowed
                .iter()
                .filter_map(|a| a.strip_prefix("extension:"))
                .map(|a| {
                    if a == "goal-acceptance" {
                        GOAL_ACCEPTANCE
                    } else {
                        a
                    }
                })
                .collect();
            let fixed = |v: Option<&Value>| -> Vec<Value> {
                v.and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|e| !open.iter().any(|u| e["url"] == *u))
                    .cloned()
                    .collect()
            };
            if fixed(cur.get(name)) != fixed(new.get(name)) {
                return Some("an extension".into());
            }
            continue;
        }
        if cur.get(name) != new.get(name) {
            return Some(name.clone());
        }
    }
    None
}

/// Activities only grow (matched by position: an activity keeps its place), and one newly
/// cancelled, stopped or put on hold carries a reason.
fn activities_break(current: &Value, proposed: &Value) -> Option<String> {
    let before = current["activity"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let after = proposed["activity"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if after.len() < before.len() {
        return Some(format!(
            "{} activit{} removed",
            before.len() - after.len(),
            if before.len() - after.len() == 1 {
                "y was"
            } else {
                "ies were"
            }
        ));
    }
    for (i, (old, new)) in before.iter().zip(after).enumerate() {
        let same_thing = old.get("reference") == new.get("reference")
            && old["detail"].get("code") == new["detail"].get("code")
            && old["detail"].get("kind") == new["detail"].get("kind");
        if !same_thing {
            return Some(format!(
                "activity {i} was replaced by another (change its status instead)"
            ));
        }
        let status = new["detail"]["status"].as_str();
        let retired = matches!(status, Some("cancelled" | "stopped" | "on-hold"));
        if retired
            && old["detail"]["status"] != new["detail"]["status"]
            && new["detail"].get("statusReason").is_none()
        {
            return Some(format!(
                "activity {i} became {} without a detail.statusReason",
                status.unwrap_or_default()
            ));
        }
    }
    None
}

/// The table as Markdown, as the README prints it.
pub fn table_markdown() -> String {
    let mut out = String::from("| rule | resource | limits | may still change | the rule |\n");
    out.push_str("|---|---|---|---|---|\n");
    for rule in RULES {
        let binds: Vec<&str> = rule
            .binds
            .iter()
            .filter(|s| **s != Side::Unknown)
            .map(|s| match s {
                Side::Patient => "patient side",
                Side::Clinician => "clinicians",
                _ => "",
            })
            .collect();
        let may: Vec<String> = rule.may_change.iter().map(|m| format!("`{m}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            rule.id,
            rule.resource_type.replace(' ', ", "),
            binds.join(", "),
            if may.is_empty() {
                "—".into()
            } else {
                may.join(", ")
            },
            rule.says.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
