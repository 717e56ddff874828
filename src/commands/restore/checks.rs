//! restore's checks before anything is created: the backup is a complete slate events table,
//! and an `--into-existing` target is a freshly initialized source.

use serde::Serialize;
use tokio_postgres::{Client, Transaction};

use crate::error::Error;
use crate::store::audit::{self, Verdict};
use crate::store::digest;
use crate::store::layout::Layout;

/// The backup's events table, as checked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BackupFacts {
    pub rows: i64,
    pub max_id: i64,
    /// The events table's size on disk (heap and TOAST), bytes.
    pub table_bytes: i64,
}

/// The backup must have the slate events table with ids 1..count (the spec's rule: max(id)
/// equals count(*)) and at least one event.
pub async fn check_backup(backup: &Transaction<'_>, label: &str) -> Result<BackupFacts, Error> {
    let refuse = |reason: String| Error::BadBackup {
        backup: label.to_string(),
        reason,
    };
    backup
        .batch_execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'")
        .await
        .map_err(|e| Error::query("setting up the backup session", &e))?;
    let columns = digest::events_columns(backup)
        .await
        .map_err(|e| Error::query("reading the backup's events table", &e))?;
    let expected = digest::EVENTS_COLUMNS;
    if columns.is_empty() {
        return Err(refuse("it has no events table".into()));
    }
    if columns != expected {
        return Err(refuse(format!(
            "its events table has columns ({}), not ({})",
            columns.join(", "),
            expected.join(", ")
        )));
    }
    // One scan: the count, the id range, rows a later step could not take (NULLs, which the
    // target refuses, and infinite timestamps, which the digest cannot hash).
    let row = backup
        .query_one(
            "SELECT count(*), COALESCE(max(id), 0), COALESCE(min(id), 0), pg_table_size('public.events'),
                    count(*) FILTER (WHERE id IS NULL OR ts IS NULL OR event IS NULL),
                    count(*) FILTER (WHERE NOT isfinite(ts))
               FROM public.events",
            &[],
        )
        .await
        .map_err(|e| Error::query("counting the backup's events", &e))?;
    let (rows, max_id, min_id, table_bytes, nulls, infinite): (i64, i64, i64, i64, i64, i64) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    if rows == 0 {
        return Err(refuse("its events table is empty".into()));
    }
    if nulls > 0 {
        return Err(refuse(format!(
            "{nulls} of its events have a NULL id, ts or event"
        )));
    }
    if infinite > 0 {
        return Err(refuse(format!(
            "{infinite} of its events have an infinite timestamp (ts = 'infinity' or '-infinity'), which no source event can have"
        )));
    }
    if max_id != rows || min_id != 1 {
        return Err(refuse(format!(
            "its ids are not 1..count without gaps: {rows} rows, ids {min_id}..{max_id} (the replica is incomplete or was written to)"
        )));
    }
    // count = max and min = 1 prove 1..count only if ids are unique: a unique index on id
    // says so; without one, count them.
    let unique_index: bool = backup
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attname = 'id'
                             WHERE i.indrelid = 'public.events'::regclass AND i.indisunique AND i.indisvalid
                               AND i.indpred IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum)",
            &[],
        )
        .await
        .map_err(|e| Error::query("looking for the backup's unique index on id", &e))?
        .get(0);
    if !unique_index {
        let distinct: i64 = backup
            .query_one("SELECT count(DISTINCT id) FROM public.events", &[])
            .await
            .map_err(|e| Error::query("counting the backup's distinct ids", &e))?
            .get(0);
        if distinct != rows {
            return Err(refuse(format!(
                "its ids are not unique: {rows} rows but {distinct} distinct ids (no primary key on id)"
            )));
        }
    }
    Ok(BackupFacts {
        rows,
        max_id,
        table_bytes,
    })
}

/// `--into-existing`: a verified, up-to-date source with no events and id = 1, as
/// restore_events demands.
pub async fn check_fresh_target(client: &Client, name: &str) -> Result<(), Error> {
    let audit = audit::audit(client, name, Some(Layout::Source)).await?;
    let refuse = |reason: String| Error::TargetNotFresh {
        database: name.to_string(),
        reason,
    };
    if audit.layout != Some(Layout::Source) {
        return Err(refuse("is not a source event store".into()));
    }
    if audit.layout_verdict != Verdict::UpToDate {
        return Err(refuse(format!(
            "is not a verified, up-to-date source (status verdict: {})",
            crate::output::name_of(&audit.layout_verdict)
        )));
    }
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT id FROM id)",
            &[],
        )
        .await
        .map_err(|e| Error::query("checking that the target is empty", &e))?;
    let (events, next): (i64, i64) = (row.get(0), row.get(1));
    if events != 0 || next != 1 {
        return Err(refuse(format!(
            "is not freshly initialized ({events} events, id table at {next}; it must be 0 and 1)"
        )));
    }
    Ok(())
}
