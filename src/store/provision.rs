//! A store in a database that already exists (`--into-existing`): what the database holds of
//! its own, and applying the whole layout into it in one transaction. New databases go through
//! [`crate::store::staging`] instead.

use std::fmt;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info_span, Instrument};

use crate::connect::Connector;
use crate::error::Error;
use crate::pg;
use crate::retry::{self, Backoff};
use crate::store::layout::{self, AppliedMigration, Layout, HISTORY_TABLE};

/// An object of a database's own (not PostgreSQL's, not an extension's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnObject {
    /// `table`, `function`, `type`, `schema` or `extension`.
    pub kind: String,
    /// Its schema (empty for schemas and extensions).
    pub schema: String,
    pub name: String,
}

impl OwnObject {
    /// Whether it is a table a slate store has in `public`: `events` or the history table.
    pub fn is_store_table(&self) -> bool {
        self.kind == "table"
            && self.schema == "public"
            && (self.name == "events" || self.name == HISTORY_TABLE)
    }
}

impl fmt::Display for OwnObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.schema.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}.{}", self.kind, self.schema, self.name)
        }
    }
}

/// Objects of the database's own (at most ten): tables, views,
/// sequences, functions, types, schemas and extensions that are not PostgreSQL's defaults. An
/// installed `dblink` is welcome (it is how a DBA hands a source its extension).
pub async fn own_objects(client: &Client) -> Result<Vec<OwnObject>, Error> {
    const QUERY: &str = "
WITH ext AS (SELECT objid FROM pg_catalog.pg_depend WHERE deptype = 'e'),
     own_ns AS (SELECT oid, nspname FROM pg_catalog.pg_namespace
                 WHERE nspname NOT IN ('pg_catalog', 'information_schema')
                   AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%')
SELECT kind, schema, name FROM (
  SELECT 'table' AS kind, n.nspname::text AS schema, c.relname::text AS name FROM pg_catalog.pg_class c JOIN own_ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.oid NOT IN (SELECT objid FROM ext)
  UNION ALL
  SELECT 'function', n.nspname::text, p.proname::text FROM pg_catalog.pg_proc p JOIN own_ns n ON n.oid = p.pronamespace
   WHERE p.oid NOT IN (SELECT objid FROM ext)
  UNION ALL
  SELECT 'type', n.nspname::text, t.typname::text FROM pg_catalog.pg_type t JOIN own_ns n ON n.oid = t.typnamespace
   WHERE t.typrelid = 0 AND t.typelem = 0 AND t.oid NOT IN (SELECT objid FROM ext)
  UNION ALL
  SELECT 'schema', '', nspname::text FROM own_ns WHERE nspname <> 'public'
  UNION ALL
  SELECT 'extension', '', extname::text FROM pg_catalog.pg_extension WHERE extname NOT IN ('plpgsql', 'dblink')
) own ORDER BY 1, 2, 3 LIMIT 10";
    let rows = client
        .query(QUERY, &[])
        .await
        .map_err(|e| Error::query("looking for objects in the existing database", &e))?;
    Ok(rows
        .iter()
        .map(|r| OwnObject {
            kind: r.get(0),
            schema: r.get(1),
            name: r.get(2),
        })
        .collect())
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
    layout::log_applied(&applied);
    Ok(applied)
}

/// Whether the database's only object of its own is an empty history table: what an
/// `--into-existing` run leaves when it is killed after refinery created the table (refinery
/// commits it before the migrations' transaction). Such a database still counts as empty.
pub async fn only_an_empty_history(client: &Client, objects: &[OwnObject]) -> Result<bool, Error> {
    let [only] = objects else {
        return Ok(false);
    };
    if !(only.kind == "table" && only.schema == "public" && only.name == HISTORY_TABLE) {
        return Ok(false);
    }
    client
        .query_one(
            &format!("SELECT NOT EXISTS (SELECT 1 FROM public.{HISTORY_TABLE})"),
            &[],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|e| Error::query("reading the history table", &e))
}

/// After a failed or interrupted `--into-existing`: removes the empty history table the run
/// left, reconnecting across a lost connection, so the database is as it was. Says what it did.
pub async fn undo_into_existing(connector: &mut Connector, database: &str) -> Option<String> {
    let mut backoff = Backoff::new(retry::CLEANUP, Some(retry::CLEANUP_DEADLINE));
    loop {
        let last = match connector.connect(database).await {
            Ok(client) => match remove_empty_history(&client).await {
                Ok(done) => return Some(done),
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        if !backoff.pause().await {
            tracing::warn!(%last, "could not check \"{database}\" after the failed run");
            return Some(format!(
                "checking \"{database}\" afterwards failed ({last}): if it holds only an empty {HISTORY_TABLE} table, drop that table, then run again"
            ));
        }
    }
}

async fn remove_empty_history(client: &Client) -> Result<String, Error> {
    let objects = own_objects(client).await?;
    if objects.is_empty() {
        return Ok("the database is as it was".into());
    }
    if only_an_empty_history(client, &objects).await? {
        client
            .batch_execute(&format!("DROP TABLE public.{HISTORY_TABLE}"))
            .await
            .map_err(|e| Error::query("removing the empty history table", &e))?;
        tracing::info!("removed the empty history table the run had created");
        return Ok(format!(
            "the empty {HISTORY_TABLE} table the run had created was removed; the database is as it was"
        ));
    }
    Ok("the database was left as it is".into())
}
