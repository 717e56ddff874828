//! The steps of building a new store, in order: [`check`] (read-only, dry runs stop after it),
//! then [`Checked::build`]: claim the name under a temporary database, apply the layout, let
//! the command fill the store (restore's copy), and publish it under its name. What a failed
//! or interrupted build leaves is removed by [`super::discard`], which the command's guarded
//! runner calls.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, info_span, Instrument};

use super::{claim, keeper, publish, Claim, Ledger, Staged};
use crate::connect::Connector;
use crate::error::Error;
use crate::hooks;
use crate::identifier::Identifier;
use crate::pg;
use crate::store::layout::{self, AppliedMigration, Layout};
use crate::store::lifecycle;

/// A new store whose checks passed: the maintenance session stays open for the build (while it
/// lives, other runs know this run is alive).
pub struct Checked {
    maintenance: Client,
    name: Identifier,
    layout: Layout,
}

/// How the build ended.
pub enum Staging<T> {
    /// The store is complete under its name: the migrations applied, and what the fill step
    /// returned.
    Published {
        applied: Vec<AppliedMigration>,
        filled: T,
    },
    /// The name exists: another run finished a store under it while this one waited.
    NameTaken,
}

/// The read-only checks before anything is created: the name is free, the role may create
/// databases, and a source's dblink is available. Runs in dry runs too.
pub async fn check(
    connector: &mut Connector,
    ledger: &Ledger,
    name: &Identifier,
    layout: Layout,
) -> Result<Checked, Error> {
    ledger.step("connecting");
    let maintenance_db = ledger.state().maintenance_db;
    let maintenance = connector.connect(&maintenance_db).await?;
    ledger.step("checking the role and the name");
    lifecycle::check_writable(&maintenance, &connector.settings().endpoint()).await?;
    preflight(&maintenance, connector, name, layout)
        .instrument(info_span!("preflight", database = %name))
        .await?;
    Ok(Checked {
        maintenance,
        name: name.clone(),
        layout,
    })
}

impl Checked {
    /// Claims the name, applies the layout, runs `fill` on the complete layout (with the
    /// temporary database's name), and publishes the store. On failure the build is left for
    /// [`super::discard`].
    pub async fn build<T>(
        self,
        connector: &mut Connector,
        lock_timeout: Duration,
        ledger: &Ledger,
        fill: impl AsyncFnOnce(&mut Connector, &Staged) -> Result<T, Error>,
    ) -> Result<Staging<T>, Error> {
        let Checked {
            mut maintenance,
            name,
            layout,
        } = self;
        let maintenance_db = ledger.maintenance_db();
        ledger.step("waiting for the name");
        let keeper_client = connector.connect(&maintenance_db).await?;
        let keeper_session = keeper::identify(&keeper_client).await?;
        let claimed = claim(
            &maintenance,
            keeper_session,
            connector,
            &name,
            lock_timeout,
            ledger,
        )
        .instrument(info_span!("claim", database = %name))
        .await?;
        let staged = match claimed {
            Claim::Staging(staged) => staged,
            Claim::NameTaken => return Ok(Staging::NameTaken),
        };
        // Stops with this future: on success, failure or a signal alike.
        let _keeper = keeper::spawn(
            keeper_client,
            connector.duplicate(),
            maintenance_db.clone(),
            (*staged).clone(),
        );
        hooks::pause("created", None).await;
        let applied = initialize(connector, &staged, layout, ledger).await?;
        let filled = fill(connector, &staged).await?;
        ledger.step("publishing the store under its name");
        hooks::pause("publishing", None).await;
        // The maintenance session sat idle through the build: if something ended it, publish
        // on a new one.
        if maintenance.simple_query("SELECT 1").await.is_err() {
            maintenance = connector.connect(&maintenance_db).await?;
        }
        publish(
            &maintenance,
            &staged,
            &connector.settings().endpoint(),
            ledger,
        )
        .await?;
        Ok(Staging::Published { applied, filled })
    }
}

/// The checks of [`check`] on an open maintenance session.
async fn preflight(
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
        .map_err(|e| Error::query("checking the role and the database name", &e))?;
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
        // Whether this role may install it (a superuser; a trusted extension; a managed
        // service's own grant: rds_superuser, cloudsqlsuperuser, an allow-list) is learned by
        // trying, in the database being built: a refusal there leaves nothing behind.
        info!(superuser, "dblink is available on the server");
    }
    Ok(())
}

/// Applies the layout to the temporary database, and closes the connection (the rename needs
/// the database free of sessions). Errors name the step; the caller removes the build.
async fn initialize(
    connector: &mut Connector,
    staged: &Staged,
    layout: Layout,
    ledger: &Ledger,
) -> Result<Vec<AppliedMigration>, Error> {
    let started = Instant::now();
    let failed = |step: &str, failure: String| Error::Initialization {
        database: staged.requested.to_string(),
        layout: layout.name(),
        step: step.to_string(),
        failure,
    };
    ledger.step("connecting to the new database");
    let mut client = connector
        .connect(&staged.temp)
        .await
        .map_err(|e| failed("connecting to the new database", e.to_string()))?;
    ledger.step("applying migrations");
    hooks::pause("migrating", Some(&client)).await;
    let applied = layout::apply(&mut client, layout, None)
        .instrument(info_span!("migrate", database = %staged.temp, layout = %layout))
        .await
        .map_err(|e| {
            let failure = pg::failure_in_chain(&*e);
            if failure.is(&SqlState::INSUFFICIENT_PRIVILEGE) && layout.needs_dblink() {
                return Error::MissingPrivilege(format!(
                    "role \"{}\" may not install the dblink extension that a source database needs: {failure}; run as a superuser, have the service grant it (rds_superuser, cloudsqlsuperuser, an allow-list), or have a superuser run CREATE EXTENSION dblink in template1",
                    connector.user()
                ));
            }
            failed("applying migrations", failure.to_string())
        })?;
    layout::log_applied(&applied);
    info!(
        database = %staged.requested,
        layout = %layout,
        versions = %applied.iter().map(|m| format!("V{}", m.version)).collect::<Vec<_>>().join(","),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "database initialized"
    );
    Ok(applied)
}
