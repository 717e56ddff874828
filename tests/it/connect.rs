//! Connecting: wrong password, unreachable server, a server that never answers, and no
//! terminal with no password. Each fails fast with exit code 4 and creates nothing.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::{run, Cluster, SUPERUSER};

#[tokio::test]
async fn wrong_password_is_a_connection_error_naming_host_port_and_user() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster
        .tool_as(SUPERUSER, Some("not the password"))
        .args(["-n", "nope", "-t", "source"]));
    outcome.assert_code(4);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1, "{}", outcome.stderr());
    assert!(
        errors[0].contains(&format!("127.0.0.1:{}", cluster.port)),
        "{errors:?}"
    );
    assert!(errors[0].contains("user \"slate_admin\""), "{errors:?}");
    assert!(
        errors[0].contains("password authentication failed"),
        "{errors:?}"
    );
    assert!(errors[0].contains("28P01"), "{errors:?}");
    assert!(!outcome.stderr().contains("not the password"));
    assert!(!cluster.database_exists("nope").await);
}

#[test]
fn closed_port_is_refused_at_once_naming_the_endpoint() {
    // Bind and drop: nothing listens on this port now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A timeout far longer than the test's own limit: a refusal must not wait for it.
    let outcome = run(crate::support::tool().args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--user",
        "x",
        "--connect-timeout",
        "600000",
        "-n",
        "a",
        "-t",
        "source",
    ]));
    outcome.assert_code(4);
    let errors = outcome.error_lines();
    assert!(
        errors[0].contains(&format!("could not connect to 127.0.0.1:{port}")),
        "{errors:?}"
    );
    assert!(errors[0].to_lowercase().contains("refused"), "{errors:?}");
}

#[test]
fn server_that_accepts_and_never_answers_times_out() {
    // Accepts TCP connections and never speaks: only a deadline over the whole login ends this.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let outcome = run(crate::support::tool().args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--user",
        "x",
        "--password",
        "y",
        "--connect-timeout",
        "700",
        "-n",
        "a",
        "-t",
        "destination",
    ]));
    outcome.assert_code(4);
    let errors = outcome.error_lines();
    assert_eq!(
        errors,
        [format!("error: connecting to 127.0.0.1:{port} as user \"x\" (database \"postgres\") timed out after 700 ms; check --host and --port, or raise --connect-timeout")]
    );
}

#[tokio::test]
async fn no_terminal_and_no_password_fails_at_once_saying_how_to_supply_one() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster
        .tool_as(SUPERUSER, None)
        .args(["-n", "nopw", "-t", "source"]));
    outcome.assert_code(4);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1, "{}", outcome.stderr());
    assert!(
        errors[0].contains("asks for a password and none was given"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("--password") && errors[0].contains("PGPASSWORD"),
        "{errors:?}"
    );
    assert!(!cluster.database_exists("nopw").await);
}

#[tokio::test]
async fn pg_environment_variables_are_the_defaults() {
    let cluster = Cluster::start().await;
    let outcome = run(crate::support::tool()
        .args(["-n", "from_env", "-t", "destination"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", cluster.port.to_string())
        .env("PGUSER", SUPERUSER)
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD));
    outcome.assert_code(0);
    assert!(cluster.database_exists("from_env").await);
}

#[tokio::test]
async fn missing_maintenance_database_is_a_connection_error() {
    let cluster = Cluster::start().await;
    let outcome =
        run(cluster
            .tool()
            .args(["-n", "x", "-t", "source", "--maintenance-db", "no_such_db"]));
    outcome.assert_code(4);
    assert!(
        outcome.error_lines()[0].contains("database \"no_such_db\" does not exist"),
        "{}",
        outcome.stderr()
    );
}

fn write_passfile(cluster: &Cluster, contents: &str, mode: u32) -> std::path::PathBuf {
    let path = cluster.write_file("pgpass", contents);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    path
}

#[tokio::test]
async fn pgpass_supplies_the_password_with_libpq_matching() {
    let cluster = Cluster::start().await;
    let escaped = crate::support::SUPERUSER_PASSWORD
        .replace('\\', "\\\\")
        .replace(':', "\\:");
    let passfile = write_passfile(
        &cluster,
        &format!("# first line does not match the port\n127.0.0.1:1:*:{SUPERUSER}:wrong\n127.0.0.1:{}:*:{SUPERUSER}:{escaped}\n", cluster.port),
        0o600,
    );
    let outcome = run(cluster
        .tool_as(SUPERUSER, None)
        .args(["-n", "from_pgpass", "-t", "destination"])
        .env("PGPASSFILE", &passfile));
    outcome.assert_code(0);
    assert!(cluster.database_exists("from_pgpass").await);
}

#[tokio::test]
async fn pgpass_readable_by_others_is_ignored_with_a_warning() {
    let cluster = Cluster::start().await;
    let passfile = write_passfile(
        &cluster,
        &format!("*:*:*:*:{}\n", crate::support::SUPERUSER_PASSWORD),
        0o644,
    );
    let outcome = run(cluster
        .tool_as(SUPERUSER, None)
        .args(["-n", "ignored", "-t", "destination"])
        .env("PGPASSFILE", &passfile));
    outcome.assert_code(4);
    assert!(
        outcome
            .stderr()
            .contains("password file has group or world access"),
        "{}",
        outcome.stderr()
    );
    assert!(outcome.error_lines()[0].contains("asks for a password"));
}

#[tokio::test]
async fn url_supplies_settings_and_explicit_options_override_it() {
    let cluster = Cluster::start().await;
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The URL names a closed port; --port wins over it.
    let url = format!(
        "postgresql://{SUPERUSER}@127.0.0.1:{closed_port}/postgres?application_name=from-url"
    );
    let outcome = run(crate::support::tool()
        .args([
            "--url",
            &url,
            "--port",
            &cluster.port.to_string(),
            "-n",
            "url_db",
            "-t",
            "destination",
        ])
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD));
    outcome.assert_code(0);
    // The URL wins over PG* variables; DATABASE_URL works as --url.
    let url = format!("host=127.0.0.1 port={} user={SUPERUSER}", cluster.port);
    let outcome = run(crate::support::tool()
        .args(["-n", "env_url_db", "-t", "destination"])
        .env("DATABASE_URL", &url)
        .env("PGPORT", closed_port.to_string())
        .env("PGUSER", "nobody")
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD));
    outcome.assert_code(0);
    assert!(cluster.database_exists("env_url_db").await);
    // The URL's database is the one connected to first.
    let url = format!(
        "postgresql://{SUPERUSER}@127.0.0.1:{}/no_such_maintenance_db",
        cluster.port
    );
    let outcome = run(crate::support::tool()
        .args(["--url", &url, "-n", "y", "-t", "destination"])
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD));
    outcome.assert_code(4);
    assert!(
        outcome.error_lines()[0].contains("database \"no_such_maintenance_db\""),
        "{}",
        outcome.stderr()
    );
}

#[tokio::test]
async fn password_stdin_reads_the_password_and_strips_one_newline() {
    let cluster = Cluster::start().await;
    let outcome = crate::support::run_with_stdin(
        cluster.tool_as(SUPERUSER, None).args([
            "--password-stdin",
            "-n",
            "piped",
            "-t",
            "destination",
        ]),
        Some(&format!("{}\n", crate::support::SUPERUSER_PASSWORD)),
    );
    outcome.assert_code(0);
    assert!(cluster.database_exists("piped").await);
}

#[tokio::test]
async fn wait_retries_until_a_server_starts_a_few_seconds_later() {
    let mut cluster = Cluster::init(&[]);
    let port = cluster.port;
    let child = crate::support::tool()
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--user",
            SUPERUSER,
            "--wait",
            "60",
        ])
        .args(["-n", "waited", "-t", "destination"])
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    cluster.start_server(None);
    assert_eq!(cluster.port, port, "the server had to move to another port");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("server not ready, retrying"), "{stderr}");
    assert!(cluster.database_exists("waited").await);
}

#[tokio::test]
async fn json_log_lines_parse_and_carry_no_secret() {
    let cluster = Cluster::start().await;
    let ok =
        run(cluster
            .tool()
            .args(["--log-format", "json", "-n", "json_logged", "-t", "source"]));
    ok.assert_code(0);
    let failed = run(cluster
        .tool_as(SUPERUSER, Some("wrong secret pw"))
        .args(["-n", "nope", "-t", "source"])
        .env("INIT_SLATE_DB_LOG_FORMAT", "json"));
    failed.assert_code(4);
    for outcome in [&ok, &failed] {
        let stderr = outcome.stderr();
        assert!(
            !stderr.contains("super secret") && !stderr.contains("wrong secret pw"),
            "{stderr}"
        );
        for line in stderr.lines() {
            let object: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            for key in ["timestamp", "level", "message"] {
                assert!(object.get(key).is_some(), "{key} missing: {line}");
            }
        }
    }
    let last: serde_json::Value =
        serde_json::from_str(failed.stderr().lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["exit_code"], 4);
    assert!(last["message"]
        .as_str()
        .unwrap()
        .contains("password authentication failed"));
}

#[tokio::test]
async fn sessions_are_named_init_slate_db_or_pgappname() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "named", "-t", "destination"])).assert_code(0);
    let admin = cluster.superuser_client("named").await;
    // Hold the lock so the tool's session stays open long enough to be seen.
    admin
        .batch_execute("SELECT pg_advisory_lock(334462, hashtext('migrate'))")
        .await
        .unwrap();
    for (appname, expected) in [
        (None, "init-slate-db"),
        (Some("ci-provisioner"), "ci-provisioner"),
    ] {
        let mut command = cluster.tool();
        command.args(["migrate", "-d", "named", "--lock-timeout", "20"]);
        if let Some(appname) = appname {
            command.env("PGAPPNAME", appname);
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = false;
        for _ in 0..100 {
            let count: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&expected],
                )
                .await
                .unwrap()
                .get(0);
            if count > 0 {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen, "no session named {expected}");
    }
}

#[tokio::test]
async fn a_password_file_that_is_not_a_regular_file_is_ignored_with_a_warning() {
    let cluster = Cluster::start().await;
    let fifo = cluster.write_file("placeholder", "");
    std::fs::remove_file(&fifo).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for passfile in [fifo.to_str().unwrap(), "/dev/zero"] {
        // No password given: the server asks for one, the tool looks in the password file.
        let outcome = run(crate::support::tool()
            .args(["--host", "127.0.0.1", "--port", &cluster.port.to_string()])
            .args(["--user", SUPERUSER, "-n", "x", "-t", "destination"])
            .env("PGPASSFILE", passfile));
        outcome.assert_code(4);
        assert!(
            outcome
                .stderr()
                .contains("the password file is not a regular file; ignoring it"),
            "{passfile}: {}",
            outcome.stderr()
        );
    }
}
