//! FHIR R4 RESTful interactions (http.html) without HTTP types: read, vread, create, update,
//! patch, delete, history, operations and the CapabilityStatement. The HTTP layer maps requests onto these
//! and their results (or [`FhirError`]s) back onto responses.

pub mod audit;
mod bundle_json;
mod capability;
mod conditional;
mod guard;
mod history;
mod instant;
mod keyed_lock;
mod membership;
mod meta;
pub mod operations;
pub mod profiles;
pub mod provenance;
mod questionnaires;
mod reach;
mod read;
mod reindex;
pub mod search;
mod transaction;
mod write;

pub use capability::capability_statement;
pub use conditional::{create_criteria, ConditionalCreate, MAX_CONDITIONAL_DELETE};
pub use fhir_primitives::format_instant;
pub use history::{HistoryPage, HistoryParams};
pub use instant::parse_instant;
pub use membership::MembershipCache;
pub use operations::{EverythingParams, Level, OperationCall, OperationInput};
pub use transaction::MAX_BUNDLE_ENTRIES;
pub(crate) use write::default_hooks as default_write_hooks;
pub use write::warnings;
pub use write::PROVENANCE_HOOK;
pub use write::{
    apply_patch, parse_etag, DeleteOutcome, DerivedIds, PatchBody, PreparedWrite, UpdateOutcome,
    WriteContext, WriteHook, DERIVED_PREFIX,
};

use crate::clock::{Clock, IdGenerator};
use crate::error::{FhirError, FhirResult};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use std::sync::Arc;

/// One version of a resource as served: its identity, version, and the stored JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedResource {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    /// `meta.lastUpdated` in microseconds since the Unix epoch.
    pub last_updated_us: i64,
    pub body: Bytes,
}

/// Stored resource bytes as JSON, for a hook or an operation that picks by content. The server
/// wrote them, so bytes that are not JSON are a defect (a 500), never the client's doing.
pub(crate) fn stored_json(body: &[u8]) -> FhirResult<serde_json::Value> {
    serde_json::from_slice(body).map_err(FhirError::internal)
}

/// The FHIR interactions over one store, with injected time and ids.
pub struct FhirService {
    /// Private to `rest`: everything outside reaches data through the service's interactions,
    /// which apply the access policy (`read`, `search`, the write pipeline).
    store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// Absolute base URL of the FHIR endpoint, without a trailing slash.
    pub base_url: String,
    pub default_page_size: u32,
    pub max_page_size: u32,
    /// Most parameters one search may have (400 beyond).
    pub max_query_params: usize,
    /// Most resources `_include`/`_revinclude` may add to one page (400 beyond).
    pub max_include_results: usize,
    /// The R4 search parameters: lookups for the search parser, index extraction on write.
    pub search_params: search::params::R4SearchParams,
    /// Compartment membership of recent versions (confined reads).
    pub membership: Arc<membership::MembershipCache>,
    /// Serialises conditional creates with the same criteria.
    pub conditional_locks: keyed_lock::KeyedLocks,
    /// Questionnaires as parsed, by stored version (`questionnaires.rs`).
    pub(crate) parsed_questionnaires: questionnaires::ParsedQuestionnaires,
    /// The write pipeline's hooks, in the order they run (`rest/write/hooks.rs`).
    pub hooks: Vec<Arc<dyn WriteHook>>,
    /// Profiles each type must conform to whether it claims them or not (`profiles.rs`).
    pub required_profiles: std::collections::BTreeMap<String, Vec<String>>,
    /// Devices known to exist (the apps Provenance names as transmitter).
    known_devices: KnownDevices,
    /// Where reads, searches and writes of patient data are recorded (`None`: not audited).
    audit: Option<audit::AuditTrail>,
    /// One catch-up of the audit log at a time on this node (`audit::audit_caught_up`).
    audit_catch_up: tokio::sync::Mutex<()>,
}

/// Ids of Device resources known to exist, so recording a Provenance costs no lookup.
#[derive(Default)]
struct KnownDevices(std::sync::Mutex<std::collections::HashSet<String>>);

impl KnownDevices {
    fn contains(&self, id: &str) -> bool {
        self.0.lock().is_ok_and(|known| known.contains(id))
    }

    fn insert(&self, id: &str) {
        if let Ok(mut known) = self.0.lock() {
            known.insert(id.to_string());
        }
    }
}

/// How many times a write without `If-Match` is retried when a concurrent writer got there
/// first (each retry re-reads the current version, after a short jittered back-off).
const WRITE_RETRIES: u32 = 40;

/// Back off before retry `attempt` (1-based) of a write that lost a race: a random pause of up
/// to 2^attempt ms, capped at 50 ms, so many writers of one resource spread out.
async fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let cap_ms = (1u64 << attempt.min(6)).min(50);
    // Jitter only spreads retries in time; it never shows in a response.
    #[allow(clippy::disallowed_methods)]
    let pause_us = rand::random::<u64>() % (cap_ms * 1_000);
    tokio::time::sleep(std::time::Duration::from_micros(pause_us)).await;
}

impl FhirService {
    /// The service over `store` with the configuration's base URL, page sizes and zone, and
    /// the default write hooks.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        config: &crate::config::Config,
    ) -> Self {
        FhirService {
            store,
            clock,
            ids,
            base_url: config.base_url.clone(),
            default_page_size: config.default_page_size,
            max_page_size: config.max_page_size,
            search_params: search::params::R4SearchParams {
                tz_offset_seconds: config.tz_offset_seconds,
                max_chain_depth: config.max_chain_depth as usize,
            },
            max_query_params: config.max_query_params as usize,
            max_include_results: config.max_include_results as usize,
            membership: Default::default(),
            parsed_questionnaires: Default::default(),
            conditional_locks: Default::default(),
            hooks: default_write_hooks(config),
            required_profiles: config.required_profiles.clone(),
            known_devices: Default::default(),
            audit: None,
            audit_catch_up: tokio::sync::Mutex::new(()),
        }
    }

    /// Is the database reachable? (`/healthz`)
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.store.backend_name()
    }

    /// Refresh the query planner's statistics (after a bulk load).
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        self.store.refresh_statistics().await
    }

    /// The current time, truncated to the millisecond precision that `meta.lastUpdated` carries.
    fn now_us(&self) -> i64 {
        let micros = self.clock.now_unix_micros();
        micros - micros.rem_euclid(1_000)
    }
}

/// Refuse resource types that R4 does not define (404, http.html "Unknown resource type").
pub fn check_known_type(resource_type: &str) -> FhirResult<()> {
    if crate::validate::is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(FhirError::new(
            crate::error::ErrorKind::NotFound,
            "not-supported",
            format!("{resource_type:?} is not a FHIR R4 resource type"),
        ))
    }
}

/// A storage failure at the FHIR boundary: an unreachable database is a 503 the client may
/// retry, a full disk a 507 (RFC 4918 §11.5); anything else is a 500 whose detail stays in
/// the log.
impl From<StoreError> for FhirError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                FhirError::new(
                    crate::error::ErrorKind::Unavailable,
                    "transient",
                    "the database is not available; try again later",
                )
            }
            StoreError::Full(detail) => {
                tracing::error!(error = %detail, "database storage full: writes refused");
                FhirError::new(
                    crate::error::ErrorKind::InsufficientStorage,
                    "no-store",
                    "the server's storage is full: nothing was written; reads still work",
                )
            }
            StoreError::NowMatches { resource_type } => write::now_matches(&resource_type),
            other => FhirError::internal(other),
        }
    }
}
