//! The errors a run can end with. This is the one place that chooses an exit code, and
//! [`EXIT_CODES`] is the one table of them: `--help` prints it and a test ties the README's
//! table to it.

use crate::pg::PgFailure;

/// Exit codes: a documented contract (README, "Exit codes").
pub mod exit_code {
    /// Unexpected failure.
    pub const FAILURE: u8 = 1;
    /// Invalid options: nothing was touched.
    pub const INVALID_OPTIONS: u8 = 2;
    /// The database to create already exists: it was left untouched.
    pub const DATABASE_EXISTS: u8 = 3;
    /// Could not connect or log in.
    pub const CONNECTION: u8 = 4;
    /// The role lacks a privilege the run needs.
    pub const PRIVILEGE: u8 = 5;
    /// Initialization or a migration failed (rolled back, the new database dropped).
    pub const INITIALIZATION: u8 = 6;
    /// Another run held the lock longer than --lock-timeout.
    pub const LOCK_TIMEOUT: u8 = 7;
    /// status: migrations are pending.
    pub const PENDING: u8 = 10;
    /// The history or the objects differ from the layout.
    pub const DRIFT: u8 = 11;
    /// The database is not a slate event store.
    pub const NOT_SLATE: u8 = 12;
    /// The database is a store of the other layout.
    pub const WRONG_LAYOUT: u8 = 13;
    /// A slate database without a history table: adopt it.
    pub const UNMANAGED: u8 = 14;
    /// restore: the backup is not a usable slate events table.
    pub const BAD_BACKUP: u8 = 15;
    /// restore --into-existing: the target is not a freshly initialized source.
    pub const TARGET_NOT_FRESH: u8 = 16;
    /// restore: the copy does not match the backup; nothing was committed.
    pub const VERIFICATION: u8 = 17;
    /// create --into-existing: the database holds objects of its own.
    pub const NOT_EMPTY: u8 = 18;
    /// verify: the copy differs from the reference.
    pub const DIFFERENCES: u8 = 19;
    /// The server is read-only (a hot standby, or default_transaction_read_only).
    pub const READ_ONLY: u8 = 20;
    /// The database is a template or the maintenance database: never made a store.
    pub const PROTECTED: u8 = 21;
    /// A database under the tool's reserved temporary name is not this tool's build.
    pub const RESERVED_NAME: u8 = 22;
    /// A transaction-mode connection pooler stands between the tool and the server.
    pub const POOLER: u8 = 23;
    /// replicate: the source's server cannot feed a subscription (wal_level, slots, senders).
    pub const NOT_REPLICABLE: u8 = 24;
    /// replicate: the destination's events are not a prefix of the source's.
    pub const NOT_PREFIX: u8 = 25;
    /// grant: a role named cannot play its part (missing, or a login role named as a group).
    pub const ROLE: u8 = 26;
    /// Interrupted by Ctrl-C or SIGTERM.
    pub const INTERRUPTED: u8 = 130;
}

/// Every exit code and what it means, in the words of `--help` and the README.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "success; status: up to date and verified; a dry run whose checks passed",
    ),
    (exit_code::FAILURE, "unexpected failure"),
    (
        exit_code::INVALID_OPTIONS,
        "invalid options; nothing was touched",
    ),
    (
        exit_code::DATABASE_EXISTS,
        "the database already exists; it was left untouched",
    ),
    (exit_code::CONNECTION, "could not connect or log in"),
    (
        exit_code::PRIVILEGE,
        "the role lacks a needed privilege, or the server lacks dblink; nothing was created",
    ),
    (
        exit_code::INITIALIZATION,
        "initialization or a migration failed and was rolled back (a new database is dropped)",
    ),
    (
        exit_code::LOCK_TIMEOUT,
        "another run held the lock longer than --lock-timeout",
    ),
    (exit_code::PENDING, "status: migrations are pending"),
    (
        exit_code::DRIFT,
        "drift: the history or the objects differ from the layout",
    ),
    (exit_code::NOT_SLATE, "not a slate event store"),
    (
        exit_code::WRONG_LAYOUT,
        "the database is a store of the other layout",
    ),
    (
        exit_code::UNMANAGED,
        "no history table (made by the original tool): adopt it",
    ),
    (
        exit_code::BAD_BACKUP,
        "restore: the backup cannot be restored from",
    ),
    (
        exit_code::TARGET_NOT_FRESH,
        "restore --into-existing: the target is not a freshly initialized source",
    ),
    (
        exit_code::VERIFICATION,
        "restore: verification failed; nothing was committed",
    ),
    (
        exit_code::NOT_EMPTY,
        "create --into-existing: the database holds objects of its own; left untouched",
    ),
    (
        exit_code::DIFFERENCES,
        "verify: the copy differs from the reference (the report says where)",
    ),
    (
        exit_code::READ_ONLY,
        "the server or role is read-only (a hot standby, default_transaction_read_only)",
    ),
    (
        exit_code::PROTECTED,
        "the database is a template or the maintenance database; left untouched",
    ),
    (
        exit_code::RESERVED_NAME,
        "a database under the tool's reserved temporary name is not its build; left alone",
    ),
    (
        exit_code::POOLER,
        "a transaction-mode pooler is in the way: connect to the server directly",
    ),
    (
        exit_code::NOT_REPLICABLE,
        "replicate: the source's server is not set up for logical replication",
    ),
    (
        exit_code::NOT_PREFIX,
        "replicate: the destination's events are not a prefix of the source's",
    ),
    (
        exit_code::ROLE,
        "grant: a role named does not exist or cannot play its part; nothing was changed",
    ),
    (
        exit_code::INTERRUPTED,
        "interrupted by Ctrl-C or SIGTERM; what the run created was removed",
    ),
];

/// The exit-code table as `--help` prints it.
pub fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:");
    for (code, meaning) in EXIT_CODES {
        text.push_str(&format!("\n  {code:<4} {meaning}"));
    }
    text
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

    /// `how` says how to supply a password for this connection.
    #[error("could not connect to {endpoint} as user \"{user}\" (database \"{database}\"): the server asks for a password and none was given; {how}")]
    PasswordRequired {
        endpoint: String,
        user: String,
        database: String,
        how: String,
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

    #[error("initializing {layout} database \"{database}\" failed while {step}: {failure}")]
    Initialization {
        database: String,
        layout: &'static str,
        step: String,
        failure: String,
    },

    #[error("applying {versions} to \"{database}\" failed and was rolled back: {failure}")]
    MigrationFailed {
        database: String,
        /// `V7, V8`.
        versions: String,
        failure: PgFailure,
    },

    #[error("another run holds the lock {lock:?}: {holder}; gave up after {timeout_secs} s (wait for it to finish, or raise --lock-timeout)")]
    LockTimeout {
        lock: String,
        holder: String,
        timeout_secs: u64,
    },

    /// The audit's verdict refuses the command (or is what `status` reports).
    #[error("{message}")]
    Refused { message: String, refusal: Refusal },

    #[error(
        "database \"{database}\" is a {found} event store, not a {wanted} one; nothing was changed"
    )]
    WrongLayout {
        database: String,
        found: &'static str,
        wanted: &'static str,
    },

    #[error("the backup {backup} cannot be restored from, nothing was created: {reason}")]
    BadBackup { backup: String, reason: String },

    #[error("--into-existing refused: database \"{database}\" {reason}; it was left untouched")]
    TargetNotFresh { database: String, reason: String },

    #[error("--into-existing refused: database \"{database}\" is not empty, it holds {objects}; it was left untouched (use an empty database, or drop those objects)")]
    NotEmpty { database: String, objects: String },

    #[error("{endpoint} is read-only ({why}); nothing was changed: run against the primary, or as a role without default_transaction_read_only")]
    ReadOnly { endpoint: String, why: String },

    #[error("database \"{database}\" is {why}: a slate store is never made of it, nothing was changed (choose another database)")]
    Protected { database: String, why: String },

    #[error("database \"{database}\" has the tool's reserved temporary name for \"{requested}\" but is not the tool's build ({why}); it was left alone: rename or drop it yourself (DROP DATABASE \"{database}\"), then run again")]
    ReservedName {
        database: String,
        requested: String,
        why: String,
    },

    #[error("{endpoint} hands out server sessions per transaction (a transaction-mode pooler such as PgBouncer with pool_mode = transaction): the tool's locks and settings belong to one session and would be left to other clients, so nothing was done; connect to the PostgreSQL server directly, or through a session-mode pool")]
    Pooler { endpoint: String },

    #[error(
        "replicate refused: {endpoint} cannot feed a subscription, nothing was created: {problems}"
    )]
    NotReplicable { endpoint: String, problems: String },

    #[error("replicate refused: destination \"{destination}\" is not a prefix of the source, nothing was created: {why}")]
    NotPrefix { destination: String, why: String },

    /// grant: a role named cannot play its part.
    #[error("grant refused, nothing was changed: {0}")]
    Role(String),

    #[error("verify: the copy differs from the reference: {0}")]
    Differences(String),

    #[error("verification failed: {0}")]
    Verification(String),

    #[error("{step} failed: {failure}")]
    Query { step: String, failure: PgFailure },

    /// Ctrl-C or SIGTERM; [`Error::CleanedUp`] around it says what was undone.
    #[error("interrupted while {step}")]
    Interrupted { step: String },

    /// A restore step failed after the target was touched.
    #[error("restore into \"{database}\" failed, nothing was committed: {cause}")]
    RestoreAbandoned { database: String, cause: Box<Error> },

    #[error("{0}")]
    Internal(String),

    /// A failure after which the run undid what it had done: the cause, then what was undone.
    /// The one wrapper for clean-up reports (see [`Error::cleaned_up`]).
    #[error("{cause}; {cleanup}")]
    CleanedUp { cause: Box<Error>, cleanup: String },
}

/// Why the audit refuses a database; each kind has its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Migrations are pending (`status` only: the others apply them).
    Pending,
    /// History or objects differ from the layout.
    Drift,
    /// Not a slate event store.
    NotSlate,
    /// No history table: adopt it.
    Unmanaged,
}

impl Error {
    /// A query that failed at `step` (what the tool was doing, for the message).
    pub fn query(step: impl Into<String>, error: &tokio_postgres::Error) -> Error {
        Error::Query {
            step: step.into(),
            failure: PgFailure::from(error),
        }
    }

    /// The process exit code for this error (see [`EXIT_CODES`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidOptions(_) => exit_code::INVALID_OPTIONS,
            Error::DatabaseExists { .. } => exit_code::DATABASE_EXISTS,
            Error::Connect(_) | Error::PasswordRequired { .. } | Error::ConnectTimeout { .. } => {
                exit_code::CONNECTION
            }
            Error::MissingPrivilege(_) => exit_code::PRIVILEGE,
            Error::Initialization { .. } | Error::MigrationFailed { .. } => {
                exit_code::INITIALIZATION
            }
            Error::LockTimeout { .. } => exit_code::LOCK_TIMEOUT,
            Error::Refused { refusal, .. } => match refusal {
                Refusal::Pending => exit_code::PENDING,
                Refusal::Drift => exit_code::DRIFT,
                Refusal::NotSlate => exit_code::NOT_SLATE,
                Refusal::Unmanaged => exit_code::UNMANAGED,
            },
            Error::WrongLayout { .. } => exit_code::WRONG_LAYOUT,
            Error::BadBackup { .. } => exit_code::BAD_BACKUP,
            Error::TargetNotFresh { .. } => exit_code::TARGET_NOT_FRESH,
            Error::Verification(_) => exit_code::VERIFICATION,
            Error::NotEmpty { .. } => exit_code::NOT_EMPTY,
            Error::Differences(_) => exit_code::DIFFERENCES,
            Error::ReadOnly { .. } => exit_code::READ_ONLY,
            Error::Protected { .. } => exit_code::PROTECTED,
            Error::ReservedName { .. } => exit_code::RESERVED_NAME,
            Error::Pooler { .. } => exit_code::POOLER,
            Error::NotReplicable { .. } => exit_code::NOT_REPLICABLE,
            Error::NotPrefix { .. } => exit_code::NOT_PREFIX,
            Error::Role(_) => exit_code::ROLE,
            Error::Interrupted { .. } => exit_code::INTERRUPTED,
            // A failed restore step ends with its own code: 6, 17, 130, ...
            Error::RestoreAbandoned { cause, .. } => match cause.exit_code() {
                exit_code::FAILURE => exit_code::INITIALIZATION,
                code => code,
            },
            Error::CleanedUp { cause, .. } => cause.exit_code(),
            Error::Query { .. } | Error::Internal(_) => exit_code::FAILURE,
        }
    }

    /// Adds what the clean-up did (`None`: there was nothing to undo) to the error.
    pub fn cleaned_up(self, cleanup: Option<String>) -> Error {
        let cleanup = match cleanup {
            Some(cleanup) => cleanup,
            None if self.is_interrupted() => "nothing was created".into(),
            None => return self,
        };
        Error::CleanedUp {
            cause: Box::new(self),
            cleanup,
        }
    }

    /// Whether a signal ended the run.
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted { .. } => true,
            Error::CleanedUp { cause, .. } | Error::RestoreAbandoned { cause, .. } => {
                cause.is_interrupted()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_listed_once_in_ascending_order() {
        let codes: Vec<u8> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }
}
