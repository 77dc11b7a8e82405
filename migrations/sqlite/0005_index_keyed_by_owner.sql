-- Index tables keyed by their owner (search.html rows of one resource are contiguous):
-- WITHOUT ROWID tables whose primary key is (resource_type, id, ord), ord numbering a
-- resource's rows of that table. This replaces a rowid table plus an owner index, so every
-- index row is one B-tree insert fewer, and the lookup indexes (which carry the primary key)
-- answer "which resources" without a visit to the table.

CREATE TABLE idx_string_keyed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL, code TEXT NOT NULL,
    norm TEXT NOT NULL, exact TEXT NOT NULL,
    PRIMARY KEY (resource_type, id, ord)
) WITHOUT ROWID;
INSERT INTO idx_string_keyed (resource_type, id, ord, code, norm, exact)
    SELECT resource_type, id, row_number() OVER (PARTITION BY resource_type, id ORDER BY rowid), code, norm, exact
    FROM idx_string;
DROP TABLE idx_string;
ALTER TABLE idx_string_keyed RENAME TO idx_string;
CREATE INDEX idx_string_lookup ON idx_string (resource_type, code, norm);

CREATE TABLE idx_token_keyed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL, code TEXT NOT NULL,
    system TEXT, value TEXT, text_norm TEXT,
    PRIMARY KEY (resource_type, id, ord)
) WITHOUT ROWID;
INSERT INTO idx_token_keyed (resource_type, id, ord, code, system, value, text_norm)
    SELECT resource_type, id, row_number() OVER (PARTITION BY resource_type, id ORDER BY rowid), code, system, value, text_norm
    FROM idx_token;
DROP TABLE idx_token;
ALTER TABLE idx_token_keyed RENAME TO idx_token;
CREATE INDEX idx_token_lookup ON idx_token (resource_type, code, value, system);

CREATE TABLE idx_date_keyed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL, code TEXT NOT NULL,
    low_us INTEGER NOT NULL, high_us INTEGER NOT NULL,
    PRIMARY KEY (resource_type, id, ord)
) WITHOUT ROWID;
INSERT INTO idx_date_keyed (resource_type, id, ord, code, low_us, high_us)
    SELECT resource_type, id, row_number() OVER (PARTITION BY resource_type, id ORDER BY rowid), code, low_us, high_us
    FROM idx_date;
DROP TABLE idx_date;
ALTER TABLE idx_date_keyed RENAME TO idx_date;
CREATE INDEX idx_date_lookup ON idx_date (resource_type, code, low_us, high_us);

CREATE TABLE idx_number_keyed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL, code TEXT NOT NULL,
    value REAL NOT NULL, system TEXT, unit TEXT,
    PRIMARY KEY (resource_type, id, ord)
) WITHOUT ROWID;
INSERT INTO idx_number_keyed (resource_type, id, ord, code, value, system, unit)
    SELECT resource_type, id, row_number() OVER (PARTITION BY resource_type, id ORDER BY rowid), code, value, system, unit
    FROM idx_number;
DROP TABLE idx_number;
ALTER TABLE idx_number_keyed RENAME TO idx_number;
CREATE INDEX idx_number_lookup ON idx_number (resource_type, code, value);

CREATE TABLE idx_reference_keyed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL, code TEXT NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT NOT NULL,
    PRIMARY KEY (resource_type, id, ord)
) WITHOUT ROWID;
INSERT INTO idx_reference_keyed (resource_type, id, ord, code, target_type, target_id, url)
    SELECT resource_type, id, row_number() OVER (PARTITION BY resource_type, id ORDER BY rowid), code, target_type, target_id, url
    FROM idx_reference;
DROP TABLE idx_reference;
ALTER TABLE idx_reference_keyed RENAME TO idx_reference;
CREATE INDEX idx_reference_lookup ON idx_reference (resource_type, code, target_id, target_type);
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id);

CREATE TABLE idx_uri_keyed (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, ord INTEGER NOT NULL, code TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_type, id, ord)
) WITHOUT ROWID;
INSERT INTO idx_uri_keyed (resource_type, id, ord, code, value)
    SELECT resource_type, id, row_number() OVER (PARTITION BY resource_type, id ORDER BY rowid), code, value
    FROM idx_uri;
DROP TABLE idx_uri;
ALTER TABLE idx_uri_keyed RENAME TO idx_uri;
CREATE INDEX idx_uri_lookup ON idx_uri (resource_type, code, value);
