//! Making a new store: the read-only checks before anything is created, CREATE DATABASE,
//! applying the layout, and removing what a failed run created. Shared by `create` and
//! `restore`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, info_span, warn, Instrument};

use crate::connect::Connector;
use crate::error::Error;
use crate::identifier::Identifier;
use crate::pg::{self, PgFailure};
use crate::shutdown::Shutdown;
use crate::store::layout::{self, AppliedMigration, Layout};

/// Template databases whose dblink a non-superuser could inherit.
const TEMPLATE_DATABASE: &str = "template1";

/// The read-only checks: the database must not exist, the role must be able to create it, and
/// for a source database dblink must be installable. Runs in dry runs too.
pub async fn preflight(
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
pub async fn create_database(
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

/// Applies the layout to a database this run just created. If that fails or is interrupted,
/// drops the database (unless `keep`) and says so in the error.
pub async fn initialize_or_clean_up(
    maintenance: &Client,
    shutdown: &Shutdown,
    connector: &mut Connector,
    database: &Identifier,
    layout: Layout,
    keep: bool,
) -> Result<Vec<AppliedMigration>, Error> {
    let started = Instant::now();
    let _guard = shutdown.guard();
    let step = Cell::new("connecting to the new database");
    let outcome = tokio::select! {
        result = initialize(connector, database, layout, &step) => result.map_err(Some),
        () = shutdown.requested() => Err(None),
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
pub async fn clean_up(maintenance: &Client, database: &Identifier, keep: bool) -> String {
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
