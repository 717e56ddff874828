//! The life of an existing store, one path for `migrate`, `adopt` and `create --if-not-exists`:
//! [`open`] connects, takes the store's lock and audits it; [`bring_up_to_date`] applies what is
//! pending, or refuses. Each command maps the [`Upgrade`] to its own report.

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, info_span, warn, Instrument};

use crate::connect::Connector;
use crate::error::Error;
use crate::lock::{self, Waits};
use crate::pg;
use crate::retry::{self, Backoff};
use crate::store::audit::{self, Audit, Verdict};
use crate::store::layout::{self, AppliedMigration, Layout};

/// The database CREATE DATABASE connects to when no other is named: never a store.
pub const DEFAULT_MAINTENANCE_DB: &str = "postgres";

/// Connects to `database`, refuses it if a store must not be made of it or the server cannot
/// be written (dry runs too: they say what the real run would), and, unless this is a dry run,
/// takes its lock ([`lock::TARGET_LOCK`]) for the rest of the session.
pub async fn connect_locked(
    connector: &mut Connector,
    database: &str,
    maintenance_db: &str,
    dry_run: bool,
    lock_timeout: Duration,
) -> Result<Client, Error> {
    let client = connector.connect(database).await?;
    check_writable(&client, &connector.settings().endpoint()).await?;
    let template: bool = client
        .query_one(
            "SELECT datistemplate FROM pg_catalog.pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| Error::query("checking whether the database is a template", &e))?
        .get(0);
    let why = if template {
        Some("a template database (datistemplate): every database created afterwards would copy the store")
    } else if database == maintenance_db {
        Some("the maintenance database, which CREATE DATABASE and other tools connect to")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(Error::Protected {
            database: database.to_string(),
            why: why.to_string(),
        });
    }
    if !dry_run {
        lock::acquire(&client, lock::TARGET_LOCK, lock_timeout).await?;
    }
    Ok(client)
}

/// An existing store a command works on, and how.
pub struct Target<'a> {
    pub database: &'a str,
    /// Never made a store (see [`connect_locked`]).
    pub maintenance_db: &'a str,
    /// The layout it must have, if given.
    pub layout: Option<Layout>,
    pub dry_run: bool,
    pub waits: Waits,
}

/// [`connect_locked`], then the audit (after the lock, so no other run's DDL is half-seen),
/// refusing a store of the other layout than the target's.
pub async fn open(
    connector: &mut Connector,
    target: &Target<'_>,
) -> Result<(Client, Audit), Error> {
    let client = connect_locked(
        connector,
        target.database,
        target.maintenance_db,
        target.dry_run,
        target.waits.lock_timeout,
    )
    .await?;
    let audit = audit::audit(&client, target.database, target.layout).await?;
    check_layout(&audit, target.layout)?;
    Ok((client, audit))
}

/// [`open`] and [`bring_up_to_date`]: the whole of `migrate` and of `--if-not-exists` on an
/// existing store.
pub async fn upgrade(
    connector: &mut Connector,
    target: &Target<'_>,
    refused_as: &str,
) -> Result<Upgrade, Error> {
    let (mut client, audit) = open(connector, target).await?;
    bring_up_to_date(&mut client, audit, target.dry_run, target.waits, refused_as).await
}

/// Refuses a server or session that cannot write: a hot standby, or a role or database whose
/// `default_transaction_read_only` is on.
pub async fn check_writable(client: &Client, endpoint: &str) -> Result<(), Error> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only') = 'on'",
            &[],
        )
        .await
        .map_err(|e| Error::query("checking whether the server accepts writes", &e))?;
    let (standby, read_only): (bool, bool) = (row.get(0), row.get(1));
    let why = if standby {
        "a hot standby, in recovery"
    } else if read_only {
        "default_transaction_read_only is on for this role or database"
    } else {
        return Ok(());
    };
    Err(Error::ReadOnly {
        endpoint: endpoint.to_string(),
        why: why.to_string(),
    })
}

/// What bringing a verified store up to date did.
pub enum Upgrade {
    /// Nothing to do.
    UpToDate(Audit),
    /// Migrations are pending; a dry run applied nothing.
    Pending(Audit),
    /// The pending migrations were applied; the store was audited again after.
    Migrated {
        applied: Vec<AppliedMigration>,
        after: Audit,
    },
}

/// Applies the pending migrations of an audited store (none in a dry run); a store that is
/// neither up to date nor pending is refused, the message starting with `refused_as`.
pub async fn bring_up_to_date(
    client: &mut Client,
    audit: Audit,
    dry_run: bool,
    waits: Waits,
    refused_as: &str,
) -> Result<Upgrade, Error> {
    match audit.layout_verdict {
        Verdict::UpToDate => {
            info!(
                "database \"{}\" is a verified, up-to-date store: nothing to do",
                audit.database
            );
            Ok(Upgrade::UpToDate(audit))
        }
        Verdict::Pending if dry_run => Ok(Upgrade::Pending(audit)),
        Verdict::Pending => {
            let (applied, after) = apply_pending(client, &audit, waits).await?;
            Ok(Upgrade::Migrated { applied, after })
        }
        _ => Err(audit.refusal(refused_as)),
    }
}

/// Applies the pending migrations of a verified database in one transaction, then audits it
/// again: the result must be up to date. Returns what was applied and that audit.
///
/// A store in use has writers and readers on `events`: each attempt waits at most
/// `waits.ddl_lock_timeout` for a table lock (so a queued lock request never holds writers up
/// for longer), is rolled back if it cannot get it, and is tried again with backoff until
/// `waits.lock_timeout`; then it gives up with exit 7, naming who held the lock.
pub async fn apply_pending(
    client: &mut Client,
    audit: &Audit,
    waits: Waits,
) -> Result<(Vec<AppliedMigration>, Audit), Error> {
    let layout = audit.layout.ok_or_else(|| {
        Error::Internal(format!(
            "database \"{}\" has no layout to migrate",
            audit.database
        ))
    })?;
    let versions = audit
        .pending_versions()
        .iter()
        .map(|v| format!("V{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut backoff = Backoff::new(retry::MIGRATION_LOCK, Some(waits.lock_timeout));
    let applied = loop {
        let attempt = backoff.attempt();
        let set = format!(
            "SET lock_timeout = {}",
            waits.ddl_lock_timeout.as_millis().max(1)
        );
        client
            .batch_execute(&set)
            .await
            .map_err(|e| Error::query("setting the lock timeout for the migration", &e))?;
        let result = layout::apply(client, layout, None)
            .instrument(
                info_span!("migrate", database = %audit.database, layout = %layout, attempt),
            )
            .await;
        // Back to the session's 0, not RESET: that would restore a role's lock_timeout.
        let _ = client.batch_execute("SET lock_timeout = 0").await;
        let failure = match result {
            Ok(applied) => break applied,
            Err(e) => pg::failure_in_chain(&*e),
        };
        if !failure.is(&SqlState::LOCK_NOT_AVAILABLE) {
            return Err(Error::MigrationFailed {
                database: audit.database.clone(),
                versions,
                failure,
            });
        }
        let holder = lock_holders(client).await;
        let Some(delay) = backoff.next_delay() else {
            return Err(Error::LockTimeout {
                lock: format!("table locks for {versions}"),
                holder,
                timeout_secs: waits.lock_timeout.as_secs(),
            });
        };
        warn!(
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            holder = %holder,
            "a table lock of the migration was not granted within {} ms: rolled back, writers were not held up; trying again",
            waits.ddl_lock_timeout.as_millis()
        );
        tokio::time::sleep(delay).await;
    };
    layout::log_applied(&applied);
    let after = audit::audit(client, &audit.database, Some(layout)).await?;
    if after.layout_verdict != Verdict::UpToDate {
        return Err(after.refusal("after migrating"));
    }
    Ok((applied, after))
}

/// The sessions holding locks on the layout's tables, for messages.
async fn lock_holders(client: &Client) -> String {
    let rows = client
        .query(
            "SELECT DISTINCT a.pid, COALESCE(a.usename::text, '?'), COALESCE(NULLIF(a.application_name, ''), '?'),
                    COALESCE(a.state, '?'), COALESCE(extract(epoch FROM now() - a.xact_start)::int, 0)
               FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
              WHERE l.granted AND l.locktype = 'relation' AND a.pid <> pg_backend_pid()
                AND l.relation IN (SELECT c.oid FROM pg_catalog.pg_class c
                                    WHERE c.relnamespace = 'public'::regnamespace AND c.relname IN ('events', 'id'))
              ORDER BY 1 LIMIT 5",
            &[],
        )
        .await;
    match rows {
        Ok(rows) if !rows.is_empty() => rows
            .iter()
            .map(|r| {
                format!(
                    "pid {} (user {}, application {}, {}, transaction open {} s)",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                    r.get::<_, i32>(4)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "a session that has since let go".into(),
    }
}

/// Refuses a database of the other layout than `-t` asks for.
pub fn check_layout(audit: &Audit, wanted: Option<Layout>) -> Result<(), Error> {
    match (audit.layout, wanted) {
        (Some(found), Some(wanted)) if found != wanted => Err(Error::WrongLayout {
            database: audit.database.clone(),
            found: found.name(),
            wanted: wanted.name(),
        }),
        _ => Ok(()),
    }
}
