-- insert_events at the speed of its contract: the same signature, argument text ($1[x] for each
-- row, $2 for the timestamp), checks and errors as V9 (the original's three, the 100,000-row
-- limit, rows inserted = ids taken), consecutive gapless ids, one timestamp per call, the id
-- row lock held until the caller commits, and the notifications. V9 stays as it landed.
--
-- What changes, and why (measured in BENCHMARKS.md):
-- * No PREPARE, EXECUTE, DEALLOCATE, set_config or exception block: above 100 rows V9 ran five
--   utility statements, a subtransaction and a generic plan per call. Now one EXECUTE runs one
--   statement whose id UPDATE is a CTE: it is parsed and planned before the row lock is taken.
-- * No ids array at all in that statement, so nothing is copied per row: each "$1[" of a well
--   formed text becomes "ARRAY[", so that "$1[x]" reads as the one-element array {x}, x the row
--   number, and the id is the counter's value before the call plus x. Memory stays in proportion
--   to the text. (A text that only the original's regular-expression checks accept has its
--   markers rewritten by that expression instead.) Measured against a reference to a row-number
--   array of the CTE (LATERAL VALUES), this is the cheaper plan.
-- * Up to 100 rows, when no other writer holds the id row (SKIP LOCKED finds it free), the
--   original's plain INSERT after the lock is the cheapest to plan; nobody waits on its parsing.
--   When another writer holds it, the one-statement form parses first and then waits.
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
valuesText text;
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
IF countRows <= 100 THEN
-- A text that only the original's checks accept runs as the original ran it.
IF wellFormed THEN
PERFORM 1 FROM id FOR UPDATE SKIP LOCKED;
END IF;
IF FOUND OR NOT wellFormed THEN
UPDATE id SET id = id + countRows RETURNING id - countRows INTO lastIdx;
EXECUTE 'INSERT INTO events (id, ts, event) VALUES ' || insertValues
USING ARRAY(SELECT generate_series(lastIdx, lastIdx + countRows - 1)), transaction_timestamp();
GET DIAGNOSTICS rowsInserted = ROW_COUNT;
END IF;
END IF;
IF rowsInserted IS NULL THEN
-- The VALUES go inside the statement: a trailing semicolon, which the original's EXECUTE
-- accepted, would end it (it goes), and a trailing "--" comment ends at the newline added.
IF wellFormed THEN
valuesText := rtrim(pieces[countRows + 1], E'; \t\r\n');
IF valuesText <> pieces[countRows + 1] THEN
pieces[countRows + 1] := valuesText;
END IF;
valuesText := array_to_string(pieces, 'ARRAY[');
ELSE
valuesText := rtrim(regexp_replace(insertValues, '\$1\[([0-9]+)\]', 'ARRAY[\1]', 'g'), E'; \t\r\n');
END IF;
-- $1 the row count, $2 the timestamp. The events' text is turned into jsonb by the cast.
EXECUTE 'WITH slate_next AS (UPDATE id SET id = id + $1 RETURNING id - $1 - 1 AS before) '
|| 'INSERT INTO events (id, ts, event) SELECT slate_next.before + v.i[1], v.ts, v.e::jsonb '
|| 'FROM slate_next, (VALUES ' || valuesText || E'\n) AS v(i, ts, e)'
USING countRows, transaction_timestamp();
GET DIAGNOSTICS rowsInserted = ROW_COUNT;
END IF;
IF rowsInserted <> countRows THEN
RAISE EXCEPTION 'insert_events: % rows were inserted but the text names % rows; nothing was inserted and no id was taken', rowsInserted, countRows
USING HINT = 'A "$1[" or "$2," inside an event''s text counts as a row parameter: escape it in the JSON (for example "\u0024" for "$")';
END IF;
RETURN rowsInserted;
END;
$$ LANGUAGE plpgsql;
