//! Token introspection, `POST /auth/introspect` (RFC 7662; SMART App Launch 2.2 "Token
//! Introspection"): confidential clients learn whether an access token is active and what it
//! grants — of their own tokens, or of any client's when registered as a resource server
//! (`introspect_any`). Another client's token reads as `{"active": false}` (RFC 7662 §2.2), so
//! a caller cannot even learn that it exists.

use super::clients::ClientKind;
use super::error::OAuthError;
use super::grants::{credentials, required, Form};
use super::AuthServer;
use serde_json::{json, Value};

impl AuthServer {
    /// `POST /auth/introspect` (RFC 7662): `{"active": false}` for anything not currently valid.
    pub async fn introspect(
        &self,
        form: &Form,
        authorization: Option<&str>,
    ) -> Result<Value, OAuthError> {
        let client = self
            .authenticate_client(&credentials(form, authorization))
            .await?;
        if client.kind == ClientKind::Public {
            return Err(OAuthError::invalid_client(
                "introspection requires a confidential client",
            ));
        }
        let token = required(form, "token")?;
        let Ok(claims) = self.verify_access_token(token).await else {
            return Ok(json!({"active": false}));
        };
        if !client.may_introspect(&claims.client_id) {
            return Ok(json!({"active": false}));
        }
        let mut out = json!({
            "active": true,
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": claims.aud,
            "token_type": "Bearer",
        });
        if let Some(patient) = &claims.patient {
            out["patient"] = json!(patient);
        }
        if let Some(user) = &claims.fhir_user {
            out["fhirUser"] = json!(user);
        }
        Ok(out)
    }
}
