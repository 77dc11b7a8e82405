//! EHR launch contexts (SMART App Launch 2.2 "EHR launch", "launch context"): an EHR's system
//! client registers the context (patient, encounter, fhirContext, banner, style, intent) and
//! receives an opaque, short-lived, single-use `launch` value for the app's launch URL
//! (`?iss=…&launch=…`). The authorization endpoint resolves it and consumes it with the code.

use super::error::OAuthError;
use super::secrets::hash_secret;
use super::AuthServer;
use crate::store::auth::{kind, Consumed};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The launch context returned with the token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    #[serde(
        default,
        rename = "fhirContext",
        skip_serializing_if = "Option::is_none"
    )]
    pub fhir_context: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

/// A plain FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
pub fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl AuthServer {
    /// Register a launch context; returns the opaque `launch` value.
    pub async fn register_launch(&self, context: &LaunchContext) -> Result<String, OAuthError> {
        for id in [&context.patient, &context.encounter].into_iter().flatten() {
            if !is_fhir_id(id) {
                return Err(OAuthError::invalid_request(
                    "patient and encounter must be plain resource ids",
                ));
            }
        }
        let launch = self.new_secret();
        let data =
            serde_json::to_string(context).map_err(|e| OAuthError::server_error(e.to_string()))?;
        self.store
            .put_ticket(
                kind::LAUNCH,
                &hash_secret(&launch),
                &data,
                self.now() + self.settings.launch_seconds,
            )
            .await?;
        Ok(launch)
    }

    /// The context of an unused, unexpired launch (not consumed).
    pub async fn peek_launch(&self, launch: &str) -> Result<Option<LaunchContext>, OAuthError> {
        let data = self
            .store
            .ticket(kind::LAUNCH, &hash_secret(launch), self.now())
            .await?;
        data.map(|d| serde_json::from_str(&d).map_err(|e| OAuthError::server_error(e.to_string())))
            .transpose()
    }

    /// Use up a launch; `None` if it was used or expired meanwhile.
    pub async fn consume_launch(&self, launch: &str) -> Result<Option<LaunchContext>, OAuthError> {
        match self
            .store
            .consume_ticket(kind::LAUNCH, &hash_secret(launch), self.now())
            .await?
        {
            Consumed::Fresh(d) => serde_json::from_str(&d)
                .map(Some)
                .map_err(|e| OAuthError::server_error(e.to_string())),
            _ => Ok(None),
        }
    }
}
