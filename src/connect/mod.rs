//! Connecting: each attempt within a deadline, TLS as the sslmode says, the password file, a
//! password prompt, and waiting for a server to come up. Settings are resolved in
//! [`settings`]; connection strings parsed in [`conninfo`].

pub mod conninfo;
pub mod pgpass;
pub mod settings;
pub mod tls;

use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, info_span, warn, Instrument};

use crate::error::{ConnectFailure, Error};
use crate::pg::PgFailure;
use crate::retry::{self, Backoff};
pub use settings::{
    ConnectionOptions, ConnectionSettings, OtherServer, OtherServerOptions,
    DEFAULT_CONNECT_TIMEOUT_MS,
};
use tls::SslMode;

/// Opens connections with the resolved settings: TLS as the sslmode says, the password file
/// when no password was given, a prompt at most once when the server wants a password and a
/// person is there to answer, and retries while `--wait` allows.
pub struct Connector {
    settings: ConnectionSettings,
    user: String,
    interactive: bool,
    tls: Option<MakeRustlsConnect>,
    canceller: Canceller,
    /// Whether the endpoint was checked for a transaction-mode pooler.
    probed: bool,
}

/// The server process id behind `client`'s session right now (simple queries: no prepared
/// statement, which a pooler may not carry between transactions). With `pin`, inside a
/// transaction left open, with the role's timeouts off for that transaction only.
async fn backend_pid(client: &Client, pin: bool) -> Result<String, tokio_postgres::Error> {
    let query = if pin {
        "BEGIN; SELECT count(pg_catalog.set_config(name, '0', true)) FROM pg_catalog.pg_settings
          WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout', 'transaction_timeout');
         SELECT pg_backend_pid()"
    } else {
        "SELECT pg_backend_pid()"
    };
    let messages = client.simple_query(query).await?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(String::from),
            _ => None,
        })
        .last()
        .unwrap_or_default())
}

/// The timeouts a DBA sets for applications (`ALTER ROLE ... SET statement_timeout`, and the
/// database's) end long restores, idle maintenance sessions and open snapshots. As pg_dump
/// does, every session of the tool turns them off; only the tool's own timeouts apply
/// (`--lock-timeout`, `--ddl-lock-timeout`, `--connect-timeout`). `pg_settings` lists only
/// the settings this server has (`idle_session_timeout` from 14, `transaction_timeout` from 17).
/// `default_transaction_read_only` is left as it is: the commands that write refuse it.
async fn own_timeouts_only(client: &Client) -> Result<(), Error> {
    client
        .simple_query(
            "SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings
              WHERE name IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
                             'idle_session_timeout', 'transaction_timeout')",
        )
        .await
        .map(|_| ())
        .map_err(|e| Error::query("turning off the session's statement and idle timeouts", &e))
}

/// Cancels whatever the connections a [`Connector`] opened are running on the server: dropping
/// a future does not stop its query, a cancel request does (it goes over a connection of its
/// own, with the same TLS settings).
#[derive(Clone)]
pub struct Canceller {
    tokens: Arc<Mutex<Vec<CancelToken>>>,
    tls: Option<MakeRustlsConnect>,
}

impl Canceller {
    /// Sends a cancel request for every connection opened so far, each bounded to 3 seconds.
    /// A connection with nothing running, or already closed, ignores it.
    pub async fn cancel_all(&self) {
        let tokens = match self.tokens.lock() {
            Ok(tokens) => tokens.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for token in tokens {
            let sent = match &self.tls {
                Some(tls) => {
                    tokio::time::timeout(Duration::from_secs(3), token.cancel_query(tls.clone()))
                        .await
                }
                None => {
                    tokio::time::timeout(Duration::from_secs(3), token.cancel_query(NoTls)).await
                }
            };
            debug!(sent = matches!(sent, Ok(Ok(()))), "cancel request");
        }
    }

    fn remember(&self, client: &Client) {
        let token = client.cancel_token();
        match self.tokens.lock() {
            Ok(mut tokens) => tokens.push(token),
            Err(poisoned) => poisoned.into_inner().push(token),
        }
    }
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
        let canceller = Canceller {
            tokens: Arc::default(),
            tls: if settings.is_socket() {
                None
            } else {
                tls.clone()
            },
        };
        Ok(Connector {
            settings,
            user,
            interactive,
            tls,
            canceller,
            probed: false,
        })
    }

    /// A second connector with the same settings, user (no new prompt) and password (the one
    /// given or prompted for), for a task of its own; its connections are cancelled with
    /// this one's.
    pub fn duplicate(&self) -> Connector {
        let settings = &self.settings;
        Connector {
            settings: ConnectionSettings {
                host: settings.host.clone(),
                port: settings.port,
                user: settings.user.clone(),
                password: settings
                    .password
                    .as_ref()
                    .map(|p| SecretString::from(p.expose_secret().to_string())),
                database: settings.database.clone(),
                connect_timeout: settings.connect_timeout,
                ssl_mode: settings.ssl_mode,
                ssl_root_cert: settings.ssl_root_cert.clone(),
                application_name: settings.application_name.clone(),
                wait: settings.wait,
                passfile: settings.passfile.clone(),
                password_hint: settings.password_hint,
            },
            user: self.user.clone(),
            interactive: false,
            tls: self.tls.clone(),
            canceller: self.canceller.clone(),
            probed: self.probed,
        }
    }

    /// A handle that cancels the queries of every connection this connector opens.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
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
        let probed = self.probed;
        let span = info_span!("connect", endpoint = %self.settings.endpoint(), user = %self.user, database);
        async {
            // Without --wait, the first failure is final.
            let mut backoff =
                Backoff::new(retry::CONNECT, Some(self.settings.wait.unwrap_or_default()));
            loop {
                match self.connect_once(database).await {
                    Ok(client) => {
                        self.canceller.remember(&client);
                        if !probed {
                            self.probed = true;
                            // The first session is pinned in a transaction at once.
                            self.refuse_a_transaction_pooler(database, &client).await?;
                        }
                        own_timeouts_only(&client).await?;
                        return Ok(client);
                    }
                    Err(Failed {
                        error,
                        retryable: true,
                    }) => {
                        let Some(delay) = backoff.next_delay() else {
                            return Err(error);
                        };
                        warn!(
                            retry_in_ms = delay.as_millis() as u64,
                            "server not ready, retrying: {error}"
                        );
                        tokio::time::sleep(delay).await;
                    }
                    Err(failed) => return Err(failed.error),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Through a transaction-mode pooler (PgBouncer's `pool_mode = transaction`, and the
    /// like) a session-level advisory lock or setting stays with a pooled server connection
    /// that other clients use next, and the pool keeps sessions in a database being renamed.
    /// So the first connection to an endpoint checks, with a second one, that a client keeps
    /// its server session: each pins its session in turn inside a transaction, and a pooler
    /// (which hands out server sessions per transaction, most recently used first) shows as
    /// a session that changes or is shared. Inside those transactions the role's timeouts are
    /// off for the transaction only (`set_config(..., true)`), so a short idle timeout cannot
    /// end the first session while the second connects; nothing is left in either session.
    async fn refuse_a_transaction_pooler(
        &mut self,
        database: &str,
        client: &Client,
    ) -> Result<(), Error> {
        let a1 = backend_pid(client, true)
            .await
            .map_err(|e| Error::query("checking for a connection pooler", &e))?;
        let Ok(other) = self.connect_once(database).await else {
            let _ = client.batch_execute("COMMIT").await;
            return Ok(()); // cannot tell; the connection that worked goes on
        };
        let probe = async {
            // A pool of one server session makes the second client wait for the first's
            // transaction; no server does that to a plain SELECT.
            let Ok(b1) =
                tokio::time::timeout(Duration::from_secs(5), backend_pid(&other, false)).await
            else {
                return Ok(true);
            };
            let b1 = b1?;
            client.batch_execute("COMMIT").await?;
            let b2 = backend_pid(&other, true).await?;
            let a2 = backend_pid(client, false).await?;
            other.batch_execute("COMMIT").await?;
            Ok::<bool, tokio_postgres::Error>(a1 != a2 || b1 != b2 || a1 == b1)
        };
        match probe.await {
            Ok(true) => Err(Error::Pooler {
                endpoint: self.settings.endpoint(),
            }),
            Ok(false) => Ok(()),
            Err(error) => Err(Error::query("checking for a connection pooler", &error)),
        }
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
                how: self.settings.password_hint.into(),
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
