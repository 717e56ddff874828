//! Connecting: wrong password, unreachable server, a server that never answers, and no
//! terminal with no password. Each fails fast with exit code 4 and creates nothing.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{run, Cluster, SUPERUSER};

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
fn closed_port_fails_within_the_timeout() {
    // Bind and drop: nothing listens on this port now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let outcome = run(support::tool().args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--user",
        "x",
        "--connect-timeout",
        "2000",
        "-n",
        "a",
        "-t",
        "source",
    ]));
    outcome.assert_code(4);
    assert!(started.elapsed() < Duration::from_secs(60));
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
    let outcome = run(support::tool().args([
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
    let outcome = run(support::tool()
        .args(["-n", "from_env", "-t", "destination"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", cluster.port.to_string())
        .env("PGUSER", SUPERUSER)
        .env("PGPASSWORD", support::SUPERUSER_PASSWORD));
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
