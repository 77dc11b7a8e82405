-- Search index rows of current versions (search.html), replaced in the write's transaction.
CREATE TABLE idx_string (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL,
    norm TEXT NOT NULL, exact TEXT NOT NULL
);
CREATE INDEX idx_string_lookup ON idx_string (resource_type, code, norm);
CREATE INDEX idx_string_owner ON idx_string (resource_type, id);

CREATE TABLE idx_token (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL,
    system TEXT, value TEXT, text_norm TEXT
);
CREATE INDEX idx_token_lookup ON idx_token (resource_type, code, value, system);
CREATE INDEX idx_token_owner ON idx_token (resource_type, id);

CREATE TABLE idx_date (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL,
    low_us INTEGER NOT NULL, high_us INTEGER NOT NULL
);
CREATE INDEX idx_date_lookup ON idx_date (resource_type, code, low_us, high_us);
CREATE INDEX idx_date_owner ON idx_date (resource_type, id);

CREATE TABLE idx_number (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL,
    value REAL NOT NULL, system TEXT, unit TEXT
);
CREATE INDEX idx_number_lookup ON idx_number (resource_type, code, value);
CREATE INDEX idx_number_owner ON idx_number (resource_type, id);

CREATE TABLE idx_reference (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT NOT NULL
);
CREATE INDEX idx_reference_lookup ON idx_reference (resource_type, code, target_id, target_type);
CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id);
CREATE INDEX idx_reference_owner ON idx_reference (resource_type, id);

CREATE TABLE idx_uri (
    resource_type TEXT NOT NULL, id TEXT NOT NULL, code TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX idx_uri_lookup ON idx_uri (resource_type, code, value);
CREATE INDEX idx_uri_owner ON idx_uri (resource_type, id);

CREATE INDEX resource_current_by_updated ON resource_current (resource_type, last_updated_us, id);
