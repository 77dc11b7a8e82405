//! Scopes in plain language, as a patient (or a clinician, or a carer) reads them on the consent
//! page and on the "apps you have allowed" page (SMART App Launch 2.2 "Scopes and Launch
//! Context": what each scope grants; the technical scope itself is shown only in a `<details>`
//! element). Words depend on the reader: a patient looking at their own record reads "your
//! record", a clinician "Ann Doe's record". Durations come from the configuration, never from
//! here.

use super::scopes::EHR_LAUNCH_SCOPE;
use crate::policy::{parse_resource_scope, Permission, ScopeContext};

/// What the texts need to know about the reader and the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    /// The launch patient's record, as the reader calls it: "your record", "Ann Doe's record".
    pub patient_record: String,
    /// What the reader's `user/` scopes reach, in words ("your record", "the records of the
    /// patients whose care team you are on").
    pub user_records: String,
    /// How long `offline_access` lasts, in days (configuration `offline_access_days`).
    pub offline_days: i64,
    /// How long `online_access` lasts at most, in hours (the sign-in session).
    pub online_hours: i64,
}

impl Wording {
    /// `user/` scopes of a signed-in user whose FHIR identity is `fhir_user` (`Patient/1`, …).
    pub fn user_records(fhir_user: Option<&str>, practitioners_see_all: bool) -> String {
        match fhir_user.and_then(|u| u.split_once('/')).map(|(t, _)| t) {
            Some("Patient") => "your record".into(),
            Some("RelatedPerson") => "the record of the person you look after".into(),
            Some("Practitioner") if practitioners_see_all => "the records of every patient".into(),
            Some("Practitioner") => "the records of the patients whose care team you are on".into(),
            _ => "the records your account can open".into(),
        }
    }
}

/// Is `scope` a permission to see or change data (a resource scope)?
pub fn is_data_scope(scope: &str) -> bool {
    parse_resource_scope(scope).is_some()
}

/// A scope in plain language, as one sentence.
pub fn describe(scope: &str, w: &Wording) -> String {
    match scope {
        "openid" => {
            return "Confirm to the app that it is you who signed in (it learns your Coplan \
                    username)"
                .into()
        }
        "fhirUser" => {
            return "Tell the app who you are in the care records, for example so it can show \
                    your name"
                .into()
        }
        "profile" => return "Let the app see your name and contact details".into(),
        "launch" => return "Work with the record that was open when the app was started".into(),
        "launch/patient" => return format!("Know that it is working with {}", w.patient_record),
        "launch/encounter" => return "Know which visit or appointment is open".into(),
        "offline_access" => {
            return format!(
                "Keep access for up to {} days without asking you again, also when you are not \
                 using the app",
                w.offline_days
            )
        }
        "online_access" => {
            return format!(
                "Keep access while you stay signed in to Coplan (at most {} hours); signing out \
                 ends it",
                w.online_hours
            )
        }
        EHR_LAUNCH_SCOPE => return "Start apps from another health record system".into(),
        _ => {}
    }
    let Some(parsed) = parse_resource_scope(scope) else {
        return "A permission Coplan has no plain description for (see the technical details)"
            .into();
    };
    let whose = match parsed.context {
        ScopeContext::Patient => w.patient_record.as_str(),
        ScopeContext::User => w.user_records.as_str(),
        ScopeContext::System => "every record on this server",
    };
    let mut verbs: Vec<&str> = Vec::new();
    if parsed.allows(Permission::Read) || parsed.allows(Permission::Search) {
        verbs.push("see");
    }
    for (p, verb) in [
        (Permission::Create, "add"),
        (Permission::Update, "change"),
        (Permission::Delete, "delete"),
    ] {
        if parsed.allows(p) {
            verbs.push(verb);
        }
    }
    let mut text = capitalise(&join_and(&verbs));
    let Some(resource_type) = parsed.resource_type.as_deref() else {
        text.push_str(&format!(
            " everything in {whose}: care plans, goals, answers to questionnaires, measurements \
             and test results, health problems, medicines and the rest"
        ));
        return text;
    };
    text.push_str(&format!(" {} in {whose}", things(resource_type)));
    if !parsed.query.is_empty() {
        text.push_str(&format!(", {}", restriction(&parsed.query)));
    }
    text
}

/// What a permission to change data means in practice, said under it on the consent page.
pub fn note(scope: &str) -> Option<String> {
    let parsed = parse_resource_scope(scope)?;
    let changes = [Permission::Create, Permission::Update, Permission::Delete]
        .into_iter()
        .any(|p| parsed.allows(p));
    changes.then(|| {
        "For example, the app could update a care plan or a goal, or record answers to a \
         questionnaire. Coplan keeps every earlier version, so no change is lost."
            .to_string()
    })
}

/// A resource type in plain words (plural).
fn things(resource_type: &str) -> String {
    let known = match resource_type {
        "CarePlan" => "care plans",
        "Goal" => "goals",
        "QuestionnaireResponse" => "answers to questionnaires",
        "Questionnaire" => "questionnaires",
        "Observation" => "measurements and test results",
        "Condition" => "health problems",
        "CareTeam" => "care team details",
        "Patient" => "personal details (such as name, date of birth and address)",
        "Practitioner" => "details of health professionals",
        "PractitionerRole" => "the roles of health professionals",
        "RelatedPerson" => "details of family members and carers",
        "Provenance" => "records of who changed what",
        "MedicationRequest" => "prescriptions",
        "MedicationStatement" => "medicines taken",
        "Medication" => "medicines",
        "AllergyIntolerance" => "allergies",
        "Encounter" => "visits",
        "Appointment" => "appointments",
        "Procedure" => "procedures and operations",
        "Immunization" => "vaccinations",
        "DiagnosticReport" => "test reports",
        "DocumentReference" => "documents",
        "ServiceRequest" => "referrals and requests",
        "Organization" => "organisations",
        "Location" => "places of care",
        _ => return plural(resource_type),
    };
    known.to_string()
}

/// A granular scope's restriction (`category=…|survey`) in words.
fn restriction(query: &[(String, String)]) -> String {
    let mut kinds = Vec::new();
    for (name, value) in query {
        let (name, value) = (name.as_str(), value.as_str());
        let code = value.rsplit('|').next().unwrap_or(value);
        let known = match (name, code) {
            ("category", "survey") => Some("questionnaire and survey results"),
            ("category", "vital-signs") => Some("vital signs (such as blood pressure and weight)"),
            ("category", "laboratory") => Some("laboratory test results"),
            ("category", "social-history") => Some("details of your daily life and habits"),
            ("category", "imaging") => Some("scan and X-ray results"),
            ("category", "exam") => Some("examination findings"),
            ("category", "activity") => Some("activity measurements"),
            ("category", "therapy") => Some("therapy results"),
            ("category", "procedure") => Some("procedure results"),
            _ => None,
        };
        match known {
            Some(k) => kinds.push(k.to_string()),
            None => return "only some kinds of them (see the technical details)".into(),
        }
    }
    format!("only {}", join_and(&kinds))
}

/// "a", "a and b", "a, b and c".
fn join_and<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `DeviceMetric` → "device metrics".
fn plural(resource_type: &str) -> String {
    let mut words = String::new();
    for (i, ch) in resource_type.char_indices() {
        if ch.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(ch.to_ascii_lowercase());
    }
    if words.ends_with('s') {
        words
    } else if let Some(stem) = words.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{words}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Wording {
        Wording {
            patient_record: "your record".into(),
            user_records: "your record".into(),
            offline_days: 90,
            online_hours: 8,
        }
    }

    #[test]
    fn a_patient_reads_about_their_own_record_in_plain_words() {
        let w = own();
        assert_eq!(
            describe("patient/*.rs", &w),
            "See everything in your record: care plans, goals, answers to questionnaires, \
             measurements and test results, health problems, medicines and the rest"
        );
        assert_eq!(
            describe("patient/CarePlan.rs", &w),
            "See care plans in your record"
        );
        assert_eq!(
            describe("patient/Goal.cruds", &w),
            "See, add, change and delete goals in your record"
        );
        assert!(note("patient/Goal.cruds")
            .is_some_and(|n| n.contains("Coplan keeps every earlier version")));
        assert_eq!(note("patient/Goal.rs"), None);
        assert_eq!(note("offline_access"), None);
        assert_eq!(
            describe(
                "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|survey",
                &w
            ),
            "See measurements and test results in your record, only questionnaire and survey results"
        );
        assert_eq!(
            describe("offline_access", &w),
            "Keep access for up to 90 days without asking you again, also when you are not using \
             the app"
        );
    }

    #[test]
    fn no_text_shows_technical_names_and_openid_and_fhiruser_differ() {
        let w = Wording {
            patient_record: "Ann Doe's record".into(),
            user_records: Wording::user_records(Some("Practitioner/1"), false),
            offline_days: 30,
            online_hours: 8,
        };
        let scopes = [
            "openid",
            "fhirUser",
            "launch",
            "launch/patient",
            "offline_access",
            "online_access",
            "patient/*.cruds",
            "user/*.rs",
            "patient/Observation.rs?code=1234-5",
        ];
        for scope in scopes {
            let text = describe(scope, &w);
            for technical in [
                "patient/", "user/", "fhirUser", "openid", "Patient/", ".rs", "*",
            ] {
                assert!(!text.contains(technical), "{scope}: {text}");
            }
        }
        assert_ne!(describe("openid", &w), describe("fhirUser", &w));
        assert!(describe("offline_access", &w).contains("30 days"));
        assert!(describe("launch/patient", &w).ends_with("Ann Doe's record"));
        assert!(describe("user/*.rs", &w)
            .contains("the records of the patients whose care team you are on"));
        assert!(describe("patient/Observation.rs?code=1234-5", &w).contains("only some kinds"));
    }

    #[test]
    fn unknown_types_read_as_plural_words() {
        assert_eq!(things("DeviceMetric"), "device metrics");
        assert_eq!(things("Family"), "families");
        assert!(is_data_scope("patient/Goal.rs"));
        assert!(!is_data_scope("launch/patient"));
    }
}
