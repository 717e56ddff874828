//! Making a new store: the read-only checks before anything is created, and applying the layout
//! to the build's temporary database (see [`crate::store::build`]). Shared by `create` and
//! `restore`.

use std::time::Instant;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, info_span, Instrument};

use crate::connect::Connector;
use crate::error::Error;
use crate::hooks;
use crate::identifier::Identifier;
use crate::pg;
use crate::store::build::{Build, Ledger};
use crate::store::layout::{self, AppliedMigration, Layout};

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
        // Whether this role may install it (a superuser; a trusted extension; a managed
        // service's own grant: rds_superuser, cloudsqlsuperuser, an allow-list) is learned by
        // trying, in the database being built: a refusal there leaves nothing behind.
        info!(superuser, "dblink is available on the server");
    }
    Ok(())
}

/// Applies the layout to the build's temporary database, and closes the connection (the rename
/// needs the database free of sessions). Errors name the step; the caller removes the build.
pub async fn initialize(
    connector: &mut Connector,
    build: &Build,
    layout: Layout,
    ledger: &Ledger,
) -> Result<Vec<AppliedMigration>, Error> {
    let started = Instant::now();
    let failed = |step: &str, failure: String| Error::Initialization {
        database: build.requested.to_string(),
        layout: layout.name(),
        step: step.to_string(),
        failure,
        cleanup: String::new(),
    };
    ledger.step("connecting to the new database");
    let mut client = connector
        .connect(&build.temp)
        .await
        .map_err(|e| failed("connecting to the new database", e.to_string()))?;
    ledger.step("applying migrations");
    hooks::pause("migrating", Some(&client)).await;
    let applied = layout::apply(&mut client, layout, None)
        .instrument(info_span!("migrate", database = %build.temp, layout = %layout))
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
    for migration in &applied {
        info!(version = migration.version, checksum = %migration.checksum, "applied migration V{}__{}", migration.version, migration.name);
    }
    let versions: Vec<String> = applied.iter().map(|m| format!("V{}", m.version)).collect();
    info!(
        database = %build.requested,
        layout = %layout,
        versions = %versions.join(","),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "database initialized"
    );
    Ok(applied)
}

/// Objects of the database's own, as `kind schema.name` (at most ten): tables, views,
/// sequences, functions, types, schemas and extensions that are not PostgreSQL's defaults. An
/// installed `dblink` is welcome (it is how a DBA hands a source its extension).
pub async fn own_objects(client: &Client) -> Result<Vec<String>, Error> {
    const QUERY: &str = "
WITH ext AS (SELECT objid FROM pg_catalog.pg_depend WHERE deptype = 'e'),
     own_ns AS (SELECT oid, nspname FROM pg_catalog.pg_namespace
                 WHERE nspname NOT IN ('pg_catalog', 'information_schema')
                   AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%')
SELECT o FROM (
  SELECT 'table ' || n.nspname || '.' || c.relname AS o FROM pg_catalog.pg_class c JOIN own_ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.oid NOT IN (SELECT objid FROM ext)
  UNION ALL
  SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_catalog.pg_proc p JOIN own_ns n ON n.oid = p.pronamespace
   WHERE p.oid NOT IN (SELECT objid FROM ext)
  UNION ALL
  SELECT 'type ' || n.nspname || '.' || t.typname FROM pg_catalog.pg_type t JOIN own_ns n ON n.oid = t.typnamespace
   WHERE t.typrelid = 0 AND t.typelem = 0 AND t.oid NOT IN (SELECT objid FROM ext)
  UNION ALL
  SELECT 'schema ' || nspname FROM own_ns WHERE nspname <> 'public'
  UNION ALL
  SELECT 'extension ' || extname FROM pg_catalog.pg_extension WHERE extname NOT IN ('plpgsql', 'dblink')
) own ORDER BY 1 LIMIT 10";
    let rows = client.query(QUERY, &[]).await.map_err(|e| Error::Query {
        step: "looking for objects in the existing database".into(),
        failure: e.into(),
    })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Applies the whole layout to an existing, empty database in one transaction; a role that may
/// not install dblink there is refused with nothing changed.
pub async fn initialize_existing(
    client: &mut Client,
    database: &str,
    layout: Layout,
    user: &str,
) -> Result<Vec<AppliedMigration>, Error> {
    let outcome = layout::apply(client, layout, None)
        .instrument(info_span!("migrate", database = %database, layout = %layout))
        .await;
    if outcome.is_err() {
        // refinery creates its history table before the migrations' transaction: in a database
        // that was empty, it goes too, so a refusal leaves the database as it was.
        let _ = client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS public.{}",
                layout::HISTORY_TABLE
            ))
            .await;
    }
    let applied = outcome
        .map_err(|e| {
            let failure = pg::failure_in_chain(&*e);
            if failure.is(&SqlState::INSUFFICIENT_PRIVILEGE) {
                return Error::MissingPrivilege(format!(
                    "role \"{user}\" may not initialize \"{database}\": {failure}; nothing was changed (a source needs dblink: have a superuser run CREATE EXTENSION dblink in it first)"
                ));
            }
            Error::MigrationFailed {
                database: database.to_string(),
                versions: format!("V1-V{}", layout.latest_version()),
                failure,
            }
        })?;
    for migration in &applied {
        info!(version = migration.version, checksum = %migration.checksum, "applied migration V{}__{}", migration.version, migration.name);
    }
    Ok(applied)
}
