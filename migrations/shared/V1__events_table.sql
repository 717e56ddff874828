-- The events table and its six indexes: identical in source and destination layouts.
CREATE TABLE events
(
    id bigint NOT NULL,
    ts timestamp with time zone NOT NULL,
    event jsonb NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (id)
);

CREATE INDEX events_event_entityname ON events ((event #>> '{entityName}'));
CREATE INDEX events_event_operation ON events ((event #>> '{operation}'));
CREATE INDEX events_event_propertyname ON events ((event #>> '{propertyName}'));
CREATE INDEX events_event_entityid ON events ((event #>> '{entityId}'));
CREATE INDEX events_event_metadata_command ON events ((event #>> '{metadata, command}'));
CREATE INDEX events_ts ON events (ts);
