-- Current version of every resource, served by read without re-parsing.
CREATE TABLE resource_current (
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version_id      INTEGER NOT NULL,
    last_updated_us INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    body            BLOB,
    PRIMARY KEY (resource_type, id)
) WITHOUT ROWID;

-- Every version ever written (vread, history). seq orders history newest first.
CREATE TABLE resource_version (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version_id      INTEGER NOT NULL,
    last_updated_us INTEGER NOT NULL,
    method          TEXT    NOT NULL,
    body            BLOB
);
CREATE UNIQUE INDEX resource_version_by_key ON resource_version (resource_type, id, version_id);
CREATE INDEX resource_version_by_type ON resource_version (resource_type, seq);
