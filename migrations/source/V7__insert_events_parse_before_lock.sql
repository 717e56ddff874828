-- insert_events, faster under contention without changing its contract: the same signature,
-- argument text, checks, error messages and hints, consecutive gapless ids, one timestamp per
-- call, and the id lock held until the caller commits.
--
-- The original took an ACCESS EXCLUSIVE lock on `id` first and then scanned the whole VALUES
-- text with two regular expressions while every other writer waited. Here the text is scanned
-- and checked first; the serialized section starts at `UPDATE id ... RETURNING`, whose row lock
-- serializes writers just as well and is held until commit.
CREATE OR REPLACE FUNCTION insert_events(insertValues text)
RETURNS integer AS $$
DECLARE
ts timestamp with time zone;
startId bigint;
nextStartId bigint;
idxs bigint[];
ids bigint[];
lastIdx bigint;
idx bigint;
rowsInserted bigint;
countRows bigint;
maxIndex bigint;
tsCount bigint;
BEGIN
-- insertValues is the text that follows VALUES in "INSERT INTO events (id, ts, event) VALUES ",
-- with $1[x] (x = 1, 2, 3, ...) for each row's id and $2 for the timestamp.
SELECT ARRAY(SELECT m[1]::bigint FROM regexp_matches(insertValues, '\$1\[([0-9]+)\]', 'g') AS m) INTO idxs;
SELECT count(*) FROM regexp_matches(insertValues, '(\$2),', 'g') INTO tsCount;
countRows := coalesce(array_length(idxs, 1), 0);
lastIdx := 0;
FOREACH idx IN ARRAY idxs
LOOP
IF lastIdx = 0 THEN
lastIdx := idx;
ELSIF idx = lastIdx + 1 THEN
lastIdx := idx;
maxIndex := idx;
ELSE
RAISE EXCEPTION 'Parameter index is not consecutive at ------> %, previous index ------> %', idx, lastIdx
USING HINT = 'Parameter for id column of the form "$1[x]" where x is the 1-based index for the row to be inserted is not greater than the previous row''s index';
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
-- The serialized section: this row lock is held until the caller commits.
UPDATE id SET id = id + countRows RETURNING id INTO nextStartId;
startId := nextStartId - countRows;
ts := transaction_timestamp();
ids := ARRAY(SELECT generate_series(startId, nextStartId - 1));
EXECUTE 'INSERT INTO events (id, ts, event) VALUES ' || insertValues USING ids, ts;
GET DIAGNOSTICS rowsInserted = ROW_COUNT;
RETURN rowsInserted;
END;
$$ LANGUAGE plpgsql;
