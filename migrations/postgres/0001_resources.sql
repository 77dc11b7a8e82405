-- Current version of every resource, served by read without re-parsing.
CREATE TABLE resource_current (
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version_id      BIGINT  NOT NULL,
    last_updated_us BIGINT  NOT NULL,
    deleted         BOOLEAN NOT NULL,
    body            BYTEA,
    PRIMARY KEY (resource_type, id)
);

-- Every version ever written (vread, history). seq orders history newest first.
CREATE TABLE resource_version (
    seq             BIGSERIAL PRIMARY KEY,
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version_id      BIGINT  NOT NULL,
    last_updated_us BIGINT  NOT NULL,
    method          TEXT    NOT NULL,
    body            BYTEA
);
CREATE UNIQUE INDEX resource_version_by_key ON resource_version (resource_type, id, version_id);
CREATE INDEX resource_version_by_type ON resource_version (resource_type, seq);
