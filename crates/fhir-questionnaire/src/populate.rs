//! SDC 3.0 population (populate.html, expression-based population): an in-progress
//! QuestionnaireResponse from a Questionnaire, with answers from `initial[x]` (R4
//! Questionnaire.item.initial) and from `sdc-questionnaire-initialExpression` (which wins
//! when both are present).
//!
//! Expressions are evaluated with the Questionnaire as `%resource` / `%context`,
//! `%questionnaire`, `%patient` (the SMART launch patient, else the subject) and `%subject`
//! (the subject, else the launch patient), and the Questionnaire's root `variable`s
//! (evaluated first, in order). Item-level variables and `launchContext` declarations are not
//! read. An expression naming any other `%` context (`%encounter`, `%user`, ...) is not
//! evaluated: it gets a warning naming its linkId, as does one the engine cannot evaluate and
//! one whose result does not fit the item's type. One beyond the limits on client-written
//! expressions (see the `expr` module) is not evaluated and gets a `too-costly` warning. A question that has children but no
//! answer keeps them directly under the item.

use fhir_fhirpath::{Engine, Node, Prepared};
use serde_json::{json, Map, Value};

use crate::answers::{self, items, str_of};
use crate::expr;
use crate::ext;
use crate::issue::Issue;

/// A populated response and what could not be populated.
#[derive(Debug, Clone, PartialEq)]
pub struct Populated {
    /// QuestionnaireResponse, status `in-progress`, `questionnaire` = `url|version`, subject,
    /// an item for every non-display item (answers where population found some).
    pub response: Value,
    /// One warning per expression that cannot be evaluated or needs a context this crate
    /// does not have (`%encounter`, `%user`, ...), naming the linkId.
    pub issues: Vec<Issue>,
}

/// The `%` names population can bind (besides the root variables) and the engine's own.
const KNOWN: &[&str] = &[
    "resource",
    "context",
    "questionnaire",
    "patient",
    "subject",
    "ucum",
    "sct",
    "loinc",
];

/// Populates a response to `questionnaire` for `subject` (the Patient resource);
/// `launch_patient` is the SMART launch patient, used as `%patient` when given (else the
/// subject).
pub fn populate(
    questionnaire: &Value,
    subject: Option<&Value>,
    launch_patient: Option<&Value>,
) -> Populated {
    let mut issues = Vec::new();
    let mut response = Map::new();
    response.insert("resourceType".into(), json!("QuestionnaireResponse"));
    if let Some(url) = str_of(questionnaire, "url") {
        let canonical = match str_of(questionnaire, "version") {
            Some(v) => format!("{url}|{v}"),
            None => url.to_string(),
        };
        response.insert("questionnaire".into(), json!(canonical));
    }
    response.insert("status".into(), json!("in-progress"));
    if let Some(s) = subject.or(launch_patient) {
        if let (Some(t), Some(id)) = (str_of(s, "resourceType"), str_of(s, "id")) {
            response.insert("subject".into(), json!({"reference": format!("{t}/{id}")}));
        }
    }
    let patient = launch_patient.or(subject);
    let subject = subject.or(launch_patient);
    let mut context = match Engine::shared() {
        Ok(engine) => Some(Context::new(
            engine,
            questionnaire,
            patient,
            subject,
            &mut issues,
        )),
        Err(e) => {
            issues.push(Issue::warning(
                "not-supported",
                None,
                "Questionnaire",
                format!("Expressions were not evaluated: {e}"),
            ));
            None
        }
    };
    let built = build(
        questionnaire,
        "Questionnaire",
        context.as_mut(),
        &mut issues,
    );
    if !built.is_empty() {
        response.insert("item".into(), Value::Array(built));
    }
    Populated {
        response: Value::Object(response),
        issues,
    }
}

struct Context<'q> {
    engine: &'static Engine,
    prepared: Prepared<'q>,
    /// Names bound (the known ones and the root variables).
    names: Vec<String>,
}

impl<'q> Context<'q> {
    fn new(
        engine: &'static Engine,
        questionnaire: &'q Value,
        patient: Option<&'q Value>,
        subject: Option<&'q Value>,
        issues: &mut Vec<Issue>,
    ) -> Context<'q> {
        let mut prepared = engine.prepare(questionnaire);
        prepared.bind_resource("questionnaire", questionnaire);
        let mut names: Vec<String> = [
            "resource",
            "context",
            "questionnaire",
            "ucum",
            "sct",
            "loinc",
        ]
        .map(String::from)
        .to_vec();
        for (name, value) in [("patient", patient), ("subject", subject)] {
            if let Some(v) = value {
                prepared.bind_resource(name, v);
                names.push(name.to_string());
            }
        }
        let mut context = Context {
            engine,
            prepared,
            names,
        };
        for (i, variable) in ext::all(questionnaire, ext::VARIABLE).enumerate() {
            let Some(expression) = variable.get("valueExpression") else {
                continue;
            };
            let (Some(name), Some(source)) =
                (str_of(expression, "name"), expr::fhirpath_of(expression))
            else {
                continue;
            };
            let path = format!("Questionnaire.extension[{i}]");
            if let Some(nodes) = context.evaluate(source, None, &path, issues) {
                context.prepared.bind_nodes(name, &nodes);
                context.names.push(name.to_string());
            }
        }
        context
    }

    /// Evaluates `source`, or explains (a warning) why not.
    fn evaluate(
        &self,
        source: &str,
        link_id: Option<&str>,
        path: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Vec<Node<'static>>> {
        let whose = link_id.map_or("the Questionnaire".to_string(), |l| format!("item {l}"));
        // Beyond the limits on client-written expressions (expr.rs module doc).
        if let Some(why) = expr::check(source) {
            issues.push(Issue::warning(
                "too-costly",
                link_id,
                path,
                format!(
                    "The expression `{}` of {whose} was not evaluated: {why}.",
                    expr::shown(source)
                ),
            ));
            return None;
        }
        if let Some(unknown) = referenced(source)
            .into_iter()
            .find(|n| !self.names.iter().any(|k| k == n))
        {
            let why = if KNOWN.contains(&unknown.as_str()) {
                "is not available here"
            } else {
                "is a context this server does not provide"
            };
            issues.push(Issue::warning(
                "not-supported",
                link_id,
                path,
                format!(
                    "The expression `{}` of {whose} was not evaluated: %{unknown} {why}.",
                    expr::shown(source)
                ),
            ));
            return None;
        }
        match expr::evaluate(self.engine, &self.prepared, source) {
            Ok(nodes) => Some(nodes),
            Err(e) => {
                issues.push(Issue::warning(
                    "invalid",
                    link_id,
                    path,
                    format!(
                        "The expression `{}` of {whose} could not be evaluated: {e}",
                        expr::shown(source)
                    ),
                ));
                None
            }
        }
    }
}

/// The `%name`s an expression references (outside string literals).
fn referenced(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_string = false;
    let mut chars = source.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '\'' => in_string = !in_string,
            '%' if !in_string => {
                let rest = &source[i + 1..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                if !name.is_empty() && !name.starts_with("vs-") && !name.starts_with("ext-") {
                    out.push(name);
                }
            }
            _ => {}
        }
    }
    out
}

/// The response items for the children of `parent` (at `path` in the Questionnaire).
fn build(
    parent: &Value,
    path: &str,
    mut context: Option<&mut Context<'_>>,
    issues: &mut Vec<Issue>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, item) in items(parent).iter().enumerate() {
        let ipath = format!("{path}.item[{i}]");
        let item_type = str_of(item, "type").unwrap_or("");
        if item_type == "display" {
            continue;
        }
        let Some(link_id) = str_of(item, "linkId") else {
            continue;
        };
        let mut r_item = Map::new();
        r_item.insert("linkId".into(), json!(link_id));
        if let Some(text) = item.get("text") {
            r_item.insert("text".into(), text.clone());
        }
        let children = build(item, &ipath, context.as_deref_mut(), issues);
        let mut given = initial_answers(item);
        if let Some(expression) =
            ext::first(item, ext::INITIAL_EXPRESSION).and_then(|e| e.get("valueExpression"))
        {
            if let (Some(source), Some(ctx)) =
                (expr::fhirpath_of(expression), context.as_deref_mut())
            {
                if let Some(nodes) = ctx.evaluate(source, Some(link_id), &ipath, issues) {
                    let (answers, misfits) = answers_of(item_type, &nodes);
                    if misfits > 0 {
                        issues.push(Issue::warning(
                            "value",
                            Some(link_id),
                            &ipath,
                            format!("The expression `{source}` of item {link_id} gave {misfits} value(s) that do not fit a {item_type} item."),
                        ));
                    }
                    if !answers.is_empty() {
                        given = answers;
                    }
                }
            }
        }
        if !answers::is_true(item, "repeats") {
            given.truncate(1);
        }
        if item_type == "group" || given.is_empty() {
            if !children.is_empty() {
                r_item.insert("item".into(), Value::Array(children));
            }
        } else if !children.is_empty() {
            for answer in &mut given {
                answer["item"] = Value::Array(children.clone());
            }
        }
        if !given.is_empty() && item_type != "group" {
            r_item.insert("answer".into(), Value::Array(given));
        }
        out.push(Value::Object(r_item));
    }
    out
}

/// The answers of an item's `initial[x]` values.
fn initial_answers(item: &Value) -> Vec<Value> {
    item.get("initial")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| answers::value(i, "value"))
        .map(|(kind, v)| json!({ format!("value{kind}"): v }))
        .collect()
}

/// Answers for an item of `item_type` from expression results, and how many did not fit.
fn answers_of(item_type: &str, nodes: &[Node<'_>]) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut misfits = 0;
    for node in nodes {
        let json = expr::json_of(node);
        let fit = match (item_type, &json) {
            ("string" | "text" | "open-choice", Value::String(_)) => Some("valueString"),
            ("url", Value::String(_)) => Some("valueUri"),
            ("date", Value::String(_)) => Some("valueDate"),
            ("dateTime", Value::String(_)) => Some("valueDateTime"),
            ("time", Value::String(_)) => Some("valueTime"),
            ("boolean", Value::Bool(_)) => Some("valueBoolean"),
            ("integer", Value::Number(n)) if n.as_i64().is_some() => Some("valueInteger"),
            ("decimal", Value::Number(_)) => Some("valueDecimal"),
            ("choice" | "open-choice", Value::Object(o)) if o.contains_key("code") => {
                Some("valueCoding")
            }
            ("quantity", Value::Object(o)) if o.contains_key("value") => Some("valueQuantity"),
            ("reference", Value::Object(o)) if o.contains_key("reference") => {
                Some("valueReference")
            }
            ("attachment", Value::Object(_)) => Some("valueAttachment"),
            _ => None,
        };
        match fit {
            Some(key) => out.push(json!({ key: json })),
            None => misfits += 1,
        }
    }
    (out, misfits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::fixtures;
    use crate::issue::Severity;

    fn questionnaire() -> Value {
        let initial = |e: &str| json!([{"url": ext::INITIAL_EXPRESSION, "valueExpression": {"language": "text/fhirpath", "expression": e}}]);
        json!({
            "resourceType": "Questionnaire", "url": "http://coplan.dev/fhir/Questionnaire/intake", "version": "2.0",
            "item": [
                {"linkId": "intro", "type": "display", "text": "Welcome"},
                {"linkId": "given", "type": "string", "text": "First name", "extension": initial("%patient.name.first().given.first()")},
                {"linkId": "dob", "type": "date", "extension": initial("%patient.birthDate")},
                {"linkId": "visit", "type": "string", "extension": initial("%encounter.period.start")},
                {"linkId": "mood", "type": "group", "item": [
                    {"linkId": "often", "type": "integer", "initial": [{"valueInteger": 2}]},
                    {"linkId": "bad", "type": "integer", "extension": initial("%patient.name.where(")}]}
            ]
        })
    }

    #[test]
    fn populates_from_the_patient_and_warns_about_what_it_cannot() {
        let patient = fixtures::uscore_patient();
        let populated = populate(&questionnaire(), Some(&patient), None);
        let r = &populated.response;
        assert_eq!(r["resourceType"], "QuestionnaireResponse");
        assert_eq!(r["status"], "in-progress");
        assert_eq!(
            r["questionnaire"],
            "http://coplan.dev/fhir/Questionnaire/intake|2.0"
        );
        assert_eq!(r["subject"], json!({"reference": "Patient/example"}));
        let items = r["item"].as_array().unwrap();
        // No display item; every other item present.
        let ids: Vec<&str> = items
            .iter()
            .map(|i| i["linkId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["given", "dob", "visit", "mood"]);
        assert_eq!(
            items[0]["answer"],
            json!([{"valueString": patient["name"][0]["given"][0]}])
        );
        assert_eq!(items[0]["answer"][0]["valueString"], "Amy");
        assert_eq!(items[1]["answer"], json!([{"valueDate": "1987-02-20"}]));
        assert!(items[2].get("answer").is_none());
        assert_eq!(items[3]["item"][0]["answer"], json!([{"valueInteger": 2}]));
        assert!(items[3]["item"][1].get("answer").is_none());
        assert_eq!(populated.issues.len(), 2, "{:?}", populated.issues);
        let encounter = &populated.issues[0];
        assert_eq!(encounter.severity, Severity::Warning);
        assert_eq!(encounter.code, "not-supported");
        assert_eq!(encounter.link_id.as_deref(), Some("visit"));
        assert_eq!(encounter.expression, "Questionnaire.item[3]");
        assert!(
            encounter.message.contains("%encounter"),
            "{}",
            encounter.message
        );
        let broken = &populated.issues[1];
        assert_eq!(broken.link_id.as_deref(), Some("bad"));
        assert_eq!(broken.code, "invalid");
        assert_eq!(broken.expression, "Questionnaire.item[4].item[1]");
        // The populated response validates (structurally: it is in progress).
        assert_eq!(crate::validate(Some(&questionnaire()), r), vec![]);
    }

    #[test]
    fn without_a_patient_patient_expressions_are_warned_about() {
        let populated = populate(&questionnaire(), None, None);
        assert!(populated.response.get("subject").is_none());
        let linked: Vec<_> = populated
            .issues
            .iter()
            .filter_map(|i| i.link_id.as_deref())
            .collect();
        assert_eq!(linked, ["given", "dob", "visit", "bad"]);
    }

    #[test]
    fn expressions_beyond_the_limits_are_warned_about_not_evaluated() {
        let q = json!({"resourceType": "Questionnaire", "status": "active", "item": [
            {"linkId": "bomb", "type": "string", "extension": [{"url": ext::INITIAL_EXPRESSION,
                "valueExpression": {"language": "text/fhirpath",
                    "expression": format!("'ab'{}", ".replace('a','aaaaaaaaaa')".repeat(10))}}]},
            {"linkId": "walk", "type": "integer", "extension": [{"url": ext::INITIAL_EXPRESSION,
                "valueExpression": {"language": "text/fhirpath",
                    "expression": "descendants().select(%resource.descendants()).count()"}}]},
            {"linkId": "ok", "type": "integer", "extension": [{"url": ext::INITIAL_EXPRESSION,
                "valueExpression": {"language": "text/fhirpath", "expression": "1 + 1"}}]}
        ]});
        let populated = populate(&q, None, None);
        let warnings: Vec<_> = populated
            .issues
            .iter()
            .map(|i| (i.severity, i.code, i.link_id.as_deref(), i.message.as_str()))
            .collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .all(|(s, c, _, _)| *s == Severity::Warning && *c == "too-costly"));
        assert_eq!(warnings[0].2, Some("bomb"));
        assert!(warnings[0]
            .3
            .contains("item bomb was not evaluated: the expression calls replace()"));
        assert_eq!(warnings[1].2, Some("walk"));
        assert!(warnings[1].3.contains("descendants() 2 times; at most 1"));
        let items = populated.response["item"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2]["answer"], json!([{"valueInteger": 2}]));
        assert!(items[0].get("answer").is_none());
    }
}
