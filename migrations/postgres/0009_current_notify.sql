-- Nodes cache current versions (src/store/postgres_cache.rs). Every change of a current
-- version notifies `coplan_current` with `schema/Type/id/version`, from inside the writing
-- transaction, so it is delivered when (and only if) the transaction commits, to every node
-- listening; each drops what the notification makes stale.
CREATE FUNCTION coplan_notify_current() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('coplan_current',
            current_schema() || '/' || OLD.resource_type || '/' || OLD.id || '/' || (OLD.version_id + 1));
    ELSE
        PERFORM pg_notify('coplan_current',
            current_schema() || '/' || NEW.resource_type || '/' || NEW.id || '/' || NEW.version_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER resource_current_changed
    AFTER UPDATE ON resource_current
    FOR EACH ROW WHEN (OLD.version_id IS DISTINCT FROM NEW.version_id)
    EXECUTE FUNCTION coplan_notify_current();

CREATE TRIGGER resource_current_removed
    AFTER DELETE ON resource_current
    FOR EACH ROW EXECUTE FUNCTION coplan_notify_current();
