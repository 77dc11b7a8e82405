-- The audit log: one compact row per recorded interaction (read, search, write of patient
-- data), appended in batches off the request path. AuditEvent resources are made from it
-- (rest/audit.rs) and the row deleted in the same transaction, so each becomes exactly one
-- AuditEvent; an AuditEvent with its search index is about twenty rows, too many to write
-- at the rate reads arrive.
CREATE TABLE audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT    NOT NULL,
    recorded_us BIGINT  NOT NULL,
    record      BYTEA   NOT NULL
);
