//! The create job: check, CREATE DATABASE, apply the layout, and clean up after a failure.

use std::cell::Cell;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, info_span, warn, Instrument};

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::identifier::Identifier;
use crate::layout::{self, AppliedMigration, Layout};
use crate::pg::{self, PgFailure};
use crate::{lifecycle, lock};

/// Validated settings of one create run.
pub struct CreateSettings {
    /// The database to create.
    pub new_database: Identifier,
    /// Source or destination.
    pub layout: Layout,
    /// Check and show, change nothing.
    pub dry_run: bool,
    /// The database to connect to for CREATE DATABASE.
    pub maintenance_db: String,
    /// Keep a database whose initialization failed.
    pub keep_on_failure: bool,
    /// Accept an existing verified store of the layout (and bring it up to date).
    pub if_not_exists: bool,
    /// How long to wait for another run creating the same name.
    pub lock_timeout: Duration,
    /// Text or JSON result on stdout.
    pub format: OutputFormat,
}

/// The result of a create run: the `--format json` document.
#[derive(Debug, Serialize)]
pub struct CreateReport {
    pub database: String,
    pub layout: Layout,
    /// `created`, `existed` (verified, nothing done), `migrated` (existed, pending migrations
    /// applied) or `dry-run`.
    pub action: &'static str,
    pub endpoint: String,
    pub migrations_applied: Vec<AppliedMigration>,
    pub duration_ms: u64,
}

/// Template databases whose dblink a non-superuser could inherit.
const TEMPLATE_DATABASE: &str = "template1";

/// Runs the create job end to end.
pub async fn run(connection: ConnectionSettings, settings: CreateSettings) -> Result<(), Error> {
    let started = Instant::now();
    let CreateSettings {
        new_database,
        layout,
        dry_run,
        maintenance_db,
        keep_on_failure,
        if_not_exists,
        lock_timeout,
        format,
    } = settings;
    info!(
        host = %connection.host,
        port = connection.port,
        user = connection.user.as_deref().unwrap_or("(not given)"),
        password = if connection.password.is_some() { "(given)" } else { "(not given)" },
        connect_timeout_ms = connection.connect_timeout.as_millis() as u64,
        transport = %connection.transport(),
        application_name = %connection.application_name,
        wait_s = connection.wait.map(|w| w.as_secs()),
        maintenance_db = %maintenance_db,
        new_database = %new_database,
        table_type = %layout,
        dry_run,
        "init-slate-db {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let mut connector = Connector::new(connection)?;
    let maintenance = connector.connect(&maintenance_db).await?;
    // Held until the run ends (the connection closes): a second run for the same name waits,
    // then re-reads the state below.
    lock::acquire(
        &maintenance,
        &format!("create {new_database}"),
        lock_timeout,
    )
    .await?;

    let checked = preflight(&maintenance, &mut connector, &new_database, layout)
        .instrument(info_span!("preflight", database = %new_database))
        .await;
    match checked {
        Err(Error::DatabaseExists { .. }) if if_not_exists => {
            let (action, applied) = lifecycle::bring_existing_up_to_date(
                &mut connector,
                new_database.as_str(),
                layout,
                dry_run,
                lock_timeout,
            )
            .await?;
            let report = CreateReport {
                database: new_database.to_string(),
                layout,
                action,
                endpoint: connector.settings().endpoint(),
                migrations_applied: applied,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            print_report(&report, format);
            return Ok(());
        }
        other => other?,
    }

    if dry_run {
        match format {
            OutputFormat::Text => print_dry_run(&connector, &maintenance_db, &new_database, layout),
            OutputFormat::Json => print_report(
                &CreateReport {
                    database: new_database.to_string(),
                    layout,
                    action: "dry-run",
                    endpoint: connector.settings().endpoint(),
                    migrations_applied: Vec::new(),
                    duration_ms: started.elapsed().as_millis() as u64,
                },
                format,
            ),
        }
        info!("dry run: all checks passed; nothing was created or changed");
        return Ok(());
    }

    create_database(&maintenance, &connector, &new_database)
        .instrument(info_span!("create_database", database = %new_database))
        .await?;

    let applied = initialize_or_clean_up(
        &maintenance,
        &mut connector,
        &new_database,
        layout,
        keep_on_failure,
    )
    .await?;
    let elapsed = started.elapsed();
    print_report(
        &CreateReport {
            database: new_database.to_string(),
            layout,
            action: "created",
            endpoint: connector.settings().endpoint(),
            migrations_applied: applied,
            duration_ms: elapsed.as_millis() as u64,
        },
        format,
    );
    Ok(())
}

/// Applies the layout to a database this run just created. If that fails or is interrupted,
/// drops the database (unless `keep`) and says so in the error.
pub(crate) async fn initialize_or_clean_up(
    maintenance: &Client,
    connector: &mut Connector,
    database: &Identifier,
    layout: Layout,
    keep: bool,
) -> Result<Vec<AppliedMigration>, Error> {
    let started = Instant::now();
    let step = Cell::new("connecting to the new database");
    let outcome = tokio::select! {
        result = initialize(connector, database, layout, &step) => result.map_err(Some),
        () = shutdown_signal() => Err(None),
    };
    match outcome {
        Ok(applied) => {
            let versions: Vec<String> = applied.iter().map(|m| format!("V{}", m.version)).collect();
            info!(
                database = %database,
                layout = %layout,
                versions = %versions.join(","),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "database initialized"
            );
            Ok(applied)
        }
        Err(failure) => {
            let cleanup = clean_up(maintenance, database, keep)
                .instrument(info_span!("cleanup", database = %database))
                .await;
            Err(match failure {
                Some(failure) => Error::Initialization {
                    database: database.to_string(),
                    layout: layout.name(),
                    step: step.get().to_string(),
                    failure,
                    cleanup,
                },
                None => Error::Interrupted {
                    step: step.get().to_string(),
                    cleanup,
                },
            })
        }
    }
}

/// The read-only checks: the database must not exist, the role must be able to create it, and
/// for a source database dblink must be installable. Runs in dry runs too.
pub(crate) async fn preflight(
    maintenance: &Client,
    connector: &mut Connector,
    database: &Identifier,
    layout: Layout,
) -> Result<(), Error> {
    let row = maintenance
        .query_one(
            "SELECT r.rolsuper, r.rolcreatedb, \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'dblink') \
             FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[&database.as_str()],
        )
        .await
        .map_err(|e| Error::Query {
            step: "checking the role and the database name".into(),
            failure: e.into(),
        })?;
    let (superuser, createdb, exists, dblink_available): (bool, bool, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let user = connector.user().to_string();
    if exists {
        return Err(Error::DatabaseExists {
            database: database.to_string(),
            endpoint: connector.settings().endpoint(),
        });
    }
    info!("database \"{database}\" does not exist yet");
    if !(superuser || createdb) {
        return Err(Error::MissingPrivilege(format!(
            "role \"{user}\" may not create databases: it needs the CREATEDB attribute (ALTER ROLE \"{user}\" CREATEDB) or superuser; nothing was created"
        )));
    }
    info!(superuser, createdb, "role \"{user}\" may create databases");
    if layout.needs_dblink() {
        if !dblink_available {
            return Err(Error::MissingPrivilege(
                "the dblink extension is not available on the server: install PostgreSQL's contrib package on the database server (a source database needs dblink for restore_events); nothing was created".into(),
            ));
        }
        if !superuser && !template_has_dblink(connector).await {
            return Err(Error::MissingPrivilege(format!(
                "role \"{user}\" cannot install the dblink extension that a source database needs: CREATE EXTENSION dblink requires a superuser (dblink is not a trusted extension); run as a superuser, or have one run CREATE EXTENSION dblink in {TEMPLATE_DATABASE}; nothing was created"
            )));
        }
        info!("dblink can be installed");
    }
    Ok(())
}

/// Whether new databases inherit dblink from the template, so no superuser is needed.
async fn template_has_dblink(connector: &mut Connector) -> bool {
    let Ok(template) = connector.connect(TEMPLATE_DATABASE).await else {
        return false;
    };
    template
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dblink'",
            &[],
        )
        .await
        .map(|row| row.is_some())
        .unwrap_or(false)
}

/// CREATE DATABASE; losing a race for the name reports the database as existing.
pub(crate) async fn create_database(
    maintenance: &Client,
    connector: &Connector,
    database: &Identifier,
) -> Result<(), Error> {
    let statement = format!(
        "CREATE DATABASE {}",
        pg::quote_identifier(database.as_str())
    );
    match maintenance.batch_execute(&statement).await {
        Ok(()) => {
            info!("created database \"{database}\"");
            Ok(())
        }
        Err(error) => {
            let failure = PgFailure::from(&error);
            // Two runs racing for one name: the loser sees 42P04, or 23505 on pg_database's
            // unique index when both got past the existence check at once.
            if failure.is(&SqlState::DUPLICATE_DATABASE) || failure.is(&SqlState::UNIQUE_VIOLATION)
            {
                return Err(Error::DatabaseExists {
                    database: database.to_string(),
                    endpoint: connector.settings().endpoint(),
                });
            }
            if failure.is(&SqlState::INSUFFICIENT_PRIVILEGE) {
                return Err(Error::MissingPrivilege(format!(
                    "role \"{}\" may not create database \"{database}\": {failure}; nothing was created",
                    connector.user()
                )));
            }
            if failure.is(&SqlState::OBJECT_IN_USE) {
                return Err(Error::Query {
                    step: format!("creating database \"{database}\""),
                    failure: PgFailure {
                        message: format!(
                            "{failure}; CREATE DATABASE copies the template database and needs it free of other sessions: retry when they have disconnected"
                        ),
                        ..failure
                    },
                });
            }
            Err(Error::Query {
                step: format!("creating database \"{database}\""),
                failure,
            })
        }
    }
}

/// Connects to the new database and applies the layout; `step` says where it stands, for the
/// error message if it fails or is interrupted.
async fn initialize(
    connector: &mut Connector,
    database: &Identifier,
    layout: Layout,
    step: &Cell<&'static str>,
) -> Result<Vec<AppliedMigration>, String> {
    step.set("connecting to the new database");
    let mut client = connector
        .connect(database.as_str())
        .await
        .map_err(|e| e.to_string())?;
    step.set("applying migrations");
    let applied = layout::apply(&mut client, layout, None)
        .instrument(info_span!("migrate", database = %database, layout = %layout))
        .await
        .map_err(|e| pg::failure_in_chain(&e).to_string())?;
    for migration in &applied {
        info!(version = migration.version, checksum = %migration.checksum, "applied migration V{}__{}", migration.version, migration.name);
    }
    Ok(applied)
}

/// Drops the database this run created (unless asked to keep it) and says what happened.
pub(crate) async fn clean_up(maintenance: &Client, database: &Identifier, keep: bool) -> String {
    if keep {
        warn!("keeping database \"{database}\" as --keep-on-failure asks; drop it before running again");
        return format!(
            "database \"{database}\" was kept (--keep-on-failure); drop it before running again"
        );
    }
    // The connection to the new database is closed by now, but its server process may take a
    // moment to exit; DROP DATABASE waits a few seconds for it, and we try twice.
    let statement = format!(
        "DROP DATABASE IF EXISTS {}",
        pg::quote_identifier(database.as_str())
    );
    let mut last = None;
    for attempt in 0..2 {
        match maintenance.batch_execute(&statement).await {
            Ok(()) => {
                info!("dropped database \"{database}\" created by this run");
                return format!("database \"{database}\" created by this run was dropped");
            }
            Err(error) => {
                last = Some(PgFailure::from(&error));
                if attempt == 0 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
    let failure = last.map(|f| f.to_string()).unwrap_or_default();
    warn!(%failure, "could not drop database \"{database}\"");
    format!("dropping database \"{database}\" failed too ({failure}): drop it by hand before running again")
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The result line (text) or document (JSON) on stdout.
fn print_report(report: &CreateReport, format: OutputFormat) {
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).expect("serializable")
        ),
        OutputFormat::Text => {
            let versions: Vec<String> = report
                .migrations_applied
                .iter()
                .map(|m| format!("V{}", m.version))
                .collect();
            let seconds = report.duration_ms as f64 / 1000.0;
            match report.action {
                "created" => println!(
                    "created {} database \"{}\" on {}: applied {} migration(s) ({}) in {seconds:.2} s",
                    report.layout,
                    report.database,
                    report.endpoint,
                    versions.len(),
                    versions.join(", ")
                ),
                "migrated" => println!(
                    "database \"{}\" on {} existed as a verified {} store: applied pending migration(s) {} in {seconds:.2} s",
                    report.database,
                    report.endpoint,
                    report.layout,
                    versions.join(", ")
                ),
                "existed" => println!(
                    "database \"{}\" on {} exists and is a verified, up-to-date {} store: nothing was done",
                    report.database, report.endpoint, report.layout
                ),
                _ => println!(
                    "dry run: database \"{}\" on {} would be left as it is or brought up to date; nothing was changed",
                    report.database, report.endpoint
                ),
            }
        }
    }
}

fn print_dry_run(
    connector: &Connector,
    maintenance_db: &str,
    database: &Identifier,
    layout: Layout,
) {
    let settings = connector.settings();
    let mut out = String::new();
    out.push_str("dry run: nothing was created or changed\n\nrun parameters:\n");
    let rows = [
        ("host", settings.host.clone()),
        ("port", settings.port.to_string()),
        ("user", connector.user().to_string()),
        (
            "password",
            if settings.password.is_some() {
                "(given, not shown)".into()
            } else {
                "(none)".into()
            },
        ),
        (
            "connect timeout",
            format!("{} ms", settings.connect_timeout.as_millis()),
        ),
        ("maintenance database", maintenance_db.to_string()),
        ("new database", database.to_string()),
        ("table type", layout.to_string()),
    ];
    for (key, value) in rows {
        out.push_str(&format!("  {:<22}{value}\n", format!("{key}:")));
    }
    out.push_str("\nchecks passed:\n");
    out.push_str(&format!(
        "  connected to \"{maintenance_db}\" on {}\n",
        settings.endpoint()
    ));
    out.push_str(&format!("  database \"{database}\" does not exist\n"));
    out.push_str("  the role may create databases\n");
    if layout.needs_dblink() {
        out.push_str("  the dblink extension can be installed\n");
    }
    out.push_str(&format!(
        "\nmigrations that would be applied to \"{database}\" (history table {}):\n",
        layout::HISTORY_TABLE
    ));
    for migration in layout.migrations() {
        out.push_str(&format!(
            "  V{:<3}{:<40}checksum {}\n",
            migration.version(),
            migration.name(),
            migration.checksum()
        ));
    }
    print!("{out}");
}
