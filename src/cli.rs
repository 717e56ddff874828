//! The command line: clap definitions, and their validation into settings, done once.
//! Nothing after [`parse`] sees raw arguments.

use std::io::IsTerminal;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::connect::{read_stdin, ConnectionArgs, ConnectionSettings};
use crate::create::CreateSettings;
use crate::error::Error;
use crate::identifier::{Identifier, MAX_IDENTIFIER_BYTES};
use crate::layout::Layout;
use crate::lifecycle::{AdoptSettings, MigrateSettings};
use crate::lock::DEFAULT_LOCK_TIMEOUT_SECS;
use crate::logging::{LogFormat, LoggingSettings, FORMAT_ENV};
use crate::restore::RestoreSettings;
use crate::status::StatusSettings;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success; status: up to date and verified
  1    unexpected failure
  2    invalid options (nothing was touched)
  3    the database already exists (left untouched)
  4    could not connect or log in
  5    the role lacks a needed privilege (nothing was created)
  6    initialization failed (the new database was dropped unless --keep-on-failure)
  7    another run held the lock longer than --lock-timeout
  10   status: migrations are pending
  11   drift: history or objects differ from the layout
  12   not a slate event store
  13   the database is of the other layout
  14   no history table (made by the original tool): adopt it
  130  interrupted (the new database was dropped unless --keep-on-failure)";

/// Create a PostgreSQL database and initialize it as a slate event store.
///
/// A source database is the master event log: gapless ids handed out by insert_events, its own
/// clock, NOTIFY on insert, and restore_events for disaster recovery. A destination database
/// is a replica that a replicator fills.
///
/// Without a subcommand, creates a database: init-slate-db -n NAME -t source|destination
#[derive(Parser)]
#[command(
    name = "init-slate-db",
    version,
    after_help = EXIT_CODES_HELP,
    max_term_width = 100
)]
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
    #[arg(long, value_name = "FORMAT", default_value = "text", global = true)]
    pub format: String,

    /// Log lines on stderr: "text" or "json" (one object per line) [env: INIT_SLATE_DB_LOG_FORMAT]
    #[arg(long, value_name = "FORMAT", global = true)]
    pub log_format: Option<String>,

    /// Seconds to wait for another run that holds the database's lock
    #[arg(long, value_name = "SECONDS", default_value = DEFAULT_LOCK_TIMEOUT_SECS, global = true)]
    pub lock_timeout: String,
}

/// Options of the create job (the original tool's invocation).
#[derive(Args)]
pub struct CreateArgs {
    /// Name of the database to create (required): letters, digits, _ and $, not starting with
    /// a digit or $, at most 63 bytes; case is kept
    #[arg(short = 'n', long, value_name = "NAME")]
    pub new_database: Option<String>,

    /// Type of events table to create (required): "source" or "destination"
    #[arg(short = 't', long, value_name = "TYPE")]
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
}

impl CreateArgs {
    /// Whether any create option was given (they are invalid before a subcommand).
    fn was_given(&self) -> bool {
        self.new_database.is_some()
            || self.table_type.is_some()
            || self.dry_run
            || self.maintenance_db.is_some()
            || self.keep_on_failure
            || self.if_not_exists
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
    #[arg(short = 't', long, value_name = "TYPE")]
    pub table_type: Option<String>,

    /// Show the plan and the SQL of the pending migrations; change nothing
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
    #[arg(short = 't', long, value_name = "TYPE")]
    pub table_type: Option<String>,

    /// Only record the original's migrations as applied; do not apply the later ones
    #[arg(long)]
    pub baseline_only: bool,

    /// Verify and show the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
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
    #[arg(long, value_name = "MODE")]
    pub from_sslmode: Option<String>,

    /// Database to connect to for CREATE DATABASE
    #[arg(long, value_name = "NAME")]
    pub maintenance_db: Option<String>,

    /// Check the backup and the target and show the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Output on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Tables and sentences for people.
    Text,
    /// One JSON document for programs.
    Json,
}

/// A validated command line.
pub struct Invocation {
    /// What to do.
    pub command: Command,
    /// Where and as whom to connect.
    pub connection: ConnectionSettings,
    /// How to log.
    pub logging: LoggingSettings,
    /// The password came from `--password` on the command line, where `ps` shows it.
    password_on_command_line: bool,
}

/// The jobs the tool does.
pub enum Command {
    /// Create and initialize a database.
    Create(CreateSettings),
    /// Audit a database.
    Status(StatusSettings),
    /// Apply pending migrations.
    Migrate(MigrateSettings),
    /// Adopt a database made by the original tool.
    Adopt(AdoptSettings),
    /// Restore a source from a backup (boxed: it carries a second set of connection settings).
    Restore(Box<RestoreSettings>),
}

impl Invocation {
    /// Warns once, on stderr, when the password is visible in the process list.
    pub fn warn_about_visible_password(&self) {
        if self.password_on_command_line {
            tracing::warn!(
                "a password given on the command line (--password, --from-password) is visible to other users of this machine in the process list; prefer PGPASSWORD, INIT_SLATE_DB_FROM_PASSWORD, --password-stdin, ~/.pgpass or the prompt"
            );
        }
    }
}

/// The clap command, for help output and snapshot tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The outcome of parsing: how to log (known even when the options are invalid) and what to do.
pub struct Parsed {
    /// How to log.
    pub logging: LoggingSettings,
    /// `Ok(None)`: help, version, completions or the man page was printed; the run is over.
    pub outcome: Result<Option<Invocation>, Error>,
}

/// Parses the process arguments.
pub fn parse() -> Parsed {
    parse_from(std::env::args_os())
}

/// Parses `args` (the first is the program name) into a validated [`Invocation`].
pub fn parse_from<I, T>(args: I) -> Parsed
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let matches = match command().try_get_matches_from(&args) {
        Ok(matches) => matches,
        Err(error) => {
            return Parsed {
                logging: logging_from_raw(&args),
                outcome: clap_outcome(error),
            }
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            return Parsed {
                logging: logging_from_raw(&args),
                outcome: Err(Error::InvalidOptions(vec![e.to_string()])),
            }
        }
    };
    let mut problems = Vec::new();
    let logging = logging_settings(cli.common.log_format.as_deref(), &mut problems);
    let outcome = match &cli.command {
        Some(SubCommand::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut command(),
                "init-slate-db",
                &mut std::io::stdout(),
            );
            Ok(None)
        }
        Some(SubCommand::Man) => clap_mangen::Man::new(command())
            .render(&mut std::io::stdout())
            .map(|()| None)
            .map_err(|e| Error::Internal(format!("cannot print the man page: {e}"))),
        _ => validate(cli, &matches, logging.clone(), problems).map(Some),
    };
    Parsed { logging, outcome }
}

/// `--log-format`, else INIT_SLATE_DB_LOG_FORMAT, else text.
fn logging_settings(option: Option<&str>, problems: &mut Vec<String>) -> LoggingSettings {
    let env = std::env::var(FORMAT_ENV).ok().filter(|v| !v.is_empty());
    let (value, from) = match (option, env.as_deref()) {
        (Some(v), _) => (v.to_string(), "--log-format"),
        (None, Some(v)) => (v.to_string(), FORMAT_ENV),
        (None, None) => ("text".to_string(), ""),
    };
    let format = LogFormat::parse(&value).unwrap_or_else(|| {
        problems.push(format!(
            "{from} {value:?} is invalid: it must be \"text\" or \"json\""
        ));
        LogFormat::Text
    });
    LoggingSettings {
        ansi: std::io::stderr().is_terminal(),
        format,
    }
}

/// When clap could not parse the arguments, the log format still decides how the error is
/// printed: look for `--log-format json` by hand.
fn logging_from_raw(args: &[std::ffi::OsString]) -> LoggingSettings {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let option = args
        .iter()
        .position(|a| a == "--log-format")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--log-format=").map(String::from))
        });
    logging_settings(option.as_deref(), &mut Vec::new())
}

/// Help and version are printed and end the run; any other clap error is an invalid option,
/// reported on one line.
fn clap_outcome(error: clap::Error) -> Result<Option<Invocation>, Error> {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            error
                .print()
                .map_err(|e| Error::Internal(format!("cannot print help: {e}")))?;
            Ok(None)
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            Err(Error::InvalidOptions(vec![format!(
                "{first} (see init-slate-db --help)"
            )]))
        }
    }
}

/// Checks every option and reports all problems together.
fn validate(
    cli: Cli,
    matches: &ArgMatches,
    logging: LoggingSettings,
    mut problems: Vec<String>,
) -> Result<Invocation, Error> {
    let password_on_command_line = password_source(matches) == Some(ValueSource::CommandLine);
    let connection = ConnectionSettings::resolve(
        cli.connection,
        &|name| std::env::var(name).ok(),
        &mut read_stdin,
        &mut problems,
    );
    let url_database = connection.as_ref().and_then(|c| c.database.as_deref());
    let format = match cli.common.format.as_str() {
        "text" => OutputFormat::Text,
        "json" => OutputFormat::Json,
        other => {
            problems.push(format!(
                "--format {other:?} is invalid: it must be \"text\" or \"json\""
            ));
            OutputFormat::Text
        }
    };
    let lock_timeout = match cli.common.lock_timeout.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            problems.push(format!(
                "--lock-timeout {:?} is invalid: it must be a whole number of seconds",
                cli.common.lock_timeout
            ));
            Duration::ZERO
        }
    };

    if cli.command.is_some() && cli.create.was_given() {
        problems.push(
            "-n/--new-database, -t/--table-type, --dry-run, --maintenance-db, --keep-on-failure and --if-not-exists before a subcommand belong to creating a database: put them after the subcommand, or drop the subcommand".into(),
        );
    }
    let command = match cli.command {
        None => validate_create(
            cli.create,
            url_database,
            format,
            lock_timeout,
            &mut problems,
        )
        .map(Command::Create),
        Some(SubCommand::Create(create)) => {
            validate_create(create, url_database, format, lock_timeout, &mut problems)
                .map(Command::Create)
        }
        Some(SubCommand::Status(args)) => {
            let database = database_name(args.database.as_deref().or(url_database), &mut problems);
            database.map(|database| Command::Status(StatusSettings { database, format }))
        }
        Some(SubCommand::Migrate(args)) => {
            let database = database_name(args.database.as_deref().or(url_database), &mut problems);
            let layout = optional_layout(args.table_type.as_deref(), &mut problems);
            database.map(|database| {
                Command::Migrate(MigrateSettings {
                    database,
                    layout,
                    dry_run: args.dry_run,
                    lock_timeout,
                    format,
                })
            })
        }
        Some(SubCommand::Adopt(args)) => {
            let database = database_name(args.database.as_deref().or(url_database), &mut problems);
            let layout = optional_layout(args.table_type.as_deref(), &mut problems);
            database.map(|database| {
                Command::Adopt(AdoptSettings {
                    database,
                    layout,
                    baseline_only: args.baseline_only,
                    dry_run: args.dry_run,
                    lock_timeout,
                    format,
                })
            })
        }
        Some(SubCommand::Restore(args)) => validate_restore(
            args,
            connection.as_ref(),
            url_database,
            format,
            lock_timeout,
            &mut problems,
        )
        .map(|settings| Command::Restore(Box::new(settings))),
        // Printed by parse_from before validation.
        Some(SubCommand::Completions { .. } | SubCommand::Man) => None,
    };

    match (connection, command) {
        (Some(connection), Some(command)) if problems.is_empty() => Ok(Invocation {
            command,
            connection,
            logging,
            password_on_command_line,
        }),
        _ => Err(Error::InvalidOptions(problems)),
    }
}

/// Where the password came from, looking into the subcommand too (the option is global).
fn password_source(matches: &ArgMatches) -> Option<ValueSource> {
    let on_command_line = |m: &ArgMatches, id: &str| {
        m.try_get_raw(id).ok().flatten().is_some()
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    let sub = matches.subcommand().map(|(_, sub)| sub);
    let given = on_command_line(matches, "password")
        || sub.is_some_and(|sub| {
            on_command_line(sub, "password") || on_command_line(sub, "from_password")
        });
    given.then_some(ValueSource::CommandLine)
}

fn validate_create(
    args: CreateArgs,
    url_database: Option<&str>,
    format: OutputFormat,
    lock_timeout: Duration,
    problems: &mut Vec<String>,
) -> Option<CreateSettings> {
    let new_database = new_database_name(
        args.new_database.as_deref(),
        "the name of the database to create",
        problems,
    );
    let layout = match args.table_type.as_deref() {
        None => {
            problems.push("--table-type <TYPE> is required: \"source\" or \"destination\"".into());
            None
        }
        Some(value) => parse_layout(value, problems),
    };
    let maintenance_db = args
        .maintenance_db
        .or_else(|| url_database.map(String::from))
        .unwrap_or_else(|| "postgres".into());
    if maintenance_db.is_empty() {
        problems.push("--maintenance-db must not be empty".into());
    }
    Some(CreateSettings {
        new_database: new_database?,
        layout: layout?,
        dry_run: args.dry_run,
        maintenance_db,
        keep_on_failure: args.keep_on_failure,
        if_not_exists: args.if_not_exists,
        lock_timeout,
        format,
    })
}

fn validate_restore(
    args: RestoreArgs,
    target: Option<&ConnectionSettings>,
    url_database: Option<&str>,
    format: OutputFormat,
    lock_timeout: Duration,
    problems: &mut Vec<String>,
) -> Option<RestoreSettings> {
    let new_database = new_database_name(
        args.new_database.as_deref(),
        "the source database to restore into",
        problems,
    );
    let from_host = args.from_host.filter(|h| !h.is_empty());
    if from_host.is_none() {
        problems.push("--from-host <NAME> is required: the server of the backup database".into());
    }
    let from_database = args.from_database.filter(|d| !d.is_empty());
    if from_database.is_none() {
        problems.push(
            "--from-database <NAME> is required: the backup database (a destination event store)"
                .into(),
        );
    }
    // Built even without a host, so that every invalid backup option is reported at once.
    let backup = target.map(|target| {
        target.for_other_server(
            from_host.clone().unwrap_or_default(),
            args.from_port.as_deref(),
            args.from_user,
            args.from_password,
            args.from_sslmode.as_deref(),
            problems,
        )
    });
    from_host?;
    Some(RestoreSettings {
        new_database: new_database?,
        into_existing: args.into_existing,
        backup: backup?,
        backup_database: from_database?,
        maintenance_db: args
            .maintenance_db
            .or_else(|| url_database.map(String::from))
            .unwrap_or_else(|| "postgres".into()),
        dry_run: args.dry_run,
        lock_timeout,
        format,
    })
}

/// `-n/--new-database`: required, and a valid identifier.
fn new_database_name(
    value: Option<&str>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Identifier> {
    let Some(name) = value else {
        problems.push(format!("--new-database <NAME> is required: {what}"));
        return None;
    };
    Identifier::parse(name)
        .map_err(|why| {
            problems.push(format!(
                "--new-database {name:?} is not a valid PostgreSQL identifier: it {why}"
            ))
        })
        .ok()
}

fn parse_layout(value: &str, problems: &mut Vec<String>) -> Option<Layout> {
    let layout = Layout::parse(value);
    if layout.is_none() {
        problems.push(format!(
            "--table-type {value:?} is invalid: it must be \"source\" or \"destination\""
        ));
    }
    layout
}

fn optional_layout(value: Option<&str>, problems: &mut Vec<String>) -> Option<Layout> {
    value.and_then(|v| parse_layout(v, problems))
}

/// An existing database's name: any text PostgreSQL accepts (it is always quoted or passed as
/// a parameter), at most 63 bytes.
fn database_name(value: Option<&str>, problems: &mut Vec<String>) -> Option<String> {
    match value {
        None | Some("") => {
            problems.push("--database <NAME> is required: the database to work on".into());
            None
        }
        Some(name) if name.len() > MAX_IDENTIFIER_BYTES => {
            problems.push(format!(
                "--database {name:?} is {} bytes long; PostgreSQL names are at most {MAX_IDENTIFIER_BYTES} bytes",
                name.len()
            ));
            None
        }
        Some(name) => Some(name.to_string()),
    }
}
