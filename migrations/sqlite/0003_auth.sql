-- The built-in SMART authorization server's state (SMART App Launch 2.2, RFC 6749/7009/7662).
-- Secrets (client secrets, codes, refresh tokens, launch values, session ids) are stored only as
-- SHA-256 hashes; passwords as argon2 hashes.

-- Registered clients; `data` is the client record as JSON.
CREATE TABLE auth_client (
    client_id TEXT PRIMARY KEY,
    data      TEXT NOT NULL
);

-- User accounts linked to a FHIR user (Patient, Practitioner or RelatedPerson).
CREATE TABLE auth_user (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    fhir_user     TEXT
);

-- The server's token signing keys (PKCS#1 DER, base64). The newest unretired key signs; retired
-- keys stay published until `expires_at`, when no token they signed can still be valid.
CREATE TABLE auth_signing_key (
    kid         TEXT PRIMARY KEY,
    alg         TEXT    NOT NULL,
    private_der TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    expires_at  INTEGER
);

-- Short-lived tickets by kind: authorization codes and EHR launch contexts (single use),
-- refresh tokens (single use: rotated), browser sessions (reusable). `used_at` is set by the
-- atomic consume. Seconds since the Unix epoch.
CREATE TABLE auth_ticket (
    kind       TEXT    NOT NULL,
    key_hash   TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (kind, key_hash)
);
CREATE INDEX auth_ticket_expiry ON auth_ticket (expires_at);

-- Revoked token ids (`jti`) and grants (a code's family of access and refresh tokens).
CREATE TABLE auth_revoked (
    id         TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

-- Client assertion `jti`s already seen, per client (RFC 7523 replay protection).
CREATE TABLE auth_seen_jti (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

-- Failed logins per key (username) in the current window.
CREATE TABLE auth_login_failure (
    throttle_key TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);
