//! The create job: check, build the store under a temporary name, publish it under its own, and
//! remove what a failed or interrupted run created.

use std::time::{Duration, Instant};

use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::hooks;
use crate::identifier::Identifier;
use crate::lock;
use crate::output::{self, CreateAction, CreatePlan, CreateReport, OutputFormat, PlannedMigration};
use crate::shutdown::Shutdown;
use crate::store::build::{self, Claim, Ledger};
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
    /// Apply the layout into an existing, empty database instead of creating one.
    pub into_existing: bool,
    /// How long to wait for another run creating the same name.
    pub lock_timeout: Duration,
    /// How long one attempt of a migration waits for a table lock (`--if-not-exists`).
    pub ddl_lock_timeout: Duration,
    /// Text or JSON result on stdout.
    pub format: OutputFormat,
}

/// Runs the create job end to end. Whatever ends it early (an error, Ctrl-C, SIGTERM), the
/// queries in flight are cancelled and what the run created is removed before it returns.
pub async fn run(
    connection: ConnectionSettings,
    settings: CreateSettings,
    shutdown: &Shutdown,
) -> Result<(), Error> {
    let _guard = shutdown.guard();
    info!(
        host = %connection.host,
        port = connection.port,
        user = connection.user.as_deref().unwrap_or("(not given)"),
        password = if connection.password.is_some() { "(given)" } else { "(not given)" },
        connect_timeout_ms = connection.connect_timeout.as_millis() as u64,
        transport = %connection.transport(),
        application_name = %connection.application_name,
        wait_s = connection.wait.map(|w| w.as_secs()),
        maintenance_db = %settings.maintenance_db,
        new_database = %settings.new_database,
        table_type = %settings.layout,
        dry_run = settings.dry_run,
        "init-slate-db {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let mut connector = Connector::new(connection)?;
    let canceller = connector.canceller();
    let ledger = Ledger::new(&settings.maintenance_db);
    let outcome = tokio::select! {
        result = create(&mut connector, &settings, &ledger) => result,
        () = shutdown.requested() => Err(Error::Interrupted {
            step: ledger.current_step().into(),
            cleanup: String::new(),
        }),
    };
    match outcome {
        Ok(report) => {
            output::emit(&report, settings.format);
            Ok(())
        }
        Err(error) => {
            if matches!(error, Error::Interrupted { .. }) {
                canceller.cancel_all().await;
            }
            let cleanup = build::discard(&mut connector, &ledger, settings.keep_on_failure)
                .instrument(info_span!("cleanup", database = %settings.new_database))
                .await;
            Err(error.with_cleanup(cleanup))
        }
    }
}

/// The steps: checks, the name claimed under a temporary database, the layout applied there,
/// then the rename that publishes the complete store.
async fn create(
    connector: &mut Connector,
    settings: &CreateSettings,
    ledger: &Ledger,
) -> Result<CreateReport, Error> {
    let started = Instant::now();
    let name = &settings.new_database;
    let layout = settings.layout;
    let report = |action, migrations_applied, connector: &Connector| CreateReport {
        format_version: output::FORMAT_VERSION,
        database: name.to_string(),
        layout,
        action,
        endpoint: connector.settings().endpoint(),
        migrations_applied,
        duration_ms: started.elapsed().as_millis() as u64,
        dry_run_text: None,
    };
    if settings.into_existing {
        return into_existing(connector, settings, started, ledger).await;
    }
    ledger.step("connecting");
    let maintenance = connector.connect(&settings.maintenance_db).await?;
    ledger.step("checking the role and the name");
    let checked = provision::preflight(&maintenance, connector, name, layout)
        .instrument(info_span!("preflight", database = %name))
        .await;
    match checked {
        Err(Error::DatabaseExists { .. }) if settings.if_not_exists => {
            return existing(connector, settings, started).await;
        }
        other => other?,
    }
    if settings.dry_run {
        let mut dry = report(CreateAction::DryRun, Vec::new(), connector);
        dry.dry_run_text =
            Some(dry_run_plan(connector, &settings.maintenance_db, name, layout).text());
        info!("dry run: all checks passed; nothing was created or changed");
        return Ok(dry);
    }

    ledger.step("waiting for the name");
    let claimed = build::claim(&maintenance, connector, name, settings.lock_timeout, ledger)
        .instrument(info_span!("claim", database = %name))
        .await?;
    let build = match claimed {
        Claim::Building(build) => build,
        // Another run finished a store under this name while this one waited.
        Claim::NameTaken if settings.if_not_exists => {
            return existing(connector, settings, started).await;
        }
        Claim::NameTaken => {
            return Err(Error::DatabaseExists {
                database: name.to_string(),
                endpoint: connector.settings().endpoint(),
            })
        }
    };
    hooks::pause("created", None).await;
    let applied = provision::initialize(connector, &build, layout, ledger).await?;
    ledger.step("publishing the store under its name");
    hooks::pause("publishing", None).await;
    build::publish(
        &maintenance,
        &build,
        &connector.settings().endpoint(),
        ledger,
    )
    .await?;
    Ok(report(CreateAction::Created, applied, connector))
}

/// `--into-existing`: the database exists (made by a console or Terraform) and must hold nothing
/// of its own; the layout goes in in one transaction, under the database's lock. With
/// `--if-not-exists`, a database that already is a store of the layout is accepted as create
/// accepts one.
async fn into_existing(
    connector: &mut Connector,
    settings: &CreateSettings,
    started: Instant,
    ledger: &Ledger,
) -> Result<CreateReport, Error> {
    let name = settings.new_database.as_str();
    ledger.step("connecting to the existing database");
    let mut client = connector.connect(name).await?;
    if !settings.dry_run {
        ledger.step("waiting for the database's lock");
        lock::acquire(&client, lock::TARGET_LOCK, settings.lock_timeout).await?;
    }
    ledger.step("checking that the database is empty");
    let objects = provision::own_objects(&client).await?;
    if !objects.is_empty() {
        let is_store = objects
            .iter()
            .any(|o| o.ends_with(".events") || o.ends_with(".refinery_schema_history"));
        if settings.if_not_exists && is_store {
            drop(client);
            return existing(connector, settings, started).await;
        }
        return Err(Error::NotEmpty {
            database: name.to_string(),
            objects: objects.join(", "),
        });
    }
    let mut report = CreateReport {
        format_version: output::FORMAT_VERSION,
        database: name.to_string(),
        layout: settings.layout,
        action: CreateAction::DryRun,
        endpoint: connector.settings().endpoint(),
        migrations_applied: Vec::new(),
        duration_ms: 0,
        dry_run_text: None,
    };
    if settings.dry_run {
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    ledger.step("applying migrations");
    report.migrations_applied =
        provision::initialize_existing(&mut client, name, settings.layout, connector.user())
            .await?;
    report.action = CreateAction::Initialized;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// `--if-not-exists` found the database: verify it, and apply what it lacks.
async fn existing(
    connector: &mut Connector,
    settings: &CreateSettings,
    started: Instant,
) -> Result<CreateReport, Error> {
    let existing = upgrade::bring_existing_up_to_date(
        connector,
        settings.new_database.as_str(),
        settings.layout,
        settings.dry_run,
        settings.lock_timeout,
        settings.ddl_lock_timeout,
    )
    .await?;
    let (action, applied) = match existing {
        Existing::UpToDate => (CreateAction::Existed, Vec::new()),
        Existing::Pending => (CreateAction::DryRun, Vec::new()),
        Existing::Migrated(applied) => (CreateAction::Migrated, applied),
    };
    Ok(CreateReport {
        format_version: output::FORMAT_VERSION,
        database: settings.new_database.to_string(),
        layout: settings.layout,
        action,
        endpoint: connector.settings().endpoint(),
        migrations_applied: applied,
        duration_ms: started.elapsed().as_millis() as u64,
        dry_run_text: None,
    })
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
        checks.push("the dblink extension is available (whether this role may install it is tried in the database being built)".into());
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
