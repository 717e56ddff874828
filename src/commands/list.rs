//! `list`: every slate store on the server at a glance: layout, applied and latest version,
//! the audit's verdict, number of events (from `max(id)`, no count scan) and size. Databases
//! the role may not connect to are listed as such; builds in progress or abandoned too.

use tracing::warn;

use crate::connect::{ConnectionSettings, Connector};
use crate::error::Error;
use crate::output::{self, ListReport, OutputFormat, StoreEntry};
use crate::store::audit::{self, Verdict};
use crate::store::follow;
use crate::store::staging::{self, TEMP_PREFIX};

/// Validated settings of `list`.
pub struct ListSettings {
    /// The database to connect to first (the --url's, else postgres).
    pub database: String,
    pub format: OutputFormat,
}

/// Runs `list`.
pub async fn run(connection: ConnectionSettings, settings: ListSettings) -> Result<(), Error> {
    let mut connector = Connector::new(connection)?;
    let client = connector.connect(&settings.database).await?;
    let rows = client
        .query(
            "SELECT datname::text, has_database_privilege(datname, 'CONNECT'),
                    CASE WHEN has_database_privilege(datname, 'CONNECT') THEN pg_database_size(oid) END
               FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| Error::query("listing the server's databases", &e))?;
    let leftovers = staging::leftovers(&client).await?;
    let mut stores = Vec::new();
    for row in rows {
        let database: String = row.get(0);
        let may_connect: bool = row.get(1);
        let size_bytes: Option<i64> = row.get(2);
        let mut entry = StoreEntry {
            database: database.clone(),
            layout: None,
            applied_version: None,
            latest_version: None,
            verdict: None,
            events: None,
            size_bytes,
            note: None,
            followed_by: Vec::new(),
            follows: Vec::new(),
        };
        if database.starts_with(TEMP_PREFIX) {
            if let Some(leftover) = leftovers.iter().find(|l| l.database == database) {
                entry.note = Some(format!(
                    "temporary database of a build of \"{}\" ({})",
                    leftover.requested.as_deref().unwrap_or("?"),
                    leftover.state
                ));
                stores.push(entry);
            }
            continue;
        }
        if !may_connect {
            entry.note = Some("no access: the role may not connect".into());
            stores.push(entry);
            continue;
        }
        let store = match connector.connect(&database).await {
            Ok(store) => store,
            Err(error) => {
                entry.note = Some(format!("no access: {error}"));
                stores.push(entry);
                continue;
            }
        };
        let is_slate: bool = store
            .query_one(
                "SELECT to_regclass('public.events') IS NOT NULL OR to_regclass('public.refinery_schema_history') IS NOT NULL",
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(false);
        if !is_slate {
            continue;
        }
        match audit::audit(&store, &database, None).await {
            Ok(audit) => {
                entry.layout = audit.layout;
                entry.applied_version = Some(audit.applied_version);
                entry.latest_version = Some(audit.latest_version);
                entry.verdict = Some(audit.verdict);
                if audit.verdict == Verdict::NotSlate {
                    continue;
                }
            }
            Err(error) => {
                warn!(database = %database, "audit failed: {error}");
                entry.note = Some(format!("not audited: {error}"));
            }
        }
        entry.events = store
            .query_one(
                "SELECT COALESCE(max(id), 0)::bigint FROM public.events",
                &[],
            )
            .await
            .ok()
            .and_then(|r| r.try_get(0).ok());
        let replication = follow::replication(&store).await;
        if let Some(source) = replication.source {
            entry.followed_by = source
                .slots
                .into_iter()
                .map(|s| s.follower.unwrap_or(s.slot))
                .collect();
        }
        entry.follows = replication
            .subscriptions
            .into_iter()
            .map(|s| s.source.unwrap_or(s.subscription))
            .collect();
        stores.push(entry);
    }
    output::emit(
        &ListReport {
            format_version: output::FORMAT_VERSION,
            endpoint: connector.settings().endpoint(),
            stores,
        },
        settings.format,
    )
}
