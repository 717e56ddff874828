//! The create job: check, CREATE DATABASE, apply the layout, and clean up after a failure.

use std::time::{Duration, Instant};

use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::identifier::Identifier;
use crate::lock;
use crate::output::{self, CreateAction, CreatePlan, CreateReport, OutputFormat, PlannedMigration};
use crate::shutdown::Shutdown;
use crate::store::layout::Layout;
use crate::store::provision;
use crate::store::upgrade::{self, Existing};

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

/// Runs the create job end to end.
pub async fn run(
    connection: ConnectionSettings,
    settings: CreateSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
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

    let checked = provision::preflight(&maintenance, &mut connector, &new_database, layout)
        .instrument(info_span!("preflight", database = %new_database))
        .await;
    match checked {
        Err(Error::DatabaseExists { .. }) if if_not_exists => {
            let existing = upgrade::bring_existing_up_to_date(
                &mut connector,
                new_database.as_str(),
                layout,
                dry_run,
                lock_timeout,
            )
            .await?;
            let (action, applied) = match existing {
                Existing::UpToDate => (CreateAction::Existed, Vec::new()),
                Existing::Pending => (CreateAction::DryRun, Vec::new()),
                Existing::Migrated(applied) => (CreateAction::Migrated, applied),
            };
            let report = CreateReport {
                format_version: output::FORMAT_VERSION,
                database: new_database.to_string(),
                layout,
                action,
                endpoint: connector.settings().endpoint(),
                migrations_applied: applied,
                duration_ms: started.elapsed().as_millis() as u64,
                dry_run_text: None,
            };
            output::emit(&report, format);
            return Ok(());
        }
        other => other?,
    }

    if dry_run {
        let report = CreateReport {
            format_version: output::FORMAT_VERSION,
            database: new_database.to_string(),
            layout,
            action: CreateAction::DryRun,
            endpoint: connector.settings().endpoint(),
            migrations_applied: Vec::new(),
            duration_ms: started.elapsed().as_millis() as u64,
            dry_run_text: Some(
                dry_run_plan(&connector, &maintenance_db, &new_database, layout).text(),
            ),
        };
        output::emit(&report, format);
        info!("dry run: all checks passed; nothing was created or changed");
        return Ok(());
    }

    provision::create_database(&maintenance, &connector, &new_database)
        .instrument(info_span!("create_database", database = %new_database))
        .await?;

    let applied = provision::initialize_or_clean_up(
        &maintenance,
        shutdown,
        &mut connector,
        &new_database,
        layout,
        keep_on_failure,
    )
    .await?;
    let elapsed = started.elapsed();
    output::emit(
        &CreateReport {
            format_version: output::FORMAT_VERSION,
            database: new_database.to_string(),
            layout,
            action: CreateAction::Created,
            endpoint: connector.settings().endpoint(),
            migrations_applied: applied,
            duration_ms: elapsed.as_millis() as u64,
            dry_run_text: None,
        },
        format,
    );
    Ok(())
}

/// The dry run's parameters, checks and migrations.
fn dry_run_plan<'a>(
    connector: &Connector,
    maintenance_db: &str,
    database: &'a Identifier,
    layout: Layout,
) -> CreatePlan<'a> {
    let settings = connector.settings();
    let password = if settings.password.is_some() {
        "(given, not shown)"
    } else {
        "(none)"
    };
    let mut checks = vec![
        format!(
            "connected to \"{maintenance_db}\" on {}",
            settings.endpoint()
        ),
        format!("database \"{database}\" does not exist"),
        "the role may create databases".to_string(),
    ];
    if layout.needs_dblink() {
        checks.push("the dblink extension can be installed".into());
    }
    CreatePlan {
        parameters: vec![
            ("host", settings.host.clone()),
            ("port", settings.port.to_string()),
            ("user", connector.user().to_string()),
            ("password", password.to_string()),
            (
                "connect timeout",
                format!("{} ms", settings.connect_timeout.as_millis()),
            ),
            ("maintenance database", maintenance_db.to_string()),
            ("new database", database.to_string()),
            ("table type", layout.to_string()),
        ],
        checks,
        database: database.as_str(),
        migrations: layout
            .migrations()
            .iter()
            .map(|m| PlannedMigration {
                version: m.version(),
                name: m.name().to_string(),
                checksum: m.checksum().to_string(),
                sql: String::new(),
            })
            .collect(),
    }
}
