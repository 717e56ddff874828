//! Validation: the parsed arguments become each command's settings, every problem reported.

use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::args::{
    Cli, CreateArgs, ReplicaServerArgs, ReplicateArgs, RestoreArgs, SubCommand, VerifyArgs,
};
use super::{Command, Invocation};
use crate::commands::create::CreateSettings;
use crate::commands::lifecycle::{AdoptSettings, MigrateSettings};
use crate::commands::list::ListSettings;
use crate::commands::replicate::{ReplicatePlan, ReplicateSettings};
use crate::commands::restore::RestoreSettings;
use crate::commands::status::StatusSettings;
use crate::commands::verify::VerifySettings;
use crate::connect::settings::ENVIRONMENT;
use crate::connect::{conninfo, read_stdin, ConnectionSettings, OtherServer, OtherServerOptions};
use crate::error::Error;
use crate::identifier::{Identifier, MAX_IDENTIFIER_BYTES};
use crate::lock::Waits;
use crate::logging::LoggingSettings;
use crate::output::OutputFormat;
use crate::store::digest::TsPrecision;
use crate::store::layout::Layout;
use crate::store::lifecycle::DEFAULT_MAINTENANCE_DB;
use crate::store::staging::TEMP_PREFIX;
use strum::VariantNames;

/// Checks every option and reports all problems together.
pub(super) fn validate(
    cli: Cli,
    matches: &ArgMatches,
    logging: LoggingSettings,
    mut problems: Vec<String>,
) -> Result<Invocation, Error> {
    let password_on_command_line = password_source(matches) == Some(ValueSource::CommandLine);
    check_environment(&mut problems);
    let connection = ConnectionSettings::resolve(
        cli.connection.into(),
        &|name| std::env::var(name).ok(),
        &mut read_stdin,
        &mut problems,
    );
    let url_database = connection.as_ref().and_then(|c| c.database.as_deref());
    let format = cli.common.format.parse().unwrap_or_else(|_| {
        problems.push(invalid_choice(
            "--format",
            &cli.common.format,
            OutputFormat::VARIANTS,
        ));
        OutputFormat::Text
    });
    let lock_timeout_secs = match cli.common.lock_timeout.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            problems.push(format!(
                "--lock-timeout {:?} is invalid: it must be a whole number of seconds",
                cli.common.lock_timeout
            ));
            Duration::ZERO
        }
    };

    let ddl_lock_timeout_ms = match cli.common.ddl_lock_timeout.parse::<u64>() {
        Ok(ms) if (1..=600_000).contains(&ms) => Duration::from_millis(ms),
        _ => {
            problems.push(format!(
                "--ddl-lock-timeout {:?} is invalid: it must be a whole number of milliseconds from 1 to 600000",
                cli.common.ddl_lock_timeout
            ));
            Duration::ZERO
        }
    };
    let waits = Waits {
        lock_timeout: lock_timeout_secs,
        ddl_lock_timeout: ddl_lock_timeout_ms,
    };

    if cli.command.is_some() && cli.create.was_given() {
        problems.push(
            "-n/--new-database, -t/--table-type, --dry-run, --maintenance-db, --keep-on-failure, --if-not-exists and --into-existing before a subcommand belong to creating a database: put them after the subcommand, or drop the subcommand".into(),
        );
    }
    let command = match cli.command {
        None => validate_create(cli.create, url_database, format, waits, &mut problems)
            .map(Command::Create),
        Some(SubCommand::Create(create)) => {
            validate_create(create, url_database, format, waits, &mut problems).map(Command::Create)
        }
        Some(SubCommand::Status(args)) => {
            let database = database_name(args.database.as_deref().or(url_database), &mut problems);
            database.map(|database| {
                Command::Status(StatusSettings {
                    database,
                    format,
                    lock_timeout: waits.lock_timeout,
                })
            })
        }
        Some(SubCommand::Migrate(args)) => {
            let database = database_name(args.database.as_deref().or(url_database), &mut problems);
            let layout = optional_layout(args.table_type.as_deref(), &mut problems);
            database.map(|database| {
                Command::Migrate(MigrateSettings {
                    database,
                    layout,
                    dry_run: args.dry_run,
                    waits,
                    format,
                })
            })
        }
        Some(SubCommand::Grant(args)) => {
            super::grant::validate_grant(args, url_database, format, waits, &mut problems)
                .map(Command::Grant)
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
                    waits,
                    format,
                })
            })
        }
        Some(SubCommand::Restore(args)) => validate_restore(
            args,
            connection.as_ref(),
            url_database,
            format,
            waits.lock_timeout,
            &mut problems,
        )
        .map(|settings| Command::Restore(Box::new(settings))),
        Some(SubCommand::Verify(args)) => validate_verify(
            args,
            connection.as_ref(),
            url_database,
            format,
            &mut problems,
        )
        .map(|settings| Command::Verify(Box::new(settings))),
        Some(SubCommand::Replicate(args)) => validate_replicate(
            *args,
            connection.as_ref(),
            url_database,
            format,
            waits,
            &mut problems,
        )
        .map(|settings| Command::Replicate(Box::new(settings))),
        Some(SubCommand::List) => Some(Command::List(ListSettings {
            database: url_database.unwrap_or(DEFAULT_MAINTENANCE_DB).to_string(),
            format,
        })),
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
    let url_with_password = |m: &ArgMatches| {
        m.value_source("url") == Some(ValueSource::CommandLine)
            && m.get_one::<String>("url")
                .is_some_and(|url| conninfo::names_a_password(url))
    };
    let given = on_command_line(matches, "password")
        || url_with_password(matches)
        || sub.is_some_and(|sub| {
            on_command_line(sub, "password")
                || on_command_line(sub, "from_password")
                || on_command_line(sub, "replica_password")
                || url_with_password(sub)
        });
    given.then_some(ValueSource::CommandLine)
}

/// The environment variables the tool reads, each checked to hold valid UTF-8: libpq would use
/// the bytes, and silently ignoring one is worse than saying so.
fn check_environment(problems: &mut Vec<String>) {
    for name in ENVIRONMENT {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
            problems.push(format!(
                "the environment variable {name} holds bytes that are not valid UTF-8: fix or unset it"
            ));
        }
    }
}

fn validate_create(
    args: CreateArgs,
    url_database: Option<&str>,
    format: OutputFormat,
    waits: Waits,
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
        .unwrap_or_else(|| DEFAULT_MAINTENANCE_DB.into());
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
        into_existing: args.into_existing,
        waits,
        format,
    })
}

fn validate_verify(
    args: VerifyArgs,
    reference: Option<&ConnectionSettings>,
    url_database: Option<&str>,
    format: OutputFormat,
    problems: &mut Vec<String>,
) -> Option<VerifySettings> {
    let database = database_name(args.database.as_deref().or(url_database), problems);
    let replica_database = args.replica_database.filter(|d| !d.is_empty());
    if replica_database.is_none() {
        problems.push(
            "--replica-database <NAME> is required: the copy to compare with the reference".into(),
        );
    }
    let up_to = match args.up_to.as_deref() {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(id) if id >= 1 => Some(id),
            _ => {
                problems.push(format!(
                    "--up-to {text:?} is invalid: it must be an id, a whole number of at least 1"
                ));
                None
            }
        },
    };
    let ts_millis = ts_millis(&args.ts_precision, problems);
    let replica = reference.map(|reference| replica_server(args.replica, reference, problems));
    Some(VerifySettings {
        database: database?,
        replica: replica?,
        replica_database: replica_database?,
        up_to,
        exact: args.exact,
        ts_millis,
        format,
    })
}

/// The `--replica-*` server of verify and replicate: the first server's by default, and its
/// password too when it is the same server as the same user.
fn replica_server(
    args: ReplicaServerArgs,
    first: &ConnectionSettings,
    problems: &mut Vec<String>,
) -> ConnectionSettings {
    let mut replica = first.for_other_server(
        OtherServer::Replica,
        OtherServerOptions {
            host: args
                .replica_host
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| first.host.clone()),
            port: args.replica_port.as_deref(),
            user: args.replica_user,
            password: args.replica_password,
            sslmode: args.replica_sslmode.as_deref(),
        },
        problems,
    );
    if replica.password.is_none()
        && replica.host == first.host
        && replica.port == first.port
        && replica.user == first.user
    {
        replica.password = first.password.as_ref().map(|p| {
            secrecy::SecretString::from(secrecy::ExposeSecret::expose_secret(p).to_string())
        });
    }
    replica
}

fn validate_replicate(
    args: ReplicateArgs,
    source: Option<&ConnectionSettings>,
    url_database: Option<&str>,
    format: OutputFormat,
    waits: Waits,
    problems: &mut Vec<String>,
) -> Option<ReplicateSettings> {
    let database = database_name(args.database.as_deref().or(url_database), problems);
    let destination_database = args.replica_database.filter(|d| !d.is_empty());
    let destination_name = match destination_database.as_deref() {
        None => {
            problems.push(
                "--replica-database <NAME> is required: the destination that follows the source"
                    .into(),
            );
            None
        }
        Some(name) => new_database_name(Some(name), "the destination database", problems),
    };
    let ts_millis = ts_millis(&args.ts_precision, problems);
    let catch_up_timeout = match args.catch_up_timeout.parse::<u64>() {
        Ok(secs) if secs <= 86_400 => Duration::from_secs(secs),
        _ => {
            problems.push(format!(
                "--catch-up-timeout {:?} is invalid: it must be a whole number of seconds up to 86400",
                args.catch_up_timeout
            ));
            Duration::ZERO
        }
    };
    let publisher_port = match args.publisher_port.as_deref() {
        None => source.map(|s| s.port),
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => {
                problems.push(format!(
                    "--publisher-port {text:?} is invalid: it must be a whole number from 1 to 65535"
                ));
                None
            }
        },
    };
    let destination = source.map(|source| replica_server(args.replica, source, problems));
    let source = source?;
    let destination = destination?;
    Some(ReplicateSettings {
        destination,
        plan: ReplicatePlan {
            database: database?,
            destination_database: destination_name?,
            publisher_host: args
                .publisher_host
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| source.host.clone()),
            publisher_port: publisher_port?,
            ts_millis,
            catch_up_timeout,
            stop: args.stop,
            dry_run: args.dry_run,
            maintenance_db: args
                .maintenance_db
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| DEFAULT_MAINTENANCE_DB.into()),
            waits,
            format,
        },
    })
}

/// `--ts-precision` of verify and replicate: whether timestamps compare at milliseconds.
fn ts_millis(value: &str, problems: &mut Vec<String>) -> bool {
    match value.parse::<TsPrecision>() {
        Ok(precision) => precision == TsPrecision::Ms,
        Err(_) => {
            problems.push(invalid_choice(
                "--ts-precision",
                value,
                TsPrecision::VARIANTS,
            ));
            false
        }
    }
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
            OtherServer::Backup,
            OtherServerOptions {
                host: from_host.clone().unwrap_or_default(),
                port: args.from_port.as_deref(),
                user: args.from_user,
                password: args.from_password,
                sslmode: args.from_sslmode.as_deref(),
            },
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
            .unwrap_or_else(|| DEFAULT_MAINTENANCE_DB.into()),
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
    if name.starts_with(TEMP_PREFIX) {
        problems.push(format!(
            "--new-database {name:?} starts with {TEMP_PREFIX:?}, which is reserved for the tool's temporary databases: choose another name"
        ));
        return None;
    }
    Identifier::parse(name)
        .map_err(|why| {
            problems.push(format!(
                "--new-database {name:?} is not a valid PostgreSQL identifier: it {why}"
            ))
        })
        .ok()
}

fn parse_layout(value: &str, problems: &mut Vec<String>) -> Option<Layout> {
    let layout = value.parse().ok();
    if layout.is_none() {
        problems.push(invalid_choice("--table-type", value, Layout::VARIANTS));
    }
    layout
}

/// `--OPTION "VALUE" is invalid: it must be "a" or "b"` (or `"a", "b" or "c"`).
pub(super) fn invalid_choice(option: &str, value: &str, choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
    let list = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("{option} {value:?} is invalid: it must be {list}")
}

fn optional_layout(value: Option<&str>, problems: &mut Vec<String>) -> Option<Layout> {
    value.and_then(|v| parse_layout(v, problems))
}

/// An existing database's name: any text PostgreSQL accepts (it is always quoted or passed as
/// a parameter), at most 63 bytes.
pub(super) fn database_name(value: Option<&str>, problems: &mut Vec<String>) -> Option<String> {
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
