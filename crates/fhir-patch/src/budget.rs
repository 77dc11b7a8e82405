//! What one patch may cost before any path is evaluated on a resource.
//!
//! The allow-list of `fhir_fhirpath::limits::check_path` leaves each path's evaluation linear
//! in the resource and the path, but a document holds many operations and a resource can be
//! megabytes: nine chained `where(…)` (843 characters) on a Patient of 30,000 identifiers took
//! 2.8 s on a release build, and a 4 MiB body holds thousands of such paths. So the product
//! of the resource's size and the paths' total length is bounded ([`MAX_WORK`]: ~0.9 s at that
//! rate), and a resource whose strings nest brackets deeper than [`MAX_BRACKET_DEPTH`] gets no
//! paths evaluated on it: comparing two quantities makes the engine parse their units with a
//! parser that recurses once per bracket, and a million of them overflow the stack, which
//! aborts the process (found by a security review).

use serde_json::Value;

/// Resource bytes × path characters one patch may cost (a 5 KB care plan allows 50,000
/// characters of paths; a 1 MB resource 250).
pub const MAX_WORK: u64 = 250_000_000;

/// The deepest bracket nesting in any string of a resource that paths are evaluated on.
pub const MAX_BRACKET_DEPTH: usize = 64;

/// Why a patch whose paths total `path_chars` characters is not evaluated on `resource`.
pub(crate) fn refused(resource: &Value, path_chars: u64) -> Option<String> {
    let mut weight = Weight::default();
    weight.add(resource);
    if weight.deepest > MAX_BRACKET_DEPTH {
        return Some(format!(
            "the resource holds a text nested {} brackets deep; patch paths are not evaluated on \
             a resource nesting more than {MAX_BRACKET_DEPTH}",
            weight.deepest
        ));
    }
    let work = weight.bytes.saturating_mul(path_chars);
    (work > MAX_WORK).then(|| {
        format!(
            "the patch's paths ({path_chars} characters) on a resource of ~{} bytes are more \
             work than one patch may be ({MAX_WORK} bytes × characters); send fewer or shorter \
             paths, or a JSON Patch",
            weight.bytes
        )
    })
}

/// A resource's approximate serialised size and its strings' deepest bracket nesting.
#[derive(Default)]
struct Weight {
    bytes: u64,
    deepest: usize,
}

impl Weight {
    fn add(&mut self, v: &Value) {
        match v {
            Value::String(s) => {
                self.bytes += s.len() as u64 + 2;
                let mut depth = 0usize;
                for c in s.chars() {
                    match c {
                        '(' => {
                            depth += 1;
                            self.deepest = self.deepest.max(depth);
                        }
                        ')' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            Value::Array(items) => {
                self.bytes += 2;
                items.iter().for_each(|i| self.add(i));
            }
            Value::Object(members) => {
                self.bytes += 2;
                for (k, v) in members {
                    self.bytes += k.len() as u64 + 3;
                    self.add(v);
                }
            }
            _ => self.bytes += 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_costs_the_resource_times_its_paths() {
        let small = json!({"resourceType": "Patient", "id": "p", "active": true});
        assert_eq!(refused(&small, 1_000), None);
        let identifiers: Vec<Value> = (0..30_000)
            .map(|i| json!({"system": "s", "value": i.to_string()}))
            .collect();
        let big = json!({"resourceType": "Patient", "identifier": identifiers});
        assert_eq!(refused(&big, 100), None, "100 characters on ~1 MB");
        let why = refused(&big, 843).expect("843 characters on ~1 MB");
        assert!(why.contains("more work than one patch may be"), "{why}");
    }

    #[test]
    fn a_resource_nesting_brackets_deep_gets_no_paths() {
        let unit = |depth: usize| {
            json!({"resourceType": "Observation", "valueQuantity": {"value": 1,
                "code": format!("{}g{}", "(".repeat(depth), ")".repeat(depth))}})
        };
        assert_eq!(refused(&unit(MAX_BRACKET_DEPTH), 10), None);
        let why = refused(&unit(MAX_BRACKET_DEPTH + 1), 10).expect("too deep");
        assert!(why.contains("nested 65 brackets deep"), "{why}");
    }
}
