//! Life after creation: `migrate` brings a slate database up to this build's layout, `adopt`
//! puts a database made by the original Node.js tool under migration control, and
//! `create --if-not-exists` reuses an existing store. Each holds the target's advisory lock and
//! audits the database (after getting the lock) before it changes anything.

use std::time::Duration;

use tokio_postgres::Client;
use tracing::{info, info_span, Instrument};

use crate::connect::{Canceller, ConnectionSettings, Connector};
use crate::error::{Error, Refusal};
use crate::lock;
use crate::lock::TARGET_LOCK;
use crate::output::{self, LifecycleAction, LifecycleReport, OutputFormat, PlannedMigration};
use crate::pg;
use crate::shutdown::Shutdown;
use crate::store::audit::{self, Audit, Verdict};
use crate::store::layout::{self, AppliedMigration, Layout};
use crate::store::upgrade::{apply_pending, check_layout, LockWaits};

/// Validated settings of `migrate`.
pub struct MigrateSettings {
    pub database: String,
    /// The layout the database must have, if given.
    pub layout: Option<Layout>,
    pub dry_run: bool,
    pub lock_timeout: Duration,
    /// How long one attempt of a migration waits for a table lock.
    pub ddl_lock_timeout: Duration,
    pub format: OutputFormat,
}

/// Validated settings of `adopt`.
pub struct AdoptSettings {
    pub database: String,
    /// The layout the database must have, if given.
    pub layout: Option<Layout>,
    /// Record the original's migrations only.
    pub baseline_only: bool,
    pub dry_run: bool,
    pub lock_timeout: Duration,
    /// How long one attempt of a migration waits for a table lock.
    pub ddl_lock_timeout: Duration,
    pub format: OutputFormat,
}

/// Runs `migrate`.
pub async fn migrate(
    connection: ConnectionSettings,
    settings: MigrateSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
    let canceller = connector.canceller();
    interruptible(
        canceller,
        shutdown,
        migrate_connected(&mut connector, &settings),
    )
    .await
}

/// Runs `work`; on Ctrl-C or SIGTERM cancels its queries on the server, so the open migration
/// transaction is rolled back there rather than left running, and ends with exit 130.
async fn interruptible(
    canceller: Canceller,
    shutdown: &Shutdown,
    work: impl std::future::Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    let _guard = shutdown.guard();
    let outcome = tokio::select! {
        result = work => result,
        () = shutdown.requested() => Err(Error::Interrupted {
            step: "working on the database".into(),
            cleanup: "its queries were cancelled and any open transaction rolled back; nothing was changed".into(),
        }),
    };
    if matches!(outcome, Err(Error::Interrupted { .. })) {
        canceller.cancel_all().await;
    }
    outcome
}

async fn migrate_connected(
    connector: &mut Connector,
    settings: &MigrateSettings,
) -> Result<(), Error> {
    let mut client = connector.connect(&settings.database).await?;
    if !settings.dry_run {
        lock::acquire(&client, TARGET_LOCK, settings.lock_timeout).await?;
    }
    migrate_locked(&mut client, settings).await
}

/// `migrate` on a connection that holds the lock (or a dry run's).
async fn migrate_locked(client: &mut Client, settings: &MigrateSettings) -> Result<(), Error> {
    let audit = audit::audit(client, &settings.database, settings.layout).await?;
    check_layout(&audit, settings.layout)?;
    let report = match audit.verdict {
        Verdict::UpToDate => report(
            &audit,
            LifecycleAction::UpToDate,
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ),
        Verdict::Pending if settings.dry_run => report(
            &audit,
            LifecycleAction::DryRun,
            Vec::new(),
            Vec::new(),
            plan(&audit),
        ),
        Verdict::Pending => {
            let waits = LockWaits {
                per_attempt: settings.ddl_lock_timeout,
                deadline: settings.lock_timeout,
            };
            let (applied, after) = apply_pending(client, &audit, waits).await?;
            report(
                &after,
                LifecycleAction::Migrated,
                Vec::new(),
                applied,
                Vec::new(),
            )
        }
        _ => return Err(audit.refusal("migrate refused")),
    };
    output::emit(&report, settings.format);
    Ok(())
}

/// Runs `adopt`.
pub async fn adopt(
    connection: ConnectionSettings,
    settings: AdoptSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
    let canceller = connector.canceller();
    interruptible(
        canceller,
        shutdown,
        adopt_connected(&mut connector, settings),
    )
    .await
}

async fn adopt_connected(connector: &mut Connector, settings: AdoptSettings) -> Result<(), Error> {
    let mut client = connector.connect(&settings.database).await?;
    if !settings.dry_run {
        lock::acquire(&client, TARGET_LOCK, settings.lock_timeout).await?;
    }
    let audit = audit::audit(&client, &settings.database, settings.layout).await?;
    check_layout(&audit, settings.layout)?;
    let layout = match (audit.verdict, audit.layout) {
        (Verdict::Unmanaged, Some(layout)) => layout,
        // Already under migration control: adopting again is migrating (idempotent for CI).
        (Verdict::UpToDate | Verdict::Pending, _) => {
            info!(
                "database \"{}\" already has a history table; checking it as migrate does",
                settings.database
            );
            let migrate_settings = MigrateSettings {
                database: settings.database,
                layout: settings.layout,
                dry_run: settings.dry_run || settings.baseline_only,
                lock_timeout: settings.lock_timeout,
                ddl_lock_timeout: settings.ddl_lock_timeout,
                format: settings.format,
            };
            return migrate_locked(&mut client, &migrate_settings).await;
        }
        _ => return Err(audit.refusal("adopt refused")),
    };
    // Only the differences the catalog cannot see are tolerated (EXECUTE PROCEDURE and EXECUTE
    // FUNCTION triggers, WITH (OIDS=FALSE)); anything missing or changed refuses the adoption.
    let problems = audit.problems();
    if !problems.is_empty() {
        return Err(Error::Refused {
            refusal: Refusal::Drift,
            message: format!(
                "adopt refused: database \"{}\" differs from what the original init-slate-db created ({layout} V1-V{}), nothing was written: {}",
                settings.database,
                layout.original_version(),
                problems.join("; ")
            ),
        });
    }
    let baseline: Vec<i32> = (1..=layout.original_version()).collect();
    if settings.dry_run {
        let later = if settings.baseline_only {
            Vec::new()
        } else {
            plan_after(layout, layout.original_version())
        };
        output::emit(
            &report(&audit, LifecycleAction::DryRun, baseline, Vec::new(), later),
            settings.format,
        );
        return Ok(());
    }
    layout::record_as_applied(&mut client, layout, layout.original_version())
        .instrument(info_span!("adopt", database = %settings.database, layout = %layout))
        .await
        .map_err(|e| Error::Query {
            step: format!(
                "recording V1-V{} as applied in \"{}\"",
                layout.original_version(),
                settings.database
            ),
            failure: pg::failure_in_chain(&*e),
        })?;
    info!(
        "recorded V1-V{} as applied without running them",
        layout.original_version()
    );
    let recorded = audit::audit(&client, &settings.database, Some(layout)).await?;
    let (applied, after) = if !settings.baseline_only && recorded.verdict == Verdict::Pending {
        let waits = LockWaits {
            per_attempt: settings.ddl_lock_timeout,
            deadline: settings.lock_timeout,
        };
        apply_pending(&mut client, &recorded, waits).await?
    } else {
        (Vec::new(), recorded)
    };
    output::emit(
        &report(
            &after,
            LifecycleAction::Adopted,
            baseline,
            applied,
            Vec::new(),
        ),
        settings.format,
    );
    Ok(())
}

fn plan(audit: &Audit) -> Vec<PlannedMigration> {
    plan_after(
        audit.layout.expect("pending needs a layout"),
        audit.applied_version,
    )
}

fn plan_after(layout: Layout, version: i32) -> Vec<PlannedMigration> {
    layout
        .migrations()
        .iter()
        .filter(|m| m.version() > version)
        .map(|m| PlannedMigration {
            version: m.version(),
            name: m.name().to_string(),
            checksum: m.checksum().to_string(),
            sql: m.sql().unwrap_or_default().to_string(),
        })
        .collect()
}

fn report(
    audit: &Audit,
    action: LifecycleAction,
    recorded: Vec<i32>,
    migrations_applied: Vec<AppliedMigration>,
    plan: Vec<PlannedMigration>,
) -> LifecycleReport {
    LifecycleReport {
        format_version: output::FORMAT_VERSION,
        database: audit.database.clone(),
        layout: audit.layout,
        action,
        recorded,
        migrations_applied,
        plan,
        verdict: audit.verdict,
    }
}
