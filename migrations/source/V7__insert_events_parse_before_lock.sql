-- insert_events, faster without changing its contract: the same signature, argument text,
-- checks, error messages and hints, consecutive gapless ids, one timestamp per call, and the id
-- lock held until the caller commits.
--
-- The original took an ACCESS EXCLUSIVE lock on `id` first, then scanned the whole VALUES text
-- with two regular expressions and had the server parse the INSERT (every event's JSON
-- included) while every other writer waited. Here:
-- * the text is checked first, outside the lock, and without regular expressions when it is
--   well formed (a split on "$1[" and "$2,"); anything else goes through the original's checks
--   so that it fails with exactly the original's errors;
-- * for more than a few rows the INSERT is prepared (parsed and analyzed) before the lock too;
-- * the serialized section starts at `UPDATE id ... RETURNING`, whose row lock serializes
--   writers just as the table lock did and is held until commit.
CREATE OR REPLACE FUNCTION insert_events(insertValues text)
RETURNS integer AS $$
DECLARE
startId bigint;
nextStartId bigint;
idxs bigint[];
ids bigint[];
pieces text[];
lastIdx bigint;
idx bigint;
k integer;
countRows bigint;
rowsInserted bigint;
maxIndex bigint;
tsCount bigint;
wellFormed boolean;
BEGIN
-- insertValues is the text that follows VALUES in "INSERT INTO events (id, ts, event) VALUES ",
-- with $1[x] (x = 1, 2, 3, ...) for each row's id and $2 for the timestamp.
-- Well formed: every "$1[" is followed by the next index, 1, 2, 3, ..., and "]", and there are
-- as many "$2," as rows. Exactly then the original's checks pass.
pieces := string_to_array(insertValues, '$1[');
countRows := coalesce(array_length(pieces, 1), 1) - 1;
tsCount := coalesce(array_length(string_to_array(insertValues, '$2,'), 1), 1) - 1;
wellFormed := coalesce(countRows >= 1 AND countRows = tsCount, false);
IF wellFormed THEN
FOR k IN 2 .. countRows + 1 LOOP
IF strpos(pieces[k], ']') = 0 OR split_part(pieces[k], ']', 1) <> (k - 1)::text THEN
wellFormed := false;
EXIT;
END IF;
END LOOP;
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
IF countRows <= 4 THEN
-- A few rows parse in no time: one dynamic INSERT after the lock, as the original did.
UPDATE id SET id = id + countRows RETURNING id INTO nextStartId;
startId := nextStartId - countRows;
EXECUTE 'INSERT INTO events (id, ts, event) VALUES ' || insertValues
USING ARRAY(SELECT generate_series(startId, nextStartId - 1)), transaction_timestamp();
GET DIAGNOSTICS rowsInserted = ROW_COUNT;
RETURN rowsInserted;
END IF;
-- More rows: parse and analyze the INSERT (every event's JSON included) before the lock. A
-- statement left prepared by a call that failed half-way goes first (PREPARE is not
-- transactional).
IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = 'slate_insert_events') THEN
EXECUTE 'DEALLOCATE slate_insert_events';
END IF;
EXECUTE 'PREPARE slate_insert_events(bigint[], timestamp with time zone) AS INSERT INTO events (id, ts, event) VALUES ' || insertValues;
-- The serialized section: this row lock is held until the caller commits.
UPDATE id SET id = id + countRows RETURNING id INTO nextStartId;
startId := nextStartId - countRows;
-- SQL EXECUTE takes no bind parameters: the ids go in as an array literal, and the timestamp
-- is the transaction's, as before.
ids := ARRAY(SELECT generate_series(startId, nextStartId - 1));
EXECUTE format('EXECUTE slate_insert_events(%L::bigint[], transaction_timestamp())', ids);
EXECUTE 'DEALLOCATE slate_insert_events';
-- SQL EXECUTE reports no row count to PL/pgSQL. Every row carries one $1[n] (checked above),
-- so the INSERT inserted countRows rows.
RETURN countRows;
END;
$$ LANGUAGE plpgsql;
