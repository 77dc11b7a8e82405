//! Terminology bindings on profile elements (FHIR R4 terminologies.html §4.1.0.1 binding
//! strengths): `required` → an error when the code is not in the value set, `extensible` → a
//! warning; `preferred` and `example` are not read. Checked on `code`, `Coding`,
//! `CodeableConcept`, `Quantity` (and its kin), `string` and `uri`. When membership cannot be
//! decided (value set or code system not loaded, filters) one information issue per element
//! says so: a binding is never passed silently.

use fhir_validate::Severity;
use serde_json::Value;

use crate::element::{Binding, ElemTy, Node, Strength};
use crate::loc::Loc;
use crate::profile::Profile;
use crate::terminology::{Membership, Terminology};
use crate::walk::{Ctx, Once};

/// The codes an instance carries, as (system, code).
pub(crate) enum Codes<'v> {
    /// A coded value.
    Coded(Vec<(Option<&'v str>, &'v str)>),
    /// A CodeableConcept with text but no coding.
    TextOnly,
    /// Nothing to check (no code present).
    Empty,
    /// Bindings on this type are not checked.
    Unsupported,
}

/// The codes of `value`, an instance of type `ty`.
pub(crate) fn codes_of<'v>(value: &'v Value, ty: &str) -> Codes<'v> {
    let str_of = |v: &'v Value, key: &str| v.get(key).and_then(Value::as_str);
    let coding = |v: &'v Value| str_of(v, "code").map(|code| (str_of(v, "system"), code));
    let list = |codes: Vec<(Option<&'v str>, &'v str)>| {
        if codes.is_empty() {
            Codes::Empty
        } else {
            Codes::Coded(codes)
        }
    };
    match ty {
        "code" | "string" | "uri" | "url" | "canonical" | "markdown" | "id" => value
            .as_str()
            .map_or(Codes::Empty, |c| Codes::Coded(vec![(None, c)])),
        "Coding" | "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "Money" => {
            list(coding(value).into_iter().collect())
        }
        "CodeableConcept" => {
            let codes: Vec<_> = value
                .get("coding")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(coding)
                .collect();
            if codes.is_empty() && value.get("text").is_some() {
                Codes::TextOnly
            } else {
                list(codes)
            }
        }
        _ => Codes::Unsupported,
    }
}

/// Membership of any of `codes` in value set `url`: in if any is in; cannot tell if none is
/// in and some cannot be decided; else not in.
pub(crate) fn any_in<'t>(
    terminology: &'t Terminology,
    url: &str,
    codes: &[(Option<&str>, &str)],
) -> Membership<'t> {
    crate::terminology::any_of(codes, |(system, code)| {
        terminology.contains(url, *system, code)
    })
}

fn describe(codes: &[(Option<&str>, &str)]) -> String {
    let shown: Vec<String> = codes
        .iter()
        .map(|(system, code)| match system {
            Some(s) => format!("{s}#{code}"),
            None => format!("'{code}'"),
        })
        .collect();
    shown.join(", ")
}

/// Checks one instance against the element's binding.
pub(crate) fn check(
    ctx: &mut Ctx<'_, '_>,
    profile: &Profile,
    node: &Node,
    binding: &Binding,
    value: &Value,
    ty: ElemTy,
    loc: &Loc<'_>,
) {
    let strength = binding.strength.as_str();
    let vs = &binding.value_set;
    let codes = match codes_of(value, ty.code()) {
        Codes::Coded(codes) => codes,
        Codes::Empty => return,
        Codes::TextOnly => {
            if binding.strength == Strength::Required {
                let message = format!(
                    "No coding from the {strength} value set {vs}: the concept has only text"
                );
                ctx.error(profile, node, "code-invalid", message, loc);
            }
            return;
        }
        Codes::Unsupported => {
            let message = format!(
                "Binding to {vs} ({strength}) not checked: bindings on {} are not supported",
                ty.code()
            );
            ctx.inform_once(profile, node, Once::Binding, message, loc);
            return;
        }
    };
    match any_in(&ctx.set.terminology, vs, &codes) {
        Ok(true) => {}
        Ok(false) => {
            let (severity, verb) = match binding.strength {
                Strength::Required => (Severity::Error, "is not"),
                Strength::Extensible => (Severity::Warning, "is not"),
            };
            let message = if codes.len() == 1 {
                format!(
                    "Code {} {verb} in the {strength} value set {vs}",
                    describe(&codes)
                )
            } else {
                format!(
                    "None of the codes {} is in the {strength} value set {vs}",
                    describe(&codes)
                )
            };
            ctx.report(
                profile,
                node,
                severity,
                "code-invalid",
                message,
                loc.render(),
            );
        }
        Err(unknown) => {
            let message = format!(
                "Binding ({strength}) not checked: {}",
                unknown.reason(crate::terminology::strip_version(vs))
            );
            ctx.inform_once(profile, node, Once::Binding, message, loc);
        }
    }
}
