//! The digest that proves two events tables hold the same rows: per chunk of ids, a combination
//! of one hash per row, computed by each server over its own rows; chunks that differ are
//! narrowed down to the first differing id. One implementation for `restore` and `verify`.

use tokio_postgres::Transaction;

use crate::error::Error;

/// Rows per digest chunk: the digest is compared chunk by chunk, then row by row inside the
/// first chunk that differs, to name the first differing id.
const DIGEST_CHUNK: i64 = 10_000;

/// How precisely `verify` compares timestamps (`--ts-precision`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    strum::Display,
    strum::EnumString,
    strum::VariantNames,
)]
#[strum(serialize_all = "lowercase")]
pub enum TsPrecision {
    /// To the microsecond.
    #[default]
    Exact,
    /// Truncated to milliseconds, as the elm-slate replicator keeps them.
    Ms,
}

/// The 64-bit hash of an event between two databases of the same encoding: PostgreSQL's own
/// `jsonb_hash_extended`, over the bytes jsonb stores. NULL hashes to 0.
const EVENT_HASH_NATIVE: &str = "COALESCE(jsonb_hash_extended(event, 0), 0)";

/// The same between databases of different encodings (UTF8 and LATIN1): the first 16 hex
/// digits of the MD5 of the event's text in UTF-8, the same whatever the encoding (jsonb's text
/// form is canonical). About twice the digest's cost (BENCHMARKS.md), so only where needed.
const EVENT_HASH_PORTABLE: &str =
    "COALESCE(('x' || left(md5(convert_to(event::text, 'UTF8')), 16))::bit(64)::bigint, 0)";

/// The database's encoding (`server_encoding`), to choose the event hash both sides share.
pub async fn encoding(tx: &Transaction<'_>) -> Result<String, tokio_postgres::Error> {
    Ok(tx
        .query_one("SELECT pg_catalog.current_setting('server_encoding')", &[])
        .await?
        .get(0))
}

/// The columns of `events` the digest (and restore's copy) read, as `name type`.
pub const EVENTS_COLUMNS: [&str; 3] = ["id bigint", "ts timestamp with time zone", "event jsonb"];

/// The columns of `public.events` as `name type`, in order (none without the table).
pub async fn events_columns(tx: &Transaction<'_>) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "SELECT a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = to_regclass('public.events') AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// What a digest covers: the ids up to `up_to` (all of them for `None`), timestamps exact or
/// truncated to milliseconds (the elm-slate replicator keeps milliseconds only), and whether
/// events are hashed by their UTF-8 text (`portable`: the two sides' encodings differ).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    pub up_to: Option<i64>,
    pub ts_millis: bool,
    pub portable: bool,
}

impl Scope {
    /// Every row, exact: what restore verifies.
    pub const ALL: Scope = Scope {
        up_to: None,
        ts_millis: false,
        portable: false,
    };

    /// This scope, with the event hash both encodings give alike.
    pub fn for_encodings(self, one: &str, other: &str) -> Scope {
        Scope {
            portable: one != other,
            ..self
        }
    }

    fn event_hash(&self) -> &'static str {
        if self.portable {
            EVENT_HASH_PORTABLE
        } else {
            EVENT_HASH_NATIVE
        }
    }

    fn ts(&self) -> &'static str {
        if self.ts_millis {
            "date_trunc('milliseconds', ts AT TIME ZONE 'UTC')"
        } else {
            "(ts AT TIME ZONE 'UTC')"
        }
    }

    fn bound(&self) -> String {
        self.up_to
            .map(|id| format!(" AND id <= {id}"))
            .unwrap_or_default()
    }

    /// The hash of one row binds its id, ts and event together, each hash seeded with the
    /// hash of the next column, so no column's hash can be moved to another row. `ts AT TIME
    /// ZONE 'UTC'` is the same microseconds whatever the session's time zone. A NULL (a copy
    /// without NOT NULL) hashes to a value of its own instead of making the row vanish.
    fn row_hash(&self) -> String {
        format!(
            "hashint8extended(id, COALESCE(timestamp_hash_extended({ts}, {event}), {event} # 7))",
            ts = self.ts(),
            event = self.event_hash()
        )
    }

    /// Per chunk of 10,000 ids: the row count, the highest id and a hash of the row hashes in
    /// id order (an order-sensitive combination: `string_agg ... ORDER BY id`, then
    /// `hashtextextended`). XOR, which `bit_xor` gave before, is blind to swaps and does not
    /// exist on PostgreSQL 13.
    fn digest_query(&self) -> String {
        format!(
            "SELECT id / {DIGEST_CHUNK}, count(*), max(id), \
                    hashtextextended(string_agg(({})::text, ',' ORDER BY id), 0) \
               FROM public.events WHERE id IS NOT NULL{} GROUP BY 1 ORDER BY 1",
            self.row_hash(),
            self.bound()
        )
    }

    /// One chunk's rows in id order: the row hash, then the hashes of ts and event alone (to
    /// say which differs).
    fn rows_query(&self) -> String {
        format!(
            "SELECT id, {}, COALESCE(timestamp_hash_extended({}, 0), 7), {} \
               FROM public.events WHERE id / {DIGEST_CHUNK} = $1{} ORDER BY id",
            self.row_hash(),
            self.ts(),
            self.event_hash(),
            self.bound()
        )
    }
}

/// Per chunk of ids: (chunk number, rows, highest id, hash of the ordered row hashes).
pub type Digest = Vec<(i64, i64, i64, i64)>;

/// Rows and highest id over all chunks (0 and 0 for an empty table).
pub fn totals(digest: &Digest) -> (i64, i64) {
    let rows = digest.iter().map(|c| c.1).sum();
    let max_id = digest.iter().map(|c| c.2).max().unwrap_or(0);
    (rows, max_id)
}

/// The digest of every chunk of the events table `tx` sees, within `scope`.
pub async fn digest_chunks(
    tx: &Transaction<'_>,
    scope: Scope,
    side: &str,
) -> Result<Digest, Error> {
    let rows = tx
        .query(&scope.digest_query(), &[])
        .await
        .map_err(|e| Error::query(format!("computing the digest of {side}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// One row of a chunk, as both sides describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowHashes {
    pub id: i64,
    pub row: i64,
    pub ts: i64,
    pub event: i64,
}

/// The rows of chunk `number`, in id order.
pub async fn chunk_rows(
    tx: &Transaction<'_>,
    scope: Scope,
    number: i64,
    side: &str,
) -> Result<Vec<RowHashes>, Error> {
    let rows = tx
        .query(&scope.rows_query(), &[&number])
        .await
        .map_err(|e| Error::query(format!("digesting the rows of {side}"), &e))?;
    Ok(rows
        .iter()
        .map(|r| RowHashes {
            id: r.get(0),
            row: r.get(1),
            ts: r.get(2),
            event: r.get(3),
        })
        .collect())
}

/// How one id differs between a reference and a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowDifference {
    /// The reference has it, the copy does not.
    MissingInCopy,
    /// The copy has it, the reference does not.
    MissingInReference,
    /// Both have it with another timestamp.
    Ts,
    /// Both have it with another event.
    Event,
    /// Both have it with another timestamp and another event.
    TsAndEvent,
}

/// The differing ids of one chunk, in id order.
pub fn compare_rows(reference: &[RowHashes], copy: &[RowHashes]) -> Vec<(i64, RowDifference)> {
    let (mut a, mut b) = (0, 0);
    let mut differences = Vec::new();
    while a < reference.len() || b < copy.len() {
        match (reference.get(a), copy.get(b)) {
            (Some(r), Some(c)) if r.id == c.id => {
                if r.row != c.row {
                    let kind = match (r.ts != c.ts, r.event != c.event) {
                        (true, true) => RowDifference::TsAndEvent,
                        (true, false) => RowDifference::Ts,
                        _ => RowDifference::Event,
                    };
                    differences.push((r.id, kind));
                }
                a += 1;
                b += 1;
            }
            (Some(r), Some(c)) if r.id < c.id => {
                differences.push((r.id, RowDifference::MissingInCopy));
                a += 1;
            }
            (Some(_), Some(c)) => {
                differences.push((c.id, RowDifference::MissingInReference));
                b += 1;
            }
            (Some(r), None) => {
                differences.push((r.id, RowDifference::MissingInCopy));
                a += 1;
            }
            (None, Some(c)) => {
                differences.push((c.id, RowDifference::MissingInReference));
                b += 1;
            }
            (None, None) => break,
        }
    }
    differences
}

/// The chunk numbers whose digests differ (or that one side lacks), in order.
pub fn differing_chunks(reference: &Digest, copy: &Digest) -> Vec<i64> {
    let mut numbers: Vec<i64> = reference.iter().chain(copy).map(|c| c.0).collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
        .into_iter()
        .filter(|n| reference.iter().find(|c| c.0 == *n) != copy.iter().find(|c| c.0 == *n))
        .collect()
}

/// The first id at which `target` differs from `backup` within `scope` (restore's check, and
/// replicate's prefix check), `None` when everything matches.
pub async fn first_difference(
    backup: &Transaction<'_>,
    target: &Transaction<'_>,
    scope: Scope,
    theirs: &Digest,
    ours: &Digest,
) -> Result<Option<i64>, Error> {
    let Some(&number) = differing_chunks(theirs, ours).first() else {
        return Ok(None);
    };
    let (theirs, ours) = tokio::join!(
        chunk_rows(backup, scope, number, "the backup"),
        chunk_rows(target, scope, number, "the target")
    );
    let first = compare_rows(&theirs?, &ours?).first().map(|d| d.0);
    Ok(Some(first.unwrap_or(number * DIGEST_CHUNK)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, ts: i64, event: i64) -> RowHashes {
        RowHashes {
            id,
            row: id * 1000 + ts * 10 + event,
            ts,
            event,
        }
    }

    #[test]
    fn row_comparison_names_each_kind_of_difference_in_id_order() {
        let reference = [
            row(1, 1, 1),
            row(2, 1, 1),
            row(3, 1, 1),
            row(5, 1, 1),
            row(6, 1, 1),
        ];
        let copy = [
            row(1, 1, 1),
            row(2, 2, 1),
            row(3, 1, 2),
            row(4, 1, 1),
            row(6, 2, 2),
        ];
        assert_eq!(
            compare_rows(&reference, &copy),
            vec![
                (2, RowDifference::Ts),
                (3, RowDifference::Event),
                (4, RowDifference::MissingInReference),
                (5, RowDifference::MissingInCopy),
                (6, RowDifference::TsAndEvent),
            ]
        );
    }
}
