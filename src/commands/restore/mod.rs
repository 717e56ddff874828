//! `restore`: disaster recovery of a source database in one verified command.
//!
//! Checks the backup (a destination kept by the replicator), creates and initializes the new
//! source (or takes a freshly initialized one), streams the events in id order with binary COPY
//! from the backup into the target inside one transaction with the NOTIFY trigger off, sets
//! the id counter, and compares row count, max id and a digest of every (id, ts, event) on both
//! sides before committing. Any failure rolls the transaction back and drops a database this
//! run created. Other sessions are never terminated.

mod checks;
mod copy;
mod progress;

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::identifier::Identifier;
use crate::lock;
use crate::output::{self, OutputFormat, RestoreAction, RestoreReport};
use crate::pg::PgFailure;
use crate::shutdown::Shutdown;
use crate::store::layout::Layout;
use crate::store::provision;
use crate::store::upgrade::TARGET_LOCK;

use checks::{check_backup, check_fresh_target};
use copy::copy_and_verify;

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

/// Runs `restore`.
pub async fn run(
    target: ConnectionSettings,
    settings: RestoreSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
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
    let mut backup = backup_connector.connect(&settings.backup_database).await?;
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
            lock::acquire(&client, TARGET_LOCK, settings.lock_timeout).await?;
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
        provision::preflight(&maintenance, &mut connector, &name, Layout::Source).await?;
        (None, Some(maintenance))
    };

    if settings.dry_run {
        let report = RestoreReport {
            format_version: output::FORMAT_VERSION,
            database: name.to_string(),
            backup: backup_label,
            action: RestoreAction::DryRun,
            created: false,
            into_existing: settings.into_existing,
            backup_rows: facts.rows,
            rows_restored: 0,
            next_insert_id: facts.max_id + 1,
            bytes_copied: 0,
            duration_ms: started.elapsed().as_millis() as u64,
            events_per_second: 0.0,
        };
        output::emit(&report, settings.format);
        return Ok(());
    }

    if let Some(maintenance) = &maintenance {
        provision::create_database(maintenance, &connector, &name).await?;
        provision::initialize_or_clean_up(
            maintenance,
            shutdown,
            &mut connector,
            &name,
            Layout::Source,
            false,
        )
        .await?;
        client = match connector.connect(name.as_str()).await {
            Ok(client) => Some(client),
            Err(error) => return Err(abandon(maintenance, &name, error).await),
        };
    }
    let Some(mut client) = client else {
        return Err(Error::Internal(
            "restore: no connection to the target".into(),
        ));
    };

    // 3-5. Copy, set the counter, verify; commit only if everything matches.
    let copy_started = Instant::now();
    let guard = shutdown.guard();
    let outcome = tokio::select! {
        result = copy_and_verify(&backup_tx, &mut client, &facts, &name).instrument(info_span!("copy", database = %name)) => result,
        () = shutdown.requested() => Err(Error::Interrupted {
            step: "copying the events".into(),
            cleanup: "the restore transaction was rolled back".into(),
        }),
    };
    match outcome {
        Ok(copied) => {
            let _ = backup_tx.commit().await;
            let seconds = copy_started.elapsed().as_secs_f64().max(1e-6);
            let report = RestoreReport {
                format_version: output::FORMAT_VERSION,
                database: name.to_string(),
                backup: backup_label,
                action: RestoreAction::Restored,
                created: maintenance.is_some(),
                into_existing: settings.into_existing,
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
            output::emit(&report, settings.format);
            Ok(())
        }
        Err(failure) => {
            // Dropping the client ends its connection; the open transaction is rolled back.
            drop(client);
            let result = match &maintenance {
                Some(maintenance) => Err(abandon(maintenance, &name, failure).await),
                None => Err(Error::RestoreAbandoned {
                    database: name.to_string(),
                    cause: Box::new(failure),
                    cleanup: "rolled back; the database is as it was".into(),
                }),
            };
            drop(guard);
            result
        }
    }
}

/// Drops the database this run created and builds the error that says so.
async fn abandon(maintenance: &Client, name: &Identifier, cause: Error) -> Error {
    let cleanup = provision::clean_up(maintenance, name, false).await;
    Error::RestoreAbandoned {
        database: name.to_string(),
        cause: Box::new(cause),
        cleanup,
    }
}

pub(crate) fn query_error(step: &str, error: tokio_postgres::Error) -> Error {
    Error::Query {
        step: step.into(),
        failure: PgFailure::from(&error),
    }
}
