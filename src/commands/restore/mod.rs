//! `restore`: disaster recovery of a source database in one verified command.
//!
//! Checks the backup (a destination kept by the replicator), creates and initializes the new
//! source (or takes a freshly initialized one), streams the events in id order with binary COPY
//! from the backup into the target inside one transaction with the NOTIFY trigger off, sets
//! the id counter, and compares row count, max id and a digest of every (id, ts, event) on both
//! sides before committing. A new source is built under a temporary name and renamed only once
//! verified: a short script over the staging pipeline ([`crate::store::staging`]), whose fill
//! step is the copy. Any failure rolls the transaction back and drops a database this run
//! created. Other sessions are never terminated.

mod checks;
mod copy;
mod progress;

use std::time::{Duration, Instant};

use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::guarded::guarded;
use crate::hooks;
use crate::identifier::Identifier;
use crate::output::{self, OutputFormat, RestoreAction, RestoreReport};
use crate::shutdown::Shutdown;
use crate::store::layout::Layout;
use crate::store::lifecycle;
use crate::store::staging::{self, Ledger, Staging};

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
    // Held until the report is printed: a signal then is the runner's, not an unguarded exit.
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
    let mut servers = Servers {
        backup: Connector::new(backup)?,
        target: Connector::new(target)?,
    };
    let cancellers = [servers.backup.canceller(), servers.target.canceller()];
    let ledger = Ledger::new(&maintenance_db);
    let report = guarded(
        shutdown,
        &cancellers,
        || ledger.current_step(),
        &mut servers,
        async |servers| restore(servers, &plan, &ledger).await,
        async |servers, error| {
            let cleanup = staging::discard(&mut servers.target, &ledger, false)
                .instrument(info_span!("cleanup", database = %plan.name))
                .await;
            // Checks that refuse before anything was touched keep their own message.
            if cleanup.is_none() && !error.is_interrupted() && !ledger.touched() {
                return error;
            }
            let cleanup = cleanup.unwrap_or_else(|| {
                "the restore transaction was rolled back; the database is as it was".into()
            });
            Error::RestoreAbandoned {
                database: plan.name.to_string(),
                cause: Box::new(error),
            }
            .cleaned_up(Some(cleanup))
        },
    )
    .await?;
    output::emit(&report, format)
}

/// The two servers a restore talks to.
struct Servers {
    backup: Connector,
    target: Connector,
}

/// What to restore, from where, into what.
struct Plan {
    name: Identifier,
    into_existing: bool,
    backup_label: String,
    backup_database: String,
    dry_run: bool,
    lock_timeout: Duration,
}

async fn restore(
    servers: &mut Servers,
    plan: &Plan,
    ledger: &Ledger,
) -> Result<RestoreReport, Error> {
    let started = Instant::now();
    let name = &plan.name;
    // 1. The backup, read in one snapshot: the checks, the copy and the digest see the same rows.
    ledger.step("connecting to the backup");
    let mut backup = servers.backup.connect(&plan.backup_database).await?;
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

    // 2-5. Into an existing fresh source, or into a new one built by the staging pipeline;
    // either way the copy commits only if everything matches.
    ledger.step("checking the target");
    let copy_started = Instant::now();
    let copied = if plan.into_existing {
        let mut client = lifecycle::connect_locked(
            &mut servers.target,
            name.as_str(),
            &ledger.maintenance_db(),
            plan.dry_run,
            plan.lock_timeout,
        )
        .await?;
        check_fresh_target(&client, name.as_str()).await?;
        if plan.dry_run {
            report.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        copy(&backup_tx, &mut client, &facts, name, ledger).await?
    } else {
        let checked = staging::check(&mut servers.target, ledger, name, Layout::Source).await?;
        if plan.dry_run {
            report.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let fill = async |connector: &mut Connector, staged: &staging::Staged| {
            ledger.step("opening the copy connection");
            hooks::pause("copy-connection", None).await;
            let mut client = connector.connect(&staged.temp).await?;
            copy(&backup_tx, &mut client, &facts, name, ledger).await
        };
        match checked
            .build(&mut servers.target, plan.lock_timeout, ledger, fill)
            .await?
        {
            Staging::Published { filled, .. } => {
                report.created = true;
                filled
            }
            Staging::NameTaken => {
                return Err(Error::DatabaseExists {
                    database: name.to_string(),
                    endpoint: servers.target.settings().endpoint(),
                })
            }
        }
    };
    let _ = backup_tx.commit().await;
    let seconds = copy_started.elapsed().as_secs_f64().max(1e-6);
    report.action = RestoreAction::Restored;
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

/// Copies, verifies and sets the counter in one transaction on `client`, which is closed after
/// (a new store is renamed next, and the rename needs it free of sessions).
async fn copy(
    backup_tx: &tokio_postgres::Transaction<'_>,
    client: &mut tokio_postgres::Client,
    facts: &checks::BackupFacts,
    name: &Identifier,
    ledger: &Ledger,
) -> Result<copy::Copied, Error> {
    ledger.touch(COPYING);
    copy_and_verify(backup_tx, client, facts, name)
        .instrument(info_span!("copy", database = %name))
        .await
}

/// The step after which a failure has touched the target (and rolled it back).
const COPYING: &str = "copying the events";
