//! FHIRPath Patch (FHIR R4 fhirpatch.html): a `Parameters` resource whose `operation`
//! parameters add, insert, delete, replace and move elements of a resource, each element
//! named by a FHIRPath expression. This crate owns reading such a `Parameters` document
//! ([`FhirPathPatch::parse`]) and applying it to a FHIR R4 JSON resource
//! ([`FhirPathPatch::apply`]); nothing here knows about HTTP or storage. Whether the result
//! is a valid resource (fhirpatch.html: "Servers SHALL return an error if the outcome of the
//! patch operation is not a valid resource") is the caller's check, made with the same
//! validation as every other write.
//!
//! ## Why it is written here
//!
//! No Rust crate implements FHIRPath Patch, and a FHIRPath engine only *reads*: it yields
//! values, not places in a document to change. The paths are evaluated by the engine the
//! rest of the workspace uses (`fhir-fhirpath`), and the results are located in the JSON:
//!
//! * an object the engine returns is borrowed from the resource, so its place is found by
//!   identity ([`std::ptr::eq`]) while walking the JSON tree;
//! * a primitive (a string, a date) is a value the engine computed, with no identity. Such a
//!   path must end in a member step (`Patient.birthDate`, `Goal.note[0].text`,
//!   `Patient.name[0].given[1]`): its prefix is located (recursively), the member is taken
//!   from there, and the places found must be exactly as many as the values the engine
//!   returned, or the operation is refused rather than guessed.
//!
//! Whether an element repeats, what type it holds and which `[x]` choice it belongs to come
//! from the R4 base model in `fhir-validate`.
//!
//! ## Semantics (fhirpatch.html, "Conceptual FHIRPath Operations" and its base rules)
//!
//! Operations apply in order, each to the result of the one before. `add` appends a named
//! element to the one element its path selects (a repeating element grows by one; a single
//! one must not exist yet); `insert` puts a value into the list its path selects at `index`
//! (0 … length); `delete` removes the one element its path selects, and does nothing when
//! the path selects nothing; `replace` swaps the one element its path selects for the value;
//! `move` takes the list item at `source` to `destination`. Except for `delete`, a path that
//! selects nothing is an error; a path that selects more than one element is an error (for
//! `insert` and `move` it selects the items of exactly one whole list). The value's type
//! must suit its place (a primitive for a primitive, the same data type for a complex
//! element, nested `part`s for anonymous types). Parents left empty by a delete are removed
//! (FHIR JSON has no empty elements). A primitive's `_name` sibling (its id and
//! extensions) is part of the element: it is removed, replaced and moved with it.

mod budget;
mod doc;
mod locate;
mod ops;
mod parse;
mod path;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

pub use parse::{Operation, OperationType};

/// A parsed FHIRPath Patch: its operations, in order.
#[derive(Debug, Clone)]
pub struct FhirPathPatch {
    operations: Vec<Operation>,
}

impl FhirPathPatch {
    /// Reads a `Parameters` resource as a FHIRPath Patch. Every path is compiled here, so a
    /// malformed document is refused before any resource is read.
    pub fn parse(parameters: &Value) -> Result<FhirPathPatch, PatchError> {
        Ok(FhirPathPatch {
            operations: parse::operations(parameters)?,
        })
    }

    /// The operations, in the order they apply.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Applies every operation to `resource`, in order; the first that cannot be applied
    /// stops the patch.
    pub fn apply(&self, mut resource: Value) -> Result<Value, PatchError> {
        let engine = fhir_fhirpath::Engine::shared()
            .map_err(|e| PatchError::new(PatchErrorKind::Internal, None, e.to_string()))?;
        let path_chars = self
            .operations
            .iter()
            .map(|op| op.path().chars().count() as u64)
            .sum();
        if let Some(why) = budget::refused(&resource, path_chars) {
            return Err(PatchError::new(PatchErrorKind::Unprocessable, None, why));
        }
        for op in &self.operations {
            ops::apply(engine, op, &mut resource).map_err(|message| {
                PatchError::new(PatchErrorKind::Unprocessable, Some(op), message)
            })?;
        }
        Ok(resource)
    }
}

/// Why a patch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchErrorKind {
    /// The document is not a FHIRPath Patch (not a Parameters resource, a missing or unknown
    /// part, a path that does not compile): HTTP 400.
    Invalid,
    /// The patch is well formed but cannot be applied to this resource (a path that selects
    /// nothing or too much, an index out of range, a value of the wrong type): HTTP 422.
    Unprocessable,
    /// The FHIRPath engine did not start: a defect, not the client's doing.
    Internal,
}

/// A refused patch: what kind of refusal, which operation, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    kind: PatchErrorKind,
    /// `Parameters.parameter[i]` of the operation at fault, when one is.
    parameter: Option<usize>,
    message: String,
}

impl PatchError {
    fn new(kind: PatchErrorKind, op: Option<&Operation>, message: String) -> Self {
        let message = match op {
            Some(op) => format!(
                "Parameters.parameter[{}] ({} {}): {message}",
                op.parameter(),
                op.kind().name(),
                op.path()
            ),
            None => message,
        };
        PatchError {
            kind,
            parameter: op.map(Operation::parameter),
            message,
        }
    }

    fn invalid(parameter: Option<usize>, message: String) -> Self {
        let message = match parameter {
            Some(i) => format!("Parameters.parameter[{i}]: {message}"),
            None => message,
        };
        PatchError {
            kind: PatchErrorKind::Invalid,
            parameter,
            message,
        }
    }

    pub fn kind(&self) -> PatchErrorKind {
        self.kind
    }

    /// The index of the operation's parameter in `Parameters.parameter`, when one is at fault.
    pub fn parameter(&self) -> Option<usize> {
        self.parameter
    }

    /// Where in the patch document the fault is (`Parameters.parameter[2]`), as an
    /// OperationOutcome expression.
    pub fn expression(&self) -> String {
        match self.parameter {
            Some(i) => format!("Parameters.parameter[{i}]"),
            None => "Parameters".to_string(),
        }
    }

    /// What is wrong, naming the operation (`Parameters.parameter[1] (replace Goal.note[0].text):
    /// no element matches the path`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}
