//! The command line's clap definitions: every option of every command, once.

use std::ffi::OsStr;

use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use strum::VariantNames;

use crate::connect::tls::SslMode;
use crate::lock::{DEFAULT_DDL_LOCK_TIMEOUT_MS, DEFAULT_LOCK_TIMEOUT_SECS};
use crate::logging::LogFormat;
use crate::output::OutputFormat;
use crate::store::digest::TsPrecision;
use crate::store::layout::Layout;

/// The values an option takes, for help and shell completions. Any text is accepted here:
/// validation reports every bad value together, in its own words.
#[derive(Clone)]
pub struct OneOf(pub &'static [&'static str]);

impl TypedValueParser for OneOf {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.0.iter().map(|v| PossibleValue::new(*v))))
    }
}

/// Create a PostgreSQL database and initialize it as a slate event store.
///
/// A source database is the master event log: gapless ids handed out by insert_events, its own
/// clock, NOTIFY on insert, and restore_events for disaster recovery. A destination database
/// is a replica that a replicator fills.
///
/// Without a subcommand, creates a database: init-slate-db -n NAME -t source|destination
#[derive(Parser)]
#[command(name = "init-slate-db", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<SubCommand>,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub create: CreateArgs,
}

/// The subcommands; without one, the tool creates a database.
#[derive(Subcommand)]
pub enum SubCommand {
    /// Create and initialize a database (what the tool does without a subcommand)
    Create(CreateArgs),
    /// Show the applied migrations and verify the database's objects against its layout
    Status(StatusArgs),
    /// Apply this build's pending migrations to an existing slate database, in one transaction
    Migrate(MigrateArgs),
    /// Put a database made by the original Node.js init-slate-db under migration control
    Adopt(AdoptArgs),
    /// Rebuild a source database from a backup (a destination kept by the replicator) in one
    /// verified transaction
    Restore(RestoreArgs),
    /// Prove that a copy (a replica, a backup, a restored source) holds exactly the reference's
    /// events; read-only on both sides
    Verify(VerifyArgs),
    /// List every slate store on the server: layout, versions, verdict, events, size
    List,
    /// Make a destination follow a source with PostgreSQL's logical replication (or stop it)
    Replicate(Box<ReplicateArgs>),
    /// Give a store's writer, reader and replicator roles exactly what their part needs, put
    /// login roles into them or take them out, and harden the store
    Grant(GrantArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

/// Options every subcommand accepts, before or after its name.
#[derive(Args)]
pub struct CommonArgs {
    /// Output on stdout: "text" for people, "json" for programs
    #[arg(long, value_name = "FORMAT", default_value = "text", global = true, value_parser = OneOf(OutputFormat::VARIANTS), hide_possible_values = true)]
    pub format: String,

    /// Log lines on stderr: "text" or "json" (one object per line) [env: INIT_SLATE_DB_LOG_FORMAT]
    #[arg(long, value_name = "FORMAT", global = true, value_parser = OneOf(LogFormat::VARIANTS), hide_possible_values = true)]
    pub log_format: Option<String>,

    /// Seconds to wait for another run that holds the database's lock, and for the table locks
    /// a migration of a store in use needs
    #[arg(long, value_name = "SECONDS", default_value = DEFAULT_LOCK_TIMEOUT_SECS, global = true)]
    pub lock_timeout: String,

    /// Milliseconds one attempt of a migration waits for a table lock before it is rolled back
    /// and tried again (writers queue behind it at most this long)
    #[arg(long, value_name = "MILLISECS", default_value = DEFAULT_DDL_LOCK_TIMEOUT_MS, global = true)]
    pub ddl_lock_timeout: String,
}

/// The second server of `verify` and `replicate`: the copy's, or the destination's.
#[derive(Args)]
pub struct ReplicaServerArgs {
    /// The replica's server [default: the first server's]
    #[arg(long, value_name = "NAME")]
    pub replica_host: Option<String>,

    /// The replica's port [default: the first server's when on its host, else 5432]
    #[arg(long, value_name = "PORT")]
    pub replica_port: Option<String>,

    /// The replica's user [default: the first server's]
    #[arg(long, value_name = "NAME")]
    pub replica_user: Option<String>,

    /// The replica's password; else INIT_SLATE_DB_REPLICA_PASSWORD, the password file, or a
    /// prompt
    #[arg(
        long,
        env = "INIT_SLATE_DB_REPLICA_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub replica_password: Option<String>,

    /// TLS mode for the replica [default: the first server's]
    #[arg(long, value_name = "MODE", value_parser = OneOf(SslMode::VARIANTS), hide_possible_values = true)]
    pub replica_sslmode: Option<String>,
}

/// Options of `replicate`.
#[derive(Args)]
pub struct ReplicateArgs {
    /// The source store to follow (required, unless the --url names one)
    #[arg(short = 'd', long, value_name = "NAME")]
    pub database: Option<String>,

    /// The destination database (required): created as a destination store if it does not
    /// exist; an existing one must hold a prefix of the source's events
    #[arg(long, value_name = "NAME")]
    pub replica_database: Option<String>,

    #[command(flatten)]
    pub replica: ReplicaServerArgs,

    /// The source's host as the destination's server reaches it [default: --host]
    #[arg(long, value_name = "NAME")]
    pub publisher_host: Option<String>,

    /// The source's port as the destination's server reaches it [default: --port]
    #[arg(long, value_name = "PORT")]
    pub publisher_port: Option<String>,

    /// How an existing destination's events are compared with the source's: "exact", or "ms"
    /// for one filled by the elm-slate replicator (it keeps milliseconds)
    #[arg(long, value_name = "PRECISION", default_value = "exact", value_parser = OneOf(TsPrecision::VARIANTS), hide_possible_values = true)]
    pub ts_precision: String,

    /// Seconds to wait for the destination to catch up before reporting
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub catch_up_timeout: String,

    /// Stop following: remove the destination's subscription and its slot on the source
    #[arg(long)]
    pub stop: bool,

    /// Run the checks and show what would be done; create nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Database on the destination's server to connect to for CREATE DATABASE [default:
    /// postgres]
    #[arg(long, value_name = "NAME")]
    pub maintenance_db: Option<String>,
}

/// Options of the create job (the original tool's invocation).
#[derive(Args)]
pub struct CreateArgs {
    /// Name of the database to create (required): letters, digits, _ and $, not starting with
    /// a digit or $, at most 63 bytes; case is kept
    #[arg(short = 'n', long, value_name = "NAME")]
    pub new_database: Option<String>,

    /// Type of events table to create (required): "source" or "destination"
    #[arg(short = 't', long, value_name = "TYPE", value_parser = OneOf(Layout::VARIANTS), hide_possible_values = true)]
    pub table_type: Option<String>,

    /// Validate the options, run the read-only checks and show what would be done; create nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Database to connect to for CREATE DATABASE [default: the --url database, else postgres]
    #[arg(long, value_name = "NAME")]
    pub maintenance_db: Option<String>,

    /// If initialization fails, keep the new database for debugging instead of dropping it
    #[arg(long)]
    pub keep_on_failure: bool,

    /// If the database exists: succeed without change when it is a verified store of this
    /// layout, apply pending migrations when it only lacks them, fail otherwise (for CI)
    #[arg(long)]
    pub if_not_exists: bool,

    /// Initialize an existing, empty database instead of creating one (made beforehand by a
    /// console or Terraform; needs no CREATEDB): refused if it holds objects of its own
    #[arg(long)]
    pub into_existing: bool,
}

impl CreateArgs {
    /// Whether any create option was given (they are invalid before a subcommand).
    pub(super) fn was_given(&self) -> bool {
        self.new_database.is_some()
            || self.table_type.is_some()
            || self.dry_run
            || self.maintenance_db.is_some()
            || self.keep_on_failure
            || self.if_not_exists
            || self.into_existing
    }
}

/// Options of `status`.
#[derive(Args)]
pub struct StatusArgs {
    /// The database to audit (required, unless the --url names one)
    #[arg(short = 'd', long, value_name = "NAME")]
    pub database: Option<String>,
}

/// Options of `migrate`.
#[derive(Args)]
pub struct MigrateArgs {
    /// The database to migrate (required, unless the --url names one)
    #[arg(short = 'd', long, value_name = "NAME")]
    pub database: Option<String>,

    /// The layout the database must have: "source" or "destination" (detected when absent)
    #[arg(short = 't', long, value_name = "TYPE", value_parser = OneOf(Layout::VARIANTS), hide_possible_values = true)]
    pub table_type: Option<String>,

    /// Show the plan and the SQL of the pending migrations; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `grant`.
#[derive(Args)]
pub struct GrantArgs {
    /// The store (required, unless the --url names one)
    #[arg(short = 'd', long, value_name = "NAME")]
    pub database: Option<String>,

    /// Put ROLE into the store's writer role: it may append through insert_events, nothing else
    /// (repeatable)
    #[arg(long, value_name = "ROLE")]
    pub writer: Vec<String>,

    /// Put ROLE into the store's reader role: SELECT on events, and LISTEN (repeatable)
    #[arg(long, value_name = "ROLE")]
    pub reader: Vec<String>,

    /// Put ROLE into the store's replicator role: what the Node replicator and a subscription's
    /// connection read (repeatable)
    #[arg(long, value_name = "ROLE")]
    pub replicator: Vec<String>,

    /// Also give each --replicator ROLE the REPLICATION attribute, which a logical-replication
    /// subscription's connection needs (attributes do not pass through roles)
    #[arg(long)]
    pub replication: bool,

    /// Take ROLE out of every role of the store (repeatable)
    #[arg(long, value_name = "ROLE")]
    pub remove: Vec<String>,

    /// Name of the writer group role [default: <store>_writer, or the one the store records]
    #[arg(long, value_name = "NAME")]
    pub writer_role: Option<String>,

    /// Name of the reader group role [default: <store>_reader, or the one the store records]
    #[arg(long, value_name = "NAME")]
    pub reader_role: Option<String>,

    /// Name of the replicator group role [default: <store>_replicator, or the one the store
    /// records]
    #[arg(long, value_name = "NAME")]
    pub replicator_role: Option<String>,

    /// Print the exact GRANT and REVOKE statements; execute none
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `adopt`.
#[derive(Args)]
pub struct AdoptArgs {
    /// The database to adopt (required, unless the --url names one)
    #[arg(short = 'd', long, value_name = "NAME")]
    pub database: Option<String>,

    /// The layout the database must have: "source" or "destination" (detected when absent)
    #[arg(short = 't', long, value_name = "TYPE", value_parser = OneOf(Layout::VARIANTS), hide_possible_values = true)]
    pub table_type: Option<String>,

    /// Only record the original's migrations as applied; do not apply the later ones
    #[arg(long)]
    pub baseline_only: bool,

    /// Verify and show the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The reference store (required, unless the --url names one)
    #[arg(short = 'd', long, value_name = "NAME")]
    pub database: Option<String>,

    /// The copy's database (required)
    #[arg(long, value_name = "NAME")]
    pub replica_database: Option<String>,

    #[command(flatten)]
    pub replica: ReplicaServerArgs,

    /// Compare ids up to this one [default: the smaller of the two highest ids]
    #[arg(long, value_name = "ID")]
    pub up_to: Option<String>,

    /// A copy that is behind the reference is a difference too
    #[arg(long)]
    pub exact: bool,

    /// Timestamps compared "exact" or at "ms" precision (the replicator keeps milliseconds)
    #[arg(long, value_name = "PRECISION", default_value = "exact", value_parser = OneOf(TsPrecision::VARIANTS), hide_possible_values = true)]
    pub ts_precision: String,
}

/// Options of `restore`.
#[derive(Args)]
pub struct RestoreArgs {
    /// The source database to create and restore into (required)
    #[arg(short = 'n', long, value_name = "NAME")]
    pub new_database: Option<String>,

    /// Restore into an existing source database that is freshly initialized (no events, id 1)
    #[arg(long)]
    pub into_existing: bool,

    /// Backup server: host name, IP address or Unix-socket directory (required)
    #[arg(long, value_name = "NAME")]
    pub from_host: Option<String>,

    /// Backup server port [default: 5432]
    #[arg(long, value_name = "PORT")]
    pub from_port: Option<String>,

    /// Backup database (required)
    #[arg(long, value_name = "NAME")]
    pub from_database: Option<String>,

    /// Backup user [default: the target's user]
    #[arg(long, value_name = "NAME")]
    pub from_user: Option<String>,

    /// Backup password; else INIT_SLATE_DB_FROM_PASSWORD, the password file, or a prompt
    #[arg(
        long,
        env = "INIT_SLATE_DB_FROM_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub from_password: Option<String>,

    /// TLS mode for the backup connection [default: the target's]
    #[arg(long, value_name = "MODE", value_parser = OneOf(SslMode::VARIANTS), hide_possible_values = true)]
    pub from_sslmode: Option<String>,

    /// Database to connect to for CREATE DATABASE
    #[arg(long, value_name = "NAME")]
    pub maintenance_db: Option<String>,

    /// Check the backup and the target and show the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Connection options shared by every command; accepted before or after a subcommand.
#[derive(Args)]
pub struct ConnectionArgs {
    /// Connection string: postgresql://user@host:port/db?sslmode=... or "host=... port=...";
    /// its database is the one connected to first (the maintenance database for create)
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        global = true
    )]
    pub url: Option<String>,

    /// Database server: host name, IP address, or Unix-socket directory (a value starting with
    /// '/') [env: PGHOST] [default: localhost]
    #[arg(long, value_name = "NAME", global = true)]
    pub host: Option<String>,

    /// Database server port [env: PGPORT] [default: 5432]
    #[arg(long, value_name = "PORT", allow_hyphen_values = true, global = true)]
    pub port: Option<String>,

    /// Database user; create needs CREATEDB (or --into-existing on a database it owns), and a
    /// source the right to install dblink (superuser, or a trusted or granted extension). If
    /// absent: prompted for on a terminal, else the OS user [env: PGUSER]
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    /// Database password; visible to other users in the process list, prefer PGPASSWORD,
    /// --password-stdin or ~/.pgpass. If none is found and the server asks for one: prompted
    /// for on a terminal, else the run fails [env: PGPASSWORD]
    #[arg(long, value_name = "PASSWORD", global = true)]
    pub password: Option<String>,

    /// Read the password from standard input (one trailing newline is removed)
    #[arg(long, global = true)]
    pub password_stdin: bool,

    /// Time allowed for each connection, TCP connect and login together, in milliseconds
    /// [env: PGCONNECT_TIMEOUT, in seconds] [default: 15000]
    #[arg(
        long,
        value_name = "MILLISECS",
        allow_hyphen_values = true,
        global = true
    )]
    pub connect_timeout: Option<String>,

    /// TLS: disable, allow, prefer, require, verify-ca or verify-full, as libpq
    /// [env: PGSSLMODE] [default: prefer]
    #[arg(long, value_name = "MODE", global = true, value_parser = OneOf(SslMode::VARIANTS), hide_possible_values = true)]
    pub sslmode: Option<String>,

    /// Trusted root certificates for verify-ca and verify-full: a PEM file, or "system" for the
    /// platform's store [env: PGSSLROOTCERT] [default: ~/.postgresql/root.crt if it exists]
    #[arg(long, value_name = "FILE", global = true)]
    pub sslrootcert: Option<String>,

    /// Keep retrying a server that refuses connections or is starting up, for up to this many
    /// seconds
    #[arg(long, value_name = "SECONDS", global = true)]
    pub wait: Option<String>,
}

impl From<ConnectionArgs> for crate::connect::ConnectionOptions {
    fn from(args: ConnectionArgs) -> Self {
        crate::connect::ConnectionOptions {
            url: args.url,
            host: args.host,
            port: args.port,
            user: args.user,
            password: args.password,
            password_stdin: args.password_stdin,
            connect_timeout: args.connect_timeout,
            sslmode: args.sslmode,
            sslrootcert: args.sslrootcert,
            wait: args.wait,
        }
    }
}
