//! restore's copy: stream the backup's rows into the target in one transaction, rebuild the
//! secondary indexes, verify against the backup, set the id counter and commit.

use std::time::Instant;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::{Client, Transaction};
use tracing::{info, info_span, Instrument};

use crate::error::Error;
use crate::hooks;
use crate::identifier::Identifier;
use crate::store::digest::{digest_chunks, encoding, first_difference, totals, Scope};

use super::checks::BackupFacts;
use super::progress::Progress;

/// Above this many rows, secondary indexes are rebuilt after the copy instead of maintained.
const REBUILD_INDEXES_ABOVE: i64 = 10_000;

/// Bytes of COPY data forwarded at once.
const COPY_BLOCK: usize = 256 * 1024;

/// What the copy did.
pub struct Copied {
    pub rows: i64,
    pub next_insert_id: i64,
    pub bytes: u64,
}

/// Streams the backup's events into the target in one transaction, verifies, and commits.
pub async fn copy_and_verify(
    backup: &Transaction<'_>,
    target: &mut Client,
    facts: &BackupFacts,
    name: &Identifier,
) -> Result<Copied, Error> {
    let tx = target
        .transaction()
        .await
        .map_err(|e| Error::query("starting the restore transaction", &e))?;
    // Restored events are history: no notifications (the procedure stops every client first).
    tx.batch_execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; ALTER TABLE events DISABLE TRIGGER notify_insert")
        .await
        .map_err(|e| Error::query("disabling the NOTIFY trigger for the restore", &e))?;

    // Building an index once after a bulk load is much faster than maintaining it row by row:
    // above a few thousand rows the secondary indexes are dropped and rebuilt from their own
    // definitions (read from the catalog, so the layout's SQL is not repeated here) inside
    // this transaction. The primary key stays.
    let rebuilt_indexes = if facts.rows > REBUILD_INDEXES_ABOVE {
        drop_secondary_indexes(&tx).await?
    } else {
        Vec::new()
    };
    let source = backup
        .copy_out("COPY (SELECT id, ts, event FROM events ORDER BY id) TO STDOUT (FORMAT binary)")
        .await
        .map_err(|e| Error::query("starting COPY out of the backup", &e))?;
    let sink = tx
        .copy_in("COPY events (id, ts, event) FROM STDIN (FORMAT binary)")
        .await
        .map_err(|e| Error::query("starting COPY into the target", &e))?;
    futures_util::pin_mut!(source);
    futures_util::pin_mut!(sink);
    let progress = Progress::new(facts);
    let throttle = hooks::copy_block_delay();
    // The server sends one CopyData message per row; forwarding each on its own would cost a
    // flush and a system call per row. Rows are gathered into blocks of COPY_BLOCK bytes, so the
    // client holds at most one block whatever the size of the backup.
    let mut block = BytesMut::with_capacity(COPY_BLOCK);
    let mut bytes = 0u64;
    while let Some(chunk) = source.next().await {
        let chunk = chunk.map_err(|e| Error::query("reading from the backup", &e))?;
        bytes += chunk.len() as u64;
        block.extend_from_slice(&chunk);
        if block.len() >= COPY_BLOCK {
            sink.send(block.split().freeze())
                .await
                .map_err(|e| Error::query("writing into the target", &e))?;
            progress.advance(bytes);
            if let Some(delay) = throttle {
                tokio::time::sleep(delay).await;
            }
        }
    }
    if !block.is_empty() {
        sink.send(block.split().freeze())
            .await
            .map_err(|e| Error::query("writing into the target", &e))?;
    }
    let rows = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| Error::query("finishing COPY into the target", &e))? as i64;
    progress.finish(rows, bytes);
    let (backup_encoding, target_encoding) = tokio::try_join!(encoding(backup), encoding(&tx))
        .map_err(|e| Error::query("reading the databases' encodings", &e))?;
    let scope = Scope::ALL.for_encodings(&backup_encoding, &target_encoding);
    // The backup's digest is computed while the target rebuilds its indexes and counts.
    let (theirs, ours) = tokio::join!(digest_chunks(backup, scope, "the backup"), async {
        for (name, definition) in &rebuilt_indexes {
            let started = Instant::now();
            tx.batch_execute(definition)
                .await
                .map_err(|e| Error::query(format!("rebuilding index {name}"), &e))?;
            info!(index = %name, elapsed_ms = started.elapsed().as_millis() as u64, "index rebuilt");
        }
        if let Some(id) = hooks::tamper_id() {
            // Test hook: alter one restored row so that verification must catch it.
            tx.batch_execute(&format!(
                "ALTER TABLE events DISABLE TRIGGER check_sql_command; UPDATE events SET event = '{{\"tampered\": true}}' WHERE id = {id}; ALTER TABLE events ENABLE TRIGGER check_sql_command"
            ))
            .await
            .map_err(|e| Error::query("test hook", &e))?;
        }
        if let Some((column, a, b)) = hooks::swap() {
            // Test hook: swap one column of two restored rows.
            tx.batch_execute(&format!(
                "ALTER TABLE events DISABLE TRIGGER check_sql_command; UPDATE events e SET {column} = o.{column} FROM events o WHERE (e.id, o.id) IN (({a}, {b}), ({b}, {a})); ALTER TABLE events ENABLE TRIGGER check_sql_command"
            ))
            .await
            .map_err(|e| Error::query("test hook", &e))?;
        }
        // Verify before committing: count and max id (from the digest's own scan), then the
        // digest itself.
        let digest = digest_chunks(&tx, scope, "the target").await?;
        let (count, max_id) = totals(&digest);
        if count != facts.rows || max_id != facts.max_id || rows != facts.rows {
            return Err(Error::Verification(format!(
                "the backup has {} rows up to id {}, the target got {count} rows up to id {max_id} (COPY reported {rows})",
                facts.rows, facts.max_id
            )));
        }
        Ok((count, max_id, digest))
    });
    let theirs = theirs?;
    let (count, max_id, ours) = ours?;
    if let Some(id) = first_difference(backup, &tx, scope, &theirs, &ours)
        .instrument(info_span!("verify"))
        .await?
    {
        return Err(Error::Verification(format!(
            "the digests differ, first at id {id}"
        )));
    }
    info!(rows = count, "digests of every (id, ts, event) match");

    // As restore_events: the next id is max(id) + 1.
    let next_insert_id: i64 = tx
        .query_one("UPDATE id SET id = $1 RETURNING id", &[&(max_id + 1)])
        .await
        .map_err(|e| Error::query("setting the id counter", &e))?
        .get(0);
    tx.batch_execute("ALTER TABLE events ENABLE TRIGGER notify_insert")
        .await
        .map_err(|e| Error::query("enabling the NOTIFY trigger", &e))?;
    tx.commit()
        .await
        .map_err(|e| Error::query(format!("committing the restore into \"{name}\""), &e))?;
    Ok(Copied {
        rows: count,
        next_insert_id,
        bytes,
    })
}

/// Drops the events table's indexes that back no constraint, returning their definitions.
async fn drop_secondary_indexes(tx: &Transaction<'_>) -> Result<Vec<(String, String)>, Error> {
    let rows = tx
        .query(
            "SELECT i.indexname::text, i.indexdef FROM pg_indexes i
              WHERE i.schemaname = 'public' AND i.tablename = 'events'
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = to_regclass('public.' || quote_ident(i.indexname)))
              ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| Error::query("reading the events table's indexes", &e))?;
    let indexes: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (name, _) in &indexes {
        tx.batch_execute(&format!(
            "DROP INDEX public.{}",
            crate::pg::quote_identifier(name)
        ))
        .await
        .map_err(|e| Error::query(format!("dropping index {name} for the bulk load"), &e))?;
    }
    Ok(indexes)
}
