//! What a verified bearer token grants (SMART App Launch 2.2 "scopes and launch context"):
//! the boundary between whoever verifies tokens (the built-in authorization server's JWTs, or
//! a trusted external issuer) and the access policy that enforces them.

use async_trait::async_trait;

/// The claims of a verified access token that the access policy needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The token's subject (a user account, or the client for backend services).
    pub subject: String,
    /// The granted scopes, space separated, exactly as issued.
    pub scope: String,
    /// The launch patient's id (`patient` launch context), if any.
    pub patient: Option<String>,
    /// The user's FHIR identity as a relative reference (`Patient/1`, `Practitioner/7`,
    /// `RelatedPerson/3`), if any.
    pub fhir_user: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Why a bearer token was not accepted: always a 401 `invalid_token`; the detail is for logs
/// and the `error_description`, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidToken(pub String);

/// Verifies bearer tokens presented to the FHIR API.
#[async_trait]
pub trait BearerVerifier: Send + Sync {
    /// The grant of a valid, unexpired, unrevoked token.
    async fn verify(&self, token: &str) -> Result<Grant, InvalidToken>;

    /// The answer for a token this verifier has verified before and still holds, found
    /// without checking any signature (expiry and revocation are checked as in
    /// [`Self::verify`]); `None` when it holds no such token. The FHIR API asks this first,
    /// so that an address over its limit can be refused before a signature is checked.
    async fn verify_cached(&self, _token: &str) -> Option<Result<Grant, InvalidToken>> {
        None
    }
}
