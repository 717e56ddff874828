//! The command line: clap definitions, and their validation into settings, done once.
//! Nothing after [`parse`] sees raw arguments.

use std::io::IsTerminal;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser};

use crate::connect::{ConnectionArgs, ConnectionSettings};
use crate::create::CreateSettings;
use crate::error::Error;
use crate::identifier::Identifier;
use crate::layout::Layout;
use crate::logging::LoggingSettings;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success (or a dry run whose checks all passed)
  1    unexpected failure
  2    invalid options (nothing was touched)
  3    the database already exists (left untouched)
  4    could not connect or log in
  5    the role lacks a needed privilege (nothing was created)
  6    initialization failed (the new database was dropped unless --keep-on-failure)
  130  interrupted (the new database was dropped unless --keep-on-failure)";

/// Create a PostgreSQL database and initialize it as a slate event store.
///
/// A source database is the master event log: gapless ids handed out by insert_events, its own
/// clock, NOTIFY on insert, and restore_events for disaster recovery. A destination database
/// is a replica that a replicator fills.
#[derive(Parser)]
#[command(name = "init-slate-db", version, after_help = EXIT_CODES_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub create: CreateArgs,
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

    /// Database to connect to for CREATE DATABASE
    #[arg(long, value_name = "NAME", default_value = "postgres")]
    pub maintenance_db: String,

    /// If initialization fails, keep the new database for debugging instead of dropping it
    #[arg(long)]
    pub keep_on_failure: bool,
}

/// A validated command line.
pub struct Invocation {
    /// What to do.
    pub command: Command,
    /// How to log.
    pub logging: LoggingSettings,
    /// The password came from `--password` on the command line, where `ps` shows it.
    password_on_command_line: bool,
}

/// The jobs the tool does.
pub enum Command {
    /// Create and initialize a database.
    Create(CreateSettings),
}

impl Invocation {
    /// Warns once, on stderr, when the password is visible in the process list.
    pub fn warn_about_visible_password(&self) {
        if self.password_on_command_line {
            tracing::warn!(
                "--password is visible to other users of this machine in the process list; prefer PGPASSWORD or the prompt"
            );
        }
    }
}

/// The clap command, for help output and snapshot tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the process arguments. `Ok(None)`: help or version was printed and the run is over.
pub fn parse() -> Result<Option<Invocation>, Error> {
    parse_from(std::env::args_os())
}

/// Parses `args` (the first is the program name) into a validated [`Invocation`].
pub fn parse_from<I, T>(args: I) -> Result<Option<Invocation>, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = match command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(error) => return clap_outcome(error),
    };
    let cli =
        Cli::from_arg_matches(&matches).map_err(|e| Error::InvalidOptions(vec![e.to_string()]))?;
    validate(cli, &matches).map(Some)
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
fn validate(cli: Cli, matches: &ArgMatches) -> Result<Invocation, Error> {
    let mut problems = Vec::new();
    let password_on_command_line =
        matches.value_source("password") == Some(ValueSource::CommandLine);

    let connection = ConnectionSettings::from_args(cli.connection, &mut problems);

    let new_database = match cli.create.new_database.as_deref() {
        None => {
            problems.push(
                "--new-database <NAME> is required: the name of the database to create".into(),
            );
            None
        }
        Some(name) => match Identifier::parse(name) {
            Ok(identifier) => Some(identifier),
            Err(why) => {
                problems.push(format!(
                    "--new-database {name:?} is not a valid PostgreSQL identifier: it {why}"
                ));
                None
            }
        },
    };

    let layout = match cli.create.table_type.as_deref() {
        None => {
            problems.push("--table-type <TYPE> is required: \"source\" or \"destination\"".into());
            None
        }
        Some(value) => {
            match Layout::parse(value) {
                Some(layout) => Some(layout),
                None => {
                    problems.push(format!("--table-type {value:?} is invalid: it must be \"source\" or \"destination\""));
                    None
                }
            }
        }
    };

    if cli.create.maintenance_db.is_empty() {
        problems.push("--maintenance-db must not be empty".into());
    }

    match (connection, new_database, layout) {
        (Some(connection), Some(new_database), Some(layout)) if problems.is_empty() => {
            Ok(Invocation {
                command: Command::Create(CreateSettings {
                    connection,
                    new_database,
                    layout,
                    dry_run: cli.create.dry_run,
                    maintenance_db: cli.create.maintenance_db,
                    keep_on_failure: cli.create.keep_on_failure,
                }),
                logging: LoggingSettings {
                    ansi: std::io::stderr().is_terminal(),
                },
                password_on_command_line,
            })
        }
        _ => Err(Error::InvalidOptions(problems)),
    }
}
