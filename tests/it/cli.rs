//! The command line: help, version, and validation (every problem at once, exit 2, nothing touched).

use crate::support::{run, tool, Cluster};

#[test]
fn help_text_is_stable() {
    let outcome = run(tool().arg("--help"));
    outcome.assert_code(0);
    insta::assert_snapshot!(outcome.stdout());
}

#[test]
fn each_subcommand_help_is_stable() {
    // Every subcommand of the CLI definition, so a new one cannot go unpinned.
    let subcommands: Vec<String> = init_slate_db::cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect();
    assert!(subcommands.len() >= 9, "{subcommands:?}");
    for subcommand in &subcommands {
        let outcome = run(tool().args([subcommand.as_str(), "--help"]));
        outcome.assert_code(0);
        insta::assert_snapshot!(format!("help_{subcommand}"), outcome.stdout());
    }
}

#[test]
fn a_reader_that_closed_the_pipe_ends_the_output_quietly() {
    use std::process::Stdio;
    for args in [&["completions", "bash"][..], &["man"][..], &["--help"][..]] {
        // The read end is closed before the tool starts: its first write meets EPIPE, as under
        // `| head -1` once head has exited.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let output = tool()
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("run the tool");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn version_prints_the_package_version() {
    let outcome = run(tool().arg("--version"));
    outcome.assert_code(0);
    assert_eq!(
        outcome.stdout().trim(),
        format!("init-slate-db {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn missing_required_options_are_reported_together() {
    let outcome = run(&mut tool());
    outcome.assert_code(2);
    insta::assert_snapshot!(outcome.error_lines().join("\n"));
}

#[test]
fn every_invalid_option_is_reported_on_its_own_line() {
    let outcome = run(tool().args([
        "--port",
        "70000",
        "--connect-timeout",
        "0",
        "-n",
        "9lives",
        "-t",
        "replica",
    ]));
    outcome.assert_code(2);
    insta::assert_snapshot!(outcome.error_lines().join("\n"));
}

#[test]
fn negative_connect_timeout_is_invalid() {
    let outcome = run(tool().args(["--connect-timeout", "-5", "-n", "a", "-t", "source"]));
    outcome.assert_code(2);
    assert_eq!(
        outcome.error_lines(),
        ["error: --connect-timeout \"-5\" is invalid: it must be a positive whole number of milliseconds"]
    );
}

#[test]
fn database_name_longer_than_63_bytes_is_rejected_not_truncated() {
    let name = "a".repeat(64);
    let outcome = run(tool().args(["-n", &name, "-t", "destination"]));
    outcome.assert_code(2);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("64 bytes long") && errors[0].contains("at most 63 bytes"),
        "{errors:?}"
    );
}

#[test]
fn database_name_with_quote_or_dash_is_rejected() {
    for name in ["a\"b", "a-b", "a b", "$a", "ünï"] {
        let outcome = run(tool().args(["-n", name, "-t", "source"]));
        outcome.assert_code(2);
        assert!(
            outcome.error_lines()[0].contains("is not a valid PostgreSQL identifier"),
            "{name}: {}",
            outcome.stderr()
        );
    }
}

#[test]
fn unknown_flag_is_one_line_with_exit_code_2() {
    let outcome = run(tool().args(["--frobnicate", "-n", "a", "-t", "source"]));
    outcome.assert_code(2);
    assert_eq!(
        outcome.error_lines(),
        ["error: unexpected argument '--frobnicate' found (see init-slate-db --help)"]
    );
    assert_eq!(outcome.stderr().lines().count(), 1, "{}", outcome.stderr());
}

#[test]
fn invalid_options_are_refused_before_any_connection() {
    // A listener in place of the server: whatever the tool would send arrives here.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let base = [
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        "x",
        "--password",
        "y",
    ];
    for invalid in [
        &["-n", "valid_name", "-t", "sauce"][..],
        &["status", "-d", "x", "--format", "yaml"][..],
        &[
            "restore",
            "-n",
            "r",
            "--from-host",
            "h",
            "--from-port",
            "0",
            "--from-database",
            "b",
        ][..],
    ] {
        let outcome = run(tool().args(base).args(invalid));
        outcome.assert_code(2);
        assert!(
            matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{invalid:?}: the tool connected although its options were invalid"
        );
        assert!(
            !outcome.stderr().contains("starting"),
            "{}",
            outcome.stderr()
        );
    }
    // The same listener does see a valid invocation's connection attempt.
    let valid = run(tool().args(base).args([
        "-n",
        "valid_name",
        "-t",
        "source",
        "--connect-timeout",
        "300",
    ]));
    valid.assert_code(4);
    listener.set_nonblocking(false).unwrap();
    assert!(listener.accept().is_ok(), "a valid run connects");
}

#[test]
fn password_given_on_the_command_line_is_warned_about_and_never_printed() {
    let cluster = Cluster::start_bare();
    let outcome = run(crate::support::tool().args([
        "--host",
        "127.0.0.1",
        "--port",
        &cluster.port.to_string(),
        "--user",
        crate::support::SUPERUSER,
        "--password",
        crate::support::SUPERUSER_PASSWORD,
        "-n",
        "warned",
        "-t",
        "destination",
        "--dry-run",
    ]));
    outcome.assert_code(0);
    let stderr = outcome.stderr();
    assert_eq!(
        stderr.matches("visible to other users").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains(crate::support::SUPERUSER_PASSWORD));
    assert!(!outcome
        .stdout()
        .contains(crate::support::SUPERUSER_PASSWORD));
}

#[test]
fn create_options_before_a_subcommand_are_refused() {
    let outcome = run(tool().args(["-n", "x", "status", "-d", "y"]));
    outcome.assert_code(2);
    assert!(
        outcome.error_lines()[0].contains("belong to creating a database"),
        "{}",
        outcome.stderr()
    );
}

#[test]
fn subcommands_require_a_database_name() {
    for subcommand in ["status", "migrate", "adopt"] {
        let outcome = run(tool().arg(subcommand));
        outcome.assert_code(2);
        assert_eq!(
            outcome.error_lines(),
            ["error: --database <NAME> is required: the database to work on"],
            "{subcommand}"
        );
    }
}

#[test]
fn invalid_format_and_lock_timeout_are_reported_together() {
    let outcome = run(tool().args([
        "status",
        "-d",
        "x",
        "--format",
        "yaml",
        "--lock-timeout",
        "soon",
    ]));
    outcome.assert_code(2);
    assert_eq!(outcome.error_lines().len(), 2, "{}", outcome.stderr());
}

#[test]
fn restore_options_are_all_checked_together() {
    let outcome = run(tool().args([
        "restore",
        "-n",
        "9x",
        "--from-port",
        "0",
        "--from-sslmode",
        "maybe",
    ]));
    outcome.assert_code(2);
    let errors = outcome.error_lines();
    for expected in [
        "--new-database \"9x\"",
        "--from-host <NAME> is required",
        "--from-database <NAME> is required",
        "--from-port \"0\"",
        "--from-sslmode \"maybe\"",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected} missing: {errors:?}"
        );
    }
    assert_eq!(errors.len(), 5, "{errors:?}");
}

#[test]
fn inputs_that_once_panicked_are_one_error_line_with_exit_2_in_text_and_json() {
    for args in [
        &[
            "--url",
            "postgresql://h/db?sslmode=%€x",
            "-n",
            "a",
            "-t",
            "source",
        ][..],
        &["--wait", "18446744073709551615", "-n", "a", "-t", "source"][..],
        &["--url", "host='unterminated", "-n", "a", "-t", "source"][..],
    ] {
        let outcome = run(tool().args(args));
        outcome.assert_code(2);
        assert_eq!(
            outcome.error_lines().len(),
            1,
            "{args:?}: {}",
            outcome.stderr()
        );
        assert!(
            !outcome.stderr().contains("panicked"),
            "{}",
            outcome.stderr()
        );

        let json = run(tool().args(args).args(["--log-format", "json"]));
        json.assert_code(2);
        let stderr = json.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", json.stderr());
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["exit_code"], 2);
    }
}

#[test]
fn a_pg_variable_holding_invalid_utf8_is_named_in_one_error_line() {
    use std::os::unix::ffi::OsStrExt;
    let outcome = run(tool()
        .args(["-n", "a", "-t", "source"])
        .env("PGHOST", std::ffi::OsStr::from_bytes(b"db\xff.internal")));
    outcome.assert_code(2);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1, "{}", outcome.stderr());
    assert!(
        errors[0].contains("PGHOST") && errors[0].contains("not valid UTF-8"),
        "{errors:?}"
    );
}

#[test]
fn a_password_inside_a_command_line_url_is_warned_about_and_never_printed() {
    let cluster = Cluster::start_bare();
    let url = format!(
        "postgresql://{}:{}@127.0.0.1:{}/postgres",
        crate::support::SUPERUSER,
        "url-secret-pw",
        cluster.port
    );
    let outcome = run(tool().args([
        "--url",
        &url,
        "-n",
        "warned",
        "-t",
        "destination",
        "--dry-run",
    ]));
    let stderr = outcome.stderr();
    assert_eq!(
        stderr.matches("visible to other users").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("url-secret-pw") && !outcome.stdout().contains("url-secret-pw"));
}
