//! Bearer authentication on the FHIR API (RFC 6750; SMART App Launch 2.2 app-launch.html
//! "access the FHIR API"): every request carries `Authorization: Bearer <token>`; no token is a
//! 401 with `WWW-Authenticate: Bearer`, a bad one a 401 `invalid_token`. A valid token becomes
//! the request's [`Access`], which `rest` enforces. Without a verifier (`--insecure-no-auth`)
//! every request has unrestricted access.

use super::negotiate::Format;
use super::response::error_response;
use super::throttle::too_many;
use crate::app::AppState;
use crate::error::{ErrorKind, FhirError};
use crate::policy::{Access, ScopeContext, ScopeSet, ScopedAccess};
use crate::throttle::{address_key, Caller};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Authenticate the request and attach its [`Access`] as an extension. Throttled on the way
/// (`throttle/`): a request without a valid token by its address (anonymous limit), one with
/// a token by its client and user (API limit and the cap on requests in progress, held until
/// the answer is ready); without access control, by its address under the API limits.
///
/// A token the verifier has verified before (and caches) is answered from the cache. Any
/// other costs a signature check; one that fails counts against its address's anonymous limit,
/// and while that limit refuses the address its tokens are refused (429) before anything is
/// verified (`throttle/refused.rs`): a flood of forged tokens costs one signature check per
/// request the limit allows, and a valid token is never charged.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = super::throttle::peer(&request);
    let Some(verifier) = state.verifier.clone() else {
        let _in_progress = match peer {
            Some(peer) => match state.throttle.api(Caller::Address(address_key(peer))) {
                Ok(guard) => Some(guard),
                Err(throttled) => return too_many(throttled),
            },
            None => None,
        };
        request.extensions_mut().insert(Access::Unrestricted);
        return next.run(request).await;
    };
    let refuse = |diagnostics: &str, error: Option<&str>| match state.throttle.anonymous(peer) {
        Ok(()) => unauthorized(diagnostics, error),
        Err(throttled) => too_many(throttled),
    };
    let token = match bearer_token(request.headers().get(header::AUTHORIZATION)) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return refuse(
                "this FHIR server requires an access token (Authorization: Bearer …)",
                None,
            )
        }
        Err(why) => return refuse(why, Some("invalid_request")),
    };
    let verified = match verifier.verify_cached(&token).await {
        Some(cached) => cached,
        None => match state.throttle.unverified(peer) {
            Ok(()) => verifier.verify(&token).await,
            Err(throttled) => return too_many(throttled),
        },
    };
    let grant = match verified {
        Ok(grant) => grant,
        Err(invalid) => {
            tracing::info!(reason = %invalid, "bearer token refused");
            return refuse(
                "the access token is invalid, expired or revoked",
                Some("invalid_token"),
            );
        }
    };
    let caller = Caller::Client {
        client_id: grant.client_id.clone(),
        subject: grant.subject.clone(),
    };
    let _in_progress = match state.throttle.api(caller) {
        Ok(guard) => guard,
        Err(throttled) => return too_many(throttled),
    };
    let scopes = ScopeSet::parse(&grant.scope);
    let has_user_scopes = scopes
        .resources
        .iter()
        .any(|s| s.context == ScopeContext::User);
    let user_reach = if has_user_scopes {
        match state
            .fhir
            .user_reach(
                grant.fhir_user.as_deref(),
                state.config.practitioners_see_all_patients,
            )
            .await
        {
            Ok(reach) => reach,
            Err(e) => return error_response(&e, Format::Json),
        }
    } else {
        crate::policy::Reach::Nobody
    };
    request
        .extensions_mut()
        .insert(Access::Scoped(Arc::new(ScopedAccess {
            grant,
            scopes,
            user_reach,
        })));
    next.run(request).await
}

/// The token of an `Authorization: Bearer` header: `Ok(None)` without one, `Err` when the
/// header is there but not a bearer token. Public for the fuzz target in `fuzz/`.
pub fn bearer_token(value: Option<&HeaderValue>) -> Result<Option<String>, &'static str> {
    let Some(value) = value else { return Ok(None) };
    let text = value
        .to_str()
        .map_err(|_| "the Authorization header is not readable text")?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or("the Authorization header must be `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the Authorization header must use the Bearer scheme");
    }
    let token = token.trim();
    if token.is_empty() {
        return Err("the Authorization header carries an empty token");
    }
    Ok(Some(token.to_string()))
}

/// A 401 with an OperationOutcome and the RFC 6750 challenge.
fn unauthorized(diagnostics: &str, error: Option<&str>) -> Response {
    let err = FhirError::new(ErrorKind::Unauthorized, "login", diagnostics);
    let mut response = error_response(&err, Format::Json);
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"coplan\", error=\"{code}\""),
        None => "Bearer realm=\"coplan\"".to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::bearer_token;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer_token(None), Ok(None));
        assert_eq!(
            bearer_token(Some(&HeaderValue::from_static("Bearer abc.def"))),
            Ok(Some("abc.def".into()))
        );
        assert_eq!(
            bearer_token(Some(&HeaderValue::from_static("bearer  x "))),
            Ok(Some("x".into()))
        );
        assert!(bearer_token(Some(&HeaderValue::from_static("Basic dXNlcg=="))).is_err());
        assert!(bearer_token(Some(&HeaderValue::from_static("Bearer"))).is_err());
        assert!(bearer_token(Some(&HeaderValue::from_static("Bearer  "))).is_err());
    }
}
