//! The create job: a short script over the staging pipeline ([`crate::store::staging`]):
//! check, build the store under a temporary name, publish it under its own, and remove what a
//! failed or interrupted run created. `--if-not-exists` on an existing store goes the lifecycle
//! path instead, and `--into-existing` applies the layout into an existing, empty database.

use std::time::{Duration, Instant};

use tracing::{info, info_span, Instrument};

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::guarded::guarded;
use crate::identifier::Identifier;
use crate::lock::Waits;
use crate::output::{self, CreateAction, CreatePlan, CreateReport, OutputFormat, PlannedMigration};
use crate::shutdown::Shutdown;
use crate::store::layout::{AppliedMigration, Layout};
use crate::store::lifecycle::{self, Upgrade};
use crate::store::provision;
use crate::store::staging::{self, Ledger, Staging};

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
    /// `--lock-timeout` for another run creating the same name; both for `--if-not-exists`.
    pub waits: Waits,
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
    // Held until the report is printed: a signal then is the runner's, not an unguarded exit.
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
    let cancellers = [connector.canceller()];
    let ledger = Ledger::new(&settings.maintenance_db);
    let report = guarded(
        shutdown,
        &cancellers,
        || ledger.current_step(),
        &mut connector,
        async |connector| create(connector, &settings, &ledger).await,
        async |connector, error| {
            let span = info_span!("cleanup", database = %settings.new_database);
            let cleanup = if !settings.into_existing {
                staging::discard(connector, &ledger, settings.keep_on_failure)
                    .instrument(span)
                    .await
            } else if ledger.touched() {
                provision::undo_into_existing(connector, settings.new_database.as_str())
                    .instrument(span)
                    .await
            } else {
                None
            };
            error.cleaned_up(cleanup)
        },
    )
    .await?;
    output::emit(&report, settings.format)
}

/// The steps: checks, the name claimed under a temporary database, the layout applied there,
/// then the rename that publishes the complete store.
async fn create(
    connector: &mut Connector,
    settings: &CreateSettings,
    ledger: &Ledger,
) -> Result<CreateReport, Error> {
    let started = Instant::now();
    if settings.into_existing {
        return into_existing(connector, settings, started, ledger).await;
    }
    let name = &settings.new_database;
    let checked = match staging::check(connector, ledger, name, settings.layout).await {
        Err(Error::DatabaseExists { .. }) if settings.if_not_exists => {
            return existing(connector, settings, started).await;
        }
        other => other?,
    };
    if settings.dry_run {
        let plan = dry_run_plan(connector, &settings.maintenance_db, name, settings.layout);
        info!("dry run: all checks passed; nothing was created or changed");
        return Ok(report(
            settings,
            connector,
            CreateAction::DryRun,
            Vec::new(),
            started,
        )
        .with_plan(plan));
    }
    let built = checked
        .build(
            connector,
            settings.waits.lock_timeout,
            ledger,
            async |_, _| Ok(()),
        )
        .await?;
    match built {
        Staging::Published { applied, .. } => Ok(report(
            settings,
            connector,
            CreateAction::Created,
            applied,
            started,
        )),
        // Another run finished a store under this name while this one waited.
        Staging::NameTaken if settings.if_not_exists => {
            existing(connector, settings, started).await
        }
        Staging::NameTaken => Err(Error::DatabaseExists {
            database: name.to_string(),
            endpoint: connector.settings().endpoint(),
        }),
    }
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
    let mut client = lifecycle::connect_locked(
        connector,
        name,
        &settings.maintenance_db,
        settings.dry_run,
        settings.waits.lock_timeout,
    )
    .await?;
    ledger.step("checking that the database is empty");
    let mut objects = provision::own_objects(&client).await?;
    if provision::only_an_empty_history(&client, &objects).await? {
        info!("the database holds only an empty history table, left by an interrupted run: it counts as empty");
        objects.clear();
    }
    if !objects.is_empty() {
        if settings.if_not_exists && objects.iter().any(|o| o.is_store_table()) {
            drop(client);
            return existing(connector, settings, started).await;
        }
        return Err(Error::NotEmpty {
            database: name.to_string(),
            objects: objects
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if settings.dry_run {
        return Ok(report(
            settings,
            connector,
            CreateAction::DryRun,
            Vec::new(),
            started,
        ));
    }
    ledger.touch("applying migrations");
    let applied =
        provision::initialize_existing(&mut client, name, settings.layout, connector.user())
            .await?;
    Ok(report(
        settings,
        connector,
        CreateAction::Initialized,
        applied,
        started,
    ))
}

/// `--if-not-exists` found the database: verify it, and apply what it lacks.
async fn existing(
    connector: &mut Connector,
    settings: &CreateSettings,
    started: Instant,
) -> Result<CreateReport, Error> {
    let target = lifecycle::Target {
        database: settings.new_database.as_str(),
        maintenance_db: &settings.maintenance_db,
        layout: Some(settings.layout),
        dry_run: settings.dry_run,
        waits: settings.waits,
    };
    let upgrade = lifecycle::upgrade(connector, &target, "--if-not-exists refused").await?;
    let (action, applied) = match upgrade {
        Upgrade::UpToDate(_) => (CreateAction::Existed, Vec::new()),
        Upgrade::Pending(_) => (CreateAction::DryRun, Vec::new()),
        Upgrade::Migrated { applied, .. } => (CreateAction::Migrated, applied),
    };
    Ok(report(settings, connector, action, applied, started))
}

fn report(
    settings: &CreateSettings,
    connector: &Connector,
    action: CreateAction,
    migrations_applied: Vec<AppliedMigration>,
    started: Instant,
) -> CreateReport {
    CreateReport {
        format_version: output::FORMAT_VERSION,
        database: settings.new_database.to_string(),
        layout: settings.layout,
        action,
        endpoint: connector.settings().endpoint(),
        migrations_applied,
        duration_ms: elapsed_ms(started),
        plan: None,
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The dry run's parameters, checks and migrations.
fn dry_run_plan(
    connector: &Connector,
    maintenance_db: &str,
    database: &Identifier,
    layout: Layout,
) -> CreatePlan {
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
    let connect_timeout: Duration = settings.connect_timeout;
    CreatePlan {
        parameters: vec![
            ("host".into(), settings.host.clone()),
            ("port".into(), settings.port.to_string()),
            ("user".into(), connector.user().to_string()),
            ("password".into(), password.to_string()),
            (
                "connect timeout".into(),
                format!("{} ms", connect_timeout.as_millis()),
            ),
            ("maintenance database".into(), maintenance_db.to_string()),
            ("new database".into(), database.to_string()),
            ("table type".into(), layout.to_string()),
        ],
        checks,
        database: database.to_string(),
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
