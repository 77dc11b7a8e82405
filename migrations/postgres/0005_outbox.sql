-- The transactional outbox: events written in the same transaction as the change they
-- announce (a notification to deliver, a cache to invalidate on other nodes), read in order
-- after the commit. A rolled-back write leaves no event; a committed one always has its event.
CREATE TABLE outbox (
    seq         BIGSERIAL PRIMARY KEY,
    topic       TEXT   NOT NULL,
    recorded_us BIGINT NOT NULL,
    payload     BYTEA  NOT NULL
);
