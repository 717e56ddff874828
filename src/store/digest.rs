//! The digest that proves two events tables hold the same rows: per chunk of ids, a combination
//! of one hash per row, computed by each server over its own rows; chunks that differ are
//! narrowed down to the first differing id. Used by `restore`.

use tokio_postgres::Transaction;

use crate::error::Error;
use crate::pg::PgFailure;

/// Rows per digest chunk: the digest is compared chunk by chunk, then row by row inside the
/// first chunk that differs, to name the first differing id.
const DIGEST_CHUNK: i64 = 10_000;

/// A 64-bit hash of each row from PostgreSQL's own hash functions for the three column types
/// (stable across servers and versions: hash partitioning relies on them), combined per chunk
/// with XOR. Each side computes it the same way over its own rows; ids are unique, so no two
/// rows cancel out.
const DIGEST_QUERY: &str = "SELECT id / 10000, count(*), \
     bit_xor(hashint8extended(id, 0) # hashint8extended((extract(epoch FROM ts) * 1000000)::bigint, 1) # jsonb_hash_extended(event, 2)) \
     FROM events GROUP BY 1 ORDER BY 1";
const ROW_DIGEST_QUERY: &str = "SELECT id, \
     hashint8extended(id, 0) # hashint8extended((extract(epoch FROM ts) * 1000000)::bigint, 1) # jsonb_hash_extended(event, 2) \
     FROM events WHERE id / 10000 = $1 ORDER BY id";

/// Per chunk of ids: (chunk number, rows, XOR of the row hashes).
pub type Digest = Vec<(i64, i64, i64)>;

/// The digest of every chunk of the events table `tx` sees.
pub async fn digest_chunks(tx: &Transaction<'_>, side: &str) -> Result<Digest, Error> {
    let rows = tx
        .query(DIGEST_QUERY, &[])
        .await
        .map_err(|e| query_error(&format!("computing the digest of {side}"), e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
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
    let (theirs, ours) = tokio::join!(
        backup.query(ROW_DIGEST_QUERY, &params),
        target.query(ROW_DIGEST_QUERY, &params)
    );
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
