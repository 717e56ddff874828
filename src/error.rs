//! The errors a run can end with, each with the exit code the README documents.

use crate::pg::PgFailure;

/// Exit codes: a documented contract (README, "Exit codes").
pub mod exit_code {
    /// Unexpected failure: a query outside the steps below failed, or the runtime broke.
    pub const FAILURE: u8 = 1;
    /// Invalid options: nothing was touched.
    pub const INVALID_OPTIONS: u8 = 2;
    /// The database to create already exists: it was left untouched.
    pub const DATABASE_EXISTS: u8 = 3;
    /// Could not connect or log in (unreachable, timeout, wrong password, no password).
    pub const CONNECTION: u8 = 4;
    /// The role lacks a privilege the run needs (CREATEDB, superuser for dblink).
    pub const PRIVILEGE: u8 = 5;
    /// The database was created but initializing it failed (it was dropped unless kept).
    pub const INITIALIZATION: u8 = 6;
    /// Another run held the lock longer than --lock-timeout.
    pub const LOCK_TIMEOUT: u8 = 7;
    /// status: migrations are pending (migrate applies them).
    pub const PENDING: u8 = 10;
    /// status, migrate, adopt, create --if-not-exists: the history diverges from this build's
    /// migrations, or objects are missing or changed.
    pub const DRIFT: u8 = 11;
    /// The database is not a slate event store.
    pub const NOT_SLATE: u8 = 12;
    /// The database is a store of the other layout than the one asked for.
    pub const WRONG_LAYOUT: u8 = 13;
    /// A slate database without a history table (made by the original tool): adopt it.
    pub const UNMANAGED: u8 = 14;
    /// restore: the backup is not a usable slate events table (missing, empty, gaps).
    pub const BAD_BACKUP: u8 = 15;
    /// restore --into-existing: the target is not a freshly initialized source.
    pub const TARGET_NOT_FRESH: u8 = 16;
    /// restore: the copy does not match the backup; nothing was committed.
    pub const VERIFICATION: u8 = 17;
    /// Interrupted by Ctrl-C or SIGTERM (the database this run created was dropped).
    pub const INTERRUPTED: u8 = 130;
}

/// A failed connection: where, as whom, how secured, and what happened.
#[derive(Debug, thiserror::Error)]
#[error("could not connect to {endpoint} as user \"{user}\" (database \"{database}\", {transport}): {failure}")]
pub struct ConnectFailure {
    pub endpoint: String,
    pub user: String,
    pub database: String,
    /// `sslmode X` or `Unix socket`.
    pub transport: String,
    pub failure: PgFailure,
}

/// Everything that can end a run early. Messages are written for the person running the tool:
/// what failed, where, what PostgreSQL said, and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One message per invalid option; all of them are reported together.
    #[error("{}", .0.join("\n"))]
    InvalidOptions(Vec<String>),

    #[error("database \"{database}\" already exists on {endpoint}; it was left untouched (choose another --new-database, or drop it first)")]
    DatabaseExists { database: String, endpoint: String },

    #[error("{0}")]
    Connect(Box<ConnectFailure>),

    #[error("could not connect to {endpoint} as user \"{user}\" (database \"{database}\"): the server asks for a password and none was given; pass --password-stdin, set PGPASSWORD, add it to ~/.pgpass, or run in a terminal to be prompted")]
    PasswordRequired {
        endpoint: String,
        user: String,
        database: String,
    },

    #[error("connecting to {endpoint} as user \"{user}\" (database \"{database}\") timed out after {timeout_ms} ms; check --host and --port, or raise --connect-timeout")]
    ConnectTimeout {
        endpoint: String,
        user: String,
        database: String,
        timeout_ms: u128,
    },

    #[error("{0}")]
    MissingPrivilege(String),

    #[error(
        "initializing {layout} database \"{database}\" failed while {step}: {failure}; {cleanup}"
    )]
    Initialization {
        database: String,
        layout: &'static str,
        step: String,
        failure: String,
        cleanup: String,
    },

    #[error("{step} failed: {failure}")]
    Query { step: String, failure: PgFailure },

    #[error("interrupted while {step}; {cleanup}")]
    Interrupted { step: String, cleanup: String },

    #[error("another run holds the lock {lock:?}: {holder}; gave up after {timeout_secs} s (wait for it to finish, or raise --lock-timeout)")]
    LockTimeout {
        lock: String,
        holder: String,
        timeout_secs: u64,
    },

    /// A database's state (from the audit) does not allow the command, or status reports it.
    #[error("{message}")]
    State { message: String, exit_code: u8 },

    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidOptions(_) => exit_code::INVALID_OPTIONS,
            Error::DatabaseExists { .. } => exit_code::DATABASE_EXISTS,
            Error::Connect(_) | Error::PasswordRequired { .. } | Error::ConnectTimeout { .. } => {
                exit_code::CONNECTION
            }
            Error::MissingPrivilege(_) => exit_code::PRIVILEGE,
            Error::Initialization { .. } => exit_code::INITIALIZATION,
            Error::Interrupted { .. } => exit_code::INTERRUPTED,
            Error::LockTimeout { .. } => exit_code::LOCK_TIMEOUT,
            Error::State { exit_code, .. } => *exit_code,
            Error::Query { .. } | Error::Internal(_) => exit_code::FAILURE,
        }
    }
}
