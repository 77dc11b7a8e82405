//! The shape of a FHIRPath expression as far as locating its results needs it: the last
//! member step (`Patient.name[0]` `.` `given` `[1]`), found outside brackets and literals.

/// The last step of a path that ends in a member: `prefix.member[index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail<'p> {
    /// The expression before the member's dot; `None` when the member starts the path
    /// (`birthDate`, evaluated on the resource itself).
    pub prefix: Option<&'p str>,
    pub member: &'p str,
    pub index: Option<usize>,
}

/// Splits `path` before its last member step, when it ends in one (`Goal.note[0].text` →
/// `Goal.note[0]`, `text`; `Patient.name.given[1]` → `Patient.name`, `given`, 1). A path that
/// ends in anything else (`name.first()`, `(a | b)`) has no tail.
pub(crate) fn tail(path: &str) -> Option<Tail<'_>> {
    let path = path.trim();
    let start = last_top_level_dot(path).map_or(0, |dot| dot + 1);
    let step = path[start..].trim();
    let (name, index) = match step.strip_suffix(']') {
        Some(rest) => {
            let (name, index) = rest.split_once('[')?;
            (name.trim_end(), Some(index.trim().parse::<usize>().ok()?))
        }
        None => (step, None),
    };
    let member = identifier(name)?;
    let prefix = match start {
        0 => None,
        dot => Some(path[..dot - 1].trim()).filter(|p| !p.is_empty()),
    };
    if start > 0 && prefix.is_none() {
        return None;
    }
    Some(Tail {
        prefix,
        member,
        index,
    })
}

/// An identifier, or a delimited one (`` `given` ``), as its name.
fn identifier(text: &str) -> Option<&str> {
    let name = match text.strip_prefix('`') {
        Some(rest) => rest.strip_suffix('`')?,
        None => text,
    };
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(name)
}

/// The byte offset of the last `.` outside brackets, string literals and delimited
/// identifiers (`'a.b'`, `` `a.b` ``) and not inside a number (`1.5`).
fn last_top_level_dot(path: &str) -> Option<usize> {
    let bytes = path.as_bytes();
    let mut depth = 0usize;
    let mut last = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'.' if depth == 0 => {
                let after_digit = i > 0 && bytes[i - 1].is_ascii_digit();
                let before_digit = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !(after_digit && before_digit) {
                    last = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    last
}

/// Does `path` call `resolve()` (outside string literals)?
pub(crate) fn calls_resolve(path: &str) -> bool {
    let mut in_literal = false;
    let mut prev = ' ';
    for (i, c) in path.char_indices() {
        if c == '\'' && prev != '\\' {
            in_literal = !in_literal;
        }
        if !in_literal && path[i..].starts_with("resolve") {
            let rest = path[i + "resolve".len()..].trim_start();
            let standalone = !(prev.is_ascii_alphanumeric() || prev == '_');
            if standalone && rest.starts_with('(') {
                return true;
            }
        }
        prev = c;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(
        prefix: Option<&'static str>,
        member: &'static str,
        index: Option<usize>,
    ) -> Tail<'static> {
        Tail {
            prefix,
            member,
            index,
        }
    }

    #[test]
    fn tails() {
        let cases: &[(&str, Option<Tail>)] = &[
            (
                "Patient.birthDate",
                Some(t(Some("Patient"), "birthDate", None)),
            ),
            (
                "Goal.note[0].text",
                Some(t(Some("Goal.note[0]"), "text", None)),
            ),
            (
                "Patient.name.given[1]",
                Some(t(Some("Patient.name"), "given", Some(1))),
            ),
            (
                "Patient.name[ 0 ].given [2]",
                Some(t(Some("Patient.name[ 0 ]"), "given", Some(2))),
            ),
            (
                "Patient.identifier.where(system = 'a.b').value",
                Some(t(
                    Some("Patient.identifier.where(system = 'a.b')"),
                    "value",
                    None,
                )),
            ),
            (
                "Patient.name.`given`",
                Some(t(Some("Patient.name"), "given", None)),
            ),
            ("birthDate", Some(t(None, "birthDate", None))),
            ("Patient", Some(t(None, "Patient", None))),
            ("Patient.name.given.first()", None),
            ("Patient.name.where(use = 'x.y')", None),
            ("Patient.name[x]", None),
            ("(Patient.name)", None),
            (".given", None),
            ("Observation.value > 1.5", None),
        ];
        for (path, expected) in cases {
            assert_eq!(&tail(path), expected, "{path}");
        }
    }

    #[test]
    fn resolve_calls() {
        assert!(calls_resolve("Observation.subject.resolve().name"));
        assert!(calls_resolve("Observation.subject.resolve ( )"));
        assert!(!calls_resolve("Observation.note.where(text = 'resolve()')"));
        assert!(!calls_resolve("Observation.resolved"));
        assert!(!calls_resolve("Observation.unresolve()"));
    }
}
