//! Settings resolution: precedence, libpq conventions, invalid values.

use super::*;
use secrecy::ExposeSecret;
use std::collections::HashMap;

fn args(url: Option<&str>) -> ConnectionOptions {
    ConnectionOptions {
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
    args: ConnectionOptions,
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
