//! The canonical parameter list of an applied search (R4 search.html §3.1.1.3
//! "Search result": the Bundle `self` link SHOULD show only the parameters
//! the server actually used). Output is decoded text (the HTTP layer
//! percent-encodes); values are re-escaped (`\,` `\|` `\$` `\\`) so that
//! parsing the output gives back the same request.
//!
//! Order: filters in request order, then `_sort`, `_count`, `_include`s,
//! `_revinclude`s, `_summary`, `_elements`, `_total`, `_contained`,
//! `_containedType`, `_page`. Ignored parameters never appear.

use crate::escape::escape;
use crate::ir::{Include, ParamRef, ReferenceValue, SearchRequest, TokenSystem, Value};
use fhir_primitives::Prefix;

/// The applied parameters as (name, value) pairs, in a stable order.
pub fn self_link_params(req: &SearchRequest) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in &req.filters {
        let values: Vec<String> = f.values.iter().map(render_value).collect();
        out.push((render_param(&f.param), values.join(",")));
    }
    if !req.sort.is_empty() {
        let keys: Vec<String> = req
            .sort
            .iter()
            .map(|k| format!("{}{}", if k.descending { "-" } else { "" }, k.code))
            .collect();
        out.push(("_sort".to_string(), keys.join(",")));
    }
    if let Some(c) = req.count {
        out.push(("_count".to_string(), c.to_string()));
    }
    for (name, list) in [("_include", &req.include), ("_revinclude", &req.revinclude)] {
        for inc in list {
            let n = if inc.iterate {
                format!("{name}:iterate")
            } else {
                name.to_string()
            };
            out.push((n, render_include(inc)));
        }
    }
    if let Some(s) = req.summary {
        out.push(("_summary".to_string(), s.as_str().to_string()));
    }
    if let Some(e) = &req.elements {
        out.push(("_elements".to_string(), e.join(",")));
    }
    if let Some(t) = req.total {
        out.push(("_total".to_string(), t.as_str().to_string()));
    }
    if let Some(c) = req.contained {
        out.push(("_contained".to_string(), c.as_str().to_string()));
    }
    if let Some(c) = req.contained_type {
        out.push(("_containedType".to_string(), c.as_str().to_string()));
    }
    if let Some(p) = &req.cursor {
        out.push(("_page".to_string(), p.clone()));
    }
    out
}

/// The parameter name: `code[:modifier]`, `ref:Type.…`, `_has:Type:ref:…`.
pub fn render_param(p: &ParamRef) -> String {
    match p {
        ParamRef::Direct { code, modifier, .. } => match modifier {
            Some(m) => format!("{code}:{}", m.as_str()),
            None => code.clone(),
        },
        ParamRef::Chain {
            code,
            target_type,
            then,
        } => format!("{code}:{target_type}.{}", render_param(then)),
        ParamRef::Has {
            target_type,
            reference_param,
            then,
        } => format!(
            "_has:{target_type}:{reference_param}:{}",
            render_param(then)
        ),
    }
}

fn prefix(p: Prefix) -> &'static str {
    if p == Prefix::Eq {
        ""
    } else {
        p.code()
    }
}

/// One value in canonical, escaped form.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::Missing(b) => b.to_string(),
        Value::String(s) | Value::Uri(s) => escape(s),
        Value::Token(t) => {
            let code = t.code.as_deref().map(escape).unwrap_or_default();
            match &t.system {
                TokenSystem::Any => code,
                TokenSystem::NoSystem => format!("|{code}"),
                TokenSystem::Is(s) => format!("{}|{code}", escape(s)),
            }
        }
        Value::OfType {
            system,
            code,
            value,
        } => format!("{}|{}|{}", escape(system), escape(code), escape(value)),
        Value::Date(d) => format!("{}{}", prefix(d.prefix), d.raw),
        Value::Number(n) => format!("{}{}", prefix(n.prefix), n.raw),
        Value::Quantity(q) => {
            let mut s = format!("{}{}", prefix(q.number.prefix), q.number.raw);
            if let Some(code) = &q.code {
                s.push('|');
                s.push_str(&q.system.as_deref().map(escape).unwrap_or_default());
                s.push('|');
                s.push_str(&escape(code));
            }
            s
        }
        Value::Reference(r) => match r {
            ReferenceValue::Id(id) => escape(id),
            ReferenceValue::Typed {
                resource_type,
                id,
                version,
            } => match version {
                Some(v) => format!("{resource_type}/{id}/_history/{v}"),
                None => format!("{resource_type}/{id}"),
            },
            ReferenceValue::Url { url, .. } => escape(url),
        },
        Value::Composite(parts) => parts.iter().map(render_value).collect::<Vec<_>>().join("$"),
    }
}

fn render_include(inc: &Include) -> String {
    match (&inc.source_type, &inc.param) {
        (None, _) => "*".to_string(),
        (Some(t), None) => format!("{t}:*"),
        (Some(t), Some(p)) => match &inc.target_type {
            Some(target) => format!("{t}:{p}:{target}"),
            None => format!("{t}:{p}"),
        },
    }
}
