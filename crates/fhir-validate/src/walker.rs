//! The resource walker: visits a JSON resource against the R4 model and
//! reports structural issues (unknown elements, JSON types, cardinality,
//! required elements, choice types, the JSON primitive/extension pairing of
//! FHIR R4 json.html §2.6.2), delegating value checks to `fhir_primitives::formats`,
//! required bindings to the model's value sets and narrative to `xhtml`.

use serde_json::{Map, Value};

use crate::issue::{Issue, IssueList, Severity};
use crate::model::{model, Element, Model, Ty, TypeDef};
use crate::{xhtml, MAX_DEPTH};
use fhir_primitives::formats::{self, MAX_STRING_BYTES};
use fhir_primitives::PrimitiveType;

pub(crate) fn validate(resource: &Value) -> Vec<Issue> {
    let mut w = Walker {
        m: model(),
        issues: IssueList::default(),
        path: String::new(),
    };
    let Value::Object(obj) = resource else {
        w.fatal("A resource must be a JSON object".into());
        return w.issues.into_vec();
    };
    match obj.get("resourceType") {
        Some(Value::String(rt)) => match w.m.concrete_resource(rt) {
            Some(ti) => {
                w.path.push_str(rt);
                w.object(ti, obj, 1, true);
            }
            None => w.fatal(format!("Unknown resource type '{}'", shorten(rt))),
        },
        Some(_) => w.fatal("resourceType must be a string".into()),
        None => w.fatal("Missing resourceType: a resource must name its type".into()),
    }
    w.issues.into_vec()
}

struct Walker {
    m: &'static Model,
    issues: IssueList,
    path: String,
}

/// Values quoted in messages are cut to this many characters.
const QUOTE_MAX: usize = 60;

/// Is `name` in `type_name` written as an XML attribute (R4 elementdefinition.html
/// `representation = xmlAttr`: an element's `id`, an extension's `url`; a narrative's `div` is
/// xhtml)? Such a primitive has no `_name` part in JSON: there is nowhere in XML to put its
/// extensions (json.html "primitive elements").
fn is_xml_attribute(type_name: &str, name: &str, is_resource: bool) -> bool {
    (name == "id" && !is_resource) || (name == "url" && type_name == "Extension")
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Walker {
    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        diagnostics: String,
        expression: String,
    ) {
        self.issues.push(severity, code, diagnostics, expression);
    }

    fn error(&mut self, code: &'static str, diagnostics: String) {
        let expr = self.path.clone();
        self.push(Severity::Error, code, diagnostics, expr);
    }

    fn warning(&mut self, code: &'static str, diagnostics: String) {
        let expr = self.path.clone();
        self.push(Severity::Warning, code, diagnostics, expr);
    }

    fn fatal(&mut self, diagnostics: String) {
        let expr = self.path.clone();
        self.push(Severity::Fatal, "structure", diagnostics, expr);
    }

    /// Appends `.name` to the path; returns the length to truncate back to.
    fn enter(&mut self, name: &str) -> usize {
        let len = self.path.len();
        self.path.push('.');
        self.path.push_str(name);
        len
    }

    fn enter_index(&mut self, i: usize) -> usize {
        let len = self.path.len();
        self.path.push('[');
        self.path.push_str(&i.to_string());
        self.path.push(']');
        len
    }

    fn leave(&mut self, len: usize) {
        self.path.truncate(len);
    }

    fn too_deep(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            self.error(
                "structure",
                format!("Content nested deeper than {MAX_DEPTH} levels is not accepted"),
            );
            return true;
        }
        false
    }

    /// Walks the members of an object of type `ti`.
    fn object(&mut self, ti: usize, obj: &Map<String, Value>, depth: usize, is_resource: bool) {
        if self.too_deep(depth) {
            return;
        }
        let m = self.m;
        let td = &m.types[ti];
        let mut choice_seen: Vec<Option<&str>> = vec![None; td.choices.len()];
        for (key, value) in obj {
            if self.issues.stopped() {
                return;
            }
            // `resourceType` names a resource's type, except where it is an element of its own
            // (ExampleScenario.instance.resourceType, a code).
            if key == "resourceType" && (is_resource || td.element("resourceType").is_none()) {
                if !is_resource {
                    let at = self.enter(key);
                    self.error(
                        "structure",
                        format!("Unknown element 'resourceType' in {}: it is only allowed at the root of a resource", td.name),
                    );
                    self.leave(at);
                }
                continue;
            }
            let (base, is_ext) = match key.strip_prefix('_') {
                Some(b) => (b, true),
                None => (key.as_str(), false),
            };
            let el = match td.element(base) {
                Some(el)
                    if !is_ext
                        || (matches!(el.ty, Ty::Primitive(p) if p != PrimitiveType::Xhtml)
                            && !is_xml_attribute(td.name.as_str(), base, is_resource)) =>
                {
                    el
                }
                Some(_) => {
                    let at = self.enter(key);
                    self.error(
                        "structure",
                        format!("Unknown element '{key}' in {}: the '_' form is only used for primitive elements", td.name),
                    );
                    self.leave(at);
                    continue;
                }
                None => {
                    let at = self.enter(&shorten(key));
                    let msg = unknown_message(td, key);
                    self.error("structure", msg);
                    self.leave(at);
                    continue;
                }
            };
            if let Some(g) = el.choice {
                match choice_seen[g] {
                    Some(other) if other != el.name => {
                        let at = self.enter(key);
                        self.error(
                            "structure",
                            format!(
                                "Only one variant of {}[x] is allowed, but both '{}' and '{}' are present",
                                td.choices[g].name, other, el.name
                            ),
                        );
                        self.leave(at);
                    }
                    _ => choice_seen[g] = Some(&el.name),
                }
            }
            match el.ty {
                Ty::Primitive(p) => {
                    if is_ext {
                        if !obj.contains_key(base) {
                            self.primitive_pair(el, p, None, Some(value), depth);
                        }
                    } else {
                        // xhtml has no extension part in JSON (`_div` is unknown)
                        let ext = if p == PrimitiveType::Xhtml {
                            None
                        } else {
                            obj.get(&el.ext_name)
                        };
                        self.primitive_pair(el, p, Some(value), ext, depth);
                    }
                }
                Ty::Complex(ci) => self.complex_field(el, ci, value, depth),
                Ty::Resource => self.resource_field(el, value, depth),
            }
        }
        for &ri in &td.required {
            let el = &td.elements[ri];
            if !obj.contains_key(&el.name) && !obj.contains_key(&el.ext_name) {
                let at = self.enter(&el.name);
                self.error(
                    "required",
                    format!(
                        "Missing required element '{}' (minimum cardinality 1) in {}",
                        el.name, td.name
                    ),
                );
                self.leave(at);
            }
        }
        for (g, choice) in td.choices.iter().enumerate() {
            if choice.required && choice_seen[g].is_none() {
                let at = self.enter(&format!("{}[x]", choice.name));
                self.error(
                    "required",
                    format!(
                        "Missing required element '{}[x]' (minimum cardinality 1) in {}",
                        choice.name, td.name
                    ),
                );
                self.leave(at);
            }
        }
        self.invariants(td, obj);
    }

    /// A few cheap base invariants: ele-1 and ext-1.
    fn invariants(&mut self, td: &TypeDef, obj: &Map<String, Value>) {
        // (the `_name` part of a primitive is an Element that may carry only
        // an id when the value is present, so it is exempt here)
        if obj.len() == 1
            && obj.contains_key("id")
            && td.kind != crate::model::Kind::Resource
            && td.name != "Element"
        {
            self.error(
                "invariant",
                format!(
                    "{} has only an id: all FHIR elements must have a value or children (ele-1)",
                    td.name
                ),
            );
        }
        if td.name == "Extension" && obj.contains_key("extension") {
            let has_value = obj
                .keys()
                .any(|k| k.starts_with("value") || k.starts_with("_value"));
            if has_value {
                self.error(
                    "invariant",
                    "An extension must have either extensions or value[x], not both (ext-1)".into(),
                );
            }
        }
    }

    fn complex_field(&mut self, el: &Element, ci: usize, value: &Value, depth: usize) {
        let at = self.enter(&el.name);
        if el.multiple {
            match value {
                Value::Array(items) if items.is_empty() => {
                    self.error(
                        "value",
                        format!("Empty array for '{}': omit the element instead", el.name),
                    );
                }
                Value::Array(items) => {
                    if !self.too_deep(depth + 1) {
                        for (i, item) in items.iter().enumerate() {
                            if self.issues.stopped() {
                                break;
                            }
                            let ia = self.enter_index(i);
                            self.complex_value(ci, item, depth + 1);
                            self.leave(ia);
                        }
                    }
                }
                other => self.error(
                    "structure",
                    format!(
                        "'{}' repeats (0..*) and must be an array, not {}",
                        el.name,
                        json_kind(other)
                    ),
                ),
            }
        } else if let Value::Array(_) = value {
            self.error(
                "structure",
                format!(
                    "'{}' has a maximum cardinality of 1 and must not be an array",
                    el.name
                ),
            );
        } else {
            self.complex_value(ci, value, depth);
        }
        self.leave(at);
    }

    fn complex_value(&mut self, ci: usize, value: &Value, depth: usize) {
        match value {
            Value::Object(obj) if obj.is_empty() => {
                self.error("value", "Empty object: omit the element instead".into());
            }
            Value::Object(obj) => self.object(ci, obj, depth + 1, false),
            Value::Null => self.error("value", "null is not allowed here".into()),
            other => {
                let tname = &self.m.types[ci].name;
                let msg = format!(
                    "Expected an object ({}) but found {}",
                    tname,
                    json_kind(other)
                );
                self.error("structure", msg);
            }
        }
    }

    fn resource_field(&mut self, el: &Element, value: &Value, depth: usize) {
        let at = self.enter(&el.name);
        let contained = el.name == "contained";
        if el.multiple {
            match value {
                Value::Array(items) if items.is_empty() => {
                    self.error(
                        "value",
                        format!("Empty array for '{}': omit the element instead", el.name),
                    );
                }
                Value::Array(items) => {
                    if !self.too_deep(depth + 1) {
                        for (i, item) in items.iter().enumerate() {
                            if self.issues.stopped() {
                                break;
                            }
                            let ia = self.enter_index(i);
                            self.resource_value(item, depth + 1, contained);
                            self.leave(ia);
                        }
                    }
                }
                other => self.error(
                    "structure",
                    format!(
                        "'{}' repeats (0..*) and must be an array, not {}",
                        el.name,
                        json_kind(other)
                    ),
                ),
            }
        } else if let Value::Array(_) = value {
            self.error(
                "structure",
                format!(
                    "'{}' has a maximum cardinality of 1 and must not be an array",
                    el.name
                ),
            );
        } else {
            self.resource_value(value, depth, contained);
        }
        self.leave(at);
    }

    fn resource_value(&mut self, value: &Value, depth: usize, contained: bool) {
        let Value::Object(obj) = value else {
            let msg = format!(
                "Expected a resource (JSON object) but found {}",
                json_kind(value)
            );
            self.error("structure", msg);
            return;
        };
        match obj.get("resourceType") {
            Some(Value::String(rt)) => match self.m.concrete_resource(rt) {
                Some(ri) => {
                    if contained && obj.contains_key("contained") {
                        self.error(
                            "invariant",
                            "A contained resource must not contain other resources (dom-2)".into(),
                        );
                    }
                    self.object(ri, obj, depth + 1, true);
                }
                None => self.error(
                    "structure",
                    format!("Unknown resource type '{}'", shorten(rt)),
                ),
            },
            Some(_) => self.error("structure", "resourceType must be a string".into()),
            None => self.error(
                "structure",
                "Missing resourceType in nested resource".into(),
            ),
        }
    }

    /// A primitive element: its value (`name`) and/or its extension part
    /// (`_name`), as single values or parallel arrays.
    fn primitive_pair(
        &mut self,
        el: &Element,
        p: PrimitiveType,
        value: Option<&Value>,
        ext: Option<&Value>,
        depth: usize,
    ) {
        let at = self.enter(&el.name);
        if el.multiple {
            let vals = self.prim_array(el, &el.name, value);
            let exts = self.prim_array(el, &el.ext_name, ext);
            if let (Some(v), Some(e)) = (vals, exts) {
                if v.len() != e.len() {
                    self.error(
                        "structure",
                        format!(
                            "'{}' has {} entries but '{}' has {}: the arrays must be the same length",
                            el.name,
                            v.len(),
                            el.ext_name,
                            e.len()
                        ),
                    );
                }
            }
            let n = vals
                .map_or(0, <[Value]>::len)
                .max(exts.map_or(0, <[Value]>::len));
            if n > 0 && !self.too_deep(depth + 1) {
                for i in 0..n {
                    if self.issues.stopped() {
                        break;
                    }
                    let v = vals.and_then(|a| a.get(i)).filter(|v| !v.is_null());
                    let e = exts.and_then(|a| a.get(i)).filter(|v| !v.is_null());
                    let ia = self.enter_index(i);
                    if v.is_none() && e.is_none() {
                        self.error(
                            "value",
                            format!(
                                "null in '{}' must be paired with a non-null entry at the same index in '{}'",
                                if vals.is_some() { &el.name } else { &el.ext_name },
                                if vals.is_some() { &el.ext_name } else { &el.name }
                            ),
                        );
                    }
                    if let Some(v) = v {
                        self.primitive_value(el, p, v);
                    }
                    if let Some(e) = e {
                        self.element_ext(e, depth + 1);
                    }
                    self.leave(ia);
                }
            }
        } else {
            match value {
                Some(Value::Array(_)) => self.error(
                    "structure",
                    format!(
                        "'{}' has a maximum cardinality of 1 and must not be an array",
                        el.name
                    ),
                ),
                Some(v) => self.primitive_value(el, p, v),
                None => {}
            }
            match ext {
                Some(Value::Array(_)) => self.error(
                    "structure",
                    format!(
                        "'{}' has a maximum cardinality of 1 and must not be an array",
                        el.ext_name
                    ),
                ),
                Some(e) => self.element_ext(e, depth),
                None => {}
            }
        }
        self.leave(at);
    }

    /// Checks that a repeating primitive part is an array; returns it.
    fn prim_array<'v>(
        &mut self,
        el: &Element,
        key: &str,
        v: Option<&'v Value>,
    ) -> Option<&'v [Value]> {
        match v? {
            Value::Array(a) if a.is_empty() => {
                self.error(
                    "value",
                    format!("Empty array for '{key}': omit the element instead"),
                );
                None
            }
            Value::Array(a) => Some(a),
            other => {
                self.error(
                    "structure",
                    format!(
                        "'{}' repeats (0..*) and '{key}' must be an array, not {}",
                        el.name,
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }

    /// The `_name` part of a primitive: an Element (id + extensions).
    fn element_ext(&mut self, e: &Value, depth: usize) {
        match e {
            Value::Object(obj) if obj.is_empty() => {
                self.error(
                    "value",
                    "Empty object in the '_' extension part: omit it instead".into(),
                );
            }
            Value::Object(obj) => {
                if let Some(ti) = self.m.type_index("Element") {
                    self.object(ti, obj, depth + 1, false);
                }
            }
            Value::Null => self.error("value", "null is not allowed here".into()),
            other => {
                let msg = format!(
                    "The '_' extension part must be an object, not {}",
                    json_kind(other)
                );
                self.error("structure", msg);
            }
        }
    }

    fn primitive_value(&mut self, el: &Element, p: PrimitiveType, v: &Value) {
        match (p, v) {
            (_, Value::Null) => self.error(
                "value",
                "null is not allowed: omit the element instead".into(),
            ),
            (PrimitiveType::Boolean, Value::Bool(_)) => {}
            (
                PrimitiveType::Integer
                | PrimitiveType::PositiveInt
                | PrimitiveType::UnsignedInt
                | PrimitiveType::Decimal,
                Value::Number(n),
            ) => {
                let text = n.to_string();
                let ok = match p {
                    PrimitiveType::Integer => formats::is_integer(&text),
                    PrimitiveType::PositiveInt => formats::is_positive_int(&text),
                    PrimitiveType::UnsignedInt => formats::is_unsigned_int(&text),
                    _ => formats::is_decimal(&text),
                };
                if !ok {
                    self.error(
                        "value",
                        format!("'{}' is not a valid {}", shorten(&text), p.name()),
                    );
                }
            }
            (PrimitiveType::Xhtml, Value::String(s)) if s.is_empty() => {
                self.error(
                    "value",
                    format!("Empty string for '{}': omit the element instead", el.name),
                );
            }
            (PrimitiveType::Xhtml, Value::String(s)) => {
                for (is_err, code, msg) in xhtml::check_div(s) {
                    if is_err {
                        self.error(code, msg);
                    } else {
                        self.warning(code, msg);
                    }
                }
            }
            (_, Value::String(s)) if p.string_matcher().is_some() => self.string_value(el, p, s),
            (_, other) => {
                let expected = match p {
                    PrimitiveType::Boolean => "a JSON boolean",
                    PrimitiveType::Integer
                    | PrimitiveType::PositiveInt
                    | PrimitiveType::UnsignedInt
                    | PrimitiveType::Decimal => "a JSON number",
                    _ => "a JSON string",
                };
                self.error(
                    "structure",
                    format!(
                        "'{}' is a {} and must be {expected}, not {}",
                        el.name,
                        p.name(),
                        json_kind(other)
                    ),
                );
            }
        }
    }

    fn string_value(&mut self, el: &Element, p: PrimitiveType, s: &str) {
        if s.is_empty() {
            self.error(
                "value",
                format!("Empty string for '{}': omit the element instead", el.name),
            );
            return;
        }
        if s.len() > MAX_STRING_BYTES {
            self.error("too-long", format!("'{}' is longer than 1 MB", el.name));
            return;
        }
        if formats::has_forbidden_control(s) {
            self.error(
                "value",
                format!(
                    "'{}' contains control characters (only tab, CR and LF are allowed)",
                    el.name
                ),
            );
            return;
        }
        let valid = p.string_matcher().is_some_and(|f| f(s));
        if !valid {
            let why = match p {
                PrimitiveType::Code
                | PrimitiveType::Id
                | PrimitiveType::Uri
                | PrimitiveType::Url
                | PrimitiveType::Canonical
                    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) =>
                {
                    " (leading or trailing whitespace is not allowed)"
                }
                _ => "",
            };
            self.error(
                "value",
                format!("'{}' is not a valid {}{why}", shorten(s), p.name()),
            );
            return;
        }
        if p == PrimitiveType::String
            && (s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace))
        {
            self.warning(
                "value",
                format!(
                    "'{}' has leading or trailing whitespace (strings SHOULD NOT)",
                    el.name
                ),
            );
        }
        if let Some(b) = el.binding {
            let vs = &self.m.value_sets[b];
            if !vs.codes.contains(s) {
                let mut allowed: Vec<&str> = vs.codes.iter().map(String::as_str).collect();
                allowed.sort_unstable();
                let list = if allowed.len() <= 12 {
                    format!("; allowed: {}", allowed.join(", "))
                } else {
                    String::new()
                };
                self.error(
                    "code-invalid",
                    format!(
                        "'{}' is not in the required value set {}{list}",
                        shorten(s),
                        vs.url
                    ),
                );
            }
        }
    }
}

/// Diagnostics for an unknown element, with a hint.
fn unknown_message(td: &TypeDef, key: &str) -> String {
    let base = key.strip_prefix('_').unwrap_or(key);
    let head = format!("Unknown element '{}' in {}", shorten(key), td.name);
    if base.len() > 64 {
        // no element name is that long; skip the (quadratic) suggestions
        return format!("{head}: it is not defined in FHIR R4");
    }
    if let Some(el) = td
        .elements
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(base))
    {
        return format!(
            "{head}: did you mean '{}'? (names are case-sensitive)",
            el.name
        );
    }
    if let Some(c) = td.choices.iter().find(|c| c.name == base) {
        return format!(
            "{head}: {}[x] needs a type suffix, e.g. {}",
            c.name,
            variants(td, &c.name)
        );
    }
    if let Some(c) = td.choices.iter().find(|c| {
        base.starts_with(c.name.as_str())
            && base[c.name.len()..].starts_with(|ch: char| ch.is_ascii_uppercase())
    }) {
        return format!(
            "{head}: not an allowed type for {}[x]; allowed: {}",
            c.name,
            variants(td, &c.name)
        );
    }
    let best = td
        .elements
        .iter()
        .map(|e| (edit_distance(base, &e.name), &e.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, name)) => format!("{head}: did you mean '{name}'?"),
        None => {
            format!("{head}: it is not defined in FHIR R4; use an extension for additional data")
        }
    }
}

fn variants(td: &TypeDef, group: &str) -> String {
    let names: Vec<&str> = td
        .elements
        .iter()
        .filter(|e| e.choice.is_some_and(|g| td.choices[g].name == group))
        .map(|e| e.name.as_str())
        .collect();
    if names.len() > 8 {
        format!("{}, … ({} types)", names[..8].join(", "), names.len())
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
#[path = "walker_tests.rs"]
mod tests;
