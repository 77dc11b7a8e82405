//! The authorization server's HTTP routes (axum): discovery documents, JWKS, the authorization,
//! token, introspection, revocation and EHR-launch endpoints, and the "apps you have allowed"
//! page. Thin: parse, call [`AuthServer`],
//! render. When the state has no authorization server these routes answer 404.

use crate::app::AppState;
use crate::auth::authorize::{Outcome, Params};
use crate::auth::discovery;
use crate::auth::error::OAuthError;
use crate::auth::grants::Form;
use crate::auth::launch::LaunchContext;
use crate::auth::scopes::{self, EHR_LAUNCH_SCOPE};
use crate::auth::session::cookie_value;
use crate::auth::AuthServer;
use crate::policy::Access;
use crate::throttle::{Account, Throttled};
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

/// The routes, to be merged into the application router; every one throttled by address
/// ([`throttle`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
        // OpenID Connect Discovery §4: the issuer (the FHIR base) + /.well-known/…; also at the
        // root, where clients configured before the issuer was the FHIR base look.
        .route(
            "/fhir/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/auth/jwks", get(jwks))
        .route("/auth/authorize", get(authorize).post(authorize))
        .route("/auth/apps", get(apps).post(apps))
        .route("/auth/token", post(token))
        .route("/auth/introspect", post(introspect))
        .route("/auth/revoke", post(revoke))
        .route("/auth/launch", post(register_launch))
        .route("/auth/demo-callback", get(demo_callback))
        .route("/auth/logout", post(logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle,
        ))
}

/// The authorization server's limits by address: every POST (sign-in, consent, token,
/// introspection, revocation, launch) against the strict sign-in limit, every other request
/// against the anonymous one. A refusal is a 429 with `Retry-After`: an RFC 6749 error
/// (`temporarily_unavailable`) from the endpoints apps call, a page from those people see.
/// The limit per username, which needs the form, is the sign-in pages' ([`account_limit`]).
async fn throttle(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = super::throttle::peer(&request);
    let checked = if request.method() == Method::POST {
        state.throttle.sign_in(peer)
    } else {
        state.throttle.anonymous(peer)
    };
    let Err(throttled) = checked else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let page = [
        "/auth/authorize",
        "/auth/apps",
        "/auth/logout",
        "/auth/demo-callback",
    ]
    .contains(&path);
    if !page {
        return OAuthError::from(throttled).into_response();
    }
    throttled_page(throttled)
}

/// The page a person sees when a limit refuses them: 429 with `Retry-After`.
fn throttled_page(throttled: Throttled) -> Response {
    let seconds = throttled.retry_after_seconds();
    let mut response = render(
        Ok(Outcome::Page {
            status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
            html: crate::auth::pages::error(
                "Too many attempts",
                &format!("Please wait {seconds} seconds, then try again."),
            ),
            set_cookie: None,
        }),
        "throttled page",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The sign-in limit per account, for the pages' sign-in step: an attempt at a username counts
/// whatever the address (every attempt counts: a person signs in a few times a day). The
/// pages ask once the form is known to be genuine (its CSRF token) and not cancelled, so a
/// forged or expired form costs nobody an attempt.
fn account_limit(state: &AppState) -> impl Fn(&str) -> Result<(), Throttled> + Send + Sync + '_ {
    |username| state.throttle.account(Account::User, username)
}

/// Where the demo portal app (`coplan demo`) is sent back: shows the code to exchange.
async fn demo_callback(RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut rows = String::new();
    for (k, v) in &pairs {
        rows.push_str(&format!(
            "<dt>{}</dt><dd><code>{}</code></dd>\n",
            crate::auth::pages::escape(k),
            crate::auth::pages::escape(v)
        ));
    }
    let html = crate::auth::pages::layout(
        "Demo app callback",
        &format!(
            "<h1>The demo app received</h1>\n<dl>\n{rows}</dl>\n<p>Exchange the code at the \
             token endpoint within 60 seconds with the curl command `coplan demo` printed.</p>"
        ),
    );
    let mut response = html.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON response that must not be cached (token endpoint responses, RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: &Value) -> Response {
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A discovery document: JSON whatever the Accept (CORS for any origin is the application's
/// CORS layer's job, `http/cors.rs`).
/// A public JSON document clients may cache for `max_age` seconds.
fn public_json(body: &Value, max_age: i64) -> Response {
    let mut response = json_response(StatusCode::OK, body);
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// Discovery documents change only with the configuration.
const DISCOVERY_MAX_AGE_SECONDS: i64 = 300;

fn not_enabled() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "not_found", "error_description": "the built-in authorization server is not enabled"}),
    )
}

fn server(state: &AppState) -> Option<&Arc<AuthServer>> {
    state.auth.as_ref()
}

async fn smart_configuration(State(state): State<AppState>) -> Response {
    match server(&state) {
        Some(auth) => public_json(
            &discovery::smart_configuration(&auth.settings),
            DISCOVERY_MAX_AGE_SECONDS,
        ),
        None => not_enabled(),
    }
}

async fn openid_configuration(State(state): State<AppState>) -> Response {
    match server(&state) {
        Some(auth) => public_json(
            &discovery::openid_configuration(&auth.settings),
            DISCOVERY_MAX_AGE_SECONDS,
        ),
        None => not_enabled(),
    }
}

/// The JWK Set, never older than one key reload (a rotation elsewhere shows here within
/// `key_reload_seconds`), cacheable for `jwks_max_age_seconds`.
async fn jwks(State(state): State<AppState>) -> Response {
    let Some(auth) = server(&state) else {
        return not_enabled();
    };
    if let Err(e) = auth
        .keys
        .reload_if_stale(auth.store.as_ref(), auth.now())
        .await
    {
        // The keys already loaded are still right for every token signed so far.
        tracing::warn!(error = %e, "could not re-read the signing keys; serving the loaded ones");
    }
    public_json(&auth.keys.jwks(), auth.settings.jwks_max_age_seconds)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Parse an `application/x-www-form-urlencoded` body; repeated parameters are an error
/// (RFC 6749 §3.2).
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut form = Form::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k.contains('\0') || v.contains('\0') {
            return Err(OAuthError::invalid_request(
                "the form holds a NUL character",
            ));
        }
        if form.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!("{k} is repeated")));
        }
    }
    Ok(form)
}

/// Shared shape of the form-posting endpoints.
async fn form_endpoint<F, Fut>(
    state: AppState,
    headers: HeaderMap,
    body: Bytes,
    work: F,
) -> Response
where
    F: FnOnce(Arc<AuthServer>, Form, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Response, OAuthError>>,
{
    let Some(auth) = server(&state).cloned() else {
        return not_enabled();
    };
    let form = match parse_form(&headers, &body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let authorization = header_str(&headers, header::AUTHORIZATION).map(str::to_string);
    // No limit per client: client ids are public, so a limit keyed by one would let anyone
    // lock an app out of its tokens, and its credentials (secrets of 256 bits, signed
    // assertions) cannot be guessed online; the limit per address stands.
    match work(auth, form, authorization).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fhir = state.fhir.clone();
    form_endpoint(state, headers, body, |auth, form, authz| async move {
        let body = auth.token(&fhir, &form, authz.as_deref()).await?;
        Ok(no_store_json(StatusCode::OK, &body))
    })
    .await
}

async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    form_endpoint(state, headers, body, |auth, form, authz| async move {
        let body = auth.introspect(&form, authz.as_deref()).await?;
        Ok(no_store_json(StatusCode::OK, &body))
    })
    .await
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    form_endpoint(state, headers, body, |auth, form, authz| async move {
        auth.revoke(&form, authz.as_deref()).await?;
        Ok(no_store_json(StatusCode::OK, &json!({})))
    })
    .await
}

/// The parameters of a page request: the query of a GET, the form body of a POST.
/// The parameters of a page request: a POST's form, or a GET's query. A GET only ever opens
/// a page: the fields that make a form do something (`step`, and with it sign-in, consent or
/// revocation) count only in a POST, so no link, image or redirect can act for the user, and
/// a CSRF token never travels in a URL.
fn page_params(method: &Method, query: Option<String>, body: &[u8]) -> Params {
    let post = method == Method::POST;
    let source: Vec<u8> = if post {
        body.to_vec()
    } else {
        query.unwrap_or_default().into_bytes()
    };
    Params(
        form_urlencoded::parse(&source)
            .filter(|(k, _)| post || k != "step")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

/// A 400 page for a form or query holding a NUL character (no name, password or parameter has
/// one; PostgreSQL text cannot).
fn refuse_nul(params: &Params) -> Option<Response> {
    let nul = params
        .0
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'));
    nul.then(|| {
        render(
            Ok(Outcome::Page {
                status: StatusCode::BAD_REQUEST.as_u16(),
                html: crate::auth::pages::error(
                    "Not a valid request",
                    "This request holds characters Coplan does not accept.",
                ),
                set_cookie: None,
            }),
            "refused page",
        )
    })
}

/// A page or redirect of the authorization server, never cached or framed, with no scripts.
fn render(result: Result<Outcome, OAuthError>, what: &str) -> Response {
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "{what} failed");
            Outcome::Page {
                status: 500,
                html: crate::auth::pages::error(
                    "Something went wrong",
                    "Coplan could not complete this. Please try again later.",
                ),
                set_cookie: None,
            }
        }
    };
    let (mut response, set_cookie) = match outcome {
        Outcome::Page {
            status,
            html,
            set_cookie,
        } => {
            let mut r =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            (r, set_cookie)
        }
        Outcome::Throttled(throttled) => return throttled_page(throttled),
        Outcome::Redirect {
            location,
            set_cookie,
        } => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            (r, set_cookie)
        }
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn authorize(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = server(&state).cloned() else {
        return not_enabled();
    };
    let params = page_params(&method, query, &body);
    if let Some(refused) = refuse_nul(&params) {
        return refused;
    }
    let cookie = cookie_value(header_str(&headers, header::COOKIE));
    render(
        auth.authorize(&state.fhir, &params, cookie, &account_limit(&state))
            .await,
        "authorization endpoint",
    )
}

/// `GET`/`POST /auth/apps`: the apps a signed-in user has allowed; take access back.
async fn apps(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = server(&state).cloned() else {
        return not_enabled();
    };
    let params = page_params(&method, query, &body);
    if let Some(refused) = refuse_nul(&params) {
        return refused;
    }
    let cookie = cookie_value(header_str(&headers, header::COOKIE));
    let post = method == Method::POST;
    render(
        auth.apps_page(&state.fhir, &params, cookie, post, &account_limit(&state))
            .await,
        "apps page",
    )
}

/// `POST /auth/logout` (form: `csrf`): end the browser session and its online access.
async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(auth) = server(&state).cloned() else {
        return not_enabled();
    };
    let csrf = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let (status, title, message) = match cookie_value(header_str(&headers, header::COOKIE)) {
        None => (
            StatusCode::OK,
            "Signed out",
            "You are signed out of Coplan.",
        ),
        Some(id) => match auth.sign_out(id, &csrf).await {
            Ok(true) => (
                StatusCode::OK,
                "Signed out",
                "You are signed out of Coplan.",
            ),
            Ok(false) => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from your Coplan session.",
            ),
            Err(e) => {
                tracing::error!(error = %e, "sign-out failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Coplan could not sign you out. Please try again later.",
                )
            }
        },
    };
    let mut response = (status, crate::auth::pages::error(title, message)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::OK {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{}=; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=0",
            crate::auth::session::COOKIE
        )) {
            h.insert(header::SET_COOKIE, v);
        }
    }
    response
}

/// `POST /auth/launch`: an EHR registers a launch context (JSON body) and gets `launch`.
/// Authenticated by a bearer token with the `ehr-launch` scope, or by the credentials of a
/// confidential client registered for that scope.
async fn register_launch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = server(&state).cloned() else {
        return not_enabled();
    };
    let result = async {
        let authorization = header_str(&headers, header::AUTHORIZATION).unwrap_or("");
        let allowed = if let Some(token) = authorization.strip_prefix("Bearer ") {
            let claims = auth
                .verify_access_token(token.trim())
                .await
                .map_err(|e| OAuthError::invalid_client(e.0))?;
            scopes::has(&claims.scope, EHR_LAUNCH_SCOPE)
        } else {
            let creds = crate::auth::clients::ClientCredentials {
                authorization: Some(authorization),
                ..Default::default()
            };
            let client = auth.authenticate_client(&creds).await?;
            client.scopes.iter().any(|s| s == EHR_LAUNCH_SCOPE)
        };
        if !allowed {
            return Err(OAuthError::access_denied(format!(
                "registering a launch needs the {EHR_LAUNCH_SCOPE} scope"
            )));
        }
        let context: LaunchContext = serde_json::from_slice(&body)
            .map_err(|e| OAuthError::invalid_request(format!("invalid launch context: {e}")))?;
        if let Some(patient) = &context.patient {
            let exists = state
                .fhir
                .read(&Access::Unrestricted, "Patient", patient)
                .await
                .is_ok();
            if !exists {
                return Err(OAuthError::invalid_request(
                    "the launch patient does not exist",
                ));
            }
        }
        let launch = auth.register_launch(&context).await?;
        Ok(no_store_json(
            StatusCode::CREATED,
            &json!({"launch": launch, "expires_in": auth.settings.launch_seconds}),
        ))
    }
    .await;
    result.unwrap_or_else(|e| e.into_response())
}

/// An OAuth error as RFC 6749 §5.2 JSON, never cached.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = no_store_json(status, &body);
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED && self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"coplan\", charset=\"UTF-8\""),
            );
        }
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn only_a_post_takes_a_step() {
        let query = "client_id=app&step=consent&csrf=abc".to_string();
        let get = page_params(&Method::GET, Some(query.clone()), b"");
        assert_eq!(get.one("step"), None);
        assert_eq!(get.one("client_id"), Some("app"));
        let post = page_params(&Method::POST, None, query.as_bytes());
        assert_eq!(post.one("step"), Some("consent"));
    }
}
