//! Token revocation, `POST /auth/revoke` (RFC 7009): a client takes back its own access token
//! (by `jti`) or refresh token (and with it the whole grant).

use super::error::OAuthError;
use super::grants::{credentials, parse, required, Form, RefreshData};
use super::secrets::hash_secret;
use super::AuthServer;
use crate::store::auth::kind;

impl AuthServer {
    /// `POST /auth/revoke` (RFC 7009): revoke an access token (by `jti`) or a refresh token (and
    /// its grant). Unknown tokens are not an error.
    pub async fn revoke(&self, form: &Form, authorization: Option<&str>) -> Result<(), OAuthError> {
        let client = self
            .authenticate_client(&credentials(form, authorization))
            .await?;
        let token = required(form, "token")?;
        if let Ok(claims) = self.decode_access_token(token, false).await {
            // A token revoked before was forgotten then, and no check since has cached it: a
            // repeat (a client calling again and again) changes nothing stored and forgets
            // only this token (in case the first call's forgetting never ran), scanning nothing.
            if claims.client_id == client.client_id {
                if self.store.revoke(&claims.jti, claims.exp).await? {
                    self.token_cache.forget(|c| c.jti == claims.jti);
                } else {
                    self.token_cache.forget_token(token);
                }
            }
            return Ok(());
        }
        let key = hash_secret(token);
        if let Some(data) = self.store.ticket(kind::REFRESH, &key, self.now()).await? {
            let data = parse::<RefreshData>(&data)?;
            if data.grant.client_id == client.client_id {
                self.store.delete_ticket(kind::REFRESH, &key).await?;
                self.revoke_grant(&data.grant.grant_id, data.family_expires_at)
                    .await?;
            }
        }
        Ok(())
    }
}
