//! The application: shared state, the router, and `serve` (a listener plus a shutdown signal,
//! injectable so tests run the real server on an ephemeral port).

use crate::auth::external::{ExternalIssuer, Verifiers};
use crate::auth::secrets::RandomSecrets;
use crate::auth::{AuthServer, AuthSettings};
use crate::clock::{Clock, IdGenerator, SystemClock, TimeOrderedIds};
use crate::config::Config;
use crate::policy::BearerVerifier;
use crate::rest::FhirService;
use crate::store::{self, Store, StoreError};
use crate::throttle::Throttle;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// State shared by all handlers: one `Arc`, so the clone axum makes for each middleware and
/// extractor of a request is one reference count, not one per part (measured: dropping the
/// five-`Arc` state was 2.5 % of a read's server CPU, each count a cache line both cores
/// fight over).
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

/// The parts of [`AppState`], read through it (`state.fhir`).
#[derive(Clone)]
pub struct StateParts {
    pub config: Arc<Config>,
    pub fhir: Arc<FhirService>,
    /// Verifies bearer tokens on the FHIR API; `None` only under `--insecure-no-auth` (every
    /// request then has unrestricted access).
    pub verifier: Option<Arc<dyn BearerVerifier>>,
    /// The built-in SMART authorization server (`/auth/*` and discovery); `None` answers those
    /// routes with 404.
    pub auth: Option<Arc<AuthServer>>,
    /// Rate limits and the cap on requests in progress (`throttle/`).
    pub throttle: Arc<Throttle>,
}

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

impl AppState {
    /// The parts to change while building the state (copied first if it is shared already, so
    /// a clone made earlier keeps what it had).
    fn parts(&mut self) -> &mut StateParts {
        Arc::make_mut(&mut self.0)
    }

    /// The FHIR service to change (its hooks, its audit), while nothing shares it yet.
    pub fn fhir_mut(&mut self) -> Option<&mut FhirService> {
        Arc::get_mut(&mut self.parts().fhir)
    }

    /// Assemble the state from a configuration, a store, a clock and an id generator.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        let fhir = FhirService::new(store, clock, ids, &config);
        AppState(Arc::new(StateParts {
            throttle: Arc::new(Throttle::from_config(&config)),
            config: Arc::new(config),
            fhir: Arc::new(fhir),
            verifier: None,
            auth: None,
        }))
    }

    /// The same state with limits measured on `throttle`'s own clock (tests).
    pub fn with_throttle(mut self, throttle: Throttle) -> Self {
        self.parts().throttle = Arc::new(throttle);
        self
    }

    /// The same state writing no Provenance: bulk loads only (`coplan seed`). Says so on
    /// stderr; must be called before the state is shared.
    pub fn without_provenance(mut self) -> Self {
        match self.fhir_mut() {
            Some(fhir) => {
                fhir.hooks
                    .retain(|h| h.name() != crate::rest::PROVENANCE_HOOK);
                eprintln!(
                    "*** bulk load: these writes record NO Provenance (the HTTP API always does) ***"
                );
            }
            None => tracing::error!("the service is shared already; Provenance stays on"),
        }
        self
    }

    /// The same state recording AuditEvents (starts the writer task; must be called before the
    /// state is shared).
    pub fn with_audit(mut self) -> Self {
        match self.fhir_mut() {
            Some(fhir) => fhir.start_audit(),
            None => tracing::error!("the service is shared already; AuditEvents are off"),
        }
        self
    }

    /// The same state with the built-in authorization server's routes served by `auth`.
    pub fn with_auth_server(mut self, auth: Arc<AuthServer>) -> Self {
        self.parts().auth = Some(auth);
        self
    }

    /// The same state with the FHIR API open to every request (in-process seeding: `coplan
    /// demo`, tests); the state it was cloned from keeps its verifier.
    pub fn without_verifier(mut self) -> Self {
        self.parts().verifier = None;
        self
    }

    /// The same state with bearer tokens on the FHIR API checked by `verifier`.
    pub fn with_verifier(mut self, verifier: Arc<dyn BearerVerifier>) -> Self {
        self.parts().verifier = Some(verifier);
        self
    }

    /// Open the configured database, migrate it, and use the real clock and time-ordered random ids. The
    /// built-in authorization server runs and its tokens are required on the FHIR API, unless
    /// `insecure_no_auth` is set.
    pub async fn open(config: Config) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let store = store::open(config.database_url.as_str(), config.current_cache_bytes()).await?;
        let opened = started.elapsed();
        store.migrate().await?;
        let migrated = started.elapsed();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let auth = Arc::new(
            AuthServer::open(
                AuthSettings::from_config(&config),
                store.auth(),
                clock.clone(),
                Arc::new(RandomSecrets),
            )
            .await?,
        );
        auth.spawn_housekeeping();
        let insecure = config.insecure_no_auth;
        let verifier: Arc<dyn BearerVerifier> = if config.trusted_issuers.is_empty() {
            auth.clone()
        } else {
            let mut external = Vec::new();
            for issuer in &config.trusted_issuers {
                external.push(
                    ExternalIssuer::load(
                        issuer.clone(),
                        &config.base_url,
                        auth.jwks_fetcher.clone(),
                    )
                    .await
                    .map_err(StoreError::Unavailable)?,
                );
            }
            Arc::new(Verifiers::new(auth.clone(), external, clock.clone()))
        };
        let ids = Arc::new(TimeOrderedIds::new(clock.clone()));
        let audit = config.audit_events;
        let mut state = AppState::new(config, store, clock, ids).with_auth_server(auth.clone());
        if audit {
            state = state.with_audit();
        }
        // The profiles, value sets and code systems that ship with the server, readable and
        // searchable (issue "Profiles").
        state
            .fhir
            .load_conformance_library()
            .await
            .map_err(|e| StoreError::Unavailable(format!("loading the shipped profiles: {e:?}")))?;
        // The PROM instruments that ship with the server (issue "PROMs" §1).
        state.fhir.load_questionnaire_library().await.map_err(|e| {
            StoreError::Unavailable(format!("loading the Questionnaire library: {e:?}"))
        })?;
        // Start-up time, phase by phase (what a large database costs at start is read here).
        tracing::info!(
            open_ms = opened.as_millis() as u64,
            migrate_ms = (migrated - opened).as_millis() as u64,
            rest_ms = (started.elapsed() - migrated).as_millis() as u64,
            "started in {} ms",
            started.elapsed().as_millis()
        );
        if insecure {
            tracing::warn!(
                "!!! --insecure-no-auth: the FHIR API is open to ANYONE without a token. \
                 Use this for local experiments only, never with real data. !!!"
            );
            Ok(state)
        } else {
            Ok(state.with_verifier(verifier))
        }
    }
}

/// The full router.
pub fn router(state: AppState) -> Router {
    crate::http::routes(state)
}

/// Serve `router(state)` on `listener` (with the connection limits of `http/server.rs`) until
/// `shutdown` resolves, then finish in-flight requests, write the AuditEvents still queued,
/// and return.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fhir = state.fhir.clone();
    let limits = crate::http::server::ConnectionLimits::from_config(&state.config);
    let housekeeping = tokio::spawn(forget_idle_clients(state.throttle.clone()));
    let served = crate::http::server::serve(listener, router(state), limits, shutdown).await;
    housekeeping.abort();
    fhir.flush_audit().await;
    served
}

/// Every minute, drop the rate limits' state of clients and addresses gone quiet.
async fn forget_idle_clients(throttle: Arc<Throttle>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        throttle.forget_idle();
    }
}
