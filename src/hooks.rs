//! Test hooks: pauses at named steps, so that the fault tests can send a signal, restart the
//! server or race another session at exactly that step. They exist only in builds with the
//! `test-hooks` cargo feature (off by default); in a release build every hook is a no-op and no
//! environment variable changes what the tool does.

use tokio_postgres::Client;

/// At step `step`: if `INIT_SLATE_DB_TEST_PAUSE` names it, log "test hook: paused at STEP" and
/// wait `INIT_SLATE_DB_TEST_PAUSE_SECS` seconds (default 30). With `client`, the wait is a
/// `pg_sleep` on that session, so that a query is running on the server while paused.
#[cfg(feature = "test-hooks")]
pub async fn pause(step: &str, client: Option<&Client>) {
    if std::env::var("INIT_SLATE_DB_TEST_PAUSE").ok().as_deref() != Some(step) {
        return;
    }
    let secs: f64 = std::env::var("INIT_SLATE_DB_TEST_PAUSE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30.0);
    tracing::warn!(step, secs, "test hook: paused at {step}");
    match client {
        Some(client) => {
            let _ = client.execute("SELECT pg_sleep($1)", &[&secs]).await;
        }
        None => tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await,
    }
}

/// Without the `test-hooks` feature: nothing.
#[cfg(not(feature = "test-hooks"))]
pub async fn pause(_step: &str, _client: Option<&Client>) {}

/// `INIT_SLATE_DB_TEST_TAMPER_ID`: the id of a restored row to alter before verification.
#[cfg(feature = "test-hooks")]
pub fn tamper_id() -> Option<i64> {
    std::env::var("INIT_SLATE_DB_TEST_TAMPER_ID")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// Without the `test-hooks` feature: never.
#[cfg(not(feature = "test-hooks"))]
pub fn tamper_id() -> Option<i64> {
    None
}

/// `INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS`: a pause after each block restore forwards, so a
/// test can act while the copy runs.
#[cfg(feature = "test-hooks")]
pub fn copy_block_delay() -> Option<std::time::Duration> {
    std::env::var("INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_millis)
}

/// Without the `test-hooks` feature: never.
#[cfg(not(feature = "test-hooks"))]
pub fn copy_block_delay() -> Option<std::time::Duration> {
    None
}

/// `INIT_SLATE_DB_TEST_SWAP=<event|ts>:<id>,<id>`: swap that column between two restored rows
/// before verification (what a proxy rewriting the COPY stream could do).
#[cfg(feature = "test-hooks")]
pub fn swap() -> Option<(&'static str, i64, i64)> {
    let value = std::env::var("INIT_SLATE_DB_TEST_SWAP").ok()?;
    let (column, ids) = value.split_once(':')?;
    let column = match column {
        "event" => "event",
        "ts" => "ts",
        _ => return None,
    };
    let (a, b) = ids.split_once(',')?;
    Some((column, a.parse().ok()?, b.parse().ok()?))
}

/// Without the `test-hooks` feature: never.
#[cfg(not(feature = "test-hooks"))]
pub fn swap() -> Option<(&'static str, i64, i64)> {
    None
}
