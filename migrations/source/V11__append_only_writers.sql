-- Append-only writers. insert_events keeps its contract (signature, text format, the original's
-- three errors, consecutive gapless ids, one timestamp per call, the id row lock until commit,
-- the eventsinsert notifications, the returned row count) and is split in two:
-- * insert_events (SECURITY INVOKER, as before) evaluates the caller's text with the caller's
--   rights only, into the events;
-- * append_events (SECURITY DEFINER) takes those events, hands out the ids and the timestamp
--   and inserts. A writer needs EXECUTE on the two functions and no privilege on events or id:
--   it can append, and nothing else (no INSERT, no UPDATE of id, no id or timestamp of its own).
-- A definer function runs as the store's owner with the caller's search_path, so everything it
-- (and the NOTIFY trigger it fires) names is schema-qualified: a pinned search_path would cost
-- about 40,000 instructions a call (measured), qualified names cost nothing.
--
-- One form of text, one statement. A text in the form the contract documents,
--   ($1[1], $2, '<event>'), ($1[2], $2, '<event>'), ...
-- (each "$1[" followed by its row number and "], $2," or "],$2,", no other "$2,", no ";") is
-- read as the VALUES list (1, '<event>'), (2, '<event>'), ...: the ids and the timestamp are not
-- the text's to compute, so they are not evaluated, and append_events checks the numbers. Any
-- other text (a ";" anywhere, other spacing, markers inside events) gets the original's checks,
-- then is opened as a cursor, which refuses a second statement, and read row by row. Both read a
-- text the same way at every batch size: a trailing ";" or comment is accepted; ON CONFLICT,
-- RETURNING or another statement is not.

CREATE FUNCTION append_events(events jsonb[], row_numbers integer[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $$
-- Appends the events in order, with the next ids and the transaction's timestamp, holding the id
-- row lock until commit. row_numbers, when given, are the x of each row's "$1[x]" in the text:
-- they must be 1, 2, 3, ... (insert_events' own check, made here where it costs nothing).
DECLARE
n integer := pg_catalog.cardinality(events);
start bigint;
inserted integer;
lastIdx integer;
maxIndex integer;
idx integer;
BEGIN
-- The position of an event is its subscript: an array must start at 1 and have one dimension
-- ('[1000:1000]={...}' would otherwise place an event 999 ids ahead).
IF row_numbers IS NULL OR n IS NULL OR n OPERATOR(pg_catalog.<) 1 OR n OPERATOR(pg_catalog.>) 100000
   OR pg_catalog.array_lower(events, 1) OPERATOR(pg_catalog.<>) 1
   OR pg_catalog.array_ndims(events) OPERATOR(pg_catalog.<>) 1 THEN
IF n IS NULL OR n OPERATOR(pg_catalog.<) 1 THEN
RETURN 0;
END IF;
IF pg_catalog.array_lower(events, 1) OPERATOR(pg_catalog.<>) 1 OR pg_catalog.array_ndims(events) OPERATOR(pg_catalog.<>) 1 THEN
RAISE EXCEPTION 'append_events: the events must be a one-dimensional array starting at subscript 1'
USING ERRCODE = 'invalid_parameter_value';
END IF;
IF n OPERATOR(pg_catalog.>) 100000 THEN
RAISE EXCEPTION 'insert_events: % rows in one call exceed the limit of 100000 rows', n
USING HINT = 'Split the batch into calls of at most 100000 rows (each call is one transaction''s worth of ids)';
END IF;
-- No row numbers: the events in their order. (With row numbers, a shorter list leaves rows
-- unnumbered, which the check below refuses.)
UPDATE public.id SET id = id OPERATOR(pg_catalog.+) n RETURNING id OPERATOR(pg_catalog.-) n INTO start;
INSERT INTO public.events (id, ts, event)
SELECT start OPERATOR(pg_catalog.+) s.k OPERATOR(pg_catalog.-) 1, pg_catalog.transaction_timestamp(), s.e
FROM (SELECT pg_catalog.unnest(events) AS e, pg_catalog.generate_subscripts(events, 1) AS k) AS s;
RETURN n;
END IF;
UPDATE public.id SET id = id OPERATOR(pg_catalog.+) n RETURNING id OPERATOR(pg_catalog.-) n INTO start;
-- The set-returning functions run in step in the select list (no tuplestore); generate_subscripts
-- rather than generate_series, so that the plan does not depend on n and stays cached.
INSERT INTO public.events (id, ts, event)
SELECT start OPERATOR(pg_catalog.+) s.k OPERATOR(pg_catalog.-) 1, pg_catalog.transaction_timestamp(), s.e
FROM (SELECT pg_catalog.unnest(events) AS e, pg_catalog.unnest(row_numbers) AS r,
             pg_catalog.generate_subscripts(events, 1) AS k) AS s
WHERE s.r OPERATOR(pg_catalog.=) s.k;
GET DIAGNOSTICS inserted = ROW_COUNT;
IF inserted OPERATOR(pg_catalog.<>) n THEN
-- The rows are not numbered 1, 2, 3, ...: the original's errors, from the same numbers
-- (the error undoes the insert and the ids).
lastIdx := 0;
FOREACH idx IN ARRAY row_numbers LOOP
IF idx IS NULL THEN
RAISE EXCEPTION 'No inserted rows found with id substitution parameters' USING HINT = 'id column substitution parameter value for row to be inserted must be of the form "$1[x]" where x is the 1-indexed based index of the row';
ELSIF lastIdx OPERATOR(pg_catalog.=) 0 THEN
lastIdx := idx;
ELSIF idx OPERATOR(pg_catalog.=) (lastIdx OPERATOR(pg_catalog.+) 1) THEN
lastIdx := idx;
maxIndex := idx;
ELSE
RAISE EXCEPTION 'Parameter index is not consecutive at ------> %, previous index ------> %', idx, lastIdx
USING HINT = 'Parameter for id column of the form "$1[x]" where x is the 1-based index for the row to be inserted is not greater than the previous row''s index';
END IF;
END LOOP;
IF maxIndex IS NOT NULL AND maxIndex OPERATOR(pg_catalog.<>) n THEN
RAISE EXCEPTION 'Number of rows to be inserted (%) does not match the highest row index (%)', n, maxIndex USING HINT = 'The highest id column parameter substitution parameter index value does not match the number of rows to be inserted';
END IF;
-- The original's checks passed, but a "$1[x]" is outside 1..n: its $1[x] was NULL, and the
-- insert failed so.
RAISE EXCEPTION 'null value in column "id" of relation "events" violates not-null constraint'
USING ERRCODE = 'not_null_violation';
END IF;
RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION insert_events(insertValues text)
RETURNS integer AS $$
DECLARE
numbered text;
rowsText text;
countRows bigint;
tsCount bigint;
idxs bigint[];
lastIdx bigint;
idx bigint;
maxIndex bigint;
ts timestamp with time zone;
rowCursor refcursor;
rowId bigint;
rowTs timestamp with time zone;
rowEvent jsonb;
events jsonb[];
BEGIN
-- "($1[7], $2, '{}')" becomes "(7, '{}')": the row number and the event; append_events checks
-- that the rows are numbered 1, 2, 3, ...
numbered := replace(insertValues, '$1[', '');
rowsText := replace(numbered, '], $2,', ',');
tsCount := (octet_length(numbered) - octet_length(rowsText)) / 5;
IF tsCount = 0 THEN
-- Written without spaces: "($1[7],$2,'{}')".
rowsText := replace(numbered, '],$2,', ',');
tsCount := (octet_length(numbered) - octet_length(rowsText)) / 4;
END IF;
-- As many "$1[" as "], $2,", no other "$2,", no ";" (append_events refuses more than 100000
-- rows).
IF tsCount >= 1 AND tsCount * 3 = octet_length(insertValues) - octet_length(numbered)
   AND strpos(rowsText, '$2,') = 0 AND strpos(rowsText, ';') = 0 THEN
-- No ";": one statement. The newline ends a trailing "--" comment.
EXECUTE 'SELECT public.append_events(pg_catalog.array_agg(v.e::pg_catalog.jsonb), pg_catalog.array_agg(v.r)) FROM (VALUES '
|| rowsText || E'\n) AS v(r, e)'
INTO countRows USING NULL::bigint[], pg_catalog.transaction_timestamp();
IF countRows IS DISTINCT FROM tsCount THEN
-- Fewer rows than markers: markers inside an event, or a LIMIT after the rows. The error undoes
-- the insert and the ids.
RAISE EXCEPTION 'insert_events: % rows were found but the text names % rows; nothing was inserted and no id was taken', COALESCE(countRows, 0), tsCount
USING HINT = 'A "$1[" or "$2," inside an event''s text counts as a row parameter: escape it in the JSON (for example "\u0024" for "$")';
END IF;
RETURN countRows;
END IF;

-- Any other text: the original's checks, regular expressions and errors, unchanged.
SELECT ARRAY(SELECT pg_catalog.unnest(pg_catalog.regexp_matches(insertValues, '\$1\[([0-9]+)\]', 'g'))) INTO idxs;
SELECT pg_catalog.count(*) FROM pg_catalog.regexp_matches(insertValues, '(\$2),', 'g') INTO tsCount;
countRows := 0;
lastIdx := 0;
FOREACH idx IN ARRAY idxs
LOOP
countRows := countRows + 1;
IF lastIdx = 0 THEN
lastIdx := idx;
ELSE
IF idx = lastIdx + 1 THEN
lastIdx := idx;
maxIndex := idx;
ELSE
RAISE EXCEPTION 'Parameter index is not consecutive at ------> %, previous index ------> %', idx, lastIdx
USING HINT = 'Parameter for id column of the form "$1[x]" where x is the 1-based index for the row to be inserted is not greater than the previous row''s index';
END IF;
END IF;
END LOOP;
IF countRows < 1 THEN
RAISE EXCEPTION 'No inserted rows found with id substitution parameters' USING HINT = 'id column substitution parameter value for row to be inserted must be of the form "$1[x]" where x is the 1-indexed based index of the row';
END IF;
IF countRows != maxIndex THEN
RAISE EXCEPTION 'Number of rows to be inserted (%) does not match the highest row index (%)', countRows, maxIndex USING HINT = 'The highest id column parameter substitution parameter index value does not match the number of rows to be inserted';
END IF;
IF countRows != tsCount THEN
RAISE EXCEPTION 'Number of rows to be inserted (%) does not match number of rows with a ts substitution parameter (%)', countRows, tsCount USING HINT = 'ts column parameter substitution value for row to be inserted must be "$2"';
END IF;
IF countRows > 100000 THEN
RAISE EXCEPTION 'insert_events: % rows in one call exceed the limit of 100000 rows', countRows
USING HINT = 'Split the batch into calls of at most 100000 rows (each call is one transaction''s worth of ids)';
END IF;
IF (countRows = 1 AND idxs[1] <> 1) OR 0 = ANY (idxs) THEN
-- The original's checks passed, but a "$1[x]" is outside 1..n: its $1[x] was NULL, and the
-- insert failed so.
RAISE EXCEPTION 'null value in column "id" of relation "events" violates not-null constraint'
USING ERRCODE = 'not_null_violation';
END IF;
-- A cursor holds exactly one statement: a second one is refused before anything runs. $1 is
-- NULL (the ids are given after), $2 the timestamp; each row's id column must come from $1[x]
-- and its ts column be $2.
ts := pg_catalog.transaction_timestamp();
BEGIN
OPEN rowCursor FOR EXECUTE 'VALUES ' || insertValues USING NULL::bigint[], ts;
EXCEPTION WHEN invalid_cursor_definition THEN
RAISE EXCEPTION 'insert_events: the text holds more than one statement; it must be the rows of one VALUES list'
USING ERRCODE = 'syntax_error', HINT = 'Send only the rows, for example ($1[1], $2, ''{}''), ($1[2], $2, ''{}''); a trailing ";" or comment is fine, nothing else runs';
END;
idx := 0;
events := '{}';
LOOP
FETCH rowCursor INTO rowId, rowTs, rowEvent;
EXIT WHEN NOT FOUND;
idx := idx + 1;
IF rowId IS NOT NULL THEN
RAISE EXCEPTION 'insert_events: the id column of row % is not $1[%]', idx, idx
USING HINT = 'insert_events gives the ids: write the id column of row x as $1[x], nothing else';
END IF;
IF rowTs IS DISTINCT FROM ts THEN
RAISE EXCEPTION 'insert_events: the ts column of row % is not $2', idx
USING HINT = 'insert_events gives the timestamp: write the ts column of every row as $2, nothing else';
END IF;
events := pg_catalog.array_append(events, rowEvent);
END LOOP;
CLOSE rowCursor;
IF idx <> countRows THEN
RAISE EXCEPTION 'insert_events: % rows were found but the text names % rows; nothing was inserted and no id was taken', idx, countRows
USING HINT = 'A "$1[" or "$2," inside an event''s text counts as a row parameter: escape it in the JSON (for example "\u0024" for "$")';
END IF;
RETURN public.append_events(events, NULL::pg_catalog.int4[]);
END;
$$ LANGUAGE plpgsql;

-- The NOTIFY trigger of V8, unchanged but for schema-qualified names: it fires inside
-- append_events, as the owner, with the caller's search_path.
CREATE OR REPLACE FUNCTION notify_event_insert() RETURNS trigger AS $$
BEGIN
PERFORM pg_catalog.pg_notify('eventsinsert',
    CASE WHEN pg_catalog.octet_length(n.payload) OPERATOR(pg_catalog.<) 8000 THEN n.payload
         ELSE pg_catalog.json_build_object('table', TG_TABLE_NAME, 'id', n.id, 'event', NULL, 'eventOmitted', true, 'eventBytes', pg_catalog.octet_length(n.event::pg_catalog.text))::pg_catalog.text
    END)
FROM (SELECT i.id, i.event, pg_catalog.json_build_object('table', TG_TABLE_NAME, 'id', i.id, 'event', i.event)::pg_catalog.text AS payload
        FROM inserted i
       ORDER BY i.id
      OFFSET 0) AS n;
RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- EXECUTE only for the roles meant to have it: the owner, and (below) the roles that write today.
REVOKE EXECUTE ON FUNCTION insert_events(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION append_events(jsonb[], integer[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION restore_events(text, text, text, text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION notify_event_insert() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION filter_sql_command() FROM PUBLIC;
DO $$
DECLARE
f regprocedure;
grantee text;
BEGIN
-- dblink's functions, where this role may change them (a dblink installed by another role
-- keeps its grants; REVOKE would only warn).
FOR f IN SELECT p.oid::regprocedure
           FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid AND x.extname = 'dblink'
           JOIN pg_catalog.pg_proc p ON p.oid = d.objid
          WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
            AND pg_catalog.pg_has_role(p.proowner, 'USAGE')
LOOP
EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
END LOOP;
IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid AND x.extname = 'dblink'
             JOIN pg_catalog.pg_proc p ON p.oid = d.objid
            WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
              AND NOT pg_catalog.pg_has_role(p.proowner, 'USAGE')) THEN
RAISE WARNING 'dblink belongs to another role: PUBLIC keeps EXECUTE on its functions'
USING HINT = 'Its owner can run REVOKE EXECUTE ON ALL FUNCTIONS of the dblink extension FROM PUBLIC';
END IF;
-- A role that writes today holds INSERT on events (insert_events ran with its rights): it keeps
-- writing. Its table privileges stay as they are; taking them away is the operator's decision.
FOR grantee IN SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
                 FROM pg_catalog.pg_class c
                 CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
                 LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                WHERE c.oid = 'public.events'::regclass AND a.privilege_type = 'INSERT'
                  AND a.grantee <> c.relowner
LOOP
EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION public.insert_events(text), public.append_events(jsonb[], integer[]) TO %s', grantee);
END LOOP;
END;
$$;
