//! `restore`: disaster recovery of a source database in one verified command.
//!
//! Checks the backup (a destination kept by the replicator), creates and initializes the new
//! source (or takes a freshly initialized one), streams the events in id order with binary COPY
//! from the backup into the target inside one transaction with the NOTIFY trigger off, sets
//! the id counter, and compares row count, max id and a digest of every (id, ts, event) on both
//! sides before committing. A new source is built under a temporary name and renamed only once
//! verified (see [`crate::store::build`]). Any failure rolls the transaction back and drops a
//! database this run created. Other sessions are never terminated.

mod checks;
mod copy;
mod progress;

use std::time::{Duration, Instant};

use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::hooks;
use crate::identifier::Identifier;
use crate::lock;
use crate::lock::TARGET_LOCK;
use crate::output::{self, OutputFormat, RestoreAction, RestoreReport};
use crate::shutdown::Shutdown;
use crate::store::build::{self, Claim, Ledger};
use crate::store::layout::Layout;
use crate::store::provision;

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

/// Runs `restore`. Whatever ends it early (an error, Ctrl-C, SIGTERM), the queries in flight on
/// both servers are cancelled, the restore transaction is rolled back, and a database this run
/// created is removed.
pub async fn run(
    target: ConnectionSettings,
    settings: RestoreSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let _guard = shutdown.guard();
    let RestoreSettings {
        new_database: name,
        into_existing,
        backup,
        backup_database,
        maintenance_db,
        dry_run,
        lock_timeout,
        format,
    } = settings;
    let plan = Plan {
        backup_label: format!("{}/{}", backup.endpoint(), backup_database),
        name,
        into_existing,
        backup_database,
        maintenance_db,
        dry_run,
        lock_timeout,
    };
    info!(
        target = %target.endpoint(),
        new_database = %plan.name,
        into_existing,
        backup = %plan.backup_label,
        dry_run,
        "init-slate-db {} restore starting",
        env!("CARGO_PKG_VERSION")
    );
    let mut backup_connector = Connector::new(backup)?;
    let mut connector = Connector::new(target)?;
    let cancellers = [backup_connector.canceller(), connector.canceller()];
    let ledger = Ledger::new(&plan.maintenance_db);
    let outcome = tokio::select! {
        result = restore(&mut backup_connector, &mut connector, &plan, &ledger) => result,
        () = shutdown.requested() => Err(Error::Interrupted {
            step: ledger.current_step().into(),
            cleanup: String::new(),
        }),
    };
    match outcome {
        Ok(report) => {
            output::emit(&report, format);
            Ok(())
        }
        Err(error) => {
            let interrupted = matches!(error, Error::Interrupted { .. });
            if interrupted {
                for canceller in &cancellers {
                    canceller.cancel_all().await;
                }
            }
            let cleanup = build::discard(&mut connector, &ledger, false)
                .instrument(info_span!("cleanup", database = %plan.name))
                .await;
            // Checks that refuse before anything was touched keep their own message.
            if cleanup.is_none() && !interrupted && ledger.current_step() != COPYING {
                return Err(error);
            }
            let cleanup = cleanup.unwrap_or_else(|| {
                "the restore transaction was rolled back; the database is as it was".into()
            });
            Err(Error::RestoreAbandoned {
                database: plan.name.to_string(),
                cause: Box::new(error),
                cleanup,
            })
        }
    }
}

/// The step after which a failure has touched the target (and rolled it back).
const COPYING: &str = "copying the events";

/// What to restore, from where, into what.
struct Plan {
    name: Identifier,
    into_existing: bool,
    backup_label: String,
    backup_database: String,
    maintenance_db: String,
    dry_run: bool,
    lock_timeout: Duration,
}

async fn restore(
    backup_connector: &mut Connector,
    connector: &mut Connector,
    plan: &Plan,
    ledger: &Ledger,
) -> Result<RestoreReport, Error> {
    let started = Instant::now();
    let name = &plan.name;
    // 1. The backup, read in one snapshot: the checks, the copy and the digest see the same rows.
    ledger.step("connecting to the backup");
    let mut backup = backup_connector.connect(&plan.backup_database).await?;
    let backup_tx = backup
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| Error::query("starting a read-only snapshot of the backup", &e))?;
    ledger.step("checking the backup");
    let facts = check_backup(&backup_tx, &plan.backup_label)
        .instrument(info_span!("check_backup"))
        .await?;
    info!(
        rows = facts.rows,
        max_id = facts.max_id,
        table_bytes = facts.table_bytes,
        "backup checked: ids 1..{} without gaps",
        facts.max_id
    );

    // 2. The target: an existing fresh source, or a new one built under a temporary name.
    ledger.step("checking the target");
    let mut report = RestoreReport {
        format_version: output::FORMAT_VERSION,
        database: name.to_string(),
        backup: plan.backup_label.clone(),
        action: RestoreAction::DryRun,
        created: false,
        into_existing: plan.into_existing,
        backup_rows: facts.rows,
        rows_restored: 0,
        next_insert_id: facts.max_id + 1,
        bytes_copied: 0,
        duration_ms: 0,
        events_per_second: 0.0,
    };
    let (mut client, maintenance, build) = if plan.into_existing {
        let client = connector.connect(name.as_str()).await?;
        if !plan.dry_run {
            lock::acquire(&client, TARGET_LOCK, plan.lock_timeout).await?;
        }
        check_fresh_target(&client, name.as_str()).await?;
        if plan.dry_run {
            report.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        (client, None, None)
    } else {
        let maintenance = connector.connect(&plan.maintenance_db).await?;
        provision::preflight(&maintenance, connector, name, Layout::Source).await?;
        if plan.dry_run {
            report.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        ledger.step("waiting for the name");
        let build =
            match build::claim(&maintenance, connector, name, plan.lock_timeout, ledger).await? {
                Claim::Building(build) => build,
                Claim::NameTaken => {
                    return Err(Error::DatabaseExists {
                        database: name.to_string(),
                        endpoint: connector.settings().endpoint(),
                    })
                }
            };
        provision::initialize(connector, &build, Layout::Source, ledger).await?;
        ledger.step("opening the copy connection");
        hooks::pause("copy-connection", None).await;
        let client = connector.connect(&build.temp).await?;
        (client, Some(maintenance), Some(build))
    };

    // 3-5. Copy, verify, set the counter; commit only if everything matches.
    ledger.step(COPYING);
    let copy_started = Instant::now();
    let copied = copy_and_verify(&backup_tx, &mut client, &facts, name)
        .instrument(info_span!("copy", database = %name))
        .await?;
    let _ = backup_tx.commit().await;
    drop(client);
    // 6. A new store gets its name only now, complete and verified.
    if let (Some(maintenance), Some(build)) = (&maintenance, &build) {
        ledger.step("publishing the store under its name");
        hooks::pause("publishing", None).await;
        build::publish(maintenance, build, &connector.settings().endpoint(), ledger).await?;
    }
    let seconds = copy_started.elapsed().as_secs_f64().max(1e-6);
    report.action = RestoreAction::Restored;
    report.created = build.is_some();
    report.rows_restored = copied.rows;
    report.next_insert_id = copied.next_insert_id;
    report.bytes_copied = copied.bytes;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.events_per_second = copied.rows as f64 / seconds;
    info!(
        rows = report.rows_restored,
        next_insert_id = report.next_insert_id,
        duration_ms = report.duration_ms,
        events_per_second = report.events_per_second as u64,
        "restore committed and verified"
    );
    Ok(report)
}
