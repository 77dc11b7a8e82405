-- The audit log's chunks (~27 KB of JSON each, up to 256 interactions) are compressed when
-- stored, and PostgreSQL's default method (pglz) cost its backends ~2 µs of CPU per audited
-- read — measured on a read-by-id run of ~49,000 reads a second: 0.50 s of PostgreSQL CPU in
-- 5 s with pglz, 0.26 s with lz4, and 83 % instead of 79 % of the unaudited throughput
-- (benches/RESULTS.md, 2026-12-06). lz4 needs a server built with it (PostgreSQL 14+, Debian's
-- and the official images are); elsewhere the column keeps the default and nothing else changes.
DO $$
BEGIN
    ALTER TABLE audit_log ALTER COLUMN record SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'audit_log.record keeps the default compression: %', SQLERRM;
END
$$;
