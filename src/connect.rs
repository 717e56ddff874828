//! Connection settings, resolved in one place with libpq's conventions, and connecting with a
//! deadline, TLS, the password file, a password prompt, and waiting for a server to come up.
//!
//! Precedence, highest first: explicit options, the connection string (`--url` or
//! `DATABASE_URL`), the `PG*` environment variables, libpq's defaults.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::{Host, SslMode as DriverSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::{ConnectFailure, Error};
use crate::pg::PgFailure;
use crate::pgpass;
use crate::tls::{self, RootCerts, SslMode};

/// The default connect timeout, in milliseconds (the original's).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 15_000;

/// Shown to DBAs in `pg_stat_activity` unless PGAPPNAME or the URL says otherwise.
const APPLICATION_NAME: &str = "init-slate-db";

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

    /// Database user; must be allowed to create databases (and a superuser for a source
    /// database, to install dblink). If absent: prompted for on a terminal, else the OS user
    /// [env: PGUSER]
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
    #[arg(long, value_name = "MODE", global = true)]
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

/// Validated connection settings. The password never leaves its [`SecretString`] except to be
/// handed to the driver (its Debug output is redacted).
#[derive(Debug)]
pub struct ConnectionSettings {
    /// Host name, IP address, or Unix-socket directory.
    pub host: String,
    /// TCP port (also names the Unix socket file).
    pub port: u16,
    /// The user, if given; resolved by [`Connector::new`] otherwise.
    pub user: Option<String>,
    /// The password, if given (options, standard input, URL or PGPASSWORD).
    pub password: Option<SecretString>,
    /// The connection string's database, if it has one.
    pub database: Option<String>,
    /// Bound on each connection attempt, login included.
    pub connect_timeout: Duration,
    /// TLS mode.
    pub ssl_mode: SslMode,
    /// Trusted roots, if any.
    pub ssl_root_cert: Option<RootCerts>,
    /// `application_name` of every session.
    pub application_name: String,
    /// How long to keep retrying a server that is not up yet.
    pub wait: Option<Duration>,
    /// The password file to consult.
    pub passfile: Option<PathBuf>,
}

/// What a connection string says.
#[derive(Default, Debug)]
struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
}

impl ConnectionSettings {
    /// Resolves `args` over the connection string and the environment (`env` reads a variable;
    /// `stdin` reads standard input for --password-stdin), adding one line to `problems` per
    /// invalid setting.
    pub fn resolve(
        args: ConnectionArgs,
        env: &dyn Fn(&str) -> Option<String>,
        stdin: &mut dyn FnMut() -> std::io::Result<String>,
        problems: &mut Vec<String>,
    ) -> Option<Self> {
        let before = problems.len();
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let url = match args.url.as_deref().filter(|u| !u.is_empty()) {
            None => UrlParts::default(),
            Some(text) => parse_url(text).unwrap_or_else(|why| {
                problems.push(format!("--url is invalid: {why}"));
                UrlParts::default()
            }),
        };

        let host = args
            .host
            .filter(|h| !h.is_empty())
            .or(url.host)
            .or_else(|| env("PGHOST"))
            .unwrap_or_else(|| "localhost".into());
        let port = match args.port.filter(|p| !p.is_empty()) {
            Some(text) => parse_port(&text, "--port", problems),
            None => match url.port {
                Some(port) => port,
                None => env("PGPORT")
                    .map(|text| parse_port(&text, "PGPORT", problems))
                    .unwrap_or(5432),
            },
        };
        let user = args
            .user
            .filter(|u| !u.is_empty())
            .or(url.user)
            .or_else(|| env("PGUSER"));

        if args.password.is_some() && args.password_stdin {
            problems.push("--password and --password-stdin are both given: use one".into());
        }
        let stdin_password = if args.password_stdin {
            match stdin() {
                Ok(mut text) => {
                    if text.ends_with('\n') {
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                    }
                    Some(text)
                }
                Err(e) => {
                    problems.push(format!("--password-stdin: cannot read standard input: {e}"));
                    None
                }
            }
        } else {
            None
        };
        let password = args
            .password
            .or(stdin_password)
            .or(url.password)
            .or_else(|| env("PGPASSWORD"))
            .map(SecretString::from);

        let connect_timeout = match args.connect_timeout {
            Some(text) => match text.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    problems.push(format!("--connect-timeout {text:?} is invalid: it must be a positive whole number of milliseconds"));
                    Duration::ZERO
                }
            },
            None => match url.connect_timeout {
                Some(timeout) => timeout,
                None => match env("PGCONNECT_TIMEOUT") {
                    Some(text) => match text.parse::<u64>() {
                        Ok(secs) if secs > 0 => Duration::from_secs(secs),
                        _ => {
                            problems.push(format!("PGCONNECT_TIMEOUT {text:?} is invalid: it must be a positive whole number of seconds"));
                            Duration::ZERO
                        }
                    },
                    None => Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
                },
            },
        };

        let (mode_text, mode_from) = match (args.sslmode, url.sslmode, env("PGSSLMODE")) {
            (Some(m), _, _) => (m, "--sslmode"),
            (None, Some(m), _) => (m, "the URL's sslmode"),
            (None, None, Some(m)) => (m, "PGSSLMODE"),
            (None, None, None) => ("prefer".into(), "sslmode"),
        };
        let ssl_mode = parse_ssl_mode(&mode_text, mode_from, problems);
        let ssl_root_cert = args
            .sslrootcert
            .or(url.sslrootcert)
            .or_else(|| env("PGSSLROOTCERT"))
            .map(|value| {
                if value == "system" {
                    RootCerts::System
                } else {
                    RootCerts::File(value)
                }
            })
            .or_else(|| {
                let default = PathBuf::from(env("HOME")?).join(".postgresql/root.crt");
                default
                    .exists()
                    .then(|| RootCerts::File(default.to_string_lossy().into_owned()))
            });
        if ssl_mode.verifies() && ssl_root_cert.is_none() {
            problems.push(format!(
                "sslmode {ssl_mode} needs trusted root certificates: pass --sslrootcert FILE (or \"system\"), set PGSSLROOTCERT, or put them in ~/.postgresql/root.crt"
            ));
        }
        let wait = args.wait.and_then(|text| match text.parse::<u64>() {
            Ok(secs) => Some(Duration::from_secs(secs)),
            Err(_) => {
                problems.push(format!(
                    "--wait {text:?} is invalid: it must be a whole number of seconds"
                ));
                None
            }
        });
        let application_name = url
            .application_name
            .or_else(|| env("PGAPPNAME"))
            .unwrap_or_else(|| APPLICATION_NAME.into());
        let passfile = pgpass::default_path(env("PGPASSFILE"));

        (problems.len() == before).then_some(ConnectionSettings {
            host,
            port,
            user,
            password,
            database: url.database,
            connect_timeout,
            ssl_mode,
            ssl_root_cert,
            application_name,
            wait,
            passfile,
        })
    }

    /// Settings for a second server (restore's backup): its own host, port (default 5432),
    /// user (default this one's), password and sslmode (default this one's); the timeout, wait,
    /// trusted roots, application name and password file are this one's.
    pub fn for_other_server(
        &self,
        host: String,
        port: Option<&str>,
        user: Option<String>,
        password: Option<String>,
        sslmode: Option<&str>,
        problems: &mut Vec<String>,
    ) -> ConnectionSettings {
        ConnectionSettings {
            host,
            port: port.map_or(5432, |text| parse_port(text, "--from-port", problems)),
            user: user.filter(|u| !u.is_empty()).or_else(|| self.user.clone()),
            password: password.map(SecretString::from),
            database: None,
            connect_timeout: self.connect_timeout,
            ssl_mode: sslmode.map_or(self.ssl_mode, |text| {
                parse_ssl_mode(text, "--from-sslmode", problems)
            }),
            ssl_root_cert: self.ssl_root_cert.clone(),
            application_name: self.application_name.clone(),
            wait: self.wait,
            passfile: self.passfile.clone(),
        }
    }

    /// Where the server is, for messages: `host:port`, or the socket path.
    pub fn endpoint(&self) -> String {
        if self.is_socket() {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A Unix-socket directory: TLS does not apply there, as in libpq.
    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// How the connection is secured, for messages.
    pub fn transport(&self) -> String {
        if self.is_socket() {
            "Unix socket".into()
        } else {
            format!("sslmode {}", self.ssl_mode)
        }
    }
}

fn parse_ssl_mode(text: &str, from: &str, problems: &mut Vec<String>) -> SslMode {
    SslMode::parse(text).unwrap_or_else(|| {
        problems.push(format!(
            "{from} {text:?} is invalid: it must be disable, allow, prefer, require, verify-ca or verify-full"
        ));
        SslMode::Prefer
    })
}

fn parse_port(text: &str, from: &str, problems: &mut Vec<String>) -> u16 {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => port,
        _ => {
            problems.push(format!(
                "{from} {text:?} is invalid: it must be a whole number from 1 to 65535"
            ));
            0
        }
    }
}

/// Parses a `postgresql://` URI or a `key=value` string with tokio-postgres's parser. The
/// parser knows neither verify-ca/verify-full nor sslrootcert, so those are taken out first.
fn parse_url(text: &str) -> Result<UrlParts, String> {
    let (rest, sslmode, sslrootcert) = take_tls_options(text);
    let config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
        let failure = PgFailure::from(&e);
        format!("{failure} (expected postgresql://user@host:port/database?sslmode=... or \"host=... port=... dbname=...\")")
    })?;
    if config.get_hosts().len() > 1 {
        return Err("it names several hosts; init-slate-db connects to one".into());
    }
    let host = config.get_hosts().first().map(|h| match h {
        Host::Tcp(name) => name.clone(),
        #[cfg(unix)]
        Host::Unix(path) => path.to_string_lossy().into_owned(),
    });
    Ok(UrlParts {
        host,
        port: config.get_ports().first().copied(),
        user: config.get_user().map(String::from),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        database: config.get_dbname().map(String::from),
        sslmode,
        sslrootcert,
        application_name: config.get_application_name().map(String::from),
        connect_timeout: config.get_connect_timeout().copied(),
    })
}

/// Removes `sslmode` and `sslrootcert` from a URI's query or a key=value string, returning
/// the rest and their values.
fn take_tls_options(text: &str) -> (String, Option<String>, Option<String>) {
    let (mut sslmode, mut sslrootcert) = (None, None);
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let Some((base, query)) = text.split_once('?') else {
            return (text.to_string(), None, None);
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", value)) => sslmode = Some(percent_decode(value)),
                Some(("sslrootcert", value)) => sslrootcert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, sslmode, sslrootcert);
    }
    let mut kept = Vec::new();
    for (key, value, raw) in key_value_pairs(text) {
        match key.as_str() {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => sslrootcert = Some(value),
            _ => kept.push(raw),
        }
    }
    (kept.join(" "), sslmode, sslrootcert)
}

/// `key = value` pairs of a libpq conninfo string: (key, unquoted value, the pair's text).
fn key_value_pairs(text: &str) -> Vec<(String, String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            // Not a pair: keep it for the driver to complain about.
            if !key.is_empty() {
                pairs.push((key.clone(), String::new(), key));
            }
            continue;
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        let raw: String = chars[start..i.min(chars.len())].iter().collect();
        pairs.push((key, value, raw));
    }
    pairs
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens connections with the resolved settings: TLS as the sslmode says, the password file
/// when no password was given, a prompt at most once when the server wants a password and a
/// person is there to answer, and retries while `--wait` allows.
pub struct Connector {
    settings: ConnectionSettings,
    user: String,
    interactive: bool,
    tls: Option<MakeRustlsConnect>,
}

/// One failed attempt, and whether waiting could help.
struct Failed {
    error: Error,
    retryable: bool,
}

impl Connector {
    /// Resolves the user (the given one, else a prompt on a terminal, else the OS user, as
    /// libpq) and builds the TLS configuration.
    pub fn new(settings: ConnectionSettings) -> Result<Self, Error> {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let user = match &settings.user {
            Some(user) => user.clone(),
            None if interactive => prompt_user()?,
            None => whoami::username().map_err(|e| {
                Error::InvalidOptions(vec![format!("--user is not set and the OS user name is unknown ({e}); pass --user or set PGUSER")])
            })?,
        };
        let tls = match settings.ssl_mode {
            SslMode::Disable => None,
            mode => {
                let roots = if mode == SslMode::Allow || mode == SslMode::Prefer {
                    None
                } else {
                    settings.ssl_root_cert.as_ref()
                };
                let config = tls::client_config(mode, roots)
                    .map_err(|why| Error::InvalidOptions(vec![why]))?;
                Some(MakeRustlsConnect::new(config))
            }
        };
        Ok(Connector {
            settings,
            user,
            interactive,
            tls,
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

    /// Connects to `database`: each attempt within the connect timeout (TCP connect and login
    /// together), retrying refused connections and a starting server while `--wait` allows.
    pub async fn connect(&mut self, database: &str) -> Result<Client, Error> {
        let span = info_span!("connect", endpoint = %self.settings.endpoint(), user = %self.user, database);
        async {
            let deadline = self.settings.wait.map(|wait| Instant::now() + wait);
            let mut delay = Duration::from_millis(250);
            loop {
                match self.connect_once(database).await {
                    Ok(client) => return Ok(client),
                    Err(Failed {
                        error,
                        retryable: true,
                    }) if deadline.is_some_and(|d| Instant::now() + delay < d) => {
                        warn!(
                            retry_in_ms = delay.as_millis() as u64,
                            "server not ready, retrying: {error}"
                        );
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                    Err(failed) => return Err(failed.error),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt, asking for the password once if the server wants one we do not have.
    async fn connect_once(&mut self, database: &str) -> Result<Client, Failed> {
        let password = self.password_for(database);
        match self.attempt(database, password.as_ref()).await {
            Err(Failed {
                error: Error::PasswordRequired { .. },
                ..
            }) if self.interactive && password.is_none() => {
                let prompted =
                    prompt_password(&self.user, &self.settings.endpoint()).map_err(|error| {
                        Failed {
                            error,
                            retryable: false,
                        }
                    })?;
                let result = self.attempt(database, Some(&prompted)).await;
                if result.is_ok() {
                    self.settings.password = Some(prompted);
                }
                result
            }
            other => other,
        }
    }

    /// The given password, else the password file's entry for this connection.
    fn password_for(&self, database: &str) -> Option<SecretString> {
        if let Some(password) = &self.settings.password {
            return Some(SecretString::from(password.expose_secret().to_string()));
        }
        let path = self.settings.passfile.as_ref()?;
        let found = pgpass::lookup(
            path,
            &self.settings.host,
            self.settings.port,
            database,
            &self.user,
        );
        if found.is_some() {
            debug!(file = %path.display(), "password from the password file");
        }
        found
    }

    async fn attempt(
        &self,
        database: &str,
        password: Option<&SecretString>,
    ) -> Result<Client, Failed> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.settings.host)
            .port(self.settings.port)
            .user(&self.user)
            .dbname(database)
            .application_name(&self.settings.application_name)
            .connect_timeout(self.settings.connect_timeout);
        if let Some(password) = password {
            config.password(password.expose_secret());
        }
        // tokio-postgres's connect_timeout covers only opening the socket: a server that accepts
        // and never answers would hang the login, so the whole connect gets the deadline.
        let result =
            match tokio::time::timeout(self.settings.connect_timeout, self.establish(config)).await
            {
                Err(_elapsed) => {
                    return Err(Failed {
                        error: Error::ConnectTimeout {
                            endpoint: self.settings.endpoint(),
                            user: self.user.clone(),
                            database: database.into(),
                            timeout_ms: self.settings.connect_timeout.as_millis(),
                        },
                        retryable: false,
                    })
                }
                Ok(result) => result,
            };
        result.map_err(|error| Failed {
            retryable: is_retryable(&error),
            error: self.connect_error(database, &error),
        })
    }

    /// Connects with the TLS the sslmode asks for (none over a Unix socket, as libpq).
    async fn establish(
        &self,
        mut config: tokio_postgres::Config,
    ) -> Result<Client, tokio_postgres::Error> {
        let tls = match (&self.tls, self.settings.is_socket()) {
            (Some(tls), false) => tls.clone(),
            _ => return spawn(config.ssl_mode(DriverSslMode::Disable).clone(), NoTls).await,
        };
        match self.settings.ssl_mode {
            SslMode::Disable => spawn(config.ssl_mode(DriverSslMode::Disable).clone(), NoTls).await,
            // allow: plain first, TLS if the server turns plain down.
            SslMode::Allow => {
                match spawn(config.ssl_mode(DriverSslMode::Disable).clone(), NoTls).await {
                    Err(error) if error.as_db_error().is_some() => {
                        spawn(config.ssl_mode(DriverSslMode::Require).clone(), tls).await
                    }
                    other => other,
                }
            }
            SslMode::Prefer => spawn(config.ssl_mode(DriverSslMode::Prefer).clone(), tls).await,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                spawn(config.ssl_mode(DriverSslMode::Require).clone(), tls).await
            }
        }
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
        Error::Connect(Box::new(ConnectFailure {
            endpoint: self.settings.endpoint(),
            user: self.user.clone(),
            database: database.into(),
            transport: self.settings.transport(),
            failure,
        }))
    }
}

/// Connects and runs the connection on its own task.
async fn spawn<T>(config: tokio_postgres::Config, tls: T) -> Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            debug!(error = %PgFailure::from(&error), "connection ended with an error");
        }
    });
    debug!("connected");
    Ok(client)
}

/// Refused or reset connections, a missing socket file, and "the database system is starting
/// up": the server is not there yet, and waiting may help.
fn is_retryable(error: &tokio_postgres::Error) -> bool {
    if error.code() == Some(&SqlState::CANNOT_CONNECT_NOW) {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionRefused | ConnectionReset | ConnectionAborted | NotFound | UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
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

/// Reads all of standard input (for `--password-stdin`).
pub fn read_stdin() -> std::io::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(url: Option<&str>) -> ConnectionArgs {
        ConnectionArgs {
            url: url.map(String::from),
            host: None,
            port: None,
            user: None,
            password: None,
            password_stdin: false,
            connect_timeout: None,
            sslmode: None,
            sslrootcert: None,
            wait: None,
        }
    }

    fn resolve(
        args: ConnectionArgs,
        env: &[(&str, &str)],
    ) -> Result<ConnectionSettings, Vec<String>> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut problems = Vec::new();
        let mut stdin = || Ok("from stdin\n".to_string());
        ConnectionSettings::resolve(
            args,
            &|name| env.get(name).cloned(),
            &mut stdin,
            &mut problems,
        )
        .ok_or(problems)
    }

    #[test]
    fn options_beat_the_url_which_beats_the_environment() {
        let env = [
            ("PGHOST", "env-host"),
            ("PGPORT", "1111"),
            ("PGUSER", "env-user"),
            ("PGPASSWORD", "env-pw"),
        ];
        let settings = resolve(args(None), &env).unwrap();
        assert_eq!(
            (
                settings.host.as_str(),
                settings.port,
                settings.user.as_deref()
            ),
            ("env-host", 1111, Some("env-user"))
        );
        assert_eq!(settings.password.unwrap().expose_secret(), "env-pw");

        let settings = resolve(
            args(Some(
                "postgresql://url-user:url%20pw@url-host:2222/url_db?sslmode=require",
            )),
            &env,
        )
        .unwrap();
        assert_eq!(
            (
                settings.host.as_str(),
                settings.port,
                settings.user.as_deref()
            ),
            ("url-host", 2222, Some("url-user"))
        );
        assert_eq!(settings.password.unwrap().expose_secret(), "url pw");
        assert_eq!(settings.database.as_deref(), Some("url_db"));
        assert_eq!(settings.ssl_mode, SslMode::Require);

        let mut explicit = args(Some("postgresql://url-user@url-host:2222/url_db"));
        explicit.host = Some("opt-host".into());
        explicit.port = Some("3333".into());
        explicit.user = Some("opt-user".into());
        let settings = resolve(explicit, &env).unwrap();
        assert_eq!(
            (
                settings.host.as_str(),
                settings.port,
                settings.user.as_deref()
            ),
            ("opt-host", 3333, Some("opt-user"))
        );
    }

    #[test]
    fn key_value_strings_with_verify_modes_and_quoted_values() {
        let settings = resolve(
            args(Some("host=db.internal port=6543 user=admin password='a b\\'c' dbname=maint sslmode=verify-full sslrootcert='/etc/ssl/my ca.pem'")),
            &[],
        )
        .unwrap();
        assert_eq!(
            (settings.host.as_str(), settings.port),
            ("db.internal", 6543)
        );
        assert_eq!(settings.password.unwrap().expose_secret(), "a b'c");
        assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            settings.ssl_root_cert,
            Some(RootCerts::File("/etc/ssl/my ca.pem".into()))
        );
        assert_eq!(settings.database.as_deref(), Some("maint"));
    }

    #[test]
    fn libpq_environment_variables_apply() {
        let settings = resolve(
            args(None),
            &[
                ("PGSSLMODE", "verify-ca"),
                ("PGSSLROOTCERT", "system"),
                ("PGAPPNAME", "ci-job"),
                ("PGCONNECT_TIMEOUT", "3"),
                ("PGPASSFILE", "/tmp/pp"),
            ],
        )
        .unwrap();
        assert_eq!(settings.ssl_mode, SslMode::VerifyCa);
        assert_eq!(settings.ssl_root_cert, Some(RootCerts::System));
        assert_eq!(settings.application_name, "ci-job");
        assert_eq!(settings.connect_timeout, Duration::from_secs(3));
        assert_eq!(settings.passfile, Some(PathBuf::from("/tmp/pp")));
        assert_eq!(
            resolve(args(None), &[]).unwrap().application_name,
            "init-slate-db"
        );
    }

    #[test]
    fn password_stdin_strips_one_newline_and_excludes_password() {
        let mut a = args(None);
        a.password_stdin = true;
        assert_eq!(
            resolve(a, &[("PGPASSWORD", "env")])
                .unwrap()
                .password
                .unwrap()
                .expose_secret(),
            "from stdin"
        );
        let mut both = args(None);
        both.password_stdin = true;
        both.password = Some("x".into());
        assert!(resolve(both, &[]).is_err());
    }

    #[test]
    fn invalid_settings_are_each_reported() {
        let mut a = args(Some("postgresql://h/db?sslmode=sometimes"));
        a.port = Some("0".into());
        a.wait = Some("long".into());
        let problems = resolve(a, &[("PGCONNECT_TIMEOUT", "x")]).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        let problems = resolve(
            args(None),
            &[("PGSSLMODE", "verify-full"), ("HOME", "/nonexistent")],
        )
        .unwrap_err();
        assert!(
            problems[0].contains("needs trusted root certificates"),
            "{problems:?}"
        );
    }
}
