//! Connection settings, resolved in one place, and connecting with a deadline.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{Client, NoTls};
use tracing::{debug, info_span, Instrument};

use crate::error::Error;
use crate::pg::PgFailure;

/// The default for `--connect-timeout`, in milliseconds (the original's).
pub const DEFAULT_CONNECT_TIMEOUT_MS: &str = "15000";

/// Shown to DBAs in `pg_stat_activity`.
const APPLICATION_NAME: &str = "init-slate-db";

/// Connection options shared by every job.
#[derive(Args)]
pub struct ConnectionArgs {
    /// Database server: host name, IP address, or Unix-socket directory (a value starting with
    /// '/') [default: localhost]
    #[arg(
        long,
        env = "PGHOST",
        hide_env_values = true,
        global = true,
        value_name = "NAME"
    )]
    pub host: Option<String>,

    /// Database server port [default: 5432]
    #[arg(
        long,
        env = "PGPORT",
        hide_env_values = true,
        value_name = "PORT",
        allow_hyphen_values = true,
        global = true
    )]
    pub port: Option<String>,

    /// Database user; must be allowed to create databases (and a superuser for a source
    /// database, to install dblink). If absent: prompted for on a terminal, else the OS user
    #[arg(
        long,
        env = "PGUSER",
        hide_env_values = true,
        global = true,
        value_name = "NAME"
    )]
    pub user: Option<String>,

    /// Database password; visible to other users in the process list, prefer PGPASSWORD. If
    /// absent and the server asks for one: prompted for on a terminal, else the run fails
    #[arg(
        long,
        env = "PGPASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        global = true
    )]
    pub password: Option<String>,

    /// Time allowed for the whole connection, TCP connect and login, in milliseconds
    #[arg(long, value_name = "MILLISECS", default_value = DEFAULT_CONNECT_TIMEOUT_MS, allow_hyphen_values = true, global = true)]
    pub connect_timeout: String,
}

/// Validated connection settings. The password never leaves its [`SecretString`] except to be
/// handed to the driver.
pub struct ConnectionSettings {
    /// Host name, IP address, or Unix-socket directory.
    pub host: String,
    /// TCP port (also names the Unix socket file).
    pub port: u16,
    /// The user, if given; resolved by [`Connector::new`] otherwise.
    pub user: Option<String>,
    /// The password, if given.
    pub password: Option<SecretString>,
    /// Bound on each connection attempt, login included.
    pub connect_timeout: Duration,
}

impl ConnectionSettings {
    /// Validates `args`, adding one line to `problems` per invalid option.
    pub fn from_args(args: ConnectionArgs, problems: &mut Vec<String>) -> Option<Self> {
        let before = problems.len();
        let host = args
            .host
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let port = match args.port.as_deref().filter(|p| !p.is_empty()) {
            None => 5432,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    problems.push(format!(
                        "--port {text:?} is invalid: it must be a whole number from 1 to 65535"
                    ));
                    0
                }
            },
        };
        let connect_timeout = match args.connect_timeout.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                problems.push(format!(
                    "--connect-timeout {:?} is invalid: it must be a positive whole number of milliseconds",
                    args.connect_timeout
                ));
                Duration::ZERO
            }
        };
        let user = args.user.filter(|u| !u.is_empty());
        let password = args.password.map(SecretString::from);
        (problems.len() == before).then_some(ConnectionSettings {
            host,
            port,
            user,
            password,
            connect_timeout,
        })
    }

    /// Where the server is, for messages: `host:port`, or the socket path.
    pub fn endpoint(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Opens connections with the resolved settings; asks for a password at most once, and only
/// when the server wants one and a person is there to answer.
pub struct Connector {
    settings: ConnectionSettings,
    user: String,
    interactive: bool,
}

impl Connector {
    /// Resolves the user: the given one, else a prompt on a terminal, else the OS user (as libpq).
    pub fn new(settings: ConnectionSettings) -> Result<Self, Error> {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let user = match &settings.user {
            Some(user) => user.clone(),
            None if interactive => prompt_user()?,
            None => whoami::username()
                .map_err(|e| Error::InvalidOptions(vec![format!("--user is not set and the OS user name is unknown ({e}); pass --user or set PGUSER")]))?,
        };
        Ok(Connector {
            settings,
            user,
            interactive,
        })
    }

    /// The user every connection logs in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The settings in force.
    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// Connects to `database`, within the connect timeout (TCP connect and login together).
    pub async fn connect(&mut self, database: &str) -> Result<Client, Error> {
        let span = info_span!("connect", endpoint = %self.settings.endpoint(), user = %self.user, database);
        async {
            match self.try_connect(database).await {
                Err(Error::PasswordRequired { .. })
                    if self.interactive && self.settings.password.is_none() =>
                {
                    self.settings.password =
                        Some(prompt_password(&self.user, &self.settings.endpoint())?);
                    self.try_connect(database).await
                }
                other => other,
            }
        }
        .instrument(span)
        .await
    }

    async fn try_connect(&self, database: &str) -> Result<Client, Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.settings.host)
            .port(self.settings.port)
            .user(&self.user)
            .dbname(database)
            .application_name(APPLICATION_NAME)
            .connect_timeout(self.settings.connect_timeout);
        if let Some(password) = &self.settings.password {
            config.password(password.expose_secret());
        }
        // tokio-postgres's connect_timeout covers only opening the socket: a server that accepts
        // and never answers would hang the login, so the whole connect gets the deadline.
        let attempt =
            tokio::time::timeout(self.settings.connect_timeout, config.connect(NoTls)).await;
        let (client, connection) = match attempt {
            Err(_elapsed) => {
                return Err(Error::ConnectTimeout {
                    endpoint: self.settings.endpoint(),
                    user: self.user.clone(),
                    database: database.into(),
                    timeout_ms: self.settings.connect_timeout.as_millis(),
                })
            }
            Ok(Err(error)) => return Err(self.connect_error(database, &error)),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(error = %PgFailure::from(&error), "connection ended with an error");
            }
        });
        debug!("connected");
        Ok(client)
    }

    fn connect_error(&self, database: &str, error: &tokio_postgres::Error) -> Error {
        let failure = PgFailure::from(error);
        // The driver reports a missing password as a configuration error with this text; it is
        // the server asking for a password we do not have.
        if failure.code.is_none() && failure.message.contains("password missing") {
            return Error::PasswordRequired {
                endpoint: self.settings.endpoint(),
                user: self.user.clone(),
                database: database.into(),
            };
        }
        Error::Connect {
            endpoint: self.settings.endpoint(),
            user: self.user.clone(),
            database: database.into(),
            failure,
        }
    }
}

fn prompt_user() -> Result<String, Error> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "Database user: ");
    let _ = stderr.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Error::Internal(format!("cannot read the user name from the terminal: {e}"))
    })?;
    let user = line.trim().to_string();
    if user.is_empty() {
        return Err(Error::InvalidOptions(vec![
            "no database user given: pass --user or set PGUSER".into(),
        ]));
    }
    Ok(user)
}

fn prompt_password(user: &str, endpoint: &str) -> Result<SecretString, Error> {
    rpassword::prompt_password(format!("Password for user {user} on {endpoint}: "))
        .map(SecretString::from)
        .map_err(|e| Error::Internal(format!("cannot read the password from the terminal: {e}")))
}
