-- The audit log's chunks (~27 KB of JSON each, up to 256 interactions) are compressed when
-- stored, and PostgreSQL's default method (pglz) cost its backends ~2 µs of CPU per audited
-- read — measured on a read-by-id run of ~49,000 reads a second: 0.50 s of PostgreSQL CPU in
-- 5 s with pglz, 0.26 s with lz4, and 83 % instead of 79 % of the unaudited throughput
-- (benches/RESULTS.md, 2026-12-06). lz4 needs PostgreSQL 14 or later built with it (Debian's
-- and the official images are). The statement is EXECUTEd, so PostgreSQL 13 and older do not
-- parse it; where lz4 is missing (or the statement fails for any other reason) the column keeps
-- the default method, which changes nothing else.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE audit_log ALTER COLUMN record SET COMPRESSION lz4';
    END IF;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'audit_log.record keeps the default compression: %', SQLERRM;
END
$$;
