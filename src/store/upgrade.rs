//! Bringing an existing store up to this build's layout: applying pending migrations after
//! the audit has verified the rest, and `create --if-not-exists` on an existing database.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, info_span, warn, Instrument};

use crate::connect::Connector;
use crate::error::Error;
use crate::lock;
use crate::pg;
use crate::store::audit::{self, Audit, Verdict};
use crate::store::layout::{self, AppliedMigration, Layout};

/// What `create --if-not-exists` found (and did) with an existing database.
pub enum Existing {
    /// A verified, up-to-date store of the layout: nothing to do.
    UpToDate,
    /// Verified, with pending migrations (a dry run applies nothing).
    Pending,
    /// Verified, and its pending migrations were applied.
    Migrated(Vec<AppliedMigration>),
}

/// `create --if-not-exists` on an existing database: nothing to do when it is a verified,
/// up-to-date store of `layout`; apply pending migrations when that is all it lacks; refuse
/// otherwise. Returns the action taken and what was applied.
pub async fn bring_existing_up_to_date(
    connector: &mut Connector,
    database: &str,
    layout: Layout,
    dry_run: bool,
    lock_timeout: Duration,
    ddl_lock_timeout: Duration,
) -> Result<Existing, Error> {
    let mut client = connector.connect(database).await?;
    if !dry_run {
        lock::acquire(&client, lock::TARGET_LOCK, lock_timeout).await?;
    }
    let audit = audit::audit(&client, database, Some(layout)).await?;
    check_layout(&audit, Some(layout))?;
    match audit.verdict {
        Verdict::UpToDate => {
            info!("database \"{database}\" exists and is a verified, up-to-date {layout} store: nothing to do");
            Ok(Existing::UpToDate)
        }
        Verdict::Pending if dry_run => Ok(Existing::Pending),
        Verdict::Pending => Ok(Existing::Migrated(
            apply_pending(
                &mut client,
                &audit,
                LockWaits {
                    per_attempt: ddl_lock_timeout,
                    deadline: lock_timeout,
                },
            )
            .await?
            .0,
        )),
        _ => Err(audit.refusal("--if-not-exists refused")),
    }
}

/// Applies the pending migrations of a verified database in one transaction, then audits it
/// again: the result must be up to date. Returns what was applied and that audit.
///
/// A store in use has writers and readers on `events`: each attempt waits at most
/// `waits.per_attempt` for a table lock (so a queued lock request never holds writers up for
/// longer), is rolled back if it cannot get it, and is tried again with backoff until
/// `waits.deadline`; then it gives up with exit 7, naming who held the lock.
pub async fn apply_pending(
    client: &mut Client,
    audit: &Audit,
    waits: LockWaits,
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
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    let applied = loop {
        let set = format!(
            "SET lock_timeout = {}",
            waits.per_attempt.as_millis().max(1)
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
        let _ = client.batch_execute("RESET lock_timeout").await;
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
        if started.elapsed() + delay >= waits.deadline {
            return Err(Error::LockTimeout {
                lock: format!("table locks for {versions}"),
                holder,
                timeout_secs: waits.deadline.as_secs(),
            });
        }
        warn!(
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            holder = %holder,
            "a table lock of the migration was not granted within {} ms: rolled back, writers were not held up; trying again",
            waits.per_attempt.as_millis()
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
        attempt += 1;
    };
    for m in &applied {
        info!(version = m.version, checksum = %m.checksum, "applied migration V{}__{}", m.version, m.name);
    }
    let after = audit::audit(client, &audit.database, Some(layout)).await?;
    if after.verdict != Verdict::UpToDate {
        return Err(after.refusal("after migrating"));
    }
    Ok((applied, after))
}

/// How a migration waits for the table locks of a store in use.
#[derive(Debug, Clone, Copy)]
pub struct LockWaits {
    /// The longest one attempt waits for a lock (`--ddl-lock-timeout`).
    pub per_attempt: Duration,
    /// When to give up (`--lock-timeout`).
    pub deadline: Duration,
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
