//! Warnings a write was accepted with (R4 http.html: with `Prefer: return=OperationOutcome`
//! the server answers a write with an OperationOutcome, which carries any hints and warnings):
//! a hook notes one with [`warn`] — e.g. "this response's questionnaire is unknown, so it was
//! not scored" — and the HTTP layer, which scopes a request's writes with [`collecting`], puts
//! them in that OperationOutcome. A request-scoped task-local, like `X-Provenance`, rather
//! than a return value threaded through every interaction.

use crate::error::Issue;
use std::sync::{Arc, Mutex};

tokio::task_local! {
    static WARNINGS: Arc<Mutex<Vec<Issue>>>;
    static STRICT: bool;
}

/// Run `writes` (one request's calls into the service), noting the warnings its hooks give;
/// `strict`: the request asked `Prefer: handling=strict`.
pub async fn collecting<F: std::future::Future>(strict: bool, writes: F) -> F::Output {
    STRICT
        .scope(
            strict,
            WARNINGS.scope(Arc::new(Mutex::new(Vec::new())), writes),
        )
        .await
}

/// Whether the request being served asked `Prefer: handling=strict` (R4 http.html: the client
/// wants errors rather than a lenient reading); false outside [`collecting`].
pub fn strict() -> bool {
    STRICT.try_with(|s| *s).unwrap_or(false)
}

/// The most warnings one request keeps (the rest are dropped: an answer stays readable).
const MAX_WARNINGS: usize = 100;

/// Note a warning for the request being served (ignored outside [`collecting`]). A write
/// prepared again after a lost race gives its warnings again: they are noted once.
pub fn warn(issue: Issue) {
    let _ = WARNINGS.try_with(|w| {
        if let Ok(mut list) = w.lock() {
            if list.len() < MAX_WARNINGS && !list.contains(&issue) {
                list.push(issue);
            }
        }
    });
}

/// The warnings noted so far in this request.
pub fn noted() -> Vec<Issue> {
    WARNINGS
        .try_with(|w| w.lock().map(|l| l.clone()).unwrap_or_default())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn warnings_are_noted_once_within_the_request_and_nowhere_else() {
        let issue = Issue {
            severity: crate::error::Severity::Warning,
            code: "not-found",
            diagnostics: "unknown questionnaire".into(),
            expression: vec!["QuestionnaireResponse.questionnaire".into()],
        };
        warn(issue.clone());
        assert!(noted().is_empty(), "outside a request nothing is kept");
        let inside = collecting(false, async {
            warn(issue.clone());
            warn(issue.clone());
            noted()
        })
        .await;
        assert_eq!(inside, vec![issue]);
    }
}
