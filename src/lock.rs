//! Advisory locks: every command that changes a database holds one for its whole run, so two
//! runs at once take turns instead of colliding (refinery takes no lock of its own).

use std::time::Duration;

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::error::Error;
use crate::retry::{self, Backoff};

/// The first key of every init-slate-db advisory lock ("slate" in hex speak).
const LOCK_NAMESPACE: i32 = 0x51A7E;

/// The default for `--lock-timeout`, in seconds.
pub const DEFAULT_LOCK_TIMEOUT_SECS: &str = "60";

/// The default for `--ddl-lock-timeout`, in milliseconds: how long writers may queue behind a
/// migration's lock request at a time.
pub const DEFAULT_DDL_LOCK_TIMEOUT_MS: &str = "2000";

/// The lock in a store's own database that every command changing it holds (`migrate`,
/// `adopt`, `create --if-not-exists`, `restore --into-existing`), and that `status` takes shared
/// so that it never reads the catalog in the middle of their DDL. Runs creating or restoring a
/// new store exclude each other by its temporary database instead (see `store::staging`).
pub const TARGET_LOCK: &str = "migrate";

/// How long a command waits on other sessions: the two timeouts every changing command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// `--lock-timeout`: for another run's lock or build, and overall for a migration's table
    /// locks.
    pub lock_timeout: Duration,
    /// `--ddl-lock-timeout`: the longest one attempt of a migration queues for a table lock,
    /// and so holds writers up.
    pub ddl_lock_timeout: Duration,
}

/// Takes the session-level advisory lock named `name` on `client`'s database, waiting up to
/// `timeout` and logging who holds it. Released when the connection closes.
pub async fn acquire(client: &Client, name: &str, timeout: Duration) -> Result<(), Error> {
    take(client, name, timeout, false).await
}

/// The same lock, shared: many readers at once, none while a writer holds it.
pub async fn acquire_shared(client: &Client, name: &str, timeout: Duration) -> Result<(), Error> {
    take(client, name, timeout, true).await
}

async fn take(client: &Client, name: &str, timeout: Duration, shared: bool) -> Result<(), Error> {
    let try_lock = if shared {
        "SELECT pg_try_advisory_lock_shared($1, hashtext($2))"
    } else {
        "SELECT pg_try_advisory_lock($1, hashtext($2))"
    };
    let mut backoff = Backoff::new(retry::WAIT_FOR_OTHER_RUN, Some(timeout));
    let mut logged_holder = None;
    loop {
        let locked: bool = client
            .query_one(try_lock, &[&LOCK_NAMESPACE, &name])
            .await
            .map_err(|e| lock_query_error(name, e))?
            .get(0);
        if locked {
            if logged_holder.is_some() {
                info!(
                    lock = name,
                    waited_ms = backoff.elapsed().as_millis() as u64,
                    "lock acquired"
                );
            }
            return Ok(());
        }
        let holder = holder(client, name).await?;
        if logged_holder.as_ref() != Some(&holder) {
            warn!(lock = name, holder = %holder, "waiting for another run to release the lock");
            logged_holder = Some(holder.clone());
        }
        if !backoff.pause().await {
            return Err(Error::LockTimeout {
                lock: name.to_string(),
                holder,
                timeout_secs: timeout.as_secs(),
            });
        }
    }
}

/// Describes the session holding the lock: pid, user, application, client address.
async fn holder(client: &Client, name: &str) -> Result<String, Error> {
    let row = client
        .query_opt(
            "SELECT a.pid, COALESCE(a.usename::text, '?'), COALESCE(NULLIF(a.application_name, ''), '?'),
                    COALESCE(host(a.client_addr), 'local socket')
               FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.mode IN ('ExclusiveLock', 'ShareLock') AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.classid = $1::int4::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2
              LIMIT 1",
            &[&LOCK_NAMESPACE, &name],
        )
        .await
        .map_err(|e| lock_query_error(name, e))?;
    Ok(match row {
        Some(row) => format!(
            "pid {} (user {}, application {}, from {})",
            row.get::<_, i32>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3)
        ),
        None => "a session that just released it".into(),
    })
}

fn lock_query_error(name: &str, error: tokio_postgres::Error) -> Error {
    Error::query(format!("taking the advisory lock {name:?}"), &error)
}
