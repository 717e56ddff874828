-- The group roles `init-slate-db grant` manages for this store, one row per kind. A store
-- whose table is empty never opted in: `status` then reports its grants with a hint, and does
-- not judge them. Role names are no secret (pg_roles is readable by everyone), and status must
-- work for any role that may audit the store, so everyone may read the table; only its owner
-- writes it.
CREATE TABLE slate_roles (
    kind text PRIMARY KEY CHECK (kind IN ('writer', 'reader', 'replicator')),
    role_name text NOT NULL UNIQUE
);
GRANT SELECT ON slate_roles TO PUBLIC;
