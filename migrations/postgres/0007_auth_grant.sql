-- The authorizations a user approved (one row per redeemed authorization code), so the user can
-- see the apps they allowed and take access back (`/auth/apps`). A grant's tokens are revoked
-- through `auth_revoked` (its id); the row only lists it, until its last token has expired.
CREATE TABLE auth_grant (
    grant_id   TEXT   PRIMARY KEY,
    subject    TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    patient    TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_grant_subject ON auth_grant (subject, client_id);
CREATE INDEX auth_grant_expiry ON auth_grant (expires_at);
