//! The staging pipeline: a new store is built under a temporary name of the tool's own and
//! renamed to the requested name only when it is complete, so the requested name never exists
//! half-made, whatever ends the run. `create` and `restore` are short scripts over
//! [`pipeline::check`] and [`pipeline::Checked::build`]: claim → initialize → fill → publish,
//! with [`discard`] run by the command's guarded runner on any failure.
//!
//! - The temporary name is `slate_tmp_` and 16 hex digits of the SHA-256 of the requested
//!   name: the same for every run for that name, on every maintenance database. PostgreSQL's
//!   unique database names make it a server-wide lock per name: a second run's CREATE DATABASE
//!   fails with 42P04, and it waits for the first.
//! - Its `COMMENT ON DATABASE` is a JSON [`Marker`]: the requested name, the tool's version, the
//!   host and pid of the run, its start time, a run id, and the run's keeper session (backend
//!   pid and start; see [`keeper`]), which reconnects if it is ended under a live run. A build
//!   whose keeper session stays gone for [`ABANDON_GRACE`] is over: a later run for the name
//!   removes it. A database under the reserved name without the tool's marker for that name is
//!   someone else's: it is never removed, and runs for the name are refused (exit 22).
//! - Clean-up finds the database by the OID recorded when it was created and checks the run id
//!   in its marker, so it never removes a database it did not create; it reconnects with
//!   backoff for up to [`retry::CLEANUP_DEADLINE`] if the connection was lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::connect::Connector;
use crate::error::Error;
use crate::hooks;
use crate::identifier::Identifier;
use crate::pg::{quote_identifier, quote_literal, PgFailure};
use crate::retry::{self, Backoff};

mod cleanup;
mod holders;
mod keeper;
pub mod pipeline;

pub use cleanup::discard;
use cleanup::drop_by_oid;
use holders::{examine, Holder};
pub use holders::{leftovers, Leftover, LeftoverState};
pub use pipeline::{check, Checked, Staging};

/// Every temporary database's name starts with this.
pub const TEMP_PREFIX: &str = "slate_tmp_";

/// How long a temporary database may go without its marker before it counts as someone else's
/// (its creator sets the marker right after CREATE DATABASE).
const UNMARKED_GRACE: Duration = Duration::from_secs(5);

/// How long a build's keeper session must be seen gone before another run removes the build:
/// a live run's keeper reconnects well within it (see [`keeper`]), a dead run's build is
/// removed after it.
pub const ABANDON_GRACE: Duration = Duration::from_secs(5);

/// The temporary name of a build of `requested`.
pub fn temp_name(requested: &str) -> String {
    let digest = Sha256::digest(requested.as_bytes());
    format!("{TEMP_PREFIX}{}", hex::encode(&digest[..8]))
}

/// The comment on a temporary database: whose build it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// Always `init-slate-db`.
    pub tool: String,
    /// The name the database gets when complete.
    pub requested: String,
    pub version: String,
    pub host: String,
    pub pid: u32,
    /// The server's time when the build started (UTC, RFC 3339).
    pub started: String,
    /// This run's id.
    pub run: String,
    /// The run's keeper session: while it lives, the run lives.
    pub backend_pid: i32,
    /// That session's start (seconds since the epoch), so a reused pid is not mistaken for it.
    pub backend_start: f64,
}

impl Marker {
    fn describe(&self) -> String {
        format!(
            "init-slate-db {} (pid {} on {}, started {})",
            self.version, self.pid, self.host, self.started
        )
    }
}

/// A database this run created under its temporary name.
#[derive(Debug, Clone)]
pub struct Staged {
    pub requested: Identifier,
    pub temp: String,
    pub oid: u32,
    pub marker: Marker,
}

/// What claiming the name found.
pub enum Claim {
    /// This run builds the store in `Staged`'s temporary database.
    Staging(Box<Staged>),
    /// The requested name exists (it was there, or another run finished it meanwhile).
    NameTaken,
}

/// What a run has created, shared with the clean-up that runs after a failure or a signal.
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<LedgerState>>);

#[derive(Default, Clone)]
struct LedgerState {
    step: &'static str,
    maintenance_db: String,
    /// A CREATE DATABASE of this temporary name was sent and not yet answered.
    creating: Option<String>,
    built: Option<Staged>,
    published: bool,
    /// A step that changes the target has begun (restore's copy): a failure from here on
    /// was rolled back, not refused.
    touched: bool,
}

impl Ledger {
    /// A ledger for a run that connects to `maintenance_db` for CREATE and DROP DATABASE.
    pub fn new(maintenance_db: &str) -> Ledger {
        let ledger = Ledger::default();
        ledger.update(|s| {
            s.maintenance_db = maintenance_db.to_string();
            s.step = "starting";
        });
        ledger
    }

    fn update(&self, change: impl FnOnce(&mut LedgerState)) {
        match self.0.lock() {
            Ok(mut state) => change(&mut state),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    fn state(&self) -> LedgerState {
        match self.0.lock() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records the step the run is at, for the message if it fails or is interrupted there.
    pub fn step(&self, step: &'static str) {
        self.update(|s| s.step = step);
    }

    /// The database the run connects to for CREATE and DROP DATABASE.
    pub fn maintenance_db(&self) -> String {
        self.state().maintenance_db
    }

    /// The step the run is at.
    pub fn current_step(&self) -> &'static str {
        self.state().step
    }

    /// Records that the run starts changing the target at `step`.
    pub fn touch(&self, step: &'static str) {
        self.update(|s| {
            s.step = step;
            s.touched = true;
        });
    }

    /// Whether the run had begun changing the target.
    pub fn touched(&self) -> bool {
        self.state().touched
    }
}

/// Claims `requested` for this run: creates its temporary database, waiting up to
/// `lock_timeout` while another live run builds the same name and removing what an ended run
/// left. Returns [`Claim::NameTaken`] when the requested name exists.
pub(crate) async fn claim(
    maintenance: &Client,
    keeper: keeper::Session,
    connector: &Connector,
    requested: &Identifier,
    lock_timeout: Duration,
    ledger: &Ledger,
) -> Result<Claim, Error> {
    let temp = temp_name(requested.as_str());
    let mut backoff = Backoff::new(retry::WAIT_FOR_OTHER_RUN, Some(lock_timeout));
    let mut unmarked_since: Option<Instant> = None;
    // The dead keeper session last seen, and since when.
    let mut dead_since: Option<(keeper::Session, Instant)> = None;
    let mut logged_holder = None;
    loop {
        if database_oid(maintenance, requested.as_str())
            .await?
            .is_some()
        {
            return Ok(Claim::NameTaken);
        }
        ledger.update(|s| {
            s.creating = Some(temp.clone());
            s.step = "creating the database";
        });
        let created = maintenance
            .batch_execute(&format!("CREATE DATABASE {}", quote_identifier(&temp)))
            .await;
        ledger.update(|s| s.creating = None);
        match created {
            Ok(()) => {
                let build = mark(maintenance, keeper, requested, &temp).await;
                // Recorded even if marking failed: clean-up then drops it by its OID.
                if let Ok(build) | Err((Some(build), _)) = &build {
                    ledger.update(|s| s.built = Some(build.clone()));
                }
                let build = build.map_err(|(_, error)| error)?;
                // Another run may have published the name between the check above and this
                // CREATE (its rename freed the temporary name): then the name is taken.
                if database_oid(maintenance, requested.as_str())
                    .await?
                    .is_some()
                {
                    drop_by_oid(maintenance, build.oid, &temp, Some(&build.marker.run))
                        .await
                        .map_err(|failure| Error::Query {
                            step: format!("removing \"{temp}\", made while another run published \"{requested}\""),
                            failure,
                        })?;
                    ledger.update(|s| s.built = None);
                    return Ok(Claim::NameTaken);
                }
                info!(temporary = %temp, oid = build.oid, "created database \"{temp}\" to build \"{requested}\" in");
                return Ok(Claim::Staging(Box::new(build)));
            }
            Err(error) => {
                let failure = PgFailure::from(&error);
                if !(failure.is(&SqlState::DUPLICATE_DATABASE)
                    || failure.is(&SqlState::UNIQUE_VIOLATION))
                {
                    return Err(create_failure(connector, &temp, requested, failure));
                }
            }
        }
        // Another build of this name exists: wait for a live one, remove an ended one.
        let holder = examine(maintenance, &temp, Some(requested.as_str())).await?;
        if !matches!(holder, Holder::Dead(..)) {
            dead_since = None;
        }
        if !matches!(holder, Holder::Unmarked) {
            unmarked_since = None;
        }
        match holder {
            Holder::Gone => continue,
            Holder::Alive(holder) => {
                ledger.step("waiting for another run building the same name");
                if logged_holder.as_ref() != Some(&holder) {
                    warn!(temporary = %temp, holder = %holder, "another run is building \"{requested}\"; waiting for it");
                    logged_holder = Some(holder.clone());
                }
                if backoff.elapsed() >= lock_timeout {
                    return Err(Error::LockTimeout {
                        lock: format!("build {requested}"),
                        holder,
                        timeout_secs: lock_timeout.as_secs(),
                    });
                }
            }
            Holder::Unmarked => {
                let since = *unmarked_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= UNMARKED_GRACE {
                    return Err(Error::ReservedName {
                        database: temp,
                        requested: requested.to_string(),
                        why: "it has no comment, so no marker of the tool's".into(),
                    });
                }
            }
            Holder::Foreign(why) => {
                return Err(Error::ReservedName {
                    database: temp,
                    requested: requested.to_string(),
                    why,
                });
            }
            Holder::Dead(oid, marker) => {
                let session = keeper::Session {
                    pid: marker.backend_pid,
                    start: marker.backend_start,
                };
                let since = match dead_since {
                    Some((seen, since)) if seen == session => since,
                    _ => {
                        warn!(temporary = %temp, "the run building \"{requested}\" has no session left; removing its build unless the run reconnects within {} s", ABANDON_GRACE.as_secs());
                        Instant::now()
                    }
                };
                dead_since = Some((session, since));
                if since.elapsed() >= ABANDON_GRACE {
                    drop_abandoned(maintenance, &temp, oid, &marker.describe()).await?;
                    dead_since = None;
                    continue;
                }
            }
        }
        // Past the deadline a short pause still lets an unmarked build's grace run out.
        if !backoff.pause().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Marks the new temporary database as this run's build, kept alive by `keeper`.
async fn mark(
    maintenance: &Client,
    keeper: keeper::Session,
    requested: &Identifier,
    temp: &str,
) -> Result<Staged, (Option<Staged>, Error)> {
    let query_error = |step: &str, e: tokio_postgres::Error| Error::query(step, &e);
    let row = maintenance
        .query_one(
            "SELECT d.oid, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
               FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&temp],
        )
        .await
        .map_err(|e| (None, query_error("reading the new database's OID", e)))?;
    let oid: u32 = row.get(0);
    let backend_pid = keeper.pid;
    let started: String = row.get(1);
    let pid = std::process::id();
    let run_seed = format!("{pid} {backend_pid} {started} {:?}", Instant::now());
    let run = hex::encode(&Sha256::digest(run_seed.as_bytes())[..8]);
    let marker = Marker {
        tool: "init-slate-db".into(),
        requested: requested.to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        host: whoami::hostname().unwrap_or_else(|_| "unknown".into()),
        pid,
        started,
        run,
        backend_pid,
        backend_start: keeper.start,
    };
    let build = Staged {
        requested: requested.clone(),
        temp: temp.to_string(),
        oid,
        marker: marker.clone(),
    };
    let json = serde_json::to_string(&marker).unwrap_or_default();
    maintenance
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_identifier(temp),
            quote_literal(&json)
        ))
        .await
        .map_err(|e| {
            (
                Some(build.clone()),
                query_error("marking the temporary database", e),
            )
        })?;
    Ok(build)
}

async fn drop_abandoned(
    maintenance: &Client,
    temp: &str,
    oid: u32,
    whose: &str,
) -> Result<(), Error> {
    // A test publishes the build here, between its examination and the DROP.
    hooks::pause("removing-abandoned", Some(maintenance)).await;
    match drop_by_oid(maintenance, oid, temp, None).await {
        // Published (renamed) since it was examined: that store is not abandoned.
        Ok(None) => Ok(()),
        Ok(Some(_)) => {
            warn!(temporary = %temp, "removed the temporary database \"{temp}\" left by {whose}, whose run ended before it was complete");
            Ok(())
        }
        Err(failure) => Err(Error::Query {
            step: format!("removing the abandoned temporary database \"{temp}\" left by {whose}"),
            failure,
        }),
    }
}

/// Renames the complete build to its requested name, atomically with clearing its marker.
/// Fails with [`Error::DatabaseExists`] if the name was taken meanwhile.
pub(crate) async fn publish(
    maintenance: &Client,
    build: &Staged,
    endpoint: &str,
    ledger: &Ledger,
) -> Result<(), Error> {
    let statement = format!(
        "BEGIN; ALTER DATABASE {temp} RENAME TO {name}; COMMENT ON DATABASE {name} IS NULL; COMMIT",
        temp = quote_identifier(&build.temp),
        name = quote_identifier(build.requested.as_str())
    );
    let mut in_use = Backoff::new(retry::PUBLISH_IN_USE, None);
    loop {
        let Some(current) = database_name(maintenance, build.oid).await? else {
            return Err(Error::Internal(format!(
                "the temporary database \"{}\" disappeared before it was complete (dropped by another session?)",
                build.temp
            )));
        };
        if current != build.temp {
            return Err(Error::Internal(format!(
                "the temporary database \"{}\" was renamed to \"{current}\" by another session",
                build.temp
            )));
        }
        match maintenance.batch_execute(&statement).await {
            Ok(()) => {
                ledger.update(|s| s.published = true);
                info!(
                    "renamed \"{}\" to \"{}\": the store is complete",
                    build.temp, build.requested
                );
                return Ok(());
            }
            Err(error) => {
                let _ = maintenance.batch_execute("ROLLBACK").await;
                let failure = PgFailure::from(&error);
                if failure.is(&SqlState::DUPLICATE_DATABASE) {
                    return Err(Error::DatabaseExists {
                        database: build.requested.to_string(),
                        endpoint: endpoint.to_string(),
                    });
                }
                // Our own session in the new database may take a moment to exit.
                if failure.is(&SqlState::OBJECT_IN_USE) && in_use.pause().await {
                    continue;
                }
                return Err(Error::Query {
                    step: format!("renaming \"{}\" to \"{}\"", build.temp, build.requested),
                    failure,
                });
            }
        }
    }
}

async fn database_oid(client: &Client, name: &str) -> Result<Option<u32>, Error> {
    client
        .query_opt(
            "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map(|row| row.map(|r| r.get(0)))
        .map_err(|e| Error::query(format!("looking up database \"{name}\""), &e))
}

async fn database_name(client: &Client, oid: u32) -> Result<Option<String>, Error> {
    client
        .query_opt(
            "SELECT datname::text FROM pg_catalog.pg_database WHERE oid = $1",
            &[&oid],
        )
        .await
        .map(|row| row.map(|r| r.get(0)))
        .map_err(|e| Error::query("looking up the temporary database", &e))
}

/// CREATE DATABASE failed for another reason than the name: say what to do.
fn create_failure(
    connector: &Connector,
    temp: &str,
    requested: &Identifier,
    failure: PgFailure,
) -> Error {
    if failure.is(&SqlState::INSUFFICIENT_PRIVILEGE) {
        return Error::MissingPrivilege(format!(
            "role \"{}\" may not create database \"{requested}\": {failure}; nothing was created",
            connector.user()
        ));
    }
    let message = if failure.is(&SqlState::OBJECT_IN_USE) {
        format!("{failure}; CREATE DATABASE copies the template database and needs it free of other sessions: retry when they have disconnected")
    } else {
        failure.message.clone()
    };
    Error::Query {
        step: format!("creating database \"{temp}\" to build \"{requested}\" in"),
        failure: PgFailure { message, ..failure },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_short_stable_and_distinct() {
        let a = temp_name("orders_events");
        assert_eq!(a, temp_name("orders_events"));
        assert_ne!(a, temp_name("Orders_events"));
        assert!(a.starts_with(TEMP_PREFIX) && a.len() == TEMP_PREFIX.len() + 16);
        assert!(temp_name(&"x".repeat(63)).len() <= 63);
    }
}
