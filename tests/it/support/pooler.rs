//! A throwaway PgBouncer in front of a test cluster, in the pool mode a test asks for, with
//! SCRAM logins passed through from the server's own verifiers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{chown_to_server_user, free_port, running_as_root, Cluster, SUPERUSER};

/// One running PgBouncer; stopped and removed on drop.
pub struct PgBouncer {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

/// The pgbouncer binary, if installed (`.ci/run` installs Debian's package).
fn binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("pgbouncer is installed (.ci/run installs it)")
}

impl PgBouncer {
    /// Starts PgBouncer on a free port in front of `cluster`, `mode` being `session` or
    /// `transaction`, for the superuser.
    pub async fn start(cluster: &Cluster, mode: &str) -> PgBouncer {
        let secret: String = cluster
            .superuser_client("postgres")
            .await
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&SUPERUSER],
            )
            .await
            .unwrap()
            .get(0);
        let dir = tempfile::Builder::new()
            .prefix("slate-test-pgbouncer.")
            .tempdir()
            .unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("users.txt"),
            format!("\"{SUPERUSER}\" \"{secret}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={server}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {users}\npool_mode = {mode}\ndefault_pool_size = 4\nmax_client_conn = 50\nignore_startup_parameters = extra_float_digits,options\nlogfile = {log}\npidfile = {pid}\n",
                server = cluster.port,
                users = dir.path().join("users.txt").display(),
                log = dir.path().join("pgbouncer.log").display(),
                pid = dir.path().join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        chown_to_server_user(dir.path());
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary());
            command
        } else {
            Command::new(binary())
        };
        let mut child = command
            .arg(dir.path().join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return PgBouncer {
                    port,
                    child,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "pgbouncer did not start: {}",
            std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
        );
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser forwards the signal to pgbouncer.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
