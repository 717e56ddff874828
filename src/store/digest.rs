//! The digest that proves two events tables hold the same rows: per chunk of ids, a combination
//! of one hash per row, computed by each server over its own rows; chunks that differ are
//! narrowed down to the first differing id. Used by `restore`.

use tokio_postgres::Transaction;

use crate::error::Error;
use crate::pg::PgFailure;

/// Rows per digest chunk: the digest is compared chunk by chunk, then row by row inside the
/// first chunk that differs, to name the first differing id.
const DIGEST_CHUNK: i64 = 10_000;

/// The hash of one row binds its id, ts and event together: PostgreSQL's own 64-bit hash
/// functions for the three column types (the ones hash partitioning relies on, stable across
/// versions), each seeded with the hash of the next column, so no column's hash can be moved to
/// another row. `ts AT TIME ZONE 'UTC'` is the same microseconds whatever the session's time
/// zone. Available from PostgreSQL 11 on.
const ROW_HASH: &str = "hashint8extended(id, timestamp_hash_extended(ts AT TIME ZONE 'UTC', jsonb_hash_extended(event, 0)))";

/// Per chunk of 10,000 ids: the row count and a hash of the row hashes in id order (an
/// order-sensitive combination: `string_agg ... ORDER BY id`, then `hashtextextended`). XOR,
/// which `bit_xor` gave before, is blind to swaps and does not exist on PostgreSQL 13.
fn digest_query() -> String {
    format!(
        "SELECT id / {DIGEST_CHUNK}, count(*), max(id), \
                hashtextextended(string_agg(({ROW_HASH})::text, ',' ORDER BY id), 0) \
           FROM public.events GROUP BY 1 ORDER BY 1"
    )
}

/// The row hashes of one chunk, in id order.
fn row_digest_query() -> String {
    format!("SELECT id, {ROW_HASH} FROM public.events WHERE id / {DIGEST_CHUNK} = $1 ORDER BY id")
}

/// Per chunk of ids: (chunk number, rows, highest id, hash of the ordered row hashes).
pub type Digest = Vec<(i64, i64, i64, i64)>;

/// Rows and highest id over all chunks (0 and 0 for an empty table).
pub fn totals(digest: &Digest) -> (i64, i64) {
    let rows = digest.iter().map(|c| c.1).sum();
    let max_id = digest.iter().map(|c| c.2).max().unwrap_or(0);
    (rows, max_id)
}

/// The digest of every chunk of the events table `tx` sees.
pub async fn digest_chunks(tx: &Transaction<'_>, side: &str) -> Result<Digest, Error> {
    let rows = tx
        .query(&digest_query(), &[])
        .await
        .map_err(|e| query_error(&format!("computing the digest of {side}"), e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Compares the digests chunk by chunk, then row by row in the first chunk that differs.
/// `None` when everything matches.
pub async fn first_difference(
    backup: &Transaction<'_>,
    target: &Transaction<'_>,
    theirs: &Digest,
    ours: &Digest,
) -> Result<Option<i64>, Error> {
    let Some(index) = (0..theirs.len().max(ours.len())).find(|&i| theirs.get(i) != ours.get(i))
    else {
        return Ok(None);
    };
    let number = theirs
        .get(index)
        .or(ours.get(index))
        .map(|c| c.0)
        .expect("one side has it");
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&number];
    let query = row_digest_query();
    let (theirs, ours) = tokio::join!(backup.query(&query, &params), target.query(&query, &params));
    let row = |r: &tokio_postgres::Row| (r.get::<_, i64>(0), r.get::<_, i64>(1));
    let theirs: Vec<_> = theirs
        .map_err(|e| query_error("digesting the backup's rows", e))?
        .iter()
        .map(row)
        .collect();
    let ours: Vec<_> = ours
        .map_err(|e| query_error("digesting the target's rows", e))?
        .iter()
        .map(row)
        .collect();
    let first = (0..theirs.len().max(ours.len()))
        .find(|&i| theirs.get(i) != ours.get(i))
        .map(|i| {
            theirs
                .get(i)
                .or(ours.get(i))
                .map(|r| r.0)
                .expect("one side has it")
        });
    Ok(Some(first.unwrap_or(number * DIGEST_CHUNK)))
}

fn query_error(step: &str, error: tokio_postgres::Error) -> Error {
    Error::Query {
        step: step.into(),
        failure: PgFailure::from(&error),
    }
}
