//! Search errors: a malformed value of a known parameter (R4 search.html
//! §3.1.1.4 "Handling errors": servers reject such searches with a 400), or,
//! in strict mode (`Prefer: handling=strict`), an unknown parameter.

use std::fmt;

/// One problem with one parameter. `param` is the parameter name as sent
/// (with modifiers / chain); `message` quotes the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError {
    pub param: String,
    pub message: String,
}

impl SearchError {
    pub(crate) fn new(param: &str, message: impl Into<String>) -> Self {
        SearchError {
            param: param.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter '{}': {}", self.param, self.message)
    }
}

impl std::error::Error for SearchError {}
