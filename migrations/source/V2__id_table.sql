-- The id table holds the next id insert_events hands out; it starts at 1.
CREATE TABLE id
(
    id bigint NOT NULL,
    CONSTRAINT id_pkey PRIMARY KEY (id)
);

INSERT INTO id (id) VALUES (1);
