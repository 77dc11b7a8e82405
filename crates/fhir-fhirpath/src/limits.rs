//! Limits on client-written FHIRPath, checked on the text before it is compiled.
//!
//! The engine (octofhir-fhirpath 0.4.57) bounds neither the size of the collections and
//! strings it builds nor the time it takes (no size, depth or time limit in its evaluation
//! context or VM), and a future that computes without awaiting cannot be cut off. So what the
//! server runs for a client is checked first, in one of two ways:
//!
//! * [`check_path`], for FHIRPath Patch paths (R4 fhirpatch.html), which only point at
//!   elements: an **allow-list**. Outside single-quoted strings a path holds only ASCII
//!   letters, digits, spaces, `.[](),=!<>-@:` and `$this`, strings hold no backslash and follow
//!   no number (no quantity literals); it calls only the functions of
//!   [`PATH_FUNCTIONS`]; a capitalised name (a type) followed by `.` starts the path or not at
//!   all, so a criterion sees only its own element and never the whole resource again. No
//!   comments, `"`-strings, backticks, entities or variables: what the scan reads is what the
//!   engine parses. Within that, no collection or string grows beyond what the resource holds
//!   times the path's length (no `select`, `repeat`, `combine`, `iif`, `join`, `encode`,
//!   no `|`, `&`, `+` or `*`), and no operation compares every item with every other
//!   (`intersect`, `exclude`, `distinct`, `~`…). What is left costs time in proportion to the
//!   resource's size times the paths' length, which crates/fhir-patch bounds per document. A security review of a first, deny-list version found six ways
//!   around it (comments ending at `\r`, `"` strings, `&apos;`, `$resource`, exponential string
//!   functions, quadratic set functions): an allow-list closes the class. A second review found
//!   `~` (all pairs), `+` (strings built per term) and quantity literals (a unit parser that
//!   recurses per bracket), now outside it too.
//! * [`check`] with [`SDC`], for Questionnaire expressions (SDC expressions.html), which need
//!   `select`, `iif`, `&` and the variables: a **deny-list** of the functions that multiply a
//!   size, a length bound and one `descendants()`. Lexical bounds, not a sandbox: a string or
//!   collection doubled on each step of a chain (`iif(true, $this & $this)` or
//!   `select($this.combine($this))` repeated) is within them.

/// What a client-written expression may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest expression, in characters.
    pub max_length: usize,
    /// Functions never evaluated.
    pub refused_functions: &'static [&'static str],
    /// The most `descendants()` calls in one expression.
    pub max_descendants: usize,
}

/// Questionnaire expressions (SDC): at most 2,000 characters (the longest shipped or published
/// scoring expression, LHC PHQ-9's, is a few hundred); no `replace`, `replaceMatches`,
/// `repeat`, `repeatAll`, `encode`, `escape` or `toChars` (each call can multiply a string's
/// or a collection's size: `'ab'` followed by ten `.replace('a','aaaaaaaaaa')` asks for a
/// gigabyte); `descendants()` once (each call is as large as the resource, and nested in
/// `select` they multiply).
pub const SDC: Limits = Limits {
    max_length: 2_000,
    refused_functions: &[
        "replace",
        "replaceMatches",
        "repeat",
        "repeatAll",
        "encode",
        "escape",
        "toChars",
    ],
    max_descendants: 1,
};

/// The longest FHIRPath Patch path, in characters (a path names an element: the spec's
/// examples are under 60).
pub const PATH_MAX_LENGTH: usize = 1_000;

/// The functions a FHIRPath Patch path may call: filters, positions, type tests and tests on
/// an element's own values. Each returns at most its input (or one value per input item).
pub const PATH_FUNCTIONS: [&str; 23] = [
    "where",
    "exists",
    "empty",
    "not",
    "first",
    "last",
    "single",
    "tail",
    "skip",
    "take",
    "ofType",
    "as",
    "is",
    "count",
    "hasValue",
    "extension",
    "startsWith",
    "endsWith",
    "contains",
    "lower",
    "upper",
    "length",
    "allTrue",
];

/// Why the FHIRPath Patch path `source` is refused (see the module doc), as a sentence; `None`
/// when it is within the allow-list.
pub fn check_path(source: &str) -> Option<String> {
    let length = source.chars().count();
    if length > PATH_MAX_LENGTH {
        return Some(format!(
            "the path is {length} characters long; at most {PATH_MAX_LENGTH} are evaluated"
        ));
    }
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    let mut first_name = true;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                // A number then a string is a quantity literal (`1 'mg'`): the engine parses
                // its unit with a parser that recurses per bracket, and converts units to
                // compare quantities. A patch path names elements; it compares none.
                let before = chars[..i]
                    .iter()
                    .rev()
                    .find(|c| !matches!(c, ' ' | '\t' | '\n'));
                if before.is_some_and(char::is_ascii_digit) {
                    return Some(
                        "the path holds a quantity literal (a number and a unit); a patch path \
                         compares no quantities"
                            .into(),
                    );
                }
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Some("the path has an unterminated string".into()),
                        // The engine's pre-pass reads strings without escapes, its parser
                        // with them: a backslash would let the two disagree on where a
                        // string ends (and the pre-pass turn `&apos;` into a quote).
                        Some('\\') => {
                            return Some(
                                "the path has a backslash; a patch path's strings hold none".into(),
                            )
                        }
                        Some('\'') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                first_name = false;
            }
            ' ' | '\t' | '\n' => i += 1,
            '$' => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                if name != "this" {
                    return Some(format!(
                        "the path names ${name}; a patch path may use $this only"
                    ));
                }
                i += 1 + name.len();
                first_name = false;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !matches!(c, ' ' | '\t' | '\n'));
                if next == Some(&'(') && !PATH_FUNCTIONS.contains(&name.as_str()) {
                    return Some(format!(
                        "the path calls {name}(); a patch path may call only {}",
                        PATH_FUNCTIONS.join(", ")
                    ));
                }
                if next == Some(&'.') && c.is_ascii_uppercase() && !first_name {
                    return Some(format!(
                        "the path names the type {name} after its start; a criterion sees only \
                         its own element (where(code = 'x'), not where(Patient.code = 'x'))"
                    ));
                }
                first_name = false;
            }
            '(' => i += 1,
            c if c.is_ascii_digit() || ".[]),=!<>-@:".contains(c) => {
                i += 1;
                first_name = false;
            }
            other => {
                return Some(format!(
                    "the path holds {other:?} outside a string; a patch path is names, \
                     indexes, 'strings', numbers, $this, comparisons and the functions {}",
                    PATH_FUNCTIONS.join(", ")
                ));
            }
        }
    }
    None
}

/// Why `source` is refused under `limits`, as a sentence naming the limit; `None` when it is
/// within them.
pub fn check(source: &str, limits: &Limits) -> Option<String> {
    let length = source.chars().count();
    if length > limits.max_length {
        return Some(format!(
            "the expression is {length} characters long; at most {} are evaluated",
            limits.max_length
        ));
    }
    // The engine's pre-pass turns these into quotes and brackets before it parses, where the
    // scan below would not see them as such.
    if let Some(entity) = ["&lt;", "&gt;", "&amp;", "&quot;", "&apos;"]
        .into_iter()
        .find(|e| source.contains(e))
    {
        return Some(format!(
            "the expression holds the entity {entity}; write the character itself"
        ));
    }
    let scan = scan(source);
    if let Some(name) = scan
        .calls
        .iter()
        .find(|c| limits.refused_functions.contains(&c.as_str()))
    {
        return Some(format!(
            "the expression calls {name}(), which is not evaluated here (refused: {})",
            limits
                .refused_functions
                .iter()
                .map(|f| format!("{f}()"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let descendants = scan.calls.iter().filter(|c| *c == "descendants").count();
    if descendants > limits.max_descendants {
        return Some(format!(
            "the expression calls descendants() {descendants} times; at most {} call is evaluated",
            limits.max_descendants
        ));
    }
    None
}

/// What the scan of an expression found outside texts and comments.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan {
    /// Functions called: identifiers (plain or `delimited`) followed by `(`.
    calls: Vec<String>,
}

fn scan(source: &str) -> Scan {
    let chars: Vec<char> = source.chars().collect();
    let mut found = Scan::default();
    let mut i = 0;
    // Skips whitespace and comments from `i`; returns the next position.
    let skip = |mut i: usize| -> usize {
        loop {
            match (chars.get(i), chars.get(i + 1)) {
                (Some(c), _) if c.is_whitespace() => i += 1,
                (Some('/'), Some('/')) => {
                    // The engine's pre-pass ends a line comment at either.
                    while chars.get(i).is_some_and(|c| *c != '\n' && *c != '\r') {
                        i += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    i += 2;
                    while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                        i += 1;
                    }
                    i += 2;
                }
                _ => return i,
            }
        }
    };
    // The end of a quoted text opened at `i` (past its closing quote), escapes skipped.
    let quoted = |mut i: usize, quote: char| -> usize {
        i += 1;
        while let Some(c) = chars.get(i) {
            match c {
                // The engine reads escapes in strings, none in delimited names.
                '\\' if quote != '`' => i += 2,
                c if *c == quote => return i + 1,
                _ => i += 1,
            }
        }
        i
    };
    // The name of an identifier starting at `i` (plain or delimited) and where it ends.
    let identifier = |i: usize| -> Option<(String, usize)> {
        let c = *chars.get(i)?;
        if c == '`' || c == '\'' {
            let end = quoted(i, c);
            let inner = chars[i + 1..end.saturating_sub(1).max(i + 1)]
                .iter()
                .collect();
            Some((inner, end))
        } else if c.is_alphabetic() || c == '_' {
            let mut end = i;
            while chars
                .get(end)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                end += 1;
            }
            Some((chars[i..end].iter().collect(), end))
        } else {
            None
        }
    };
    while i < chars.len() {
        let next = skip(i);
        if next != i {
            i = next;
            continue;
        }
        match chars[i] {
            '\'' | '"' => i = quoted(i, chars[i]),
            c if c == '`' || c.is_alphabetic() || c == '_' => {
                let Some((name, end)) = identifier(i) else {
                    i += 1;
                    continue;
                };
                if chars.get(skip(end)) == Some(&'(') {
                    found.calls.push(name);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn refused_patterns_name_their_limit() {
        let long = format!("1{}", " + 1".repeat(500));
        assert!(check(&long, &SDC)
            .unwrap()
            .contains("2001 characters long; at most 2000"));
        assert_eq!(check(&long[..2000], &SDC), None);
        let bomb = format!("'ab'{}", ".replace('a','aaaaaaaaaa')".repeat(10));
        assert!(check(&bomb, &SDC).unwrap().contains("calls replace()"));
        for source in [
            "'ab'.replaceMatches('a', 'aa')",
            "item.repeat(item)",
            "item.repeatAll(item)",
            "item.`repeat`(item)",
            "item.repeat /* comment */ (item)",
            "item.repeat\n(item)",
            "'ab'.encode('hex')",
            "'ab'.toChars()",
            // what a review found past the first scan: the engine's own reading of comments,
            // "strings", delimited names and entities
            "false //\r or item.repeat(item).exists()",
            "item.text = \"'\" or item.repeat(item).exists() or item.text = \"'\"",
            "item.where(`x\\`.empty()).repeat(item).where(`y`.empty())",
        ] {
            let why = check(source, &SDC).unwrap_or_else(|| panic!("{source}"));
            assert!(why.contains("is not evaluated here"), "{source}: {why}");
        }
        let entity = "item.text = &apos;x' or item.repeat(item).exists() or item.text = 'y'";
        assert!(check(entity, &SDC).unwrap().contains("the entity &apos;"));
        let cubic = "descendants().select(%resource.descendants()).select(%resource.descendants())";
        assert!(check(cubic, &SDC)
            .unwrap()
            .contains("descendants() 3 times; at most 1"));
        assert!(check("descendants().select(descendants())", &SDC).is_some());
    }

    #[test]
    fn a_patch_path_names_elements_and_nothing_that_grows() {
        let doubling = format!(
            "Patient.identifier{}",
            ".select($this.combine($this))".repeat(16)
        );
        for (source, refused) in [
            (doubling.as_str(), "calls select()"),
            (
                "Patient.identifier.combine(Patient.identifier)",
                "calls combine()",
            ),
            ("Patient.name.aggregate($this)", "calls aggregate()"),
            ("Patient.descendants()", "calls descendants()"),
            ("Patient.name.repeat(name)", "calls repeat()"),
            ("Patient.name.family.trace('x')", "calls trace()"),
            ("Patient.id.iif(true, $this)", "calls iif()"),
            ("Patient.id.encode('hex')", "calls encode()"),
            ("Patient.name.given.intersect(given)", "calls intersect()"),
            ("Patient.name.given.join('x')", "calls join()"),
            ("Patient.name.resolve()", "calls resolve()"),
            ("Patient.name.where(%resource.name.exists())", "holds '%'"),
            (
                "Patient.name.where($resource.name.exists())",
                "names $resource",
            ),
            ("Patient.name.where($index = 0)", "names $index"),
            (
                "Patient.name.where(Patient.name.exists())",
                "names the type Patient",
            ),
            ("(Patient.name | Patient.name).first()", "holds '|'"),
            ("Patient.name.given & 'x'", "holds '&'"),
            ("Patient.name.where(text = \"x\")", "holds '\"'"),
            ("Patient.name.`given`", "holds '`'"),
            ("Patient.name // comment", "holds '/'"),
            ("Patient.name &apos;", "holds '&'"),
            ("Patient.name.where(text = 'x\\' or true')", "a backslash"),
            ("Patient.name.where(text = 'x)", "unterminated string"),
            ("Patient.name.where(text\r= 'x')", "holds '\\r'"),
            ("Patient.name.where(text\u{2028}= 'x')", "outside a string"),
            ("Patient.name.given ~ Patient.name.given", "holds '~'"),
            (
                "Patient.text.div.where(($this + $this).length() > 0)",
                "holds '+'",
            ),
            ("Observation.value.where(value * 2 > 1)", "holds '*'"),
            (
                "Observation.value.where($this = 1 'mg')",
                "quantity literal",
            ),
            (
                "Observation.value.where($this = 1\n'((g))')",
                "quantity literal",
            ),
        ] {
            let why = check_path(source).unwrap_or_else(|| panic!("{source}"));
            assert!(why.contains(refused), "{source}: {why}");
        }
        let long = format!("Patient{}.ab", ".name".repeat(198));
        assert_eq!(check_path(&long), None);
        assert!(check_path(&format!("{long}.x"))
            .unwrap()
            .contains("1002 characters long; at most 1000"));
        for source in [
            "Patient.birthDate",
            "birthDate",
            "Patient.name[0].given[1]",
            "Patient.extension.where(url = 'http://x/select(%$&|\"`/*').value",
            "Observation.component.where(code.coding.where(code = '8480-6').exists()).value",
            "Patient.name.where(text = '%resource').first()",
            "Patient.contact.where(name.family = 'a').telecom.last()",
            "(Observation.value as Quantity).value",
            "Observation.value.ofType(Quantity).unit",
            "Patient.name.where($this.given.count() > 1 and family.startsWith('O')).given",
            "Patient.identifier.where(period.start < @2020-01-01T10:00:00).value",
            "Patient.extension('http://x').value",
        ] {
            assert_eq!(check_path(source), None, "{source}");
        }
    }

    #[test]
    fn names_in_texts_and_comments_are_not_calls() {
        for source in [
            "'replace(' + 'descendants()descendants()'",
            "'it\\'s repeat(' & item.text",
            "\"repeat(\" & item.text",
            "item.answer.value // replace(x)\n.first()",
            "/* repeat( */ descendants().count()",
            "item.replaced.exists()",
            "%resource.descendants().where(linkId = 'repeat')",
        ] {
            assert_eq!(check(source, &SDC), None, "{source}");
        }
        assert_eq!(
            scan("a.where(b).`select`(c) and d.first () and %`x y`.e and %z"),
            Scan {
                calls: vec!["where".into(), "select".into(), "first".into()],
            }
        );
    }
}
