//! Connection settings, resolved in one place with libpq's conventions.
//!
//! Precedence, highest first: explicit options, the connection string (`--url` or
//! `DATABASE_URL`), the `PG*` environment variables, libpq's defaults.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::conninfo::{parse_url, UrlParts};
use super::pgpass;
use super::tls::{RootCerts, SslMode};

/// The default connect timeout, in milliseconds (the original's).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 15_000;

/// The environment variables connection settings are read from (besides the options' own).
pub const ENVIRONMENT: &[&str] = &[
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGCONNECT_TIMEOUT",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGAPPNAME",
    "HOME",
    "INIT_SLATE_DB_LOG_FORMAT",
];

/// The longest `--wait`: a day. Beyond it a typo is likelier than intent.
pub const MAX_WAIT_SECS: u64 = 86_400;

/// Shown to DBAs in `pg_stat_activity` unless PGAPPNAME or the URL says otherwise.
const APPLICATION_NAME: &str = "init-slate-db";

/// The connection options as given, before resolution (the command line fills them in).
#[derive(Debug, Default)]
pub struct ConnectionOptions {
    /// Connection string: postgresql://user@host:port/db?sslmode=... or "host=... port=...";
    /// its database is the one connected to first (the maintenance database for create)
    pub url: Option<String>,

    /// Database server: host name, IP address, or Unix-socket directory (a value starting with
    /// '/') [env: PGHOST] [default: localhost]
    pub host: Option<String>,

    /// Database server port [env: PGPORT] [default: 5432]
    pub port: Option<String>,

    /// Database user; must be allowed to create databases (CREATEDB), and for a source database
    /// to install dblink (a superuser, a trusted extension or the service's grant). If absent:
    /// prompted for on a terminal, else the OS user [env: PGUSER]
    pub user: Option<String>,

    /// Database password; visible to other users in the process list, prefer PGPASSWORD,
    /// --password-stdin or ~/.pgpass. If none is found and the server asks for one: prompted
    /// for on a terminal, else the run fails [env: PGPASSWORD]
    pub password: Option<String>,

    /// Read the password from standard input (one trailing newline is removed)
    pub password_stdin: bool,

    /// Time allowed for each connection, TCP connect and login together, in milliseconds
    /// [env: PGCONNECT_TIMEOUT, in seconds] [default: 15000]
    pub connect_timeout: Option<String>,

    /// TLS: disable, allow, prefer, require, verify-ca or verify-full, as libpq
    /// [env: PGSSLMODE] [default: prefer]
    pub sslmode: Option<String>,

    /// Trusted root certificates for verify-ca and verify-full: a PEM file, or "system" for the
    /// platform's store [env: PGSSLROOTCERT] [default: ~/.postgresql/root.crt if it exists]
    pub sslrootcert: Option<String>,

    /// Keep retrying a server that refuses connections or is starting up, for up to this many
    /// seconds
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
    /// How to supply a password for this connection, for the error when none was given.
    pub password_hint: &'static str,
}

/// How to give the main connection a password.
const PASSWORD_HINT: &str = "pass --password-stdin, set PGPASSWORD, add it to ~/.pgpass, or run in a terminal to be prompted";

/// Which second server a command connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherServer {
    /// restore's backup (`--from-*`).
    Backup,
    /// verify's copy (`--replica-*`).
    Replica,
}

/// The options naming a second server, as given (`--from-*`, `--replica-*`).
pub struct OtherServerOptions<'a> {
    pub host: String,
    pub port: Option<&'a str>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub sslmode: Option<&'a str>,
}

/// How to give verify's replica connection a password.
const REPLICA_PASSWORD_HINT: &str =
    "pass --replica-password, set INIT_SLATE_DB_REPLICA_PASSWORD, or add it to ~/.pgpass";

/// How to give restore's backup connection a password.
const BACKUP_PASSWORD_HINT: &str =
    "pass --from-password, set INIT_SLATE_DB_FROM_PASSWORD, or add it to ~/.pgpass";

impl ConnectionSettings {
    /// Resolves `args` over the connection string and the environment (`env` reads a variable;
    /// `stdin` reads standard input for --password-stdin), adding one line to `problems` per
    /// invalid setting.
    pub fn resolve(
        args: ConnectionOptions,
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
            Ok(secs) if secs <= MAX_WAIT_SECS => Some(Duration::from_secs(secs)),
            _ => {
                problems.push(format!(
                    "--wait {text:?} is invalid: it must be a whole number of seconds from 0 to {MAX_WAIT_SECS}"
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
            password_hint: PASSWORD_HINT,
        })
    }

    /// Settings for a second server (restore's backup): its own host, port (default 5432),
    /// user (default this one's), password and sslmode (default this one's); the timeout, wait,
    /// trusted roots, application name and password file are this one's.
    pub fn for_other_server(
        &self,
        other: OtherServer,
        options: OtherServerOptions<'_>,
        problems: &mut Vec<String>,
    ) -> ConnectionSettings {
        let OtherServerOptions {
            host,
            port,
            user,
            password,
            sslmode,
        } = options;
        let (prefix, hint) = match other {
            OtherServer::Backup => ("--from", BACKUP_PASSWORD_HINT),
            OtherServer::Replica => ("--replica", REPLICA_PASSWORD_HINT),
        };
        // The replica of `verify` defaults to the reference's server; restore's backup to 5432.
        let default_port = match other {
            OtherServer::Replica if host == self.host => self.port,
            _ => 5432,
        };
        ConnectionSettings {
            host,
            port: port.map_or(default_port, |text| {
                parse_port(text, &format!("{prefix}-port"), problems)
            }),
            user: user.filter(|u| !u.is_empty()).or_else(|| self.user.clone()),
            password: password.map(SecretString::from),
            database: None,
            connect_timeout: self.connect_timeout,
            ssl_mode: sslmode.map_or(self.ssl_mode, |text| {
                parse_ssl_mode(text, &format!("{prefix}-sslmode"), problems)
            }),
            ssl_root_cert: self.ssl_root_cert.clone(),
            application_name: self.application_name.clone(),
            wait: self.wait,
            passfile: self.passfile.clone(),
            password_hint: hint,
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

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
