-- Fix: the original restore_events glued its connection string together unquoted, so a
-- password (or any value) with a space, quote or backslash broke it or injected options.
-- Every value is now quoted as libpq expects, NULL values are left out (so .pgpass or
-- trust auth on the backup server work), and an optional fromPort is accepted.
-- The old routine is dropped so that exactly one restore_events exists.
DROP FUNCTION restore_events(text, text, text, text);

CREATE FUNCTION restore_events(fromHost text, fromDatabase text, fromDatabaseUser text, fromDatabasePassword text, fromPort integer DEFAULT NULL, OUT rows_restored bigint, OUT next_insert_id bigint)
AS $$
DECLARE
getEventsStmt CONSTANT text = 'SELECT id, ts, event FROM events ORDER BY id';
getCountMaxIdStmt CONSTANT text = 'SELECT MAX(id) AS maxid, count(*) AS count FROM events';
connectionInfo text;
sourceEventsCount bigint;
sourceEventsMaxId bigint;
sourceNextIdValue bigint;
fromEventsCount bigint;
fromEventsMaxId bigint;
BEGIN
-- libpq conninfo: each value in single quotes, with backslash and quote escaped by a backslash.
-- E'' literals keep this right whatever standard_conforming_strings the caller runs with.
SELECT string_agg(c.key || '=''' || replace(replace(c.value, E'\\', E'\\\\'), '''', E'\\''') || '''', ' ' ORDER BY c.position)
FROM (VALUES (1, 'host', fromHost),
             (2, 'port', fromPort::text),
             (3, 'dbname', fromDatabase),
             (4, 'user', fromDatabaseUser),
             (5, 'password', fromDatabasePassword)) AS c(position, key, value)
WHERE c.value IS NOT NULL
INTO connectionInfo;
-- get row count from Source events table. must be 0 after being created by init-slate-db.
SELECT count(*) from events into sourceEventsCount;
IF sourceEventsCount != 0 THEN
RAISE EXCEPTION 'Source events table row count (%) is not 0', sourceEventsCount USING HINT = 'The Source events database must be initialized with init-slate-db';
END IF;
-- get next event id from id table. must be 1 after being created by init-slate-db.
SELECT id from id into sourceNextIdValue;
IF sourceNextIdValue != 1 THEN
RAISE EXCEPTION 'Source id table id value (%) is not 1', sourceNextIdValue USING HINT = 'The Source events database must be initialized with init-slate-db';
END IF;
-- get maximum event id and row count from events table in remote database being used to restore the Source events table.
-- maximum event id must be 1 or greater and equal to the row count.
SELECT fe.maxid, fe.count FROM dblink(connectionInfo, getCountMaxIdStmt) AS fe(maxid bigint, count bigint) INTO fromEventsMaxId, fromEventsCount;
IF fromEventsMaxId IS NULL OR fromEventsMaxId < 1 THEN
RAISE EXCEPTION 'The from events table maximum id value (%) is not 1 or greater', fromEventsMaxId USING HINT = 'The events table used to restore the Source events table must have a maximum id value of 1 or greater';
END IF;
IF fromEventsCount != fromEventsMaxId THEN
RAISE EXCEPTION 'The from events table row count (%) is not equal to the from events table maximum id (%)', fromEventsCount, fromEventsMaxId USING HINT = 'The events table used to restore the Source events table is not valid';
END IF;
-- copy the events in order by id from the remote events table to the Source events table.
INSERT INTO events (id, ts, event)
SELECT fe.id, fe.ts, fe.event
FROM dblink(connectionInfo, getEventsStmt)
AS fe(id bigint, ts timestamp with time zone, event jsonb);
GET DIAGNOSTICS rows_restored = ROW_COUNT;
SELECT MAX(id), count(*) FROM events INTO sourceEventsMaxId, sourceEventsCount;
IF sourceEventsCount != sourceEventsMaxId THEN
RAISE EXCEPTION 'The Source events table row count (%) is not equal to the Source events table maximum id (%)', sourceEventsCount, sourceEventsMaxId USING HINT = 'The restored Source events table is not valid';
END IF;
IF sourceEventsCount != rows_restored THEN
RAISE EXCEPTION 'The Source events table row count (%) is not equal to the Source events table rows restored (%)', sourceEventsCount, rows_restored USING HINT = 'The Source events table restore had a program logic error';
END IF;
-- update the id value in the Source id table to the maximum id value + 1 from the remote events table used to restore the Source events table.
UPDATE id SET id = sourceEventsMaxId + 1 RETURNING id INTO next_insert_id;
END;
$$ LANGUAGE plpgsql;
