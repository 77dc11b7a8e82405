-- Expiry indexes for purging the authorization server's revocations and seen client-assertion
-- jtis (0003 is already applied in the field, so these come separately).
CREATE INDEX auth_revoked_expiry ON auth_revoked (expires_at);
CREATE INDEX auth_seen_jti_expiry ON auth_seen_jti (expires_at);
