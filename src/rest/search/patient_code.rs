//! The patient-and-code index: one token row per (patient, coding) of a resource whose
//! `patient` is its Patient subject, so `Observation?patient=X&code=Y` (US Core's commonest
//! search, and the PROM scoring's search for a patient's earlier score) is read from the rows of
//! that patient's matching resources alone, instead of from all the patient's resources with
//! the code checked on each (search.html; like HAPI's combo parameters or Blaze's compartment
//! indexes). Written by hand: it is a rule about this server's index tables.
//!
//! A row is stored under [`PATIENT_AND_CODE`], with the coding's system and the value
//! `{patient id}|{code}` (an id has no `|`, so the value names both unambiguously). A search
//! whose clauses say "this patient" and "this code" becomes one clause over those rows
//! ([`rewrite`]); it matches exactly the resources the two clauses match, because the rows are
//! made from the same `patient` and `code` rows the clauses would read. Databases written before
//! the rows existed are filled in by a migration (`0009_patient_and_code.sql` for SQLite,
//! `0012_patient_and_code.sql` for PostgreSQL), whose list of types is [`TYPES`]. Every node
//! must write the rows: a node of an earlier release still writing after the migration stores
//! resources without them, which a rewritten search would miss, so nodes on one database are
//! upgraded together (or `coplan reindex` runs once the last earlier node has stopped).

use crate::store::index::{IndexRow, PATIENT_AND_CODE};
use crate::store::search::{Clause, Condition};
use std::collections::BTreeSet;

/// The types whose `patient` parameter is `{type}.subject.where(resolve() is Patient)` and
/// whose `subject` is `{type}.subject`, with a `code` token parameter: their `patient` rows are
/// exactly their `subject` rows that point at a Patient (the extractor keeps only those), so
/// `patient=X`, `patient=Patient/X` and `subject=Patient/X` all name the same rows.
/// The migrations hold the same list; `the_types_are_those_the_registry_defines` checks it.
pub const TYPES: [&str; 14] = [
    "Basic",
    "ChargeItem",
    "Condition",
    "DeviceRequest",
    "DiagnosticReport",
    "List",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "RequestGroup",
    "ServiceRequest",
];

fn indexed(resource_type: &str) -> bool {
    TYPES.contains(&resource_type)
}

/// The value of a patient-and-code row.
fn value(patient_id: &str, code: &str) -> String {
    format!("{patient_id}|{code}")
}

/// Add the patient-and-code rows of a resource of `resource_type` to its other index `rows`:
/// one per distinct (patient, system, code) of its `patient` rows pointing at a Patient by a
/// valid id and its `code` rows with a code.
pub fn push_rows(resource_type: &str, rows: &mut Vec<IndexRow>) {
    if !indexed(resource_type) {
        return;
    }
    let patients: BTreeSet<&str> = rows
        .iter()
        .filter_map(|row| match row {
            IndexRow::Reference {
                code,
                target_type: Some(target_type),
                target_id: Some(id),
                ..
            } if code == "patient"
                && target_type == "Patient"
                && crate::validate::is_valid_id(id) =>
            {
                Some(id.as_str())
            }
            _ => None,
        })
        .collect();
    if patients.is_empty() {
        return;
    }
    let codes: BTreeSet<(Option<&str>, &str)> = rows
        .iter()
        .filter_map(|row| match row {
            IndexRow::Token {
                code,
                system,
                value: Some(value),
                ..
            } if code == "code" => Some((system.as_deref(), value.as_str())),
            _ => None,
        })
        .collect();
    let derived: Vec<IndexRow> = patients
        .iter()
        .flat_map(|patient| {
            codes.iter().map(move |(system, code)| IndexRow::Token {
                code: PATIENT_AND_CODE.to_string(),
                system: system.map(str::to_string),
                value: Some(value(patient, code)),
                text_norm: None,
            })
        })
        .collect();
    rows.extend(derived);
}

/// The patient a clause names, if it is exactly "this patient" by id: `patient=X`,
/// `patient=Patient/X` or `subject=Patient/X` (with `:Patient`, or as this server's URL), one
/// value, not negated.
fn patient_of(clause: &Clause) -> Option<&str> {
    let [Condition::Reference {
        code,
        target_type,
        target_id: Some(id),
        url: None,
    }] = &clause.any_of[..]
    else {
        return None;
    };
    let names_patient = matches!(
        (code.as_str(), target_type.as_deref()),
        ("patient", None | Some("Patient")) | ("subject", Some("Patient"))
    );
    (names_patient && !clause.negated && crate::validate::is_valid_id(id)).then_some(id)
}

/// Whether a clause is "this code": one `code` token with a code, not negated. Several codes
/// (`code=a,b`) are left to the patient's clause to drive: a driving clause of alternatives is
/// rendered as ORed id sets, which PostgreSQL cannot join from, so it would filter every
/// resource of the type instead of reading the patient's.
fn is_code(clause: &Clause) -> bool {
    !clause.negated
        && matches!(
            &clause.any_of[..],
            [Condition::Token { code, value: Some(_), .. }] if code == "code"
        )
}

/// Replace a search's "this patient" clause and one "this code" clause by one clause over the
/// patient-and-code rows, placed first so it drives the search. Other clauses (a second patient
/// or code, several codes, `:not`, modifiers) stay as they are.
pub fn rewrite(resource_type: &str, clauses: &mut Vec<Clause>) {
    if !indexed(resource_type) {
        return;
    }
    let Some((p, patient)) = clauses
        .iter()
        .enumerate()
        .find_map(|(n, clause)| patient_of(clause).map(|id| (n, id.to_string())))
    else {
        return;
    };
    let Some(c) = clauses.iter().position(is_code) else {
        return;
    };
    let [Condition::Token {
        system,
        value: Some(code),
        ..
    }] = &clauses[c].any_of[..]
    else {
        return;
    };
    let any_of = vec![Condition::Token {
        code: PATIENT_AND_CODE.to_string(),
        system: system.clone(),
        value: Some(value(&patient, code)),
    }];
    for n in [p.max(c), p.min(c)] {
        clauses.remove(n);
    }
    clauses.insert(
        0,
        Clause {
            any_of,
            negated: false,
        },
    );
}

#[cfg(test)]
mod tests;
