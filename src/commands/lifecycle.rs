//! Life after creation: `migrate` brings a slate database up to this release's layout, and
//! `adopt` puts a database made by the original Node.js tool under migration control. Both go
//! through [`crate::store::lifecycle`] (the same path as `create --if-not-exists`): connect,
//! lock, audit, then apply, each mapping the outcome to its own report.

use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::{Error, Refusal};
use crate::guarded::guarded;
use crate::lock::Waits;
use crate::output::{self, LifecycleAction, LifecycleReport, OutputFormat, PlannedMigration};
use crate::pg;
use crate::shutdown::Shutdown;
use crate::store::audit::{self, Audit, Verdict};
use crate::store::layout::{self, AppliedMigration, Layout};
use crate::store::lifecycle::{self, Upgrade};

/// Validated settings of `migrate`.
pub struct MigrateSettings {
    pub database: String,
    /// The layout the database must have, if given.
    pub layout: Option<Layout>,
    pub dry_run: bool,
    pub waits: Waits,
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
    pub waits: Waits,
    pub format: OutputFormat,
}

/// Runs `migrate`.
pub async fn migrate(
    connection: ConnectionSettings,
    settings: MigrateSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    // Held until the report is printed: a signal then is the runner's, not an unguarded exit.
    let _guard = shutdown.guard();
    let mut connector = Connector::new(connection)?;
    let target = lifecycle::Target {
        database: &settings.database,
        maintenance_db: lifecycle::DEFAULT_MAINTENANCE_DB,
        layout: settings.layout,
        dry_run: settings.dry_run,
        waits: settings.waits,
    };
    let report = guarded_on(&mut connector, shutdown, async |connector| {
        let upgrade = lifecycle::upgrade(connector, &target, "migrate refused").await?;
        Ok(upgrade_report(upgrade))
    })
    .await?;
    output::emit(&report, settings.format)
}

/// Runs `adopt`.
pub async fn adopt(
    connection: ConnectionSettings,
    settings: AdoptSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    // Held until the report is printed: a signal then is the runner's, not an unguarded exit.
    let _guard = shutdown.guard();
    let mut connector = Connector::new(connection)?;
    let report = guarded_on(&mut connector, shutdown, async |connector| {
        adopt_connected(connector, &settings).await
    })
    .await?;
    output::emit(&report, settings.format)
}

/// A lifecycle command's work under the guarded runner: on Ctrl-C or SIGTERM its queries are
/// cancelled on the server, so the open migration transaction is rolled back there rather than
/// left running, and the run ends with exit 130.
pub(crate) async fn guarded_on<T>(
    connector: &mut Connector,
    shutdown: &Shutdown,
    work: impl AsyncFnOnce(&mut Connector) -> Result<T, Error>,
) -> Result<T, Error> {
    let cancellers = [connector.canceller()];
    guarded(
        shutdown,
        &cancellers,
        || "working on the database",
        connector,
        work,
        async |_, error: Error| {
            if error.is_interrupted() {
                error.cleaned_up(Some(
                    "its queries were cancelled and any open transaction rolled back; nothing was changed".into(),
                ))
            } else {
                error
            }
        },
    )
    .await
}

async fn adopt_connected(
    connector: &mut Connector,
    settings: &AdoptSettings,
) -> Result<LifecycleReport, Error> {
    let target = lifecycle::Target {
        database: &settings.database,
        maintenance_db: lifecycle::DEFAULT_MAINTENANCE_DB,
        layout: settings.layout,
        dry_run: settings.dry_run,
        waits: settings.waits,
    };
    let (mut client, audit) = lifecycle::open(connector, &target).await?;
    let layout = match (audit.layout_verdict, audit.layout) {
        (Verdict::Unmanaged, Some(layout)) => layout,
        // Already under migration control: adopting again is migrating (idempotent for CI).
        (Verdict::UpToDate | Verdict::Pending, _) => {
            info!(
                "database \"{}\" already has a history table; checking it as migrate does",
                settings.database
            );
            let upgrade = lifecycle::bring_up_to_date(
                &mut client,
                audit,
                settings.dry_run || settings.baseline_only,
                settings.waits,
                "migrate refused",
            )
            .await?;
            return Ok(upgrade_report(upgrade));
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
        return Ok(report(
            &audit,
            LifecycleAction::DryRun,
            baseline,
            Vec::new(),
            later,
        ));
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
    let (applied, after) = if !settings.baseline_only && recorded.layout_verdict == Verdict::Pending
    {
        lifecycle::apply_pending(&mut client, &recorded, settings.waits).await?
    } else {
        (Vec::new(), recorded)
    };
    Ok(report(
        &after,
        LifecycleAction::Adopted,
        baseline,
        applied,
        Vec::new(),
    ))
}

/// The report of a store brought up to date (or shown what would be).
fn upgrade_report(upgrade: Upgrade) -> LifecycleReport {
    match upgrade {
        Upgrade::UpToDate(audit) => report(
            &audit,
            LifecycleAction::UpToDate,
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ),
        Upgrade::Pending(audit) => {
            let plan = audit
                .layout
                .map(|layout| plan_after(layout, audit.applied_version))
                .unwrap_or_default();
            report(
                &audit,
                LifecycleAction::DryRun,
                Vec::new(),
                Vec::new(),
                plan,
            )
        }
        Upgrade::Migrated { applied, after } => report(
            &after,
            LifecycleAction::Migrated,
            Vec::new(),
            applied,
            Vec::new(),
        ),
    }
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
        verdict: audit.layout_verdict,
    }
}
