//! The "apps you have allowed" page (`GET`/`POST /auth/apps`): a signed-in user sees the apps
//! their approvals are still live for, in plain language, and takes access back from one (the
//! user-facing side of RFC 7009 revocation). Taking access back revokes every grant the user
//! gave that app: its refresh tokens stop working at once, and so do its access tokens (they
//! name their grant; this node forgets its cached verifications, other nodes re-check within
//! [`super::tokens::REVOCATION_RECHECK_SECONDS`]).
//!
//! Only the session's own user's grants are listed or revoked; every POST carries the
//! session's CSRF token, like the consent form.

use super::authorize::{page, Outcome, Params};
use super::error::OAuthError;
use super::pages::{self, AllowedApp};
use super::picker::patient_name;
use super::secrets::constant_time_eq;
use super::wording::{self, Wording};
use super::AuthServer;
use crate::rest::FhirService;
use crate::store::auth::GrantRow;
use time::OffsetDateTime;

const ACTION: &str = "/auth/apps";

/// `1 June 2027 at 14:05 (UTC)`.
fn when(unix: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(unix) else {
        return "a date Coplan cannot show".into();
    };
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:long] [year] at [hour]:[minute] (UTC)"
    );
    at.format(&format)
        .unwrap_or_else(|_| "a date Coplan cannot show".into())
}

/// `1 June 2027`.
fn day(unix: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(unix) else {
        return "a date Coplan cannot show".into();
    };
    let format = time::macros::format_description!("[day padding:none] [month repr:long] [year]");
    at.format(&format)
        .unwrap_or_else(|_| "a date Coplan cannot show".into())
}

impl AuthServer {
    /// One request to `/auth/apps`: a GET shows the page; a POST signs in (`step=login`) or
    /// takes back an app's access (`step=revoke`, `client_id`).
    pub async fn apps_page(
        &self,
        fhir: &FhirService,
        params: &Params,
        cookie: Option<&str>,
        post: bool,
        account_limit: super::session::AccountLimit<'_>,
    ) -> Result<Outcome, OAuthError> {
        let mut session = self.session(cookie).await?;
        let step = if post { params.one("step") } else { None };
        if step.is_some() {
            let csrf_ok = params
                .one("csrf")
                .is_some_and(|c| constant_time_eq(c, &session.data.csrf));
            if !csrf_ok || session.fresh {
                return Ok(page(
                    403,
                    "Form expired",
                    "This form has expired or did not come from your Coplan session. Please \
                     open the page again.",
                ));
            }
        }
        let mut login_error = None;
        let mut notice = None;
        match step {
            Some("login") => match self
                .sign_in_step(params, &mut session, account_limit)
                .await?
            {
                Ok(error) => login_error = error,
                Err(throttled) => return Ok(Outcome::Throttled(throttled)),
            },
            Some("revoke") => {
                let Some(username) = session.data.username.as_deref() else {
                    return Ok(page(
                        403,
                        "Please sign in",
                        "Sign in first to take back an app's access.",
                    ));
                };
                let client_id = params.one("client_id").unwrap_or("");
                let name = match self.client(client_id).await? {
                    Some(client) => client.name,
                    None => "The app".to_string(),
                };
                notice = Some(if self.take_back(username, client_id).await? > 0 {
                    format!(
                        "{name} can no longer use Coplan on your behalf. It would have to ask \
                         you again."
                    )
                } else {
                    format!("{name} had no access to take back.")
                });
            }
            _ => {}
        }
        let set_cookie = session.fresh.then(|| self.session_cookie(&session.id));
        let Some(username) = session.data.username.clone() else {
            return Ok(Outcome::Page {
                status: 200,
                html: pages::apps_login(
                    ACTION,
                    &pages::hidden(&[], &session.data.csrf),
                    login_error,
                    &self.site(),
                ),
                set_cookie,
            });
        };
        let apps = self
            .allowed_apps(fhir, &username, session.data.fhir_user.as_deref())
            .await?;
        Ok(Outcome::Page {
            status: 200,
            html: pages::apps(
                ACTION,
                &username,
                &session.data.csrf,
                &apps,
                notice.as_deref(),
                &self.site(),
            ),
            set_cookie,
        })
    }

    /// Revoke everything `username` allowed `client_id`; how many grants that was.
    pub async fn take_back(&self, username: &str, client_id: &str) -> Result<u64, OAuthError> {
        let taken = self
            .store
            .revoke_grants(
                username,
                client_id,
                self.now() + self.settings.offline_seconds,
            )
            .await?;
        if taken > 0 {
            // The tokens of the grants taken back: issued to `client_id` for this subject.
            self.token_cache
                .forget(|c| c.client_id == client_id && c.sub == username);
            tracing::info!(
                client_id,
                grants = taken,
                "a user took back an app's access"
            );
        }
        Ok(taken)
    }

    /// The apps `username` has live grants for, one entry per app, oldest first.
    async fn allowed_apps(
        &self,
        fhir: &FhirService,
        username: &str,
        fhir_user: Option<&str>,
    ) -> Result<Vec<AllowedApp>, OAuthError> {
        let grants = self.store.grants_of(username, self.now()).await?;
        let mut by_client: Vec<(String, Vec<GrantRow>)> = Vec::new();
        for grant in grants {
            match by_client.iter_mut().find(|(c, _)| *c == grant.client_id) {
                Some((_, list)) => list.push(grant),
                None => by_client.push((grant.client_id.clone(), vec![grant])),
            }
        }
        let mut apps = Vec::with_capacity(by_client.len());
        for (client_id, grants) in by_client {
            let name = match self.client(&client_id).await? {
                Some(client) => client.name,
                None => client_id.clone(),
            };
            let since = grants.iter().map(|g| g.created_at).min().unwrap_or(0);
            let until = grants.iter().map(|g| g.expires_at).max().unwrap_or(0);
            let mut scopes: Vec<&str> = Vec::new();
            for grant in &grants {
                for scope in grant.scope.split_ascii_whitespace() {
                    if !scopes.contains(&scope) {
                        scopes.push(scope);
                    }
                }
            }
            let patient = grants.iter().rev().find_map(|g| g.patient.as_deref());
            let patient_record = match patient {
                Some(p) if fhir_user == Some(format!("Patient/{p}").as_str()) => {
                    "your record".to_string()
                }
                Some(p) => patient_name(fhir, p).await.record(),
                None => "the patient's record".to_string(),
            };
            let words = Wording {
                patient_record,
                user_records: Wording::user_records(
                    fhir_user,
                    self.settings.practitioners_see_all_patients,
                ),
                offline_days: self.settings.offline_seconds / 86_400,
                online_hours: self.online_hours(),
            };
            let until = if scopes.contains(&"offline_access") {
                format!("until {}, unless you take it back", when(until))
            } else {
                format!("until {} at the latest", when(until))
            };
            apps.push(AllowedApp {
                client_id,
                name,
                since: day(since),
                until,
                can: scopes
                    .iter()
                    .map(|s| wording::describe(s, &words))
                    .collect(),
            });
        }
        Ok(apps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_as_dates() {
        // 2027-06-01T14:05:00Z
        assert_eq!(when(1_811_858_700), "1 June 2027 at 14:05 (UTC)");
        assert_eq!(day(1_811_858_700), "1 June 2027");
    }
}
