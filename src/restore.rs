//! `restore`: disaster recovery of a source database in one verified command.
//!
//! Checks the backup (a destination kept by the replicator), creates and initializes the new
//! source (or takes a freshly initialized one), streams the events in id order with binary COPY
//! from the backup into the target inside one transaction with the NOTIFY trigger off, sets
//! the id counter, and compares row count, max id and a digest of every (id, ts, event) on both
//! sides before committing. Any failure rolls the transaction back and drops a database this
//! run created. Other sessions are never terminated.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio_postgres::{Client, Transaction};
use tracing::{info, info_span, warn, Instrument};

use crate::audit::{self, Verdict};
use crate::cli::OutputFormat;
use crate::connect::{ConnectionSettings, Connector};
use crate::create;
use crate::error::{exit_code, Error};
use crate::identifier::Identifier;
use crate::layout::Layout;
use crate::lock;
use crate::pg::PgFailure;

/// Above this many rows, secondary indexes are rebuilt after the copy instead of maintained.
const REBUILD_INDEXES_ABOVE: i64 = 10_000;

/// Bytes of COPY data forwarded at once.
const COPY_BLOCK: usize = 256 * 1024;

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

/// Validated settings of `restore`.
pub struct RestoreSettings {
    /// The source database to create (or, with `into_existing`, to fill).
    pub new_database: Identifier,
    /// Fill an existing, freshly initialized source instead of creating one.
    pub into_existing: bool,
    /// Where the backup is.
    pub backup: ConnectionSettings,
    /// The backup database.
    pub backup_database: String,
    /// The database to connect to for CREATE DATABASE.
    pub maintenance_db: String,
    /// Check and show the plan; change nothing.
    pub dry_run: bool,
    pub lock_timeout: Duration,
    pub format: OutputFormat,
}

/// The backup's events table, as checked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BackupFacts {
    pub rows: i64,
    pub max_id: i64,
    /// The events table's size on disk (heap and TOAST), bytes.
    pub table_bytes: i64,
}

/// The result: the `--format json` document.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub database: String,
    pub backup: String,
    /// `restored` or `dry-run`.
    pub action: &'static str,
    /// Whether this run created the database.
    pub created: bool,
    pub backup_rows: i64,
    pub rows_restored: i64,
    pub next_insert_id: i64,
    pub bytes_copied: u64,
    pub duration_ms: u64,
    pub events_per_second: f64,
}

/// Runs `restore`.
pub async fn run(target: ConnectionSettings, settings: RestoreSettings) -> Result<(), Error> {
    let started = Instant::now();
    let name = settings.new_database.clone();
    let backup_label = format!(
        "{}/{}",
        settings.backup.endpoint(),
        settings.backup_database
    );
    info!(
        target = %target.endpoint(),
        new_database = %name,
        into_existing = settings.into_existing,
        backup = %backup_label,
        dry_run = settings.dry_run,
        "init-slate-db {} restore starting",
        env!("CARGO_PKG_VERSION")
    );

    // 1. The backup, read in one snapshot: the checks, the copy and the digest see the same rows.
    let mut backup_connector = Connector::new(settings.backup)?;
    let mut backup = backup_connector.connect(&settings.backup_database).await.map_err(|error| match error {
        Error::PasswordRequired { .. } => Error::State {
            message: format!(
                "could not connect to the backup {backup_label} as user \"{}\": the server asks for a password and none was given; pass --from-password, set INIT_SLATE_DB_FROM_PASSWORD, or add it to ~/.pgpass",
                backup_connector.user()
            ),
            exit_code: exit_code::CONNECTION,
        },
        other => other,
    })?;
    let backup_tx = backup
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| query_error("starting a read-only snapshot of the backup", e))?;
    let facts = check_backup(&backup_tx, &backup_label)
        .instrument(info_span!("check_backup"))
        .await?;
    info!(
        rows = facts.rows,
        max_id = facts.max_id,
        table_bytes = facts.table_bytes,
        "backup checked: ids 1..{} without gaps",
        facts.max_id
    );

    // 2. The target.
    let mut connector = Connector::new(target)?;
    let (mut client, maintenance) = if settings.into_existing {
        let client = connector.connect(name.as_str()).await?;
        if !settings.dry_run {
            lock::acquire(&client, "migrate", settings.lock_timeout).await?;
        }
        check_fresh_target(&client, name.as_str()).await?;
        (Some(client), None)
    } else {
        let maintenance = connector.connect(&settings.maintenance_db).await?;
        lock::acquire(
            &maintenance,
            &format!("create {name}"),
            settings.lock_timeout,
        )
        .await?;
        create::preflight(&maintenance, &mut connector, &name, Layout::Source).await?;
        (None, Some(maintenance))
    };

    if settings.dry_run {
        let report = RestoreReport {
            database: name.to_string(),
            backup: backup_label,
            action: "dry-run",
            created: false,
            backup_rows: facts.rows,
            rows_restored: 0,
            next_insert_id: facts.max_id + 1,
            bytes_copied: 0,
            duration_ms: started.elapsed().as_millis() as u64,
            events_per_second: 0.0,
        };
        print(&report, settings.format, settings.into_existing);
        return Ok(());
    }

    if let Some(maintenance) = &maintenance {
        create::create_database(maintenance, &connector, &name).await?;
        create::initialize_or_clean_up(maintenance, &mut connector, &name, Layout::Source, false)
            .await?;
        client = match connector.connect(name.as_str()).await {
            Ok(client) => Some(client),
            Err(error) => {
                return Err(abandon(
                    maintenance,
                    &name,
                    error.to_string(),
                    exit_code::INITIALIZATION,
                )
                .await)
            }
        };
    }
    let mut client = client.expect("connected to the target");

    // 3-5. Copy, set the counter, verify; commit only if everything matches.
    let copy_started = Instant::now();
    let outcome = tokio::select! {
        result = copy_and_verify(&backup_tx, &mut client, &facts, &name).instrument(info_span!("copy", database = %name)) => result,
        () = create::shutdown_signal() => Err(Failure { message: "interrupted".into(), exit_code: exit_code::INTERRUPTED }),
    };
    match outcome {
        Ok(copied) => {
            let _ = backup_tx.commit().await;
            let seconds = copy_started.elapsed().as_secs_f64().max(1e-6);
            let report = RestoreReport {
                database: name.to_string(),
                backup: backup_label,
                action: "restored",
                created: maintenance.is_some(),
                backup_rows: facts.rows,
                rows_restored: copied.rows,
                next_insert_id: copied.next_insert_id,
                bytes_copied: copied.bytes,
                duration_ms: started.elapsed().as_millis() as u64,
                events_per_second: copied.rows as f64 / seconds,
            };
            info!(
                rows = report.rows_restored,
                next_insert_id = report.next_insert_id,
                duration_ms = report.duration_ms,
                events_per_second = report.events_per_second as u64,
                "restore committed and verified"
            );
            print(&report, settings.format, settings.into_existing);
            Ok(())
        }
        Err(failure) => {
            // Dropping the client ends its connection; the open transaction is rolled back.
            drop(client);
            match &maintenance {
                Some(maintenance) => Err(abandon(maintenance, &name, failure.message, failure.exit_code).await),
                None => Err(Error::State {
                    message: format!("restore into \"{name}\" failed and was rolled back; the database is as it was: {}", failure.message),
                    exit_code: failure.exit_code,
                }),
            }
        }
    }
}

/// A failed step of the copy, with the exit code it ends with.
struct Failure {
    message: String,
    exit_code: u8,
}

impl Failure {
    fn query(step: &str, error: tokio_postgres::Error) -> Failure {
        Failure {
            message: format!("{step}: {}", PgFailure::from(&error)),
            exit_code: exit_code::INITIALIZATION,
        }
    }
}

struct Copied {
    rows: i64,
    next_insert_id: i64,
    bytes: u64,
}

/// Drops the database this run created and builds the error that says so.
async fn abandon(maintenance: &Client, name: &Identifier, message: String, code: u8) -> Error {
    let cleanup = create::clean_up(maintenance, name, false).await;
    Error::State {
        message: format!(
            "restore into \"{name}\" failed, nothing was committed: {message}; {cleanup}"
        ),
        exit_code: code,
    }
}

fn query_error(step: &str, error: tokio_postgres::Error) -> Error {
    Error::Query {
        step: step.into(),
        failure: PgFailure::from(&error),
    }
}

/// The backup must have the slate events table with ids 1..count (the spec's rule: max(id)
/// equals count(*)) and at least one event.
async fn check_backup(backup: &Transaction<'_>, label: &str) -> Result<BackupFacts, Error> {
    let refuse = |why: String| Error::State {
        message: format!("the backup {label} cannot be restored from, nothing was created: {why}"),
        exit_code: exit_code::BAD_BACKUP,
    };
    backup
        .batch_execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'")
        .await
        .map_err(|e| query_error("setting up the backup session", e))?;
    let columns: Vec<String> = backup
        .query(
            "SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
              WHERE a.attrelid = to_regclass('public.events') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[],
        )
        .await
        .map_err(|e| query_error("reading the backup's events table", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected = ["id bigint", "ts timestamp with time zone", "event jsonb"];
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
    let row = backup
        .query_one("SELECT count(*), COALESCE(max(id), 0), COALESCE(min(id), 0), pg_table_size('public.events') FROM events", &[])
        .await
        .map_err(|e| query_error("counting the backup's events", e))?;
    let (rows, max_id, min_id, table_bytes): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    if rows == 0 {
        return Err(refuse("its events table is empty".into()));
    }
    if max_id != rows || min_id != 1 {
        return Err(refuse(format!(
            "its ids are not 1..count without gaps: {rows} rows, ids {min_id}..{max_id} (the replica is incomplete or was written to)"
        )));
    }
    Ok(BackupFacts {
        rows,
        max_id,
        table_bytes,
    })
}

/// `--into-existing`: a verified, up-to-date source with no events and id = 1, as
/// restore_events demands.
async fn check_fresh_target(client: &Client, name: &str) -> Result<(), Error> {
    let audit = audit::audit(client, name, Some(Layout::Source)).await?;
    let refuse = |why: String| Error::State {
        message: format!(
            "--into-existing refused: database \"{name}\" {why}; it was left untouched"
        ),
        exit_code: exit_code::TARGET_NOT_FRESH,
    };
    if audit.layout != Some(Layout::Source) {
        return Err(refuse("is not a source event store".into()));
    }
    if audit.verdict != Verdict::UpToDate {
        return Err(refuse(format!(
            "is not a verified, up-to-date source (status verdict: {:?})",
            audit.verdict
        )));
    }
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT id FROM id)",
            &[],
        )
        .await
        .map_err(|e| query_error("checking that the target is empty", e))?;
    let (events, next): (i64, i64) = (row.get(0), row.get(1));
    if events != 0 || next != 1 {
        return Err(refuse(format!(
            "is not freshly initialized ({events} events, id table at {next}; it must be 0 and 1)"
        )));
    }
    Ok(())
}

/// Streams the backup's events into the target in one transaction, verifies, and commits.
async fn copy_and_verify(
    backup: &Transaction<'_>,
    target: &mut Client,
    facts: &BackupFacts,
    name: &Identifier,
) -> Result<Copied, Failure> {
    let tx = target
        .transaction()
        .await
        .map_err(|e| Failure::query("starting the restore transaction", e))?;
    // Restored events are history: no notifications (the procedure stops every client first).
    tx.batch_execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; ALTER TABLE events DISABLE TRIGGER notify_insert")
        .await
        .map_err(|e| Failure::query("disabling the NOTIFY trigger for the restore", e))?;

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
        .map_err(|e| Failure::query("starting COPY out of the backup", e))?;
    let sink = tx
        .copy_in("COPY events (id, ts, event) FROM STDIN (FORMAT binary)")
        .await
        .map_err(|e| Failure::query("starting COPY into the target", e))?;
    futures_util::pin_mut!(source);
    futures_util::pin_mut!(sink);
    let progress = Progress::new(facts);
    let throttle =
        test_hook("INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS").and_then(|v| v.parse::<u64>().ok());
    // The server sends one CopyData message per row; forwarding each on its own would cost a
    // flush and a system call per row. Rows are gathered into blocks of COPY_BLOCK bytes, so the
    // client holds at most one block whatever the size of the backup.
    let mut block = BytesMut::with_capacity(COPY_BLOCK);
    let mut bytes = 0u64;
    while let Some(chunk) = source.next().await {
        let chunk = chunk.map_err(|e| Failure::query("reading from the backup", e))?;
        bytes += chunk.len() as u64;
        block.extend_from_slice(&chunk);
        if block.len() >= COPY_BLOCK {
            sink.send(block.split().freeze())
                .await
                .map_err(|e| Failure::query("writing into the target", e))?;
            progress.advance(bytes);
            if let Some(ms) = throttle {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
    }
    if !block.is_empty() {
        sink.send(block.split().freeze())
            .await
            .map_err(|e| Failure::query("writing into the target", e))?;
    }
    let rows = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| Failure::query("finishing COPY into the target", e))? as i64;
    progress.finish(rows, bytes);
    // The backup's digest is computed while the target rebuilds its indexes and counts.
    let (theirs, ours) = tokio::join!(digest_chunks(backup, "the backup"), async {
        for (name, definition) in &rebuilt_indexes {
            let started = Instant::now();
            tx.batch_execute(definition)
                .await
                .map_err(|e| Failure::query(&format!("rebuilding index {name}"), e))?;
            info!(index = %name, elapsed_ms = started.elapsed().as_millis() as u64, "index rebuilt");
        }
        if let Some(id) =
            test_hook("INIT_SLATE_DB_TEST_TAMPER_ID").and_then(|v| v.parse::<i64>().ok())
        {
            // Test hook: alter one restored row so that verification must catch it.
            tx.batch_execute(&format!(
                "ALTER TABLE events DISABLE TRIGGER check_sql_command; UPDATE events SET event = '{{\"tampered\": true}}' WHERE id = {id}; ALTER TABLE events ENABLE TRIGGER check_sql_command"
            ))
            .await
            .map_err(|e| Failure::query("test hook", e))?;
        }
        // Verify before committing: count and max id, then the digest.
        let row = tx
            .query_one("SELECT count(*), COALESCE(max(id), 0) FROM events", &[])
            .await
            .map_err(|e| Failure::query("counting the restored events", e))?;
        let (count, max_id): (i64, i64) = (row.get(0), row.get(1));
        if count != facts.rows || max_id != facts.max_id || rows != facts.rows {
            return Err(Failure {
                message: format!(
                    "verification failed: the backup has {} rows up to id {}, the target got {count} rows up to id {max_id} (COPY reported {rows})",
                    facts.rows, facts.max_id
                ),
                exit_code: exit_code::VERIFICATION,
            });
        }
        Ok((count, max_id, digest_chunks(&tx, "the target").await?))
    });
    let theirs = theirs?;
    let (count, max_id, ours) = ours?;
    if let Some(id) = first_difference(backup, &tx, &theirs, &ours)
        .instrument(info_span!("verify"))
        .await?
    {
        return Err(Failure {
            message: format!("verification failed: the digests differ, first at id {id}"),
            exit_code: exit_code::VERIFICATION,
        });
    }
    info!(rows = count, "digests of every (id, ts, event) match");

    // As restore_events: the next id is max(id) + 1.
    let next_insert_id: i64 = tx
        .query_one("UPDATE id SET id = $1 RETURNING id", &[&(max_id + 1)])
        .await
        .map_err(|e| Failure::query("setting the id counter", e))?
        .get(0);
    tx.batch_execute("ALTER TABLE events ENABLE TRIGGER notify_insert")
        .await
        .map_err(|e| Failure::query("enabling the NOTIFY trigger", e))?;
    tx.commit()
        .await
        .map_err(|e| Failure::query(&format!("committing the restore into \"{name}\""), e))?;
    Ok(Copied {
        rows: count,
        next_insert_id,
        bytes,
    })
}

/// Drops the events table's indexes that back no constraint, returning their definitions.
async fn drop_secondary_indexes(tx: &Transaction<'_>) -> Result<Vec<(String, String)>, Failure> {
    let rows = tx
        .query(
            "SELECT i.indexname::text, i.indexdef FROM pg_indexes i
              WHERE i.schemaname = 'public' AND i.tablename = 'events'
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = to_regclass('public.' || quote_ident(i.indexname)))
              ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| Failure::query("reading the events table's indexes", e))?;
    let indexes: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (name, _) in &indexes {
        tx.batch_execute(&format!(
            "DROP INDEX public.{}",
            crate::pg::quote_identifier(name)
        ))
        .await
        .map_err(|e| Failure::query(&format!("dropping index {name} for the bulk load"), e))?;
    }
    Ok(indexes)
}

/// Per chunk of ids: (chunk number, rows, XOR of the row hashes).
type Digest = Vec<(i64, i64, i64)>;

async fn digest_chunks(tx: &Transaction<'_>, side: &str) -> Result<Digest, Failure> {
    let rows = tx
        .query(DIGEST_QUERY, &[])
        .await
        .map_err(|e| Failure::query(&format!("computing the digest of {side}"), e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Compares the digests chunk by chunk, then row by row in the first chunk that differs.
/// `None` when everything matches.
async fn first_difference(
    backup: &Transaction<'_>,
    target: &Transaction<'_>,
    theirs: &Digest,
    ours: &Digest,
) -> Result<Option<i64>, Failure> {
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
        .map_err(|e| Failure::query("digesting the backup's rows", e))?
        .iter()
        .map(row)
        .collect();
    let ours: Vec<_> = ours
        .map_err(|e| Failure::query("digesting the target's rows", e))?
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

/// Hidden settings for tests only (slow the copy down, tamper with a row); not documented.
fn test_hook(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A progress bar on a terminal (bytes, rate, ETA, rows estimated from the bytes), log lines
/// every five seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    rows: i64,
    estimate: u64,
    started: Instant,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(facts: &BackupFacts) -> Progress {
        // Binary COPY carries about 30 bytes of framing per row beside the stored data.
        let estimate = (facts.table_bytes.max(1) as u64).max(facts.rows as u64 * 64);
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = ProgressBar::new(estimate);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            rows: facts.rows,
            estimate,
            started: Instant::now(),
            last_log: std::cell::Cell::new(Instant::now()),
        }
    }

    fn estimated_rows(&self, bytes: u64) -> i64 {
        ((bytes as f64 / self.estimate as f64).min(1.0) * self.rows as f64) as i64
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            if bytes > bar.length().unwrap_or(0) {
                bar.set_length(bytes);
            }
            bar.set_position(bytes);
            bar.set_message(format!("~{} rows", self.estimated_rows(bytes)));
        } else if self.last_log.get().elapsed() >= Duration::from_secs(5) {
            self.last_log.set(Instant::now());
            let seconds = self.started.elapsed().as_secs_f64();
            info!(
                bytes,
                approx_rows = self.estimated_rows(bytes),
                of_rows = self.rows,
                mb_per_second = format!("{:.1}", bytes as f64 / 1e6 / seconds),
                "copying"
            );
        }
    }

    fn finish(&self, rows: i64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if rows != self.rows {
            warn!(
                copied = rows,
                expected = self.rows,
                "row count differs from the backup's"
            );
        }
        info!(
            rows,
            bytes,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "copy finished"
        );
    }
}

fn print(report: &RestoreReport, format: OutputFormat, into_existing: bool) {
    if format == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("serializable")
        );
        return;
    }
    if report.action == "dry-run" {
        println!("dry run: nothing was created or changed");
        println!(
            "  backup {}: {} events, ids 1..{} without gaps",
            report.backup, report.backup_rows, report.backup_rows
        );
        if into_existing {
            println!(
                "  target \"{}\" is a freshly initialized, verified source",
                report.database
            );
        } else {
            println!(
                "  would create source database \"{}\" (checks passed)",
                report.database
            );
        }
        println!(
            "  would copy {} events in one transaction, verify count, max id and digests, and set the next id to {}",
            report.backup_rows, report.next_insert_id
        );
        return;
    }
    println!(
        "restored {} events from {} into \"{}\"{}: next insert id {}, {:.1} s, {:.0} events/s, verified",
        report.rows_restored,
        report.backup,
        report.database,
        if report.created { " (created)" } else { "" },
        report.next_insert_id,
        report.duration_ms as f64 / 1000.0,
        report.events_per_second
    );
}
