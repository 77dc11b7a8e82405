//! Answers and the Questionnaire items they answer (R4 questionnaire.html Questionnaire.item,
//! questionnaireresponse.html QuestionnaireResponse.item.answer): the value[x] an item type
//! takes, answer comparison (answerOption, enableWhen), the options of a contained
//! answerValueSet, and the ordinal (`ordinalValue` / SDC `itemWeight`) of a chosen answer.

use std::collections::HashMap;

use serde_json::Value;

use crate::ext;

/// The value[x] keys an answer to an item of `item_type` may use (`None`: an unknown type;
/// group and display items take no answers).
pub fn expected_keys(item_type: &str) -> Option<&'static [&'static str]> {
    Some(match item_type {
        "group" | "display" => &[],
        "boolean" => &["valueBoolean"],
        "decimal" => &["valueDecimal"],
        "integer" => &["valueInteger"],
        "date" => &["valueDate"],
        "dateTime" => &["valueDateTime"],
        "time" => &["valueTime"],
        "string" | "text" => &["valueString"],
        "url" => &["valueUri"],
        "choice" => &["valueCoding"],
        "open-choice" => &["valueCoding", "valueString"],
        "attachment" => &["valueAttachment"],
        "reference" => &["valueReference"],
        "quantity" => &["valueQuantity"],
        _ => return None,
    })
}

/// The value[x] entries of an answer (or answerOption / initial / enableWhen with `prefix`).
pub fn values<'v>(element: &'v Value, prefix: &'v str) -> Vec<(&'v str, &'v Value)> {
    element
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.len() > prefix.len() && k.starts_with(prefix))
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

/// The single value[x] of an answer: (type suffix such as `Coding`, value).
pub fn value(element: &Value, prefix: &str) -> Option<(String, Value)> {
    match values(element, prefix).as_slice() {
        [(k, v)] => Some((k[prefix.len()..].to_string(), (*v).clone())),
        _ => None,
    }
}

pub fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

pub fn items(v: &Value) -> &[Value] {
    v.get("item")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn answers(v: &Value) -> &[Value] {
    v.get("answer")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn is_true(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool) == Some(true)
}

/// Two Codings are the same answer: same code and same system (both absent counts as same).
pub fn same_coding(a: &Value, b: &Value) -> bool {
    str_of(a, "code").is_some()
        && str_of(a, "code") == str_of(b, "code")
        && str_of(a, "system") == str_of(b, "system")
}

/// Two values of the same type suffix are equal (Codings by system and code, numbers by value,
/// Quantities by value and code, anything else by JSON equality).
pub fn same_value(kind: &str, a: &Value, b: &Value) -> bool {
    match kind {
        "Coding" => same_coding(a, b),
        "Decimal" | "Integer" => a.as_f64().is_some() && a.as_f64() == b.as_f64(),
        "Quantity" => {
            a.get("value").and_then(Value::as_f64) == b.get("value").and_then(Value::as_f64)
                && str_of(a, "code") == str_of(b, "code")
        }
        "Reference" => str_of(a, "reference") == str_of(b, "reference"),
        _ => a == b,
    }
}

/// Orders two values of the same type suffix (numbers numerically, Quantities by value,
/// date/time/string texts lexically, which ISO 8601 texts of one precision allow).
pub fn compare(kind: &str, a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match kind {
        "Decimal" | "Integer" => a.as_f64()?.partial_cmp(&b.as_f64()?),
        "Quantity" => a
            .get("value")?
            .as_f64()?
            .partial_cmp(&b.get("value")?.as_f64()?),
        "Date" | "DateTime" | "Time" | "String" | "Uri" => Some(a.as_str()?.cmp(b.as_str()?)),
        _ => None,
    }
}

/// The first item with `link_id` at any depth under `parent` (a Questionnaire or an item).
pub fn find_item<'q>(parent: &'q Value, link_id: &str) -> Option<&'q Value> {
    items(parent).iter().find_map(|item| {
        if str_of(item, "linkId") == Some(link_id) {
            Some(item)
        } else {
            find_item(item, link_id)
        }
    })
}

/// Every answer to `link_id` anywhere in the response (nested under items and answers).
pub fn response_answers<'r>(response: &'r Value, link_id: &str) -> Vec<&'r Value> {
    fn walk<'r>(parent: &'r Value, link_id: &str, out: &mut Vec<&'r Value>) {
        for item in items(parent) {
            if str_of(item, "linkId") == Some(link_id) {
                out.extend(answers(item));
            }
            walk(item, link_id, out);
            for answer in answers(item) {
                walk(answer, link_id, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(response, link_id, &mut out);
    out
}

/// Every answer in a response, indexed by the linkId of the item it answers: built in one walk
/// of the response, so that enableWhen checks and scoring look answers up instead of walking
/// the whole response once per item (which is quadratic in the response's size).
pub struct ResponseAnswers<'r> {
    by_link_id: HashMap<&'r str, Vec<&'r Value>>,
}

impl<'r> ResponseAnswers<'r> {
    /// Indexes every answer anywhere in `response` (nested under items and answers), in the
    /// order [`response_answers`] yields them.
    pub fn new(response: &'r Value) -> Self {
        fn walk<'r>(parent: &'r Value, by_link_id: &mut HashMap<&'r str, Vec<&'r Value>>) {
            for item in items(parent) {
                if let Some(link_id) = str_of(item, "linkId") {
                    let given = answers(item);
                    if !given.is_empty() {
                        by_link_id.entry(link_id).or_default().extend(given);
                    }
                }
                walk(item, by_link_id);
                for answer in answers(item) {
                    walk(answer, by_link_id);
                }
            }
        }
        let mut by_link_id = HashMap::new();
        walk(response, &mut by_link_id);
        ResponseAnswers { by_link_id }
    }

    /// Every answer to `link_id` (what [`response_answers`] returns).
    pub fn get(&self, link_id: &str) -> &[&'r Value] {
        self.by_link_id.get(link_id).map_or(&[], Vec::as_slice)
    }
}

/// The concepts of the contained ValueSet an `answerValueSet` of `#id` names (compose
/// concepts and expansion contains, with their systems); `None` when it is not contained.
pub fn contained_concepts(
    questionnaire: &Value,
    value_set: &str,
) -> Option<Vec<(Option<String>, Value)>> {
    let id = value_set.strip_prefix('#')?;
    let vs = questionnaire
        .get("contained")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| str_of(r, "resourceType") == Some("ValueSet") && str_of(r, "id") == Some(id))?;
    let mut out = Vec::new();
    if let Some(includes) = vs
        .get("compose")
        .and_then(|c| c.get("include"))
        .and_then(Value::as_array)
    {
        for include in includes {
            let system = str_of(include, "system").map(str::to_string);
            for concept in include
                .get("concept")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push((system.clone(), concept.clone()));
            }
        }
    }
    fn contains(list: &Value, out: &mut Vec<(Option<String>, Value)>) {
        for c in list.as_array().into_iter().flatten() {
            out.push((str_of(c, "system").map(str::to_string), c.clone()));
            if let Some(nested) = c.get("contains") {
                contains(nested, out);
            }
        }
    }
    if let Some(list) = vs.get("expansion").and_then(|e| e.get("contains")) {
        contains(list, &mut out);
    }
    Some(out)
}

/// The weight on an element's own extensions (`ordinalValue`, else `itemWeight`), as exact
/// decimal text.
pub fn own_weight(element: &Value) -> Option<String> {
    [ext::ORDINAL_VALUE, ext::ITEM_WEIGHT]
        .iter()
        .find_map(|url| {
            let e = ext::first(element, url)?;
            let v = e.get("valueDecimal").or_else(|| e.get("valueInteger"))?;
            v.is_number().then(|| v.to_string())
        })
}

/// The ordinal of one answer to `item`: the matching answerOption's weight (on the option or
/// on its Coding), else the matching concept of a contained answerValueSet, else the
/// answer's own Coding's extension.
pub fn ordinal(questionnaire: &Value, item: &Value, answer: &Value) -> Option<String> {
    let (kind, value) = crate::answers::value(answer, "value")?;
    let options = item
        .get("answerOption")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for option in options {
        if let Some((okind, ovalue)) = crate::answers::value(option, "value") {
            if okind == kind && same_value(&kind, &ovalue, &value) {
                if let Some(w) =
                    own_weight(option).or_else(|| option.get("valueCoding").and_then(own_weight))
                {
                    return Some(w);
                }
            }
        }
    }
    if kind == "Coding" {
        if let Some(concepts) =
            str_of(item, "answerValueSet").and_then(|vs| contained_concepts(questionnaire, vs))
        {
            for (system, concept) in &concepts {
                if str_of(concept, "code") == str_of(&value, "code")
                    && system.as_deref() == str_of(&value, "system")
                {
                    if let Some(w) = own_weight(concept) {
                        return Some(w);
                    }
                }
            }
        }
        return own_weight(&value);
    }
    None
}

/// Whether `item` weights its answers (an option or contained concept carries a weight):
/// such an item contributes ordinals to a score.
pub fn is_scored(questionnaire: &Value, item: &Value) -> bool {
    let options = item
        .get("answerOption")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let mut any = false;
    for option in options {
        any |= own_weight(option).is_some()
            || option.get("valueCoding").and_then(own_weight).is_some();
    }
    any || str_of(item, "answerValueSet")
        .and_then(|vs| contained_concepts(questionnaire, vs))
        .is_some_and(|concepts| concepts.iter().any(|(_, c)| own_weight(c).is_some()))
}
