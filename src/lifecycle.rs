//! Life after creation: `migrate` brings a slate database up to this build's layout, `adopt`
//! puts a database made by the original Node.js tool under migration control, and
//! `create --if-not-exists` reuses an existing store. Each holds the target's advisory lock and
//! audits the database (after getting the lock) before it changes anything.

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;
use tracing::{info, info_span, Instrument};

use crate::audit::{self, Audit, Verdict};
use crate::cli::OutputFormat;
use crate::connect::{ConnectionSettings, Connector};
use crate::error::{exit_code, Error};
use crate::layout::{self, AppliedMigration, Layout};
use crate::lock;
use crate::pg;

/// The lock every command that changes a slate database takes on it.
const TARGET_LOCK: &str = "migrate";

/// Validated settings of `migrate`.
pub struct MigrateSettings {
    pub database: String,
    /// The layout the database must have, if given.
    pub layout: Option<Layout>,
    pub dry_run: bool,
    pub lock_timeout: Duration,
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
    pub format: OutputFormat,
}

/// A migration that would run: the `--dry-run` plan.
#[derive(Debug, Serialize)]
pub struct PlannedMigration {
    pub version: i32,
    pub name: String,
    pub checksum: String,
    pub sql: String,
}

/// The result of `migrate` or `adopt`: the `--format json` document.
#[derive(Debug, Serialize)]
pub struct LifecycleReport {
    pub database: String,
    pub layout: Option<Layout>,
    /// `up-to-date`, `migrated`, `adopted`, or `dry-run`.
    pub action: &'static str,
    /// Versions recorded as applied without running them (adopt).
    pub recorded: Vec<i32>,
    pub migrations_applied: Vec<AppliedMigration>,
    /// What a dry run would apply.
    pub plan: Vec<PlannedMigration>,
    /// The verdict of the audit at the end.
    pub verdict: Verdict,
}

/// Runs `migrate`.
pub async fn migrate(
    connection: ConnectionSettings,
    settings: MigrateSettings,
) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
    let mut client = connector.connect(&settings.database).await?;
    if !settings.dry_run {
        lock::acquire(&client, TARGET_LOCK, settings.lock_timeout).await?;
    }
    migrate_locked(&mut client, &settings).await
}

/// `migrate` on a connection that holds the lock (or a dry run's).
async fn migrate_locked(client: &mut Client, settings: &MigrateSettings) -> Result<(), Error> {
    let audit = audit::audit(client, &settings.database, settings.layout).await?;
    check_layout(&audit, settings.layout)?;
    let report = match audit.verdict {
        Verdict::UpToDate => report(&audit, "up-to-date", Vec::new(), Vec::new(), Vec::new()),
        Verdict::Pending if settings.dry_run => {
            report(&audit, "dry-run", Vec::new(), Vec::new(), plan(&audit))
        }
        Verdict::Pending => {
            let (applied, after) = apply_pending(client, &audit).await?;
            report(&after, "migrated", Vec::new(), applied, Vec::new())
        }
        _ => return Err(audit.refusal("migrate refused")),
    };
    print(&report, settings.format);
    Ok(())
}

/// Runs `adopt`.
pub async fn adopt(connection: ConnectionSettings, settings: AdoptSettings) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
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
        return Err(Error::State {
            message: format!(
                "adopt refused: database \"{}\" differs from what the original init-slate-db created ({layout} V1-V{}), nothing was written: {}",
                settings.database,
                layout.original_version(),
                problems.join("; ")
            ),
            exit_code: exit_code::DRIFT,
        });
    }
    let baseline: Vec<i32> = (1..=layout.original_version()).collect();
    if settings.dry_run {
        let later = if settings.baseline_only {
            Vec::new()
        } else {
            plan_after(layout, layout.original_version())
        };
        print(
            &report(&audit, "dry-run", baseline, Vec::new(), later),
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
            failure: pg::failure_in_chain(&e),
        })?;
    info!(
        "recorded V1-V{} as applied without running them",
        layout.original_version()
    );
    let recorded = audit::audit(&client, &settings.database, Some(layout)).await?;
    let (applied, after) = if !settings.baseline_only && recorded.verdict == Verdict::Pending {
        apply_pending(&mut client, &recorded).await?
    } else {
        (Vec::new(), recorded)
    };
    print(
        &report(&after, "adopted", baseline, applied, Vec::new()),
        settings.format,
    );
    Ok(())
}

/// `create --if-not-exists` on an existing database: nothing to do when it is a verified,
/// up-to-date store of `layout`; apply pending migrations when that is all it lacks; refuse
/// otherwise. Returns the action taken and what was applied.
pub async fn bring_existing_up_to_date(
    connector: &mut Connector,
    database: &str,
    layout: Layout,
    dry_run: bool,
    lock_timeout: Duration,
) -> Result<(&'static str, Vec<AppliedMigration>), Error> {
    let mut client = connector.connect(database).await?;
    if !dry_run {
        lock::acquire(&client, TARGET_LOCK, lock_timeout).await?;
    }
    let audit = audit::audit(&client, database, Some(layout)).await?;
    check_layout(&audit, Some(layout))?;
    match audit.verdict {
        Verdict::UpToDate => {
            info!("database \"{database}\" exists and is a verified, up-to-date {layout} store: nothing to do");
            Ok(("existed", Vec::new()))
        }
        Verdict::Pending if dry_run => Ok(("dry-run", Vec::new())),
        Verdict::Pending => Ok(("migrated", apply_pending(&mut client, &audit).await?.0)),
        _ => Err(audit.refusal("--if-not-exists refused")),
    }
}

/// Applies the pending migrations of a verified database in one transaction, then audits it
/// again: the result must be up to date. Returns what was applied and that audit.
async fn apply_pending(
    client: &mut Client,
    audit: &Audit,
) -> Result<(Vec<AppliedMigration>, Audit), Error> {
    let layout = audit.layout.expect("a verified database has a layout");
    let applied = layout::apply(client, layout, None)
        .instrument(info_span!("migrate", database = %audit.database, layout = %layout))
        .await
        .map_err(|e| Error::State {
            message: format!(
                "applying V{} to \"{}\" failed and was rolled back: {}",
                audit
                    .pending_versions()
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", V"),
                audit.database,
                pg::failure_in_chain(&e)
            ),
            exit_code: exit_code::INITIALIZATION,
        })?;
    for m in &applied {
        info!(version = m.version, checksum = %m.checksum, "applied migration V{}__{}", m.version, m.name);
    }
    let after = audit::audit(client, &audit.database, Some(layout)).await?;
    if after.verdict != Verdict::UpToDate {
        return Err(after.refusal("after migrating"));
    }
    Ok((applied, after))
}

/// Refuses a database of the other layout than `-t` asks for.
fn check_layout(audit: &Audit, wanted: Option<Layout>) -> Result<(), Error> {
    match (audit.layout, wanted) {
        (Some(found), Some(wanted)) if found != wanted => Err(Error::State {
            message: format!(
                "database \"{}\" is a {found} event store, not a {wanted} one; nothing was changed",
                audit.database
            ),
            exit_code: exit_code::WRONG_LAYOUT,
        }),
        _ => Ok(()),
    }
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
    action: &'static str,
    recorded: Vec<i32>,
    migrations_applied: Vec<AppliedMigration>,
    plan: Vec<PlannedMigration>,
) -> LifecycleReport {
    LifecycleReport {
        database: audit.database.clone(),
        layout: audit.layout,
        action,
        recorded,
        migrations_applied,
        plan,
        verdict: audit.verdict,
    }
}

fn print(report: &LifecycleReport, format: OutputFormat) {
    if format == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("serializable")
        );
        return;
    }
    let layout = report.layout.map(Layout::name).unwrap_or("unknown");
    let versions = |ms: &[AppliedMigration]| {
        ms.iter()
            .map(|m| format!("V{}", m.version))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match report.action {
        "up-to-date" => println!(
            "database \"{}\" ({layout}) is up to date: nothing to do",
            report.database
        ),
        "migrated" => println!(
            "database \"{}\" ({layout}): applied {} in one transaction; verified, up to date",
            report.database,
            versions(&report.migrations_applied)
        ),
        "adopted" => {
            println!(
                "database \"{}\" ({layout}): recorded V{}-V{} as applied (objects verified against the original init-slate-db's)",
                report.database,
                report.recorded.first().copied().unwrap_or(1),
                report.recorded.last().copied().unwrap_or(0)
            );
            if report.migrations_applied.is_empty() {
                println!("verdict: {:?}", report.verdict);
            } else {
                println!(
                    "applied {}; verified, up to date",
                    versions(&report.migrations_applied)
                );
            }
        }
        _ => {
            println!(
                "dry run on database \"{}\" ({layout}): nothing was changed",
                report.database
            );
            if !report.recorded.is_empty() {
                println!(
                    "would record V{}-V{} as applied without running them",
                    report.recorded.first().copied().unwrap_or(1),
                    report.recorded.last().copied().unwrap_or(0)
                );
            }
            for m in &report.plan {
                println!(
                    "\n-- would apply V{}__{} (checksum {})\n{}",
                    m.version,
                    m.name,
                    m.checksum,
                    m.sql.trim_end()
                );
            }
        }
    }
}
