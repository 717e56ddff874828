//! TLS against a real server with a certificate made at test time: each sslmode with libpq's
//! meaning, and errors that name the mode and what failed.

use crate::support::{run, Cluster, Outcome, TestCa, TLS_ONLY_PASSWORD};

/// A dry run as `tls_only` (a role the server admits over TLS only) with the given options.
fn dry_run_as_tls_only(cluster: &Cluster, host: &str, tls_options: &[&str]) -> Outcome {
    run(crate::support::tool()
        .args([
            "--host",
            host,
            "--port",
            &cluster.port.to_string(),
            "--user",
            "tls_only",
        ])
        .args(tls_options)
        .args(["-n", "tls_checked", "-t", "destination", "--dry-run"])
        .env("PGPASSWORD", TLS_ONLY_PASSWORD))
}

#[tokio::test]
async fn require_prefer_and_allow_reach_a_tls_only_role_and_disable_does_not() {
    let (cluster, _ca) = Cluster::start_with_tls().await;
    for mode in ["require", "prefer", "allow"] {
        dry_run_as_tls_only(&cluster, "127.0.0.1", &["--sslmode", mode]).assert_code(0);
    }
    let outcome = dry_run_as_tls_only(&cluster, "127.0.0.1", &["--sslmode", "disable"]);
    outcome.assert_code(4);
    let error = &outcome.error_lines()[0];
    assert!(error.contains("sslmode disable"), "{error}");
    assert!(error.contains("pg_hba.conf rejects connection"), "{error}");
}

#[tokio::test]
async fn verify_full_accepts_the_right_host_name_and_refuses_another() {
    let (cluster, ca) = Cluster::start_with_tls().await;
    let root = cluster.write_file("root.crt", &ca.pem());
    let root = root.to_str().unwrap();
    dry_run_as_tls_only(
        &cluster,
        "localhost",
        &["--sslmode", "verify-full", "--sslrootcert", root],
    )
    .assert_code(0);
    // The certificate names localhost, not 127.0.0.1.
    let outcome = dry_run_as_tls_only(
        &cluster,
        "127.0.0.1",
        &["--sslmode", "verify-full", "--sslrootcert", root],
    );
    outcome.assert_code(4);
    let error = &outcome.error_lines()[0];
    assert!(error.contains("sslmode verify-full"), "{error}");
    assert!(error.contains("not valid for name"), "{error}");
}

#[tokio::test]
async fn verify_ca_checks_the_issuer_but_not_the_host_name() {
    let (cluster, ca) = Cluster::start_with_tls().await;
    let root = cluster.write_file("root.crt", &ca.pem());
    dry_run_as_tls_only(
        &cluster,
        "127.0.0.1",
        &[
            "--sslmode",
            "verify-ca",
            "--sslrootcert",
            root.to_str().unwrap(),
        ],
    )
    .assert_code(0);

    let stranger = TestCa::new("some other CA");
    let wrong_root = cluster.write_file("other.crt", &stranger.pem());
    let outcome = dry_run_as_tls_only(
        &cluster,
        "127.0.0.1",
        &[
            "--sslmode",
            "verify-ca",
            "--sslrootcert",
            wrong_root.to_str().unwrap(),
        ],
    );
    outcome.assert_code(4);
    let error = &outcome.error_lines()[0];
    assert!(error.contains("sslmode verify-ca"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn sslmode_and_root_certificate_come_from_the_url_and_the_environment() {
    let (cluster, ca) = Cluster::start_with_tls().await;
    let root = cluster.write_file("root.crt", &ca.pem());
    let url = format!(
        "postgresql://tls_only@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        cluster.port,
        root.display()
    );
    run(crate::support::tool()
        .args([
            "--url",
            &url,
            "-n",
            "via_url",
            "-t",
            "destination",
            "--dry-run",
        ])
        .env("PGPASSWORD", TLS_ONLY_PASSWORD))
    .assert_code(0);
    let outcome = run(crate::support::tool()
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &cluster.port.to_string(),
            "--user",
            "tls_only",
        ])
        .args(["-n", "via_env", "-t", "destination", "--dry-run"])
        .env("PGPASSWORD", TLS_ONLY_PASSWORD)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &root));
    outcome.assert_code(4);
    assert!(outcome.error_lines()[0].contains("sslmode verify-full"));
}

#[tokio::test]
async fn require_against_a_server_without_tls_fails_and_prefer_falls_back() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster.tool().args([
        "--sslmode",
        "require",
        "-n",
        "x",
        "-t",
        "destination",
        "--dry-run",
    ]));
    outcome.assert_code(4);
    let error = &outcome.error_lines()[0];
    assert!(error.contains("sslmode require"), "{error}");
    assert!(error.contains("server does not support TLS"), "{error}");
    run(cluster.tool().args([
        "--sslmode",
        "prefer",
        "-n",
        "x",
        "-t",
        "destination",
        "--dry-run",
    ]))
    .assert_code(0);
}

#[test]
fn unreadable_root_certificate_is_an_invalid_option() {
    let outcome = run(crate::support::tool().args([
        "--host",
        "127.0.0.1",
        "--user",
        "u",
        "--sslmode",
        "verify-full",
        "--sslrootcert",
        "/nonexistent/root.crt",
        "-n",
        "x",
        "-t",
        "source",
    ]));
    outcome.assert_code(2);
    assert!(
        outcome.error_lines()[0]
            .contains("cannot read root certificate file /nonexistent/root.crt"),
        "{}",
        outcome.stderr()
    );
}
