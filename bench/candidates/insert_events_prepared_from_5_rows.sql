-- A candidate insert_events measured for issue 12 and set aside (see BENCHMARKS.md, 2026-12-01,
-- "prepared before the lock from 5 rows"). Not a migration. To measure it again: copy it to
-- migrations/source/V11__candidate.sql (uncommitted) and run
-- bench/write.sh --batches "10 100" --variants "floor v11 v10 v8".
-- V10's function with one change: from 5 to 100 rows the INSERT is PREPAREd (parsed, its JSON
-- read) before the id row lock, then EXECUTEd with a custom plan after it, RETURNING 1 for the
-- row count; up to 4 rows and above 100 as in V10.
CREATE OR REPLACE FUNCTION insert_events(insertValues text)
RETURNS integer AS $$
DECLARE
idxs bigint[];
pieces text[];
lastIdx bigint;
idx bigint;
k integer;
countRows bigint;
rowsInserted bigint;
maxIndex bigint;
tsCount bigint;
wellFormed boolean;
statement text;
prepared text;
planCacheMode text;
BEGIN
-- Well formed: every "$1[" is followed by the next index, 1, 2, 3, ..., and "]", and there are
-- as many "$2," as rows. Exactly then the original's checks pass.
pieces := string_to_array(insertValues, '$1[');
countRows := coalesce(array_length(pieces, 1), 1) - 1;
tsCount := coalesce(array_length(string_to_array(insertValues, '$2,'), 1), 1) - 1;
wellFormed := coalesce(countRows >= 1 AND countRows = tsCount, false);
IF wellFormed AND countRows <= 8 THEN
FOR k IN 2 .. countRows + 1 LOOP
IF split_part(pieces[k], ']', 1) <> (k - 1)::text OR strpos(pieces[k], ']') = 0 THEN
wellFormed := false;
EXIT;
END IF;
END LOOP;
ELSIF wellFormed THEN
-- One statement instead of a loop: the executor checks the pieces far faster than PL/pgSQL.
SELECT coalesce(bool_and(strpos(p, ']') > 0 AND split_part(p, ']', 1) = i::text), false)
INTO wellFormed
FROM unnest(pieces[2:countRows + 1]) WITH ORDINALITY AS t(p, i);
END IF;
IF NOT wellFormed THEN
-- The original's checks, regular expressions and errors, unchanged.
SELECT ARRAY(SELECT unnest(regexp_matches(insertValues, '\$1\[([0-9]+)\]', 'g'))) INTO idxs;
SELECT count(*) FROM regexp_matches(insertValues, '(\$2),', 'g') INTO tsCount;
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
END IF;
IF countRows > 100000 THEN
RAISE EXCEPTION 'insert_events: % rows in one call exceed the limit of 100000 rows', countRows
USING HINT = 'Split the batch into calls of at most 100000 rows (each call is one transaction''s worth of ids)';
END IF;
IF countRows <= 4 THEN
UPDATE id SET id = id + countRows RETURNING id - countRows INTO lastIdx;
EXECUTE 'INSERT INTO events (id, ts, event) VALUES ' || insertValues
USING ARRAY(SELECT generate_series(lastIdx, lastIdx + countRows - 1)), transaction_timestamp();
GET DIAGNOSTICS rowsInserted = ROW_COUNT;
ELSIF countRows <= 100 THEN
prepared := '_slate_insert_events_' || pg_backend_pid() || '_' || floor(random() * 1e12)::bigint;
BEGIN
EXECUTE 'PREPARE ' || quote_ident(prepared) || '(bigint[], timestamp with time zone) AS INSERT INTO events (id, ts, event) VALUES '
|| CASE WHEN get_byte(textsend(insertValues), octet_length(insertValues) - 1) IN (9, 10, 13, 32, 59) THEN rtrim(insertValues, E'; \t\r\n') ELSE insertValues END
|| E'\nRETURNING 1';
UPDATE id SET id = id + countRows RETURNING id - countRows INTO lastIdx;
EXECUTE format('EXECUTE %I(%L::bigint[], transaction_timestamp())', prepared,
ARRAY(SELECT generate_series(lastIdx, lastIdx + countRows - 1)));
GET DIAGNOSTICS rowsInserted = ROW_COUNT;
EXCEPTION WHEN OTHERS OR query_canceled THEN
IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = prepared) THEN
EXECUTE 'DEALLOCATE ' || quote_ident(prepared);
END IF;
RAISE;
END;
EXECUTE 'DEALLOCATE ' || quote_ident(prepared);
ELSE
-- Above 100 rows: $1[x] is the row number x; the UPDATE in the CTE takes the ids (and the row
-- lock) when the statement runs, after it was parsed and planned. The first VALUES row only gives the columns
-- their types (OFFSET 1 leaves it out; a row whose $1[x] is NULL still fails as the original's).
-- A trailing semicolon, which the original's EXECUTE accepted, would end the subquery: it goes.
-- No ORDER BY: each row's id comes from its own $1[x], and the NOTIFY trigger (V8) announces the
-- rows in id order; sorting would cost more than the whole INSERT.
statement := 'WITH next AS (UPDATE id SET id = id + $3 RETURNING id - $3 AS start), '
|| 'inserted AS (INSERT INTO events (id, ts, event) '
|| 'SELECT next.start + v.i - 1, v.ts, v.e FROM next, (SELECT * FROM (VALUES (NULL::bigint, NULL::timestamp with time zone, NULL::jsonb), '
|| rtrim(insertValues, E'; \t\r\n')
|| E'\n) AS typed(i, ts, e) OFFSET 1) AS v RETURNING 1) SELECT count(*) FROM inserted';
-- A generic plan keeps $1 one parameter: a custom plan would copy it into every $1[x].
prepared := '_slate_insert_events_' || pg_backend_pid() || '_' || floor(random() * 1e12)::bigint;
planCacheMode := current_setting('plan_cache_mode');
-- PREPARE is not transactional: whatever ends the call (an error, or a cancellation, which
-- WHEN OTHERS does not catch) must not leave the statement and its plan in the session.
BEGIN
EXECUTE 'PREPARE ' || quote_ident(prepared) || '(bigint[], timestamp with time zone, bigint) AS ' || statement;
PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
EXECUTE format('EXECUTE %I(%L::bigint[], transaction_timestamp(), %s)', prepared,
ARRAY(SELECT generate_series(1, countRows)), countRows) INTO rowsInserted;
EXCEPTION WHEN OTHERS OR query_canceled THEN
IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = prepared) THEN
EXECUTE 'DEALLOCATE ' || quote_ident(prepared);
END IF;
RAISE;
END;
EXECUTE 'DEALLOCATE ' || quote_ident(prepared);
PERFORM set_config('plan_cache_mode', planCacheMode, true);
END IF;
IF rowsInserted <> countRows THEN
RAISE EXCEPTION 'insert_events: % rows were inserted but the text names % rows; nothing was inserted and no id was taken', rowsInserted, countRows
USING HINT = 'A "$1[" or "$2," inside an event''s text counts as a row parameter: escape it in the JSON (for example "\u0024" for "$")';
END IF;
RETURN rowsInserted;
END;
$$ LANGUAGE plpgsql;
