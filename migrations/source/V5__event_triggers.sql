-- The NOTIFY trigger (channel eventsinsert, one notification per row) and the
-- command-check trigger that refuses UPDATE, DELETE and TRUNCATE, as the original created them.
CREATE FUNCTION notify_event_insert() RETURNS trigger AS $$
DECLARE
BEGIN
PERFORM pg_notify('eventsinsert', json_build_object('table', TG_TABLE_NAME, 'id', NEW.id, 'event', NEW.event )::text);
RETURN new;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER notify_insert AFTER INSERT ON events
FOR EACH ROW EXECUTE FUNCTION notify_event_insert();

CREATE FUNCTION filter_sql_command()
RETURNS TRIGGER as $$
BEGIN
RAISE EXCEPTION 'cannot perform SQL command on events table: %', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER check_sql_command BEFORE UPDATE OR DELETE OR TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION filter_sql_command();
