//! Lexical limits on client-written FHIRPath, checked before an expression is compiled.
//!
//! The engine (octofhir-fhirpath 0.4.57) bounds neither the size of the collections and
//! strings it builds nor the time it takes (no size, depth or time limit in its evaluation
//! context or VM), and a future that computes without awaiting cannot be cut off. Expressions
//! that clients write and the server runs are therefore checked first against a [`Limits`]:
//! how long the text is, which functions it calls, how often it calls `descendants()`, and
//! whether it names environment variables (`%resource`…). The scan reads function calls and
//! variables outside string literals, delimited identifiers and comments, so a name inside a
//! text is not refused. Two sets of limits:
//!
//! * [`SDC`]: Questionnaire expressions (`calculatedExpression`, `variable`,
//!   `initialExpression`; SDC expressions.html), which need `select`, `combine` and the
//!   variables. Lexical bounds, not a sandbox: a collection doubled on each step of a chain
//!   (`select($this.combine($this))` repeated) is within them.
//! * [`PATCH_PATH`]: FHIRPath Patch paths (R4 fhirpatch.html), which only point at elements.
//!   Without `select`, `combine`, `aggregate`, `repeat`, `repeatAll` and `descendants` no
//!   collection grows beyond the elements of the resource, and without variables a
//!   function's criteria see only the element they are evaluated on, so the work is bounded by
//!   the resource's size times the path's length. Measured before this limit (debug build, a
//!   Patient with three identifiers): `Patient.identifier` followed by 16
//!   `.select($this.combine($this))` took 1.1 s, and each further step doubles it.

/// What a client-written expression may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest expression, in characters.
    pub max_length: usize,
    /// Functions never evaluated.
    pub refused_functions: &'static [&'static str],
    /// The most `descendants()` calls in one expression.
    pub max_descendants: usize,
    /// Whether `%name` environment variables may be named.
    pub variables: bool,
}

/// Questionnaire expressions (SDC): at most 2,000 characters (the longest shipped or published
/// scoring expression, LHC PHQ-9's, is a few hundred); no `replace`, `replaceMatches`,
/// `repeat` or `repeatAll` (each call can multiply a string's or a collection's size: `'ab'`
/// followed by ten `.replace('a','aaaaaaaaaa')` asks for a gigabyte); `descendants()` once
/// (each call is as large as the resource, and nested in `select` they multiply).
pub const SDC: Limits = Limits {
    max_length: 2_000,
    refused_functions: &["replace", "replaceMatches", "repeat", "repeatAll"],
    max_descendants: 1,
    variables: true,
};

/// FHIRPath Patch paths: at most 1,000 characters (a path names an element: the spec's
/// examples are under 60), none of the functions that grow a collection or a string, no
/// `trace` (it would write resource content to the server's log) and no variables.
pub const PATCH_PATH: Limits = Limits {
    max_length: 1_000,
    refused_functions: &[
        "select",
        "combine",
        "aggregate",
        "repeat",
        "repeatAll",
        "descendants",
        "replace",
        "replaceMatches",
        "trace",
        "defineVariable",
    ],
    max_descendants: 0,
    variables: false,
};

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
    if !limits.variables {
        if let Some(name) = scan.variables.first() {
            return Some(format!(
                "the expression names the variable %{name}; none are evaluated here"
            ));
        }
    }
    None
}

/// What the scan of an expression found outside texts and comments.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan {
    /// Functions called: identifiers (plain or `delimited`) followed by `(`.
    calls: Vec<String>,
    /// Environment variables named: `%` and an identifier (plain, `delimited` or 'quoted').
    variables: Vec<String>,
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
                    while chars.get(i).is_some_and(|c| *c != '\n') {
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
                '\\' => i += 2,
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
            '\'' => i = quoted(i, '\''),
            '%' => match identifier(i + 1) {
                Some((name, end)) => {
                    found.variables.push(name);
                    i = end;
                }
                None => {
                    found.variables.push(String::new());
                    i += 1;
                }
            },
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
        assert!(check(&long[..1001], &PATCH_PATH)
            .unwrap()
            .contains("1001 characters long; at most 1000"));
        let bomb = format!("'ab'{}", ".replace('a','aaaaaaaaaa')".repeat(10));
        assert!(check(&bomb, &SDC).unwrap().contains("calls replace()"));
        for source in [
            "'ab'.replaceMatches('a', 'aa')",
            "item.repeat(item)",
            "item.repeatAll(item)",
            "item.`repeat`(item)",
            "item.repeat /* comment */ (item)",
            "item.repeat\n(item)",
        ] {
            let why = check(source, &SDC).unwrap_or_else(|| panic!("{source}"));
            assert!(why.contains("is not evaluated here"), "{why}");
        }
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
            (
                "Patient.name.where(%resource.name.exists())",
                "variable %resource",
            ),
            (
                "Patient.name.where(%`resource`.exists())",
                "variable %resource",
            ),
            ("Patient.name.where(%'x' = 1)", "variable %x"),
            ("Patient.name.where(family = %)", "variable %;"),
        ] {
            let why = check(source, &PATCH_PATH).unwrap_or_else(|| panic!("{source}"));
            assert!(why.contains(refused), "{source}: {why}");
        }
        for source in [
            "Patient.birthDate",
            "Patient.name[0].given[1]",
            "Patient.extension.where(url = 'http://x/select(').value",
            "Observation.component.where(code.coding.where(code = '8480-6').exists()).value",
            "Patient.name.where(text = '%resource').first()",
            "Patient.contact.where(name.family = 'a').telecom.last()",
        ] {
            assert_eq!(check(source, &PATCH_PATH), None, "{source}");
        }
    }

    #[test]
    fn names_in_texts_and_comments_are_not_calls() {
        for source in [
            "'replace(' + 'descendants()descendants()'",
            "'it\\'s repeat(' & item.text",
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
                variables: vec!["x y".into(), "z".into()],
            }
        );
    }
}
