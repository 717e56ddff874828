//! A throwaway PostgreSQL cluster per test: real server binaries, a free port, a socket
//! directory of its own, scram password auth; stopped and removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

pub mod pooler;
pub mod proxy;
use tokio_postgres::{Client, NoTls};

/// The cluster's superuser.
pub const SUPERUSER: &str = "slate_admin";
pub const SUPERUSER_PASSWORD: &str = "super secret's \\pw";
/// A role with CREATEDB only.
pub const CREATOR: &str = "creator";
pub const CREATOR_PASSWORD: &str = "creator-pw";
/// A login role without privileges.
pub const PLAIN: &str = "plain";
pub const PLAIN_PASSWORD: &str = "plain-pw";

/// Where the PostgreSQL server binaries are: what `scripts/pg-bindir.sh` says (PG_BINDIR, else
/// `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, else PATH), the same script
/// `.ci/run` uses.
fn bindir() -> &'static Path {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-bindir.sh");
        let out = Command::new(script)
            .output()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// initdb refuses to run as root: as root, run the server binaries as `postgres`.
fn server_command(bindir: &Path, program: &str) -> Command {
    let binary = bindir.join(program);
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

fn run_checked(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The password of the `tls_only` role of [`Cluster::start_with_tls`].
pub const TLS_ONLY_PASSWORD: &str = "tls-only-pw";

fn chown_to_server_user(path: &Path) {
    if running_as_root() {
        let mut chown = Command::new("chown");
        chown.arg("-R").arg("postgres").arg(path);
        run_checked(chown, "chown");
    }
}

/// A certificate authority made for one test.
pub struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        TestCa { key, cert }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate and key (PEM) for `name`, signed by this CA.
    pub fn issue(&self, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// One running throwaway cluster.
pub struct Cluster {
    dir: TempDir,
    pub port: u16,
    /// The server binaries this cluster runs.
    bindir: PathBuf,
    /// A copy of the server's installation this cluster runs, if any (removed with it).
    installation: Option<TempDir>,
}

impl Cluster {
    /// Starts a cluster with the superuser, a CREATEDB-only role and a plain login role.
    pub async fn start() -> Cluster {
        Cluster::start_from(bindir().to_path_buf()).await
    }

    /// A cluster whose dblink is a trusted extension (`trusted = true` in its control file), as
    /// managed services arrange: a non-superuser with CREATE on a database may install it. Runs
    /// a copy of the server's installation, the control file edited.
    pub async fn start_with_trusted_dblink() -> Cluster {
        let installation = tempfile::Builder::new()
            .prefix("slate-test-pg-trusted.")
            .tempdir()
            .unwrap();
        let copy = installation.path().to_path_buf();
        let bindir = bindir();
        let base = bindir.parent().unwrap();
        let copy_tree = |from: &Path, to: &Path| {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            let mut cp = Command::new("cp");
            cp.arg("-a").arg(from).arg(to);
            run_checked(cp, "cp -a");
        };
        let (new_bindir, control) = if base.join("share/postgresql/extension").is_dir() {
            // A self-contained build (the npm registry's): bin/, lib/ and share/ side by side.
            copy_tree(base, &copy.join("pg"));
            (
                copy.join("pg/bin"),
                copy.join("pg/share/postgresql/extension/dblink.control"),
            )
        } else {
            // Debian's layout: the server finds share/ relative to bin/, so copy both.
            let out = Command::new("pg_config")
                .arg("--sharedir")
                .output()
                .unwrap();
            let sharedir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            let major = base.file_name().unwrap();
            let lib = copy.join("lib/postgresql").join(major);
            let share = copy.join("share/postgresql").join(major);
            copy_tree(base, &lib);
            copy_tree(&sharedir, &share);
            (lib.join("bin"), share.join("extension/dblink.control"))
        };
        let text = std::fs::read_to_string(&control).unwrap();
        std::fs::write(&control, format!("{text}trusted = true\n")).unwrap();
        chown_to_server_user(&copy);
        let mut cluster = Cluster::init_from(new_bindir, &[]);
        cluster.installation = Some(installation);
        cluster.start_server(None);
        cluster.add_roles().await;
        cluster
    }

    /// The same, with the server binaries in `bindir` (another PostgreSQL version).
    pub async fn start_from(bindir: PathBuf) -> Cluster {
        let mut cluster = Cluster::init_from(bindir, &[]);
        cluster.start_server(None);
        cluster.add_roles().await;
        cluster
    }

    /// A cluster that can publish: `wal_level = logical`, with room for ten slots and senders.
    pub async fn start_logical() -> Cluster {
        let mut cluster = Cluster::init_from(bindir().to_path_buf(), &[]);
        cluster.start_server(Some(
            "-c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c wal_retrieve_retry_interval=1s",
        ));
        cluster.add_roles().await;
        cluster
    }

    /// The CREATEDB-only and the plain login roles.
    async fn add_roles(&self) {
        let cluster = self;
        let admin = cluster.superuser_client("postgres").await;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {CREATOR} LOGIN CREATEDB PASSWORD '{CREATOR_PASSWORD}';
                 CREATE ROLE {PLAIN} LOGIN PASSWORD '{PLAIN_PASSWORD}';"
            ))
            .await
            .unwrap();
    }

    /// Starts a cluster with only the superuser (synchronous: for tests that need no client).
    pub fn start_bare() -> Cluster {
        let mut cluster = Cluster::init(&[]);
        cluster.start_server(None);
        cluster
    }

    /// Creates the cluster's data directory without starting it; `hba` lines go before
    /// initdb's own in pg_hba.conf. The port is chosen now.
    pub fn init(hba: &[&str]) -> Cluster {
        Cluster::init_from(bindir().to_path_buf(), hba)
    }

    fn init_from(bindir: PathBuf, hba: &[&str]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("slate-test-pg.")
            .tempdir()
            .unwrap();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{SUPERUSER_PASSWORD}\n")).unwrap();
        std::fs::create_dir(dir.path().join("socket")).unwrap();
        chown_to_server_user(dir.path());
        let mut initdb = server_command(&bindir, "initdb");
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run_checked(initdb, "initdb");
        std::fs::remove_file(&pwfile).unwrap();
        if !hba.is_empty() {
            let path = dir.path().join("data/pg_hba.conf");
            let existing = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{}\n{existing}", hba.join("\n"))).unwrap();
        }
        Cluster {
            dir,
            port: free_port(),
            bindir,
            installation: None,
        }
    }

    /// Starts the server; `extra` adds `-c` settings. A port picked free can be taken before
    /// the server binds it: then another is tried (a test that told the port to the tool
    /// already then fails, rarely and visibly).
    pub fn start_server(&mut self, extra: Option<&str>) {
        let mut log = String::new();
        for _ in 0..5 {
            match self.start_server_on(self.port, extra) {
                Ok(()) => return,
                Err(server_log) => {
                    log = server_log;
                    self.port = free_port();
                }
            }
        }
        panic!("could not start PostgreSQL: {log}");
    }

    fn start_server_on(&self, port: u16, extra: Option<&str>) -> Result<(), String> {
        let mut pg_ctl = server_command(&self.bindir, "pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 {}",
                self.dir.path().join("socket").display(),
                extra.unwrap_or("")
            ))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if pg_ctl.status().map(|s| s.success()).unwrap_or(false) {
            Ok(())
        } else {
            Err(std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default())
        }
    }

    /// A cluster with TLS on, its certificate signed by a CA made for the test and issued for
    /// `localhost` only. The role `tls_only` (CREATEDB) may log in over TLS only.
    pub async fn start_with_tls() -> (Cluster, TestCa) {
        let mut cluster = Cluster::init(&[
            "hostssl all tls_only 127.0.0.1/32 scram-sha-256",
            "host all tls_only 127.0.0.1/32 reject",
        ]);
        let ca = TestCa::new("slate test CA");
        let (cert, key) = ca.issue("localhost");
        let data = cluster.dir.path().join("data");
        std::fs::write(data.join("server.crt"), cert).unwrap();
        std::fs::write(data.join("server.key"), key).unwrap();
        chown_to_server_user(&data);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        cluster.start_server(Some("-c ssl=on"));
        let admin = cluster.superuser_client("postgres").await;
        admin
            .batch_execute(&format!(
                "CREATE ROLE tls_only LOGIN CREATEDB PASSWORD '{TLS_ONLY_PASSWORD}'"
            ))
            .await
            .unwrap();
        (cluster, ca)
    }

    /// A hot standby of this cluster on a port of its own: a copy of the data directory taken
    /// with the server stopped (so it is consistent at once), started in standby mode with no
    /// primary to follow. This cluster is running again when it returns.
    pub fn hot_standby(&mut self) -> Cluster {
        let _ = server_command(&self.bindir, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let dir = tempfile::Builder::new()
            .prefix("slate-test-standby.")
            .tempdir()
            .unwrap();
        let mut copy = Command::new("cp");
        copy.arg("-a")
            .arg(self.dir.path().join("data"))
            .arg(dir.path().join("data"));
        run_checked(copy, "copying the data directory");
        std::fs::create_dir(dir.path().join("socket")).unwrap();
        std::fs::write(dir.path().join("data/standby.signal"), "").unwrap();
        chown_to_server_user(dir.path());
        self.start_server(None);
        let mut standby = Cluster {
            dir,
            port: free_port(),
            bindir: self.bindir.clone(),
            installation: None,
        };
        standby.start_server(Some("-c hot_standby=on"));
        standby
    }

    /// Writes `contents` to a file in the cluster's directory and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The Unix-socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    /// Stops the server now (tests of "server gone" behaviour).
    pub fn stop(&self) {
        let _ = server_command(&self.bindir, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Restarts the server (`pg_ctl restart -m fast`): every session ends, the data stays.
    /// (Used by the fault tests, which need the `test-hooks` build.)
    #[cfg(feature = "test-hooks")]
    pub fn restart(&self) {
        let mut pg_ctl = server_command(&self.bindir, "pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-m", "fast", "restart"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run_checked(pg_ctl, "pg_ctl restart");
    }

    /// The last `lines` lines of the server's log, for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Every database's name, sorted (template databases left out).
    pub async fn databases(&self) -> Vec<String> {
        self.superuser_client("postgres")
            .await
            .query(
                "SELECT datname::text FROM pg_database WHERE NOT datistemplate ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// A superuser client of the cluster on `port`, database postgres.
    pub async fn client_on_port(port: u16) -> Client {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(port)
            .user(SUPERUSER)
            .password(SUPERUSER_PASSWORD)
            .dbname("postgres")
            .connect(NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// A client as `user`.
    pub async fn client_as(&self, user: &str, password: &str, database: &str) -> Client {
        self.try_client_as(user, password, database)
            .await
            .unwrap_or_else(|e| panic!("connect to {database}: {e:?}"))
    }

    /// A client as `user`, or why the server refused it.
    pub async fn try_client_as(
        &self,
        user: &str,
        password: &str,
        database: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(database)
            .connect(NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// `server_version_num`.
    pub async fn server_version(&self) -> i32 {
        self.superuser_client("postgres")
            .await
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Creates a source store `name` with the tool and returns a superuser client on it.
    pub async fn source(&self, name: &str) -> Client {
        run(self.tool().args(["-n", name, "-t", "source"])).assert_code(0);
        self.superuser_client(name).await
    }

    /// A superuser client.
    pub async fn superuser_client(&self, database: &str) -> Client {
        self.client_as(SUPERUSER, SUPERUSER_PASSWORD, database)
            .await
    }

    /// Creates an empty database (no layout) and returns a superuser client connected to it.
    pub async fn empty_database(&self, database: &str) -> Client {
        self.superuser_client("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE \"{database}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {database}: {e:?}"));
        self.superuser_client(database).await
    }

    /// A database with `layout`'s migrations applied up to `version` only, through the library
    /// (as an older release would have left it).
    pub async fn database_at(
        &self,
        database: &str,
        layout: init_slate_db::store::layout::Layout,
        version: i32,
    ) -> Client {
        let mut client = self.empty_database(database).await;
        init_slate_db::store::layout::apply(&mut client, layout, Some(version))
            .await
            .unwrap_or_else(|e| panic!("{layout} up to V{version} on {database}: {e:?}"));
        client
    }

    /// Whether `database` exists.
    pub async fn database_exists(&self, database: &str) -> bool {
        self.superuser_client("postgres")
            .await
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
            .await
            .unwrap()
            .is_some()
    }

    /// Waits until no session is connected to `database` (CREATE DATABASE needs its template
    /// free of other sessions, and a dropped client's backend takes a moment to exit).
    pub async fn wait_until_idle(&self, database: &str) {
        let admin = self.superuser_client("postgres").await;
        for _ in 0..200 {
            let sessions: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&database],
                )
                .await
                .unwrap()
                .get(0);
            if sessions == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{database} stayed busy");
    }

    /// The tool, set to reach this cluster as the superuser (password through PGPASSWORD),
    /// with no terminal and no inherited PG* settings.
    pub fn tool(&self) -> Command {
        self.tool_as(SUPERUSER, Some(SUPERUSER_PASSWORD))
    }

    /// The tool as `user`, with `password` in PGPASSWORD when given.
    pub fn tool_as(&self, user: &str, password: Option<&str>) -> Command {
        let mut command = tool();
        command.args([
            "--host",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--user",
            user,
        ]);
        if let Some(password) = password {
            command.env("PGPASSWORD", password);
        }
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tool binary with a clean environment: no PG* variables, no terminal, no colours.
/// Only PATH survives: no PG*, no DATABASE_URL, no INIT_SLATE_DB_*, no RUST_BACKTRACE, and HOME
/// is an empty directory of the test run (no ~/.pgpass, no ~/.postgresql/root.crt).
pub fn tool() -> Command {
    static HOME: OnceLock<TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("slate-test-home.")
            .tempdir()
            .unwrap()
    });
    let mut command = Command::new(env!("CARGO_BIN_EXE_init-slate-db"));
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.env("HOME", home.path());
    command.stdin(Stdio::null());
    command
}

/// Runs `command` to completion with a hard limit, so a hang fails the test instead of the CI.
pub fn run(command: &mut Command) -> Outcome {
    run_with_stdin(command, None)
}

/// [`run`], with `input` on standard input.
pub fn run_with_stdin(command: &mut Command, input: Option<&str>) -> Outcome {
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start init-slate-db");
    if let Some(input) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let output = wait_with_limit(child, std::time::Duration::from_secs(120));
    Outcome { output }
}

fn wait_with_limit(child: std::process::Child, limit: std::time::Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("wait for init-slate-db"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("init-slate-db did not finish within {limit:?}");
        }
    }
}

/// What a run of the tool produced.
pub struct Outcome {
    pub output: Output,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match self.output.status.code() {
            Some(code) => code,
            None => panic!(
                "init-slate-db was killed by signal {:?}:\n{}",
                self.output.status.signal(),
                self.stderr()
            ),
        }
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// The lines starting with `error: `.
    pub fn error_lines(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.starts_with("error: "))
            .map(String::from)
            .collect()
    }
    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code(),
            expected,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// The SQLSTATE of a server's error (or the error, for another failure).
pub fn sqlstate(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map(|db| db.code().code().to_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Whether the session with `pid` is waiting for a lock (a row lock, as writers of the id row do).
pub async fn waits_on_a_lock(client: &Client, pid: i32) -> bool {
    client
        .query_one(
            "SELECT coalesce(bool_or(wait_event_type = 'Lock'), false) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0)
}

/// A session listening on `channel`: notifications arrive on the returned receiver.
pub async fn listen(
    cluster: &Cluster,
    database: &str,
    channel: &str,
) -> (
    Client,
    tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
) {
    listen_as(cluster, SUPERUSER, SUPERUSER_PASSWORD, database, channel).await
}

/// The same, as `user`.
pub async fn listen_as(
    cluster: &Cluster,
    user: &str,
    password: &str,
    database: &str,
    channel: &str,
) -> (
    Client,
    tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
) {
    use futures_util::StreamExt;
    let (client, mut connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(cluster.port)
        .user(user)
        .password(password)
        .dbname(database)
        .connect(NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(notification) = message {
                let _ = tx.send(notification);
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    (client, rx)
}

/// A pool of connections to `database` (concurrent writers).
pub fn pool(cluster: &Cluster, database: &str, size: usize) -> deadpool_postgres::Pool {
    pool_as(cluster, SUPERUSER, SUPERUSER_PASSWORD, database, size)
}

/// A pool of connections to `database` as `user`.
pub fn pool_as(
    cluster: &Cluster,
    user: &str,
    password: &str,
    database: &str,
    size: usize,
) -> deadpool_postgres::Pool {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(cluster.port)
        .user(user)
        .password(password)
        .dbname(database);
    let manager = deadpool_postgres::Manager::from_config(
        config,
        NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .build()
        .unwrap()
}

/// The tool running in the background, its stderr read line by line as it comes.
pub struct Running {
    child: Option<std::process::Child>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `command` in the background.
pub fn spawn(command: &mut Command) -> Running {
    use std::io::{BufRead, Read};
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start init-slate-db");
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let all = stderr.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            all.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let out = stdout.clone();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out_pipe.read_to_string(&mut text);
        out.lock().unwrap().push_str(&text);
    });
    Running {
        child: Some(child),
        lines,
        stderr,
        stdout,
    }
}

impl Running {
    /// Waits up to 60 s for a stderr line containing `needle`; panics with what it saw if none.
    pub fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!(
            "no line with {needle:?} on stderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// Sends `signal` (`INT`, `TERM`, `KILL`) to the tool. (Used by the fault tests.)
    #[cfg(feature = "test-hooks")]
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Waits for the tool to end (at most `limit`) and returns what it did.
    pub fn finish(mut self, limit: std::time::Duration) -> Outcome {
        let mut child = self.child.take().unwrap();
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "init-slate-db did not end within {limit:?}:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        // Let the reader threads drain the pipes.
        std::thread::sleep(std::time::Duration::from_millis(200));
        Outcome {
            output: Output {
                status,
                stdout: self.stdout.lock().unwrap().clone().into_bytes(),
                stderr: self.stderr.lock().unwrap().clone().into_bytes(),
            },
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The VALUES text clients send to insert_events: `($1[1], $2, '<json>'),($1[2], $2, '<json>')`.
pub fn values(events: &[&str]) -> String {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| format!("($1[{}], $2, '{}')", i + 1, e.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",")
}

/// `SELECT insert_events(text)`: the rows it reports.
pub async fn insert(client: &Client, values_text: &str) -> Result<i32, tokio_postgres::Error> {
    client
        .query_one("SELECT insert_events($1)", &[&values_text])
        .await
        .map(|r| r.get(0))
}
