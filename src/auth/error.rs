//! OAuth 2.0 errors (RFC 6749 §5.2 for the token endpoint, §4.1.2.1 for authorization
//! redirects, RFC 7009/7662): one error type, rendered as JSON in one place (`http/smart.rs`).

/// An OAuth error with its RFC code and a human-readable description (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    /// The client tried HTTP Basic authentication: a 401 carries a `Basic` challenge.
    pub basic_challenge: bool,
    /// Throttled: the seconds until the client may try again (`Retry-After`).
    pub retry_after_seconds: Option<u64>,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after_seconds: None,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", d)
    }
    pub fn unsupported_response_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_response_type", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", d)
    }
    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new("server_error", d)
    }
    pub fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }

    /// The HTTP status for this error at the token, introspection or revocation endpoint.
    pub fn http_status(&self) -> u16 {
        match self.code {
            "invalid_client" => 401,
            "server_error" => 500,
            "access_denied" => 403,
            "temporarily_unavailable" if self.retry_after_seconds.is_some() => 429,
            "temporarily_unavailable" => 503,
            _ => 400,
        }
    }
}

/// Too many requests from this address: RFC 6749's `temporarily_unavailable` (§4.1.2.1), as a
/// 429 with `Retry-After`.
impl From<crate::throttle::Throttled> for OAuthError {
    fn from(throttled: crate::throttle::Throttled) -> Self {
        let mut err = Self::new("temporarily_unavailable", throttled.message());
        err.retry_after_seconds = Some(throttled.retry_after_seconds());
        err
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::error!(%err, "authorization server storage failed");
        OAuthError::server_error("the authorization server's storage is unavailable")
    }
}
