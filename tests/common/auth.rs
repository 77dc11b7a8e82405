//! Harness for the authorization server's end-to-end tests: the real server on 127.0.0.1:0 over
//! a fresh database (each backend), a settable clock, a tiny hyper HTTP client that the `oauth2`
//! crate uses as its transport, a cookie-keeping "browser" for the login and consent pages, and
//! the SMART example client keys for signed client assertions.
//!
//! `crate::common::auth` in every test binary (`tests/common/mod.rs` declares it).

use bytes::Bytes;
use coplan::app::{self, AppState};
use coplan::auth::clients::{Client, ClientKind};
use coplan::auth::secrets::{hash_secret, RandomSecrets};
use coplan::auth::{AuthServer, AuthSettings};
use coplan::clock::{Clock, SequentialIds};
use coplan::config::ConfigLayer;
use coplan::testing::{Backend, TestDatabase};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{EndpointNotSet, EndpointSet, StandardRevocableToken, StandardTokenResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use time::OffsetDateTime;
use tower::ServiceExt;

/// A clock the test sets and advances (seconds precision).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at the real time (tokens the browser and real clients see must not be stale);
    /// from then on the test moves it.
    #[allow(clippy::disallowed_methods)]
    pub fn starting_now() -> Self {
        ManualClock(AtomicI64::new(OffsetDateTime::now_utc().unix_timestamp()))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
    pub fn unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.unix()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// One RSA signing key per test process (generation is the slow part of starting a server).
pub fn server_key() -> &'static Vec<u8> {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| coplan::auth::keys::generate_rsa_der().expect("RSA key"))
}

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// The FHIR base URL (`{origin}/fhir`).
    pub fhir: String,
    pub auth: Arc<AuthServer>,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    db: Option<TestDatabase>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, ConfigLayer::default()).await
    }

    /// Start with extra configuration (base URL and argon2 cost are the harness's).
    pub async fn start_with(backend: Backend, extra: ConfigLayer) -> Server {
        let db = TestDatabase::new(backend).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let fhir = format!("{origin}/fhir");
        // AuditEvents only where a test asks for them (they are written in the background);
        // no limits by address or account (every test client is on 127.0.0.1 and signs in
        // often; tests/api/throttle.rs, tests/auth/throttle.rs and tests/tools/abuse check them).
        let config = ConfigLayer::default()
            .set("audit_events", false)
            .set("sign_in_requests_per_second", 0)
            .set("sign_in_account_interval_seconds", 0)
            .set("anonymous_requests_per_second", 0)
            .overridden_by(extra)
            .overridden_by(
                ConfigLayer::default()
                    .set("base_url", &fhir)
                    .set("argon2_memory_kib", 64)
                    .set("argon2_iterations", 1),
            )
            .resolve()
            .expect("config");
        let clock = Arc::new(ManualClock::starting_now());
        let store = db.store.auth();
        coplan::auth::keys::add_key(store.as_ref(), server_key(), clock.unix() - 10)
            .await
            .expect("install the signing key");
        let auth = Arc::new(
            AuthServer::open(
                AuthSettings::from_config(&config),
                store,
                clock.clone(),
                Arc::new(RandomSecrets),
            )
            .await
            .expect("authorization server"),
        );
        let audit = config.audit_events;
        let mut state = AppState::new(
            config,
            db.store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::new("id")),
        )
        .with_auth_server(auth.clone())
        .with_verifier(auth.clone());
        if audit {
            state = state.with_audit();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Server {
            origin,
            fhir,
            auth,
            state,
            clock,
            backend,
            db: Some(db),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(db) = self.db.take() {
            drop(self.state);
            drop(self.auth);
            db.cleanup().await;
        }
    }

    /// Keep the database past [`Self::stop`] (the caller cleans it up).
    pub fn detach_database(&mut self) -> TestDatabase {
        self.db.take().expect("a database")
    }

    /// Run one SQL statement directly against the server's database; the rows it affected.
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        self.db.as_ref().expect("a database").execute(sql).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Write a FHIR resource directly (in-process, without access control).
    pub async fn seed(&self, resource: Value) {
        let open = self.state.clone().without_verifier();
        let path = format!(
            "/fhir/{}/{}",
            resource["resourceType"].as_str().expect("resourceType"),
            resource["id"].as_str().expect("id")
        );
        let request = axum::http::Request::put(path)
            .header("content-type", "application/fhir+json")
            .body(axum::body::Body::from(resource.to_string()))
            .expect("request");
        let response = app::router(open).oneshot(request).await.expect("router");
        assert!(
            response.status().is_success(),
            "seeding failed: {}",
            response.status()
        );
    }

    pub async fn register(&self, client: Client) {
        self.auth.register_client(&client).await.expect("register");
    }

    pub async fn add_user(&self, username: &str, password: &str, fhir_user: Option<&str>) {
        self.auth
            .add_user(username, password, fhir_user)
            .await
            .expect("add user");
    }
}

/// Run `story` against a fresh server on every backend.
pub async fn each_backend_server<F, Fut>(story: F)
where
    F: Fn(Server) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    for backend in coplan::testing::backends() {
        let server = Server::start(backend).await;
        let server = story(server).await;
        server.stop().await;
    }
}

/// A public app with a browser redirect URI.
pub fn public_app(client_id: &str, scopes: &[&str]) -> Client {
    Client {
        client_id: client_id.into(),
        name: format!("App {client_id}"),
        kind: ClientKind::Public,
        secret_hash: None,
        jwks: None,
        jwks_uri: None,
        redirect_uris: vec![format!("http://app.example/{client_id}/callback")],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        introspect_any: false,
    }
}

/// A confidential symmetric client with `secret`.
pub fn symmetric_client(client_id: &str, secret: &str, scopes: &[&str]) -> Client {
    Client {
        kind: ClientKind::ConfidentialSymmetric,
        secret_hash: Some(hash_secret(secret)),
        ..public_app(client_id, scopes)
    }
}

/// A backend-services client registered with the SMART example public key for `alg`.
pub fn asymmetric_client(client_id: &str, alg: &str, scopes: &[&str]) -> Client {
    let jwks: JwkSet =
        serde_json::from_value(fixture(&format!("smart-example-jwks-{alg}.public.json")))
            .expect("JWK Set");
    Client {
        kind: ClientKind::ConfidentialAsymmetric,
        jwks: Some(jwks),
        ..public_app(client_id, scopes)
    }
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

fn b64url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

/// The SMART example private key for `alg` (`RS384` or `ES384`) and its kid.
pub fn example_signing_key(alg: &str) -> (EncodingKey, String) {
    let set = fixture(&format!("smart-example-jwks-{alg}.private.json"));
    let jwk = set["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k.get("d").is_some()))
        .expect("a private key");
    let part = |name: &str| b64url(jwk[name].as_str().expect(name));
    let kid = jwk["kid"].as_str().expect("kid").to_string();
    let key = match alg {
        "RS384" => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let n = |name: &str| rsa::BoxedUint::from_be_slice_vartime(&part(name));
            let private =
                rsa::PrivateKey::from_components(n("n"), n("e"), n("d"), vec![n("p"), n("q")])
                    .expect("RSA key");
            EncodingKey::from_rsa_der(private.to_pkcs1_der().expect("DER").as_bytes())
        }
        _ => {
            use p384::pkcs8::EncodePrivateKey;
            let secret = p384::SecretKey::from_slice(&part("d")).expect("P-384 key");
            EncodingKey::from_ec_der(secret.to_pkcs8_der().expect("DER").as_bytes())
        }
    };
    (key, kid)
}

/// A signed client assertion (RFC 7523) for `client_id` at `token_url`.
pub fn client_assertion(
    alg: &str,
    client_id: &str,
    token_url: &str,
    exp: i64,
    jti: &str,
) -> String {
    let (key, kid) = example_signing_key(alg);
    let algorithm = if alg == "RS384" {
        Algorithm::RS384
    } else {
        Algorithm::ES384
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid);
    header.typ = Some("JWT".into());
    let claims =
        json!({"iss": client_id, "sub": client_id, "aud": token_url, "exp": exp, "jti": jti});
    jsonwebtoken::encode(&header, &claims, &key).expect("sign the assertion")
}

// ---------------------------------------------------------------------------------------------
// HTTP transport for the oauth2 crate, and a small browser.

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// `oauth2`'s async HTTP client: one request, no redirects followed.
pub async fn http_client(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (parts, body) = request.into_parts();
    let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let response = client
        .request(request)
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| HttpError(e.to_string()))?
        .to_bytes();
    Ok(oauth2::HttpResponse::from_parts(parts, bytes.to_vec()))
}

/// A response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The query parameters of the `Location` header.
    pub fn location_params(&self) -> Vec<(String, String)> {
        let location = self.header("location").expect("a Location header");
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    pub fn location_param(&self, name: &str) -> Option<String> {
        self.location_params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Send one request.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let mut builder = oauth2::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(body.unwrap_or_default().into_bytes())
        .expect("request");
    let response = http_client(request).await.expect("HTTP");
    let fhir_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/fhir+json"));
    if fhir_json && !response.body().is_empty() {
        let value: Value = serde_json::from_slice(response.body()).expect("FHIR JSON is JSON");
        if let Some(at) = coplan::testing::first_empty(&value, "$") {
            panic!("{url}: FHIR JSON never has an empty array, object or string, but {at} is empty in {value}");
        }
    }
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: String::from_utf8_lossy(response.body()).into_owned(),
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn post_form(url: &str, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    send("POST", url, &all, Some(form(pairs))).await
}

/// Keeps the session cookie, like a browser.
#[derive(Default)]
pub struct Browser {
    pub cookie: Option<String>,
}

impl Browser {
    fn remember(&mut self, reply: &Reply) {
        if let Some(set) = reply.header("set-cookie") {
            self.cookie = set.split(';').next().map(str::to_string);
        }
    }

    pub async fn get(&mut self, url: &str) -> Reply {
        let cookie = self.cookie.clone();
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        let reply = send("GET", url, &headers, None).await;
        self.remember(&reply);
        reply
    }

    pub async fn post(&mut self, url: &str, pairs: &[(String, String)]) -> Reply {
        let cookie = self.cookie.clone();
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let reply = send("POST", url, &headers, Some(body)).await;
        self.remember(&reply);
        reply
    }

    /// Open the authorize URL and submit the sign-in form; returns the page that follows
    /// (consent, patient picker, or the sign-in page again with an error).
    pub async fn sign_in(
        &mut self,
        origin: &str,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> Reply {
        let login = self.get(authorize_url).await;
        self.submit(
            origin,
            &login,
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// Submit the page's form as a user would: hidden fields, ticked checkboxes, and `extra`.
    pub async fn submit(&mut self, origin: &str, page: &Reply, extra: &[(&str, &str)]) -> Reply {
        let mut fields = form_fields(&page.body);
        for (k, v) in extra {
            fields.push((k.to_string(), v.to_string()));
        }
        self.post(&format!("{origin}/auth/authorize"), &fields)
            .await
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The values a browser would submit from the page's form: hidden inputs and checked,
/// enabled checkboxes (radio buttons and buttons are left to the caller).
pub fn form_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input").skip(1) {
        let tag = chunk.split('>').next().unwrap_or("");
        let kind = attribute(tag, "type").unwrap_or_default();
        let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) else {
            continue;
        };
        let checked = tag.contains(" checked") && !tag.contains(" disabled");
        if kind == "hidden" || (kind == "checkbox" && checked) {
            out.push((name, value));
        }
    }
    out
}

/// The values of the page's radio buttons named `name`.
pub fn radio_values(html: &str, name: &str) -> Vec<String> {
    html.split("<input")
        .skip(1)
        .map(|chunk| chunk.split('>').next().unwrap_or(""))
        .filter(|tag| attribute(tag, "type").as_deref() == Some("radio"))
        .filter(|tag| attribute(tag, "name").as_deref() == Some(name))
        .filter_map(|tag| attribute(tag, "value"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The SMART client: oauth2 with the SMART launch context fields in the token response.

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmartFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    #[serde(
        default,
        rename = "fhirContext",
        skip_serializing_if = "Option::is_none"
    )]
    pub fhir_context: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for SmartFields {}

pub type SmartTokenResponse = StandardTokenResponse<SmartFields, BasicTokenType>;

pub type SmartClient = oauth2::Client<
    BasicErrorResponse,
    SmartTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
    EndpointSet,
>;

/// An oauth2 client for `client_id` at `server`, with its registered redirect URI.
pub fn smart_client(server: &Server, client_id: &str, secret: Option<&str>) -> SmartClient {
    let s = &server.auth.settings;
    let mut client = oauth2::Client::new(oauth2::ClientId::new(client_id.into()))
        .set_auth_uri(oauth2::AuthUrl::new(s.authorize_url.clone()).expect("url"))
        .set_token_uri(oauth2::TokenUrl::new(s.token_url.clone()).expect("url"))
        .set_introspection_url(
            oauth2::IntrospectionUrl::new(s.introspect_url.clone()).expect("url"),
        )
        .set_revocation_url(oauth2::RevocationUrl::new(s.revoke_url.clone()).expect("url"))
        .set_redirect_uri(
            oauth2::RedirectUrl::new(format!("http://app.example/{client_id}/callback"))
                .expect("url"),
        );
    if let Some(secret) = secret {
        client = client.set_client_secret(oauth2::ClientSecret::new(secret.into()));
    }
    client
}

/// The app's authorization request: `scopes`, `aud` = this FHIR server, S256 PKCE, a random
/// state, and `extra` parameters (`launch`, `nonce`, …). Returns the URL and the PKCE verifier.
pub fn authorize_request(
    client: &SmartClient,
    server: &Server,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> (String, oauth2::PkceCodeVerifier) {
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(oauth2::CsrfToken::new_random)
        .add_scopes(scopes.iter().map(|s| oauth2::Scope::new(s.to_string())))
        .add_extra_param("aud", server.fhir.clone())
        .set_pkce_challenge(challenge);
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    (request.url().0.to_string(), verifier)
}

/// Exchange an authorization code (with its PKCE verifier) for tokens, as the app would.
pub async fn redeem(
    client: &SmartClient,
    code: String,
    verifier: oauth2::PkceCodeVerifier,
) -> SmartTokenResponse {
    client
        .exchange_code(oauth2::AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("token response")
}

/// Sign in and approve: from the authorize URL to the redirect carrying the code.
pub async fn sign_in_and_approve(
    server: &Server,
    browser: &mut Browser,
    authorize_url: &str,
    username: &str,
    password: &str,
) -> Reply {
    let login = browser.get(authorize_url).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("Sign in"), "{}", login.body);
    let consent = browser
        .submit(
            &server.origin,
            &login,
            &[("username", username), ("password", password)],
        )
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Allow"), "{}", consent.body);
    let redirect = browser
        .submit(&server.origin, &consent, &[("action", "approve")])
        .await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    redirect
}

/// A JSON value from a JWT's payload (unverified; for assertions about the content).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&b64url(payload)).expect("JSON claims")
}

/// A bearer header value for a token of the built-in server (signed with its key) issued to
/// `client` with `scope`, for the launch `patient` and the user `fhir_user` (`Patient/p1`).
pub fn token(
    server: &Server,
    client: &str,
    scope: &str,
    patient: Option<&str>,
    fhir_user: Option<&str>,
) -> String {
    let now = server.clock.unix();
    let mut claims = serde_json::json!({
        "iss": server.fhir, "aud": server.fhir, "sub": client, "exp": now + 3600, "iat": now,
        "jti": format!("{client}-{scope}-{patient:?}-{fhir_user:?}"), "client_id": client,
        "scope": scope,
    });
    if let Some(p) = patient {
        claims["patient"] = serde_json::json!(p);
    }
    if let Some(u) = fhir_user {
        claims["fhirUser"] = serde_json::json!(format!("{}/{u}", server.fhir));
    }
    format!(
        "Bearer {}",
        server.auth.keys.sign(&claims, now).expect("sign")
    )
}
