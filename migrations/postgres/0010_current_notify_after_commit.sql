-- 0009's trigger notified inside every writing transaction; PostgreSQL serialises the commits
-- of all transactions that notify (a database-wide lock held through the commit's WAL flush),
-- which took a 16-connection care-plan workload from ~300 to ~15 requests a second. Nodes now
-- notify after their commit, in a transaction of its own (src/store/postgres_cache.rs), and
-- cached entries expire, which bounds what a notification lost to a crash could leave stale.
DROP TRIGGER IF EXISTS resource_current_changed ON resource_current;
DROP TRIGGER IF EXISTS resource_current_removed ON resource_current;
DROP FUNCTION IF EXISTS coplan_notify_current();
