-- The eventsinsert notifications, one per inserted row in id order as before, sent by one
-- statement-level trigger call over the inserted rows instead of one trigger call per row.
-- notify_insert stays one trigger (one row in information_schema.triggers).
--
-- Fix: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more, so inserting a large event
-- failed and took the writer's whole batch with it. Such a row is now announced with a small
-- payload that keeps table and id, says the event was left out, and gives its size:
--   {"table" : "events", "id" : 42, "event" : null, "eventOmitted" : true, "eventBytes" : 9123}
-- Listeners fetch the row by id. Events that fit are sent exactly as before.
CREATE OR REPLACE FUNCTION notify_event_insert() RETURNS trigger AS $$
BEGIN
PERFORM pg_notify('eventsinsert',
    CASE WHEN octet_length(n.payload) < 8000 THEN n.payload
         ELSE json_build_object('table', TG_TABLE_NAME, 'id', n.id, 'event', NULL, 'eventOmitted', true, 'eventBytes', octet_length(n.event::text))::text
    END)
FROM (SELECT i.id, i.event, json_build_object('table', TG_TABLE_NAME, 'id', i.id, 'event', i.event)::text AS payload
        FROM inserted i
       ORDER BY i.id
      OFFSET 0) AS n;
RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER notify_insert ON events;

CREATE TRIGGER notify_insert AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION notify_event_insert();
