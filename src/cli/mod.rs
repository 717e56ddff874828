//! The command line: clap definitions, and their validation into settings, done once.
//! Nothing after [`parse`] sees raw arguments.

mod args;
mod grant;
mod validate;

use std::io::IsTerminal;

use clap::{CommandFactory, FromArgMatches};
use strum::VariantNames;

use crate::commands::create::CreateSettings;
use crate::commands::grant::GrantSettings;
use crate::commands::lifecycle::{AdoptSettings, MigrateSettings};
use crate::commands::list::ListSettings;
use crate::commands::replicate::ReplicateSettings;
use crate::commands::restore::RestoreSettings;
use crate::commands::status::StatusSettings;
use crate::commands::verify::VerifySettings;
use crate::connect::ConnectionSettings;
use crate::error::{exit_codes_help, Error};
use crate::logging::{LogFormat, LoggingSettings, FORMAT_ENV};
use crate::output;

pub use args::{Cli, SubCommand};

/// A validated command line.
pub struct Invocation {
    /// What to do.
    pub command: Command,
    /// Where and as whom to connect.
    pub connection: ConnectionSettings,
    /// How to log.
    pub logging: LoggingSettings,
    /// The password came from `--password` on the command line, where `ps` shows it.
    pub(crate) password_on_command_line: bool,
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
    /// Compare a copy with a reference store.
    Verify(Box<VerifySettings>),
    /// List the server's stores.
    List(ListSettings),
    /// Make a destination follow a source (boxed: a second set of connection settings).
    Replicate(Box<ReplicateSettings>),
    Grant(GrantSettings),
}

impl Invocation {
    /// Warns once, on stderr, when the password is visible in the process list.
    pub fn warn_about_visible_password(&self) {
        if self.password_on_command_line {
            tracing::warn!(
                "a password given on the command line (--password, --from-password, or inside --url) is visible to other users of this machine in the process list; prefer PGPASSWORD, INIT_SLATE_DB_FROM_PASSWORD, --password-stdin, ~/.pgpass or the prompt"
            );
        }
    }
}

/// The clap command, for help output and snapshot tests.
pub fn command() -> clap::Command {
    Cli::command().after_help(exit_codes_help())
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
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command(), "init-slate-db", &mut script);
            output::print_stdout(&script).map(|()| None)
        }
        Some(SubCommand::Man) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command())
                .render(&mut page)
                .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))
                .and_then(|()| output::print_stdout(&page))
                .map(|()| None)
        }
        _ => validate::validate(cli, &matches, logging.clone(), problems).map(Some),
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
        problems.push(validate::invalid_choice(from, &value, LogFormat::VARIANTS));
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
            match error.print() {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(Error::Internal(format!("cannot print help: {e}")))
                }
                // A reader that closed the pipe had all it wanted.
                _ => Ok(None),
            }
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Words the command line is made of: every option name, values good and bad.
    fn word() -> impl Strategy<Value = String> {
        let options = [
            "create",
            "status",
            "migrate",
            "adopt",
            "restore",
            "-n",
            "-t",
            "-d",
            "--url",
            "--host",
            "--port",
            "--user",
            "--password",
            "--connect-timeout",
            "--sslmode",
            "--sslrootcert",
            "--wait",
            "--format",
            "--log-format",
            "--lock-timeout",
            "--dry-run",
            "--maintenance-db",
            "--keep-on-failure",
            "--if-not-exists",
            "--baseline-only",
            "--into-existing",
            "--from-host",
            "--from-port",
            "--from-database",
            "--from-user",
            "--from-password",
            "--from-sslmode",
            "source",
            "destination",
            "json",
            "text",
            "verify-full",
            "0",
            "65536",
            "-1",
            "18446744073709551615",
            "99999999999999999999",
            "postgresql://h/db?sslmode=%€x",
            "host='a b",
            "",
        ];
        prop_oneof![
            proptest::sample::select(options.to_vec()).prop_map(String::from),
            any::<String>().prop_filter("no stdin reads", |w| !w.contains("password-stdin")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

        /// Whatever the arguments, parsing ends in settings or in one line per problem.
        #[test]
        fn no_command_line_makes_parsing_panic(words in proptest::collection::vec(word(), 0..8)) {
            let help = ["-h", "--help", "-V", "--version", "help", "man", "completions"];
            prop_assume!(!words.iter().any(|w| help.contains(&w.as_str())));
            let args = std::iter::once("init-slate-db".to_string()).chain(words);
            let parsed = parse_from(args);
            if let Err(Error::InvalidOptions(problems)) = &parsed.outcome {
                prop_assert!(!problems.is_empty());
                prop_assert!(problems.iter().all(|p| !p.is_empty()));
            }
        }
    }
}
