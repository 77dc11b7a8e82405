//! Narrative XHTML checks (FHIR R4 narrative.html §2.4.0 and the txt-1 /
//! txt-2 invariants): a small hand-rolled XML tokenizer that requires a
//! well-formed `<div xmlns="http://www.w3.org/1999/xhtml">` fragment, the
//! FHIR-allowed element and attribute subset, no scripts or event handlers,
//! no `javascript:` / non-image `data:` URLs, and some actual content.

/// One problem found in a div: (is it an error rather than a warning?,
/// IssueType code, message).
pub(crate) type Problem = (bool, &'static str, String);

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

/// Elements FHIR narrative may use (R4 narrative.html, as enforced by the
/// HL7 reference validator).
const ALLOWED_ELEMENTS: &[&str] = &[
    "p",
    "br",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "b",
    "em",
    "i",
    "strong",
    "small",
    "big",
    "tt",
    "dfn",
    "q",
    "var",
    "abbr",
    "acronym",
    "cite",
    "blockquote",
    "hr",
    "address",
    "bdo",
    "kbd",
    "sub",
    "sup",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "pre",
    "table",
    "caption",
    "colgroup",
    "col",
    "thead",
    "tr",
    "tfoot",
    "tbody",
    "th",
    "td",
    "code",
    "samp",
    "img",
    "map",
    "area",
    "ins",
    "del",
    "s",
    "u",
    "strike",
    "center",
    "font",
];

/// Attributes allowed on any element.
const ALLOWED_ATTRS: &[&str] = &[
    "title",
    "style",
    "class",
    "id",
    "lang",
    "xml:lang",
    "dir",
    "accesskey",
    "tabindex",
    "xmlns",
    "span",
    "width",
    "align",
    "valign",
    "char",
    "charoff",
    "abbr",
    "axis",
    "headers",
    "scope",
    "rowspan",
    "colspan",
];

/// Element-specific attributes, as "element.attribute".
const ALLOWED_ELEMENT_ATTRS: &[&str] = &[
    "a.href",
    "a.name",
    "a.title",
    "a.type",
    "a.rel",
    "a.rev",
    "a.hreflang",
    "a.charset",
    "a.coords",
    "a.shape",
    "img.src",
    "img.border",
    "img.alt",
    "img.longdesc",
    "img.height",
    "img.width",
    "img.usemap",
    "img.ismap",
    "blockquote.cite",
    "q.cite",
    "ins.cite",
    "del.cite",
    "ins.datetime",
    "del.datetime",
    "map.name",
    "area.shape",
    "area.coords",
    "area.href",
    "area.nohref",
    "area.alt",
    "table.summary",
    "table.width",
    "table.border",
    "table.frame",
    "table.rules",
    "table.cellspacing",
    "table.cellpadding",
    "pre.space",
    "td.nowrap",
    "th.nowrap",
    "font.color",
    "font.size",
    "font.face",
    "ol.start",
    "ol.type",
    "ul.type",
    "li.value",
    "li.type",
    "hr.size",
];

/// Attributes holding URLs (checked for dangerous schemes).
const URL_ATTRS: &[&str] = &["href", "src", "cite", "longdesc", "usemap"];

/// Check the value of a Narrative.div.
pub(crate) fn check_div(s: &str) -> Vec<Problem> {
    let mut p = Parser {
        b: s.as_bytes(),
        s,
        i: 0,
        problems: Vec::new(),
        stack: Vec::new(),
        has_content: false,
    };
    p.run();
    p.problems
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    problems: Vec<Problem>,
    stack: Vec<&'a str>,
    has_content: bool,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == b'-' || c == b'.'
}

fn is_xml_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_xml_char(cp: u32) -> bool {
    matches!(cp, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

impl<'a> Parser<'a> {
    fn err(&mut self, code: &'static str, msg: String) {
        self.problems.push((true, code, msg));
    }

    /// A well-formedness failure: report and stop parsing.
    fn fatal(&mut self, msg: String) {
        self.err(
            "value",
            format!("Narrative div is not well-formed XHTML: {msg}"),
        );
        self.i = self.b.len();
        self.stack.clear();
    }

    fn skip_ws(&mut self) {
        while self.i < self.b.len() && is_xml_ws(self.b[self.i]) {
            self.i += 1;
        }
    }

    fn starts_with(&self, pat: &str) -> bool {
        self.b[self.i..].starts_with(pat.as_bytes())
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.i;
        if self.i >= self.b.len() || !is_name_start(self.b[self.i]) {
            return None;
        }
        while self.i < self.b.len() && is_name_char(self.b[self.i]) {
            self.i += 1;
        }
        self.s.get(start..self.i)
    }

    fn run(&mut self) {
        self.skip_ws();
        if !self.starts_with("<div") {
            self.fatal("it must start with <div xmlns=\"http://www.w3.org/1999/xhtml\">".into());
            return;
        }
        let mut root_done = false;
        while self.i < self.b.len() {
            if self.b[self.i] == b'<' {
                if self.starts_with("<!--") {
                    self.comment();
                } else if self.starts_with("<![CDATA[") {
                    self.cdata(root_done);
                } else if self.starts_with("<!") || self.starts_with("<?") {
                    self.fatal(
                        "DOCTYPE declarations and processing instructions are not allowed".into(),
                    );
                } else if self.starts_with("</") {
                    self.end_tag();
                    if self.stack.is_empty() {
                        root_done = true;
                    }
                } else if root_done {
                    self.fatal("content after the closing </div>".into());
                } else {
                    self.start_tag();
                    if self.stack.is_empty() {
                        root_done = true;
                    }
                }
            } else {
                self.text(root_done);
            }
        }
        if !self.stack.is_empty() {
            let open = self.stack.last().copied().unwrap_or("div");
            self.fatal(format!("element <{open}> is not closed"));
        }
        let ok_so_far = self
            .problems
            .iter()
            .all(|p| !p.2.contains("not well-formed"));
        if root_done && ok_so_far && !self.has_content {
            self.err(
                "invariant",
                "Narrative div must have some non-whitespace content (txt-2)".into(),
            );
        }
    }

    fn comment(&mut self) {
        match find(self.b, self.i + 4, b"-->") {
            Some(end) => self.i = end + 3,
            None => self.fatal("unterminated comment".into()),
        }
    }

    fn cdata(&mut self, root_done: bool) {
        if root_done || self.stack.is_empty() {
            self.fatal("CDATA outside the div".into());
            return;
        }
        let start = self.i + 9;
        match find(self.b, start, b"]]>") {
            Some(end) => {
                if self.b[start..end].iter().any(|&c| !is_xml_ws(c)) {
                    self.has_content = true;
                }
                self.i = end + 3;
            }
            None => self.fatal("unterminated CDATA section".into()),
        }
    }

    fn text(&mut self, root_done: bool) {
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i] != b'<' {
            self.i += 1;
        }
        let text = &self.s[start..self.i];
        if text.bytes().all(is_xml_ws) {
            return;
        }
        if root_done {
            self.fatal("text after the closing </div>".into());
            return;
        }
        self.has_content = true;
        if let Err(msg) = check_chars(text) {
            self.fatal(msg);
        }
    }

    fn end_tag(&mut self) {
        self.i += 2;
        let Some(name) = self.name() else {
            self.fatal("malformed end tag".into());
            return;
        };
        self.skip_ws();
        if self.i >= self.b.len() || self.b[self.i] != b'>' {
            self.fatal(format!("malformed end tag </{name}"));
            return;
        }
        self.i += 1;
        match self.stack.pop() {
            Some(open) if open == name => {}
            Some(open) => self.fatal(format!("</{name}> does not match <{open}>")),
            None => self.fatal(format!("unexpected </{name}>")),
        }
    }

    fn start_tag(&mut self) {
        self.i += 1;
        let Some(name) = self.name() else {
            self.fatal("'<' must start a tag (use &lt; in text)".into());
            return;
        };
        let is_root = self.stack.is_empty();
        self.check_element(name, is_root);
        let mut seen: Vec<&str> = Vec::new();
        let mut root_ns_ok = false;
        loop {
            let before = self.i;
            self.skip_ws();
            if self.i >= self.b.len() {
                self.fatal(format!("unterminated <{name}> tag"));
                return;
            }
            match self.b[self.i] {
                b'>' => {
                    self.i += 1;
                    self.stack.push(name);
                    break;
                }
                b'/' if self.b.get(self.i + 1) == Some(&b'>') => {
                    self.i += 2;
                    break;
                }
                _ => {}
            }
            if before == self.i {
                self.fatal(format!(
                    "attributes of <{name}> must be separated by whitespace"
                ));
                return;
            }
            let Some(attr) = self.name() else {
                self.fatal(format!("malformed attribute in <{name}>"));
                return;
            };
            self.skip_ws();
            if self.b.get(self.i) != Some(&b'=') {
                self.fatal(format!("attribute '{attr}' of <{name}> has no value"));
                return;
            }
            self.i += 1;
            self.skip_ws();
            let quote = match self.b.get(self.i) {
                Some(&q) if q == b'"' || q == b'\'' => q,
                _ => {
                    self.fatal(format!("value of attribute '{attr}' must be quoted"));
                    return;
                }
            };
            let vstart = self.i + 1;
            let Some(vend) = self.b[vstart..]
                .iter()
                .position(|&c| c == quote)
                .map(|p| p + vstart)
            else {
                self.fatal(format!("unterminated value of attribute '{attr}'"));
                return;
            };
            self.i = vend + 1;
            let value = &self.s[vstart..vend];
            if value.contains('<') {
                self.fatal(format!("'<' in the value of attribute '{attr}'"));
                return;
            }
            if let Err(msg) = check_chars(value) {
                self.fatal(msg);
                return;
            }
            if seen.contains(&attr) {
                self.fatal(format!("duplicate attribute '{attr}' on <{name}>"));
                return;
            }
            seen.push(attr);
            if attr == "xmlns" && value == XHTML_NS {
                root_ns_ok = true;
            }
            self.check_attribute(name, attr, value);
        }
        if is_root && !root_ns_ok {
            self.err(
                "invariant",
                format!("Narrative div must declare xmlns=\"{XHTML_NS}\""),
            );
        }
        if name == "img" {
            self.has_content = true;
        }
    }

    fn check_element(&mut self, name: &str, is_root: bool) {
        if is_root && name != "div" {
            self.err(
                "value",
                format!("Narrative root element must be <div>, not <{name}>"),
            );
        } else if name.contains(':') {
            self.err(
                "not-supported",
                format!("Namespace-prefixed element <{name}> is not allowed in narrative"),
            );
        } else if !ALLOWED_ELEMENTS.contains(&name) {
            self.err(
                "invariant",
                format!("Element <{name}> is not allowed in FHIR narrative (txt-1: no scripts, forms, frames, objects, styles, head/body)"),
            );
        }
    }

    fn check_attribute(&mut self, el: &str, attr: &str, value: &str) {
        let lower = attr.to_ascii_lowercase();
        if lower.starts_with("on") {
            self.err(
                "invariant",
                format!(
                    "Event attribute '{attr}' on <{el}> is not allowed in FHIR narrative (txt-1)"
                ),
            );
            return;
        }
        if attr == "xmlns" {
            if value != XHTML_NS {
                self.err(
                    "value",
                    format!("Wrong namespace '{value}' on <{el}>; narrative must be XHTML"),
                );
            }
            return;
        }
        let qualified_ok = ALLOWED_ELEMENT_ATTRS.iter().any(|q| {
            q.len() == el.len() + 1 + attr.len()
                && q.starts_with(el)
                && q.ends_with(attr)
                && q.as_bytes()[el.len()] == b'.'
        });
        if !ALLOWED_ATTRS.contains(&attr) && !qualified_ok {
            self.err(
                "invariant",
                format!("Attribute '{attr}' on <{el}> is not allowed in FHIR narrative (txt-1)"),
            );
            return;
        }
        if URL_ATTRS.contains(&attr) {
            let compact: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase();
            let image_data = el == "img" && attr == "src" && compact.starts_with("data:image/");
            if compact.starts_with("javascript:") || compact.starts_with("vbscript:") {
                self.err(
                    "invariant",
                    format!("Script URL in '{attr}' on <{el}> is not allowed"),
                );
            } else if compact.starts_with("data:") && !image_data {
                self.err(
                    "invariant",
                    format!("data: URL in '{attr}' on <{el}> is not allowed"),
                );
            }
        }
        if attr == "style" {
            let lower = value.to_ascii_lowercase();
            if lower.contains("javascript:") || lower.contains("expression(") {
                self.err(
                    "invariant",
                    format!("Script in style attribute on <{el}> is not allowed"),
                );
            }
        }
    }
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Checks character data: XML characters only, and every `&` starts one of
/// the five XML entities or a numeric character reference (HTML named
/// entities such as `&nbsp;` are not XML).
fn check_chars(text: &str) -> Result<(), String> {
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c as u32)) {
        return Err(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        ));
    }
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        rest = &rest[pos + 1..];
        let Some(end) = rest.find(';') else {
            return Err("'&' must start an entity reference (use &amp;)".into());
        };
        let ent = &rest[..end];
        let ok = match ent {
            "lt" | "gt" | "amp" | "quot" | "apos" => true,
            _ => numeric_ref(ent),
        };
        if !ok {
            return Err(format!(
                "'&{ent};' is not an XML entity (only &lt; &gt; &amp; &quot; &apos; and numeric references; use &#160; for &nbsp;)"
            ));
        }
        rest = &rest[end + 1..];
    }
    Ok(())
}

fn numeric_ref(ent: &str) -> bool {
    let cp = if let Some(hex) = ent.strip_prefix("#x") {
        if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        u32::from_str_radix(hex, 16).ok()
    } else if let Some(dec) = ent.strip_prefix('#') {
        if dec.is_empty() || dec.len() > 7 || !dec.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        dec.parse::<u32>().ok()
    } else {
        None
    };
    cp.is_some_and(is_xml_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(s: &str) -> Vec<String> {
        check_div(s)
            .into_iter()
            .filter(|p| p.0)
            .map(|p| p.2)
            .collect()
    }

    fn ok(s: &str) {
        assert_eq!(errors(s), Vec::<String>::new(), "{s}");
    }

    fn bad(s: &str, needle: &str) {
        let e = errors(s);
        assert!(
            e.iter().any(|m| m.contains(needle)),
            "{s}: expected '{needle}' in {e:?}"
        );
    }

    const OPEN: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\">";

    #[test]
    fn accepts_typical_narrative() {
        ok(&format!(
            "{OPEN}<p>Hello <b>world</b> &amp; &lt;friends&gt; &#160; &#xA0;</p></div>"
        ));
        ok(&format!("{OPEN}<table class=\"grid\"><tr><td colspan=\"2\" style=\"color: red\">x</td></tr></table></div>"));
        ok(&format!(
            "{OPEN}<a href=\"http://example.org/x?a=1&amp;b=2\">link</a><br/></div>"
        ));
        ok(&format!(
            "  {OPEN}<!-- comment --><img src=\"data:image/png;base64,AAAA\" alt=\"\"/></div>\n"
        ));
        ok("<div xmlns='http://www.w3.org/1999/xhtml'><span xml:lang=\"en\">x</span></div>");
        ok(&format!("{OPEN}<![CDATA[raw <text>]]></div>"));
    }

    #[test]
    fn root_and_namespace() {
        bad(
            "<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>",
            "must start with <div",
        );
        bad("<div>hello</div>", "must declare xmlns");
        bad(
            "<div xmlns=\"http://example.org\">hello</div>",
            "Wrong namespace",
        );
        bad("plain text", "must start with <div");
        bad("", "must start with <div");
    }

    #[test]
    fn well_formedness() {
        bad(&format!("{OPEN}<p>x</div>"), "does not match");
        bad(&format!("{OPEN}<p>x</p>"), "not closed");
        bad(&format!("{OPEN}a &nbsp; b</div>"), "&nbsp;");
        bad(&format!("{OPEN}a & b</div>"), "entity reference");
        bad(&format!("{OPEN}&#0;</div>"), "not an XML entity");
        bad(&format!("{OPEN}<p class=x>y</p></div>"), "must be quoted");
        bad(
            &format!("{OPEN}<p class=\"a\" class=\"b\">y</p></div>"),
            "duplicate attribute",
        );
        bad(&format!("{OPEN}x</div><div>y</div>"), "after the closing");
        bad(&format!("{OPEN}x</div>trailing"), "after the closing");
        bad(&format!("{OPEN}<!-- open</div>"), "unterminated comment");
        bad(&format!("{OPEN}a < b</div>"), "must start a tag");
        bad(
            &format!("<?xml version=\"1.0\"?>{OPEN}x</div>"),
            "must start with <div",
        );
        bad(&format!("{OPEN}<!DOCTYPE x>x</div>"), "DOCTYPE");
        bad(&format!("{OPEN}bell\u{7}</div>"), "U+0007");
        bad(
            &format!("{OPEN}<p title=\"a<b\">x</p></div>"),
            "'<' in the value",
        );
    }

    #[test]
    fn forbidden_elements() {
        for el in [
            "script", "style", "form", "input", "iframe", "object", "embed", "base", "link",
            "meta", "head", "body", "html",
        ] {
            bad(
                &format!("{OPEN}text<{el}>x</{el}></div>"),
                &format!("<{el}> is not allowed"),
            );
        }
        bad(&format!("{OPEN}<svg:rect/>x</div>"), "Namespace-prefixed");
    }

    #[test]
    fn forbidden_attributes_and_urls() {
        bad(
            &format!("{OPEN}<p onclick=\"alert(1)\">x</p></div>"),
            "Event attribute 'onclick'",
        );
        bad(
            &format!("{OPEN}<img src=\"x\" onError=\"alert(1)\"/></div>"),
            "Event attribute 'onError'",
        );
        bad(
            &format!("{OPEN}<a href=\"javascript:alert(1)\">x</a></div>"),
            "Script URL",
        );
        bad(
            &format!("{OPEN}<a href=\" JaVa\tScRiPt:alert(1)\">x</a></div>"),
            "Script URL",
        );
        bad(
            &format!("{OPEN}<a href=\"data:text/html,x\">x</a></div>"),
            "data: URL",
        );
        bad(
            &format!("{OPEN}<p style=\"width: expression(alert(1))\">x</p></div>"),
            "Script in style",
        );
        bad(
            &format!("{OPEN}<p data-x=\"1\">x</p></div>"),
            "Attribute 'data-x'",
        );
        bad(
            &format!("{OPEN}<p href=\"http://x\">x</p></div>"),
            "Attribute 'href' on <p>",
        );
    }

    #[test]
    fn emptiness() {
        bad(&format!("{OPEN}</div>"), "non-whitespace content");
        bad(
            &format!("{OPEN}  <p> </p> <!-- c --></div>"),
            "non-whitespace content",
        );
        bad(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"/>",
            "non-whitespace content",
        );
        ok(&format!("{OPEN}<img src=\"http://x/y.png\"/></div>"));
    }
}
