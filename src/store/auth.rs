//! Storage for the built-in SMART authorization server (SMART App Launch 2.2, RFC 6749, 7009,
//! 7523, 7662): registered clients, user accounts, signing keys, single-use tickets
//! (authorization codes, EHR launch contexts, refresh tokens) and browser sessions, the grants
//! users approved (listed on their "apps you allowed" page), revoked token and grant ids, seen
//! client-assertion `jti`s and login throttling counters.
//!
//! The SQL is written once with `$n` placeholders, which both SQLite and PostgreSQL accept, and
//! instantiated for each backend's pool by a macro; the tables are in `migrations/*/0003_auth.sql` and
//! `0007_auth_grant.sql`.
//! Callers pass every instant ("now", expiries) as seconds since the Unix epoch, so nothing
//! here reads a clock. Secrets arrive already hashed.

use super::StoreResult;
use async_trait::async_trait;

/// A user account.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub username: String,
    /// An argon2 PHC string.
    pub password_hash: String,
    /// The linked FHIR user as a relative reference (`Patient/1`), if any.
    pub fhir_user: Option<String>,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("username", &self.username)
            .field("password_hash", &"***")
            .field("fhir_user", &self.fhir_user)
            .finish()
    }
}

/// One of the server's token signing keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// The private key, PKCS#1 DER in standard base64.
    pub private_der: String,
    pub created_at: i64,
    /// When a newer key took over signing; `None` for the active key.
    pub retired_at: Option<i64>,
    /// When the key may be dropped (no token it signed is still valid).
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_der", &"***")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What an atomic consume of a single-use ticket found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// The ticket was unused and unexpired; it is now used. Its data.
    Fresh(String),
    /// The ticket had been used before (a replay). Its data, so the caller can revoke what the
    /// first use produced.
    AlreadyUsed(String),
    /// No such ticket, or it expired unused.
    Missing,
}

/// An authorization a user approved, as their "apps you allowed" page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// Not a credential: access tokens carry it (`grant`) so the grant can be revoked whole.
    pub grant_id: String,
    /// The user's account name.
    pub subject: String,
    pub client_id: String,
    /// The granted scopes, space separated.
    pub scope: String,
    /// The launch patient, if any.
    pub patient: Option<String>,
    pub created_at: i64,
    /// When the grant's last token (access or refresh) expires.
    pub expires_at: i64,
}

/// The kinds of ticket.
pub mod kind {
    pub const CODE: &str = "code";
    pub const LAUNCH: &str = "launch";
    pub const REFRESH: &str = "refresh";
    pub const SESSION: &str = "session";
}

/// The authorization server's storage contract, implemented by both backends.
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    /// Register or replace a client; `data` is its JSON record.
    async fn put_client(&self, client_id: &str, data: &str) -> StoreResult<()>;
    async fn client(&self, client_id: &str) -> StoreResult<Option<String>>;
    /// Every registered client's id, in order.
    async fn client_ids(&self) -> StoreResult<Vec<String>>;

    /// Create or replace a user account.
    async fn put_user(&self, user: &UserRow) -> StoreResult<()>;
    async fn user(&self, username: &str) -> StoreResult<Option<UserRow>>;

    /// Add a signing key.
    async fn add_signing_key(&self, key: &SigningKeyRow) -> StoreResult<()>;
    /// Every key not yet past its `expires_at`, newest first.
    async fn signing_keys(&self, now: i64) -> StoreResult<Vec<SigningKeyRow>>;
    /// Retire every active key but `keep`, keeping them published until `expires_at`.
    async fn retire_signing_keys(&self, keep: &str, now: i64, expires_at: i64) -> StoreResult<u64>;

    /// Store a ticket (replacing any with the same kind and key, and marking it unused).
    async fn put_ticket(
        &self,
        kind: &str,
        key_hash: &str,
        data: &str,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// An unused, unexpired ticket's data.
    async fn ticket(&self, kind: &str, key_hash: &str, now: i64) -> StoreResult<Option<String>>;
    /// Atomically mark a ticket used: exactly one of any number of concurrent consumers gets
    /// [`Consumed::Fresh`].
    async fn consume_ticket(&self, kind: &str, key_hash: &str, now: i64) -> StoreResult<Consumed>;
    async fn delete_ticket(&self, kind: &str, key_hash: &str) -> StoreResult<()>;

    /// Revoke a token id or grant id until at least `expires_at` (a revocation is never
    /// shortened by a later, shorter one). `false` when it was already revoked that long
    /// (nothing changed).
    async fn revoke(&self, id: &str, expires_at: i64) -> StoreResult<bool>;

    /// Record a grant a user approved, or keep listing a known one at least until
    /// `grant.expires_at` (a refresh extends a grant's listing, never shortens it). A grant
    /// issued before grants were listed is listed from its first refresh on.
    async fn put_grant(&self, grant: &GrantRow) -> StoreResult<()>;
    /// A user's unexpired grants, oldest first.
    async fn grants_of(&self, subject: &str, now: i64) -> StoreResult<Vec<GrantRow>>;
    /// Take back everything `subject` allowed `client_id`, in one transaction: the grants are
    /// revoked until `revoked_until` or their last token's expiry, whichever is later, and no
    /// longer listed. Returns how many there were.
    async fn revoke_grants(
        &self,
        subject: &str,
        client_id: &str,
        revoked_until: i64,
    ) -> StoreResult<u64>;
    /// Revoke one grant, listed or not, until `revoked_until` or its listed last token's
    /// expiry, whichever is later, and stop listing it; in one transaction.
    async fn revoke_grant(&self, grant_id: &str, revoked_until: i64) -> StoreResult<()>;
    /// Is any of `ids` revoked?
    async fn any_revoked(&self, ids: &[&str]) -> StoreResult<bool>;

    /// Remember a client assertion's `jti`; `false` when that client used it before.
    async fn remember_jti(&self, client_id: &str, jti: &str, expires_at: i64) -> StoreResult<bool>;

    /// Count a failed login for `key`; returns the failures in the current window, which starts
    /// afresh when the previous one began at or before `window_start`.
    async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        window_start: i64,
    ) -> StoreResult<i64>;
    /// Failures for `key` in a window that began after `window_start`.
    async fn login_failures(&self, key: &str, window_start: i64) -> StoreResult<i64>;
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;

    /// Drop expired tickets, revocations, seen `jti`s and keys.
    async fn purge_expired(&self, now: i64) -> StoreResult<()>;
}

/// Revoke an id until `$2`, or keep a longer revocation already recorded (portable upsert:
/// both dialects accept `excluded` with a guarded `DO UPDATE`).
#[doc(hidden)]
pub const REVOKE: &str = "INSERT INTO auth_revoked (id, expires_at) VALUES ($1, $2) \
     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE auth_revoked.expires_at < excluded.expires_at";

/// Implement [`AuthStore`] for a newtype over an sqlx pool (field `0`) whose `writing()` gives
/// each writing method its connection ([`Writing`]). The SQL is shared by both backends.
macro_rules! auth_store_sql {
    ($store:ty, $row:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::auth::AuthStore for $store {
            async fn put_client(
                &self,
                client_id: &str,
                data: &str,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query(
                    "INSERT INTO auth_client (client_id, data) VALUES ($1, $2) \
                     ON CONFLICT (client_id) DO UPDATE SET data = excluded.data",
                )
                .bind(client_id)
                .bind(data)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn client(&self, client_id: &str) -> $crate::store::StoreResult<Option<String>> {
                let row = sqlx::query("SELECT data FROM auth_client WHERE client_id = $1")
                    .bind(client_id)
                    .fetch_optional(&self.0)
                    .await?;
                Ok(row.map(|r: $row| r.try_get("data")).transpose()?)
            }

            async fn client_ids(&self) -> $crate::store::StoreResult<Vec<String>> {
                let rows = sqlx::query("SELECT client_id FROM auth_client ORDER BY client_id")
                    .fetch_all(&self.0)
                    .await?;
                rows.iter()
                    .map(|r: &$row| r.try_get("client_id").map_err(Into::into))
                    .collect()
            }

            async fn put_user(
                &self,
                user: &$crate::store::auth::UserRow,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query(
                    "INSERT INTO auth_user (username, password_hash, fhir_user) VALUES ($1, $2, $3) \
                     ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
                     fhir_user = excluded.fhir_user",
                )
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(user.fhir_user.as_deref())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn user(
                &self,
                username: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::auth::UserRow>> {
                let row = sqlx::query(
                    "SELECT username, password_hash, fhir_user FROM auth_user WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.0)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let row: $row = row;
                Ok(Some($crate::store::auth::UserRow {
                    username: row.try_get("username")?,
                    password_hash: row.try_get("password_hash")?,
                    fhir_user: row.try_get("fhir_user")?,
                }))
            }

            async fn add_signing_key(
                &self,
                key: &$crate::store::auth::SigningKeyRow,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query(
                    "INSERT INTO auth_signing_key \
                     (kid, alg, private_der, created_at, retired_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.private_der)
                .bind(key.created_at)
                .bind(key.retired_at)
                .bind(key.expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn signing_keys(
                &self,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::auth::SigningKeyRow>> {
                let rows = sqlx::query(
                    "SELECT kid, alg, private_der, created_at, retired_at, expires_at \
                     FROM auth_signing_key WHERE expires_at IS NULL OR expires_at > $1 \
                     ORDER BY created_at DESC, kid DESC",
                )
                .bind(now)
                .fetch_all(&self.0)
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        Ok($crate::store::auth::SigningKeyRow {
                            kid: row.try_get("kid")?,
                            alg: row.try_get("alg")?,
                            private_der: row.try_get("private_der")?,
                            created_at: row.try_get("created_at")?,
                            retired_at: row.try_get("retired_at")?,
                            expires_at: row.try_get("expires_at")?,
                        })
                    })
                    .collect()
            }

            async fn retire_signing_keys(
                &self,
                keep: &str,
                now: i64,
                expires_at: i64,
            ) -> $crate::store::StoreResult<u64> {
                let mut conn = self.writing().await?;
                let done = sqlx::query(
                    "UPDATE auth_signing_key SET retired_at = $2, expires_at = $3 \
                     WHERE kid <> $1 AND retired_at IS NULL",
                )
                .bind(keep)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected())
            }

            async fn put_ticket(
                &self,
                kind: &str,
                key_hash: &str,
                data: &str,
                expires_at: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query(
                    "INSERT INTO auth_ticket (kind, key_hash, data, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, NULL) \
                     ON CONFLICT (kind, key_hash) DO UPDATE SET data = excluded.data, \
                     expires_at = excluded.expires_at, used_at = NULL",
                )
                .bind(kind)
                .bind(key_hash)
                .bind(data)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn ticket(
                &self,
                kind: &str,
                key_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<String>> {
                let row = sqlx::query(
                    "SELECT data FROM auth_ticket WHERE kind = $1 AND key_hash = $2 \
                     AND used_at IS NULL AND expires_at > $3",
                )
                .bind(kind)
                .bind(key_hash)
                .bind(now)
                .fetch_optional(&self.0)
                .await?;
                Ok(row.map(|r: $row| r.try_get("data")).transpose()?)
            }

            async fn consume_ticket(
                &self,
                kind: &str,
                key_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::auth::Consumed> {
                use $crate::store::auth::Consumed;
                let mut conn = self.writing().await?;
                let fresh = sqlx::query(
                    "UPDATE auth_ticket SET used_at = $3 WHERE kind = $1 AND key_hash = $2 \
                     AND used_at IS NULL AND expires_at > $3 RETURNING data",
                )
                .bind(kind)
                .bind(key_hash)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(row) = fresh {
                    let row: $row = row;
                    return Ok(Consumed::Fresh(row.try_get("data")?));
                }
                let used = sqlx::query(
                    "SELECT data FROM auth_ticket WHERE kind = $1 AND key_hash = $2 \
                     AND used_at IS NOT NULL",
                )
                .bind(kind)
                .bind(key_hash)
                .fetch_optional(&mut *conn)
                .await?;
                Ok(match used {
                    Some(row) => {
                        let row: $row = row;
                        Consumed::AlreadyUsed(row.try_get("data")?)
                    }
                    None => Consumed::Missing,
                })
            }

            async fn delete_ticket(
                &self,
                kind: &str,
                key_hash: &str,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query("DELETE FROM auth_ticket WHERE kind = $1 AND key_hash = $2")
                    .bind(kind)
                    .bind(key_hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            async fn revoke(&self, id: &str, expires_at: i64) -> $crate::store::StoreResult<bool> {
                let mut conn = self.writing().await?;
                let done = sqlx::query(
                    $crate::store::auth::REVOKE,
                )
                .bind(id)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn put_grant(
                &self,
                grant: &$crate::store::auth::GrantRow,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query(
                    "INSERT INTO auth_grant \
                     (grant_id, subject, client_id, scope, patient, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (grant_id) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE auth_grant.expires_at < excluded.expires_at",
                )
                .bind(&grant.grant_id)
                .bind(&grant.subject)
                .bind(&grant.client_id)
                .bind(&grant.scope)
                .bind(grant.patient.as_deref())
                .bind(grant.created_at)
                .bind(grant.expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn grants_of(
                &self,
                subject: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::auth::GrantRow>> {
                let rows = sqlx::query(
                    "SELECT grant_id, subject, client_id, scope, patient, created_at, expires_at \
                     FROM auth_grant WHERE subject = $1 AND expires_at > $2 \
                     ORDER BY created_at, grant_id",
                )
                .bind(subject)
                .bind(now)
                .fetch_all(&self.0)
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        Ok($crate::store::auth::GrantRow {
                            grant_id: row.try_get("grant_id")?,
                            subject: row.try_get("subject")?,
                            client_id: row.try_get("client_id")?,
                            scope: row.try_get("scope")?,
                            patient: row.try_get("patient")?,
                            created_at: row.try_get("created_at")?,
                            expires_at: row.try_get("expires_at")?,
                        })
                    })
                    .collect()
            }

            async fn revoke_grants(
                &self,
                subject: &str,
                client_id: &str,
                revoked_until: i64,
            ) -> $crate::store::StoreResult<u64> {
                let mut conn = self.writing().await?;
                // Delete first and revoke exactly what was deleted, in one transaction: a grant
                // never stops being listed without being revoked.
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let taken = sqlx::query(
                    "DELETE FROM auth_grant WHERE subject = $1 AND client_id = $2 \
                     RETURNING grant_id, expires_at",
                )
                .bind(subject)
                .bind(client_id)
                .fetch_all(&mut *tx)
                .await?;
                for row in &taken {
                    let row: &$row = row;
                    let grant_id: String = row.try_get("grant_id")?;
                    let last_token: i64 = row.try_get("expires_at")?;
                    sqlx::query($crate::store::auth::REVOKE)
                        .bind(grant_id)
                        .bind(revoked_until.max(last_token))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(taken.len() as u64)
            }

            async fn revoke_grant(
                &self,
                grant_id: &str,
                revoked_until: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let listed = sqlx::query(
                    "DELETE FROM auth_grant WHERE grant_id = $1 RETURNING expires_at",
                )
                .bind(grant_id)
                .fetch_optional(&mut *tx)
                .await?;
                let last_token = match listed {
                    Some(row) => {
                        let row: $row = row;
                        row.try_get::<i64, _>("expires_at")?
                    }
                    None => revoked_until,
                };
                sqlx::query($crate::store::auth::REVOKE)
                    .bind(grant_id)
                    .bind(revoked_until.max(last_token))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn any_revoked(&self, ids: &[&str]) -> $crate::store::StoreResult<bool> {
                for id in ids {
                    let row = sqlx::query("SELECT 1 AS hit FROM auth_revoked WHERE id = $1")
                        .bind(*id)
                        .fetch_optional(&self.0)
                        .await?;
                    if row.is_some() {
                        return Ok(true);
                    }
                }
                Ok(false)
            }

            async fn remember_jti(
                &self,
                client_id: &str,
                jti: &str,
                expires_at: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut conn = self.writing().await?;
                let done = sqlx::query(
                    "INSERT INTO auth_seen_jti (client_id, jti, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (client_id, jti) DO NOTHING",
                )
                .bind(client_id)
                .bind(jti)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_login_failure(
                &self,
                key: &str,
                now: i64,
                window_start: i64,
            ) -> $crate::store::StoreResult<i64> {
                let mut conn = self.writing().await?;
                let row = sqlx::query(
                    "INSERT INTO auth_login_failure (throttle_key, failures, window_start) \
                     VALUES ($1, 1, $2) ON CONFLICT (throttle_key) DO UPDATE SET \
                     failures = CASE WHEN auth_login_failure.window_start <= $3 THEN 1 \
                                ELSE auth_login_failure.failures + 1 END, \
                     window_start = CASE WHEN auth_login_failure.window_start <= $3 THEN $2 \
                                ELSE auth_login_failure.window_start END \
                     RETURNING failures",
                )
                .bind(key)
                .bind(now)
                .bind(window_start)
                .fetch_one(&mut *conn)
                .await?;
                let row: $row = row;
                Ok(row.try_get("failures")?)
            }

            async fn login_failures(
                &self,
                key: &str,
                window_start: i64,
            ) -> $crate::store::StoreResult<i64> {
                let row = sqlx::query(
                    "SELECT failures FROM auth_login_failure \
                     WHERE throttle_key = $1 AND window_start > $2",
                )
                .bind(key)
                .bind(window_start)
                .fetch_optional(&self.0)
                .await?;
                Ok(row
                    .map(|r: $row| r.try_get("failures"))
                    .transpose()?
                    .unwrap_or(0))
            }

            async fn clear_login_failures(&self, key: &str) -> $crate::store::StoreResult<()> {
                let mut conn = self.writing().await?;
                sqlx::query("DELETE FROM auth_login_failure WHERE throttle_key = $1")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            async fn purge_expired(&self, now: i64) -> $crate::store::StoreResult<()> {
                for sql in [
                    "DELETE FROM auth_ticket WHERE expires_at <= $1",
                    "DELETE FROM auth_revoked WHERE expires_at <= $1",
                    "DELETE FROM auth_seen_jti WHERE expires_at <= $1",
                    "DELETE FROM auth_grant WHERE expires_at <= $1",
                    "DELETE FROM auth_signing_key WHERE expires_at IS NOT NULL AND expires_at <= $1",
                ] {
                    // A turn a statement: a large backlog never holds the FHIR writer long.
                    let mut conn = self.writing().await?;
                    sqlx::query(sql).bind(now).execute(&mut *conn).await?;
                }
                Ok(())
            }
        }
    };
}

/// A pool connection for one write, holding the SQLite writer thread's turn (if any) until it
/// is dropped. The connection is taken first, then the turn: the writer thread waits while the
/// turn is held, so it is never held while waiting for a connection.
pub(crate) struct Writing<DB: sqlx::Database> {
    // Fields drop in order: the turn is let go, then the connection goes back to the pool.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    conn: sqlx::pool::PoolConnection<DB>,
}

impl<DB: sqlx::Database> Writing<DB> {
    async fn take(
        pool: &sqlx::Pool<DB>,
        turn: Option<&super::sqlite_writer::WriterTurn>,
    ) -> StoreResult<Self> {
        let conn = pool.acquire().await?;
        let _turn = match turn {
            Some(turn) => Some(turn.take().await),
            None => None,
        };
        Ok(Writing { _turn, conn })
    }
}

impl<DB: sqlx::Database> std::ops::Deref for Writing<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Writing<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

/// [`AuthStore`] over the SQLite read pool. Auth writes are small and rare; each takes the
/// FHIR writer thread's turn before it writes (`sqlite_writer.rs`), so it waits for the work in
/// progress (a group, and what the writer does after one) and for the writes queued before it,
/// instead of retrying against a writer that is never idle. A write whose request is dropped,
/// or whose transaction fails, lets the turn go at once while SQLite may still be finishing the
/// statement or the rollback; the writer then waits for that with its busy timeout, as before
/// the turn.
pub struct SqliteAuthStore(
    pub(crate) sqlx::SqlitePool,
    pub(crate) super::sqlite_writer::WriterTurn,
);

impl SqliteAuthStore {
    async fn writing(&self) -> StoreResult<Writing<sqlx::Sqlite>> {
        Writing::take(&self.0, Some(&self.1)).await
    }
}

/// [`AuthStore`] over the PostgreSQL pool.
pub struct PostgresAuthStore(pub(crate) sqlx::PgPool);

impl PostgresAuthStore {
    /// PostgreSQL's writers take row locks of their own: no turn to wait for.
    async fn writing(&self) -> StoreResult<Writing<sqlx::Postgres>> {
        Writing::take(&self.0, None).await
    }
}

mod impls {
    use sqlx::Row;
    auth_store_sql!(super::SqliteAuthStore, sqlx::sqlite::SqliteRow);
    auth_store_sql!(super::PostgresAuthStore, sqlx::postgres::PgRow);
}
