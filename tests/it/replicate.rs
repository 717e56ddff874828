//! `replicate`: destinations that follow a source through PostgreSQL's logical replication, on
//! clusters started with `wal_level = logical`; the refusals that create nothing; the handover
//! of a destination another replicator filled; `--stop`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::{run, Cluster};

/// Writers calling insert_events (batches of 10) until `stop`; returns the rows each wrote.
fn writers(
    cluster: &Cluster,
    database: &str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<i64>> {
    let pool = crate::support::pool(cluster, database, 4);
    (0..4)
        .map(|_| {
            let pool = pool.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = pool.get().await.unwrap();
                let text = (1..=10)
                    .map(|i| format!("($1[{i}], $2, '{{\"n\":{i}}}')"))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut rows = 0;
                while !stop.load(Ordering::SeqCst) {
                    let n: i32 = client
                        .query_one("SELECT insert_events($1)", &[&text])
                        .await
                        .unwrap()
                        .get(0);
                    rows += i64::from(n);
                }
                rows
            })
        })
        .collect()
}

fn replicate(
    cluster: &Cluster,
    source: &str,
    destination: &str,
    extra: &[&str],
) -> (i32, Value, String) {
    let outcome = run(cluster
        .tool()
        .args([
            "replicate",
            "-d",
            source,
            "--replica-database",
            destination,
            "--format",
            "json",
        ])
        .args(extra));
    let doc = serde_json::from_str(&outcome.stdout()).unwrap_or(Value::Null);
    (outcome.code(), doc, outcome.stderr())
}

async fn slots(cluster: &Cluster) -> Vec<String> {
    cluster
        .superuser_client("postgres")
        .await
        .query(
            "SELECT slot_name::text FROM pg_replication_slots ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Waits until `destination` holds the source's last id.
async fn caught_up(cluster: &Cluster, source: &str, destination: &str) {
    let last = |database: String| async move {
        cluster
            .superuser_client(&database)
            .await
            .query_one("SELECT COALESCE(max(id), 0) FROM events", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let target = last(source.to_string()).await;
    // Up to 120 s: an apply worker whose connection was cut restarts after a retry interval.
    for _ in 0..1200 {
        if last(destination.to_string()).await >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the subscription and the slot were doing, for the next person reading this.
    let subscriptions: Vec<String> = cluster
        .superuser_client(destination)
        .await
        .query(
            "SELECT s.subname || ' enabled=' || s.subenabled || ' worker=' || COALESCE(w.pid::text, '-')
                    || ' received=' || COALESCE(w.received_lsn::text, '-')
               FROM pg_subscription s LEFT JOIN pg_stat_subscription w ON w.subid = s.oid",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    let slots: Vec<String> = cluster
        .superuser_client(source)
        .await
        .query(
            "SELECT slot_name || ' active=' || active || ' pid=' || COALESCE(active_pid::text, '-')
                    || ' confirmed=' || COALESCE(confirmed_flush_lsn::text, '-')
               FROM pg_replication_slots",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    panic!(
        "{destination} did not catch up with {source} (id {target}); subscriptions {subscriptions:?}; slots {slots:?}; server log:\n{}",
        cluster.log_tail(40)
    );
}

#[tokio::test]
async fn a_server_without_logical_wal_is_refused_with_its_code_and_nothing_is_created() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    let (code, _, stderr) = replicate(&cluster, "origin", "follower", &[]);
    assert_eq!(code, 24, "{stderr}");
    assert!(
        stderr.contains("wal_level") && stderr.contains("restart"),
        "{stderr}"
    );
    assert!(!cluster.database_exists("follower").await);
    assert!(slots(&cluster).await.is_empty());
    let publications: i64 = cluster
        .superuser_client("origin")
        .await
        .query_one("SELECT count(*) FROM pg_publication", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(publications, 0);
}

#[tokio::test]
async fn three_destinations_follow_a_source_written_during_setup_and_verify_exactly() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    // One destination exists, empty; the other does not exist yet.
    run(cluster.tool().args(["-n", "second", "-t", "destination"])).assert_code(0);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writers(&cluster, "origin", stop.clone());
    let origin = cluster.superuser_client("origin").await;
    // Until `count` events are written (at most 120 s).
    let written_up_to = |count: i64| {
        let origin = &origin;
        async move {
            for _ in 0..1200 {
                let written: i64 = origin
                    .query_one("SELECT COALESCE(max(id), 0) FROM events", &[])
                    .await
                    .unwrap()
                    .get(0);
                if written >= count {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the writers did not reach {count} events");
        }
    };
    // The initial copies take 50,000 events and more while the writers go on, to 100,000.
    written_up_to(50_000).await;
    for destination in ["first", "second", "third"] {
        let (code, doc, stderr) = replicate(&cluster, "origin", destination, &[]);
        assert_eq!(code, 0, "{destination}: {stderr}");
        assert_eq!(doc["action"], "following", "{doc}");
        assert_eq!(doc["destination_created"], destination != "second", "{doc}");
        assert!(doc["start_id"].as_i64().unwrap() > 0, "{doc}");
    }
    written_up_to(100_000).await;
    stop.store(true, Ordering::SeqCst);
    let mut written = 0;
    for writer in writing {
        written += writer.await.unwrap();
    }
    assert!(written > 0);
    for destination in ["first", "second", "third"] {
        caught_up(&cluster, "origin", destination).await;
        let verify = run(cluster.tool().args([
            "verify",
            "-d",
            "origin",
            "--replica-database",
            destination,
            "--exact",
        ]));
        verify.assert_code(0);
    }
    // Running it again changes nothing.
    let (code, doc, _) = replicate(&cluster, "origin", "first", &[]);
    assert_eq!(code, 0);
    assert_eq!(doc["action"], "already-following");
    assert_eq!(slots(&cluster).await.len(), 3);
    // status of the source shows every slot, active; of a destination its subscription.
    let status = run(cluster
        .tool()
        .args(["status", "-d", "origin", "--format", "json"]));
    let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(
        doc["replication"]["source"]["slots"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{doc}"
    );
    let status = run(cluster
        .tool()
        .args(["status", "-d", "first", "--format", "json"]));
    let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
    assert_eq!(
        doc["replication"]["subscriptions"][0]["enabled"], true,
        "{doc}"
    );
    // --stop removes the subscription and its slot.
    let (code, doc, stderr) = replicate(&cluster, "origin", "first", &["--stop"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["action"], "stopped");
    assert_eq!(slots(&cluster).await.len(), 2);
    let subscriptions: i64 = cluster
        .superuser_client("first")
        .await
        .query_one(
            "SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = 'first'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(subscriptions, 0);
}

#[tokio::test]
async fn a_prefix_filled_by_another_replicator_is_handed_over_without_a_recopy() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    let origin = cluster.superuser_client("origin").await;
    let text = (1..=50)
        .map(|i| format!("($1[{i}], $2, '{{\"n\":{i}}}')"))
        .collect::<Vec<_>>()
        .join(",");
    for _ in 0..4 {
        origin
            .query_one("SELECT insert_events($1)", &[&text])
            .await
            .unwrap();
    }
    // The Node replicator copied ids 1-120 with timestamps cut to milliseconds.
    run(cluster.tool().args(["-n", "legacy", "-t", "destination"])).assert_code(0);
    let rows = origin
        .query(
            "SELECT id, date_trunc('milliseconds', ts), event::text FROM events WHERE id <= 120 ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let legacy = cluster.superuser_client("legacy").await;
    for row in rows {
        let (id, ts, event): (i64, std::time::SystemTime, String) =
            (row.get(0), row.get(1), row.get(2));
        legacy
            .execute(
                "INSERT INTO events VALUES ($1, $2, $3::text::jsonb)",
                &[&id, &ts, &event],
            )
            .await
            .unwrap();
    }
    // Exact timestamps differ: not a prefix, nothing created.
    let (code, _, stderr) = replicate(&cluster, "origin", "legacy", &[]);
    assert_eq!(code, 25, "{stderr}");
    assert!(stderr.contains("--ts-precision ms"), "{stderr}");
    assert!(slots(&cluster).await.is_empty());
    // At millisecond precision it is a prefix: the rest is copied, then streamed.
    let (code, doc, stderr) = replicate(&cluster, "origin", "legacy", &["--ts-precision", "ms"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["copied_events"], 80, "{doc}");
    assert_eq!(doc["start_id"], 200, "{doc}");
    origin
        .query_one("SELECT insert_events($1)", &[&text])
        .await
        .unwrap();
    caught_up(&cluster, "origin", "legacy").await;
    let verify = run(cluster.tool().args([
        "verify",
        "-d",
        "origin",
        "--replica-database",
        "legacy",
        "--exact",
        "--ts-precision",
        "ms",
    ]));
    verify.assert_code(0);
    // A destination ahead of its source is refused.
    let legacy_ahead = "ahead";
    run(cluster
        .tool()
        .args(["-n", legacy_ahead, "-t", "destination"]))
    .assert_code(0);
    cluster
        .superuser_client(legacy_ahead)
        .await
        .batch_execute("INSERT INTO events SELECT g, now(), '{}' FROM generate_series(1, 900) g")
        .await
        .unwrap();
    let (code, _, stderr) = replicate(&cluster, "origin", legacy_ahead, &[]);
    assert_eq!(code, 25, "{stderr}");
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_signal_after_the_slot_is_made_leaves_no_slot_and_the_next_run_succeeds() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    for (index, (step, destination)) in [("slot-created", "new_one"), ("subscribing", "new_two")]
        .into_iter()
        .enumerate()
    {
        let running = crate::support::spawn(
            cluster
                .tool()
                .args([
                    "replicate",
                    "-d",
                    "origin",
                    "--replica-database",
                    destination,
                ])
                .env("INIT_SLATE_DB_TEST_PAUSE", step),
        );
        running.wait_for(&format!("paused at {step}"));
        running.signal("TERM");
        let outcome = running.finish(Duration::from_secs(30));
        outcome.assert_code(130);
        // Only the slots of the destinations that follow are left.
        assert_eq!(
            slots(&cluster).await.len(),
            index,
            "{step}: {}",
            outcome.stderr()
        );
        let (code, _, stderr) = replicate(&cluster, "origin", destination, &[]);
        assert_eq!(code, 0, "{step}: {stderr}");
    }
}

/// Appends one batch of `n` events to `database` through insert_events.
async fn append(cluster: &Cluster, database: &str, n: usize) {
    let text = (1..=n)
        .map(|i| format!("($1[{i}], $2, '{{\"n\":{i}}}')"))
        .collect::<Vec<_>>()
        .join(",");
    cluster
        .superuser_client(database)
        .await
        .query_one("SELECT insert_events($1)", &[&text])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_row_written_by_hand_into_a_destination_shows_in_status_and_verify_names_it() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    append(&cluster, "origin", 10).await;
    let (code, _, stderr) = replicate(&cluster, "origin", "follower", &[]);
    assert_eq!(code, 0, "{stderr}");
    // Someone writes id 11 into the destination; the source's id 11 then conflicts.
    cluster
        .superuser_client("follower")
        .await
        .batch_execute("INSERT INTO events VALUES (11, now(), '{\"by\": \"hand\"}')")
        .await
        .unwrap();
    append(&cluster, "origin", 5).await;
    let version: i32 = cluster
        .superuser_client("postgres")
        .await
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0);
    if version >= 150000 {
        // disable_on_error: the subscription stops, and status says so.
        let mut enabled = Value::Bool(true);
        for _ in 0..100 {
            let status = run(cluster
                .tool()
                .args(["status", "-d", "follower", "--format", "json"]));
            let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
            enabled = doc["replication"]["subscriptions"][0]["enabled"].clone();
            if enabled == Value::Bool(false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(enabled, Value::Bool(false));
        let status = run(cluster.tool().args(["status", "-d", "follower"]));
        assert!(status.stdout().contains("DISABLED"), "{}", status.stdout());
    }
    let outcome = run(cluster.tool().args([
        "verify",
        "-d",
        "origin",
        "--replica-database",
        "follower",
        "--format",
        "json",
    ]));
    outcome.assert_code(19);
    let doc: Value = serde_json::from_str(&outcome.stdout()).unwrap();
    assert_eq!(doc["first_differences"][0]["id"], 11, "{doc}");
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_destination_catches_up_after_the_server_restarts() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    append(&cluster, "origin", 20).await;
    let (code, _, stderr) = replicate(&cluster, "origin", "follower", &[]);
    assert_eq!(code, 0, "{stderr}");
    append(&cluster, "origin", 20).await;
    cluster.restart();
    append(&cluster, "origin", 20).await;
    caught_up(&cluster, "origin", "follower").await;
    run(cluster.tool().args([
        "verify",
        "-d",
        "origin",
        "--replica-database",
        "follower",
        "--exact",
    ]))
    .assert_code(0);
    // list says who follows whom.
    let outcome = run(cluster.tool().args(["list", "--format", "json"]));
    let doc: Value = serde_json::from_str(&outcome.stdout()).unwrap();
    let stores = doc["stores"].as_array().unwrap();
    let origin = stores.iter().find(|s| s["database"] == "origin").unwrap();
    let follower = stores.iter().find(|s| s["database"] == "follower").unwrap();
    assert_eq!(origin["followed_by"].as_array().unwrap().len(), 1, "{doc}");
    assert!(
        follower["follows"][0]
            .as_str()
            .unwrap()
            .starts_with("origin on "),
        "{doc}"
    );
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_run_killed_after_making_its_slot_is_cleaned_up_by_the_next_one() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    append(&cluster, "origin", 10).await;
    let running = crate::support::spawn(
        cluster
            .tool()
            .args([
                "replicate",
                "-d",
                "origin",
                "--replica-database",
                "follower",
            ])
            .env("INIT_SLATE_DB_TEST_PAUSE", "slot-created"),
    );
    running.wait_for("paused at slot-created");
    running.signal("KILL");
    drop(running);
    // The killed run's transaction is rolled back with its session, the slot kept or not;
    // whatever is left, the next run removes it and follows.
    let outcome = run(cluster.tool().args([
        "replicate",
        "-d",
        "origin",
        "--replica-database",
        "follower",
    ]));
    outcome.assert_code(0);
    assert_eq!(slots(&cluster).await.len(), 1);
    caught_up(&cluster, "origin", "follower").await;
    assert!(
        !cluster
            .database_exists(&init_slate_db::store::staging::temp_name("follower"))
            .await
    );
}

// The proxy's tasks run while the test waits on the tool: a runtime of its own threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_catches_up_after_the_connection_to_the_source_is_cut() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    append(&cluster, "origin", 10).await;
    // The destination's server reaches the source through a proxy the test cuts.
    let proxy = crate::support::proxy::Proxy::start(cluster.port).await;
    let port = proxy.port.to_string();
    let (code, _, stderr) = replicate(&cluster, "origin", "follower", &["--publisher-port", &port]);
    assert_eq!(code, 0, "{stderr}");
    proxy.cut();
    append(&cluster, "origin", 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    append(&cluster, "origin", 10).await;
    caught_up(&cluster, "origin", "follower").await;
    run(cluster.tool().args([
        "verify",
        "-d",
        "origin",
        "--replica-database",
        "follower",
        "--exact",
    ]))
    .assert_code(0);
}

#[tokio::test]
async fn a_destination_follows_the_source_restored_from_it() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    append(&cluster, "origin", 25).await;
    let (code, _, stderr) = replicate(&cluster, "origin", "backup", &[]);
    assert_eq!(code, 0, "{stderr}");
    caught_up(&cluster, "origin", "backup").await;
    // Disaster: the source is lost. Its follower is stopped, then the source is restored from
    // the backup, which then follows the restored source.
    let (code, _, stderr) = replicate(&cluster, "origin", "backup", &["--stop"]);
    assert_eq!(code, 0, "{stderr}");
    run(cluster
        .tool()
        .args(["restore", "-n", "restored", "--from-host", "127.0.0.1"])
        .args([
            "--from-port",
            &cluster.port.to_string(),
            "--from-database",
            "backup",
        ])
        .args(["--from-user", crate::support::SUPERUSER])
        .env(
            "INIT_SLATE_DB_FROM_PASSWORD",
            crate::support::SUPERUSER_PASSWORD,
        ))
    .assert_code(0);
    let (code, doc, stderr) = replicate(&cluster, "restored", "backup", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["copied_events"], 0, "{doc}");
    append(&cluster, "restored", 5).await;
    caught_up(&cluster, "restored", "backup").await;
    run(cluster.tool().args([
        "verify",
        "-d",
        "restored",
        "--replica-database",
        "backup",
        "--exact",
    ]))
    .assert_code(0);
}

#[tokio::test]
async fn a_managed_style_role_without_superuser_replicates_from_16_and_is_told_why_before() {
    let cluster = Cluster::start_logical().await;
    run(cluster.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    let admin = cluster.superuser_client("postgres").await;
    let version = cluster.server_version().await;
    // What a managed service gives its admin role: CREATEDB, REPLICATION (rds_replication),
    // ownership of the store's tables, and from 16 pg_create_subscription.
    admin
        .batch_execute(
            "CREATE ROLE managed LOGIN CREATEDB REPLICATION PASSWORD 'managed-pw';
             GRANT CREATE ON DATABASE origin TO managed",
        )
        .await
        .unwrap();
    if version >= 160000 {
        admin
            .batch_execute("GRANT pg_create_subscription TO managed")
            .await
            .unwrap();
    }
    cluster
        .superuser_client("origin")
        .await
        .batch_execute(
            "ALTER TABLE events OWNER TO managed; ALTER TABLE id OWNER TO managed;
             ALTER TABLE refinery_schema_history OWNER TO managed",
        )
        .await
        .unwrap();
    append(&cluster, "origin", 10).await;
    let outcome = run(cluster.tool_as("managed", Some("managed-pw")).args([
        "replicate",
        "-d",
        "origin",
        "--replica-database",
        "follower",
    ]));
    if version >= 160000 {
        outcome.assert_code(0);
        caught_up(&cluster, "origin", "follower").await;
    } else {
        outcome.assert_code(5);
        assert!(
            outcome.error_lines()[0].contains("superuser"),
            "{:?}",
            outcome.error_lines()
        );
        assert!(!cluster.database_exists("follower").await);
        assert!(slots(&cluster).await.is_empty());
    }
}

/// `replicate` from `source`'s cluster to a destination on `destination`'s.
#[cfg(feature = "test-hooks")]
fn replicate_across(
    source: &Cluster,
    destination: &Cluster,
    database: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut command = source.tool();
    command
        .args(["replicate", "-d", "origin", "--replica-database", database])
        .args(["--replica-host", "127.0.0.1"])
        .args(["--replica-port", &destination.port.to_string()])
        .args(["--replica-user", crate::support::SUPERUSER])
        .env(
            "INIT_SLATE_DB_REPLICA_PASSWORD",
            crate::support::SUPERUSER_PASSWORD,
        )
        .args(extra);
    command
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn the_destination_server_killed_during_setup_or_streaming_leaves_nothing_and_catches_up() {
    let source = Cluster::start_logical().await;
    let mut destination = Cluster::start().await;
    run(source.tool().args(["-n", "origin", "-t", "source"])).assert_code(0);
    append(&source, "origin", 10).await;
    // Killed during setup: the run fails, drops its slot, and removes the destination it was
    // building once the server is back.
    let running = crate::support::spawn(
        replicate_across(&source, &destination, "follower", &[])
            .env("INIT_SLATE_DB_TEST_PAUSE", "slot-created")
            .env("INIT_SLATE_DB_TEST_PAUSE_SECS", "2"),
    );
    running.wait_for("paused at slot-created");
    destination.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    destination.start_server(None);
    let outcome = running.finish(Duration::from_secs(60));
    assert_ne!(outcome.code(), 0, "{}", outcome.stderr());
    assert!(slots(&source).await.is_empty(), "{}", outcome.stderr());
    assert!(!destination.database_exists("follower").await);
    assert!(
        !destination
            .database_exists(&init_slate_db::store::staging::temp_name("follower"))
            .await,
        "{}",
        outcome.stderr()
    );
    // Then it follows; killed while streaming, it catches up when restarted.
    replicate_across(&source, &destination, "follower", &[])
        .status()
        .map(|s| assert!(s.success()))
        .unwrap();
    append(&source, "origin", 10).await;
    destination.stop();
    append(&source, "origin", 10).await;
    destination.start_server(None);
    append(&source, "origin", 10).await;
    let want: i64 = source
        .superuser_client("origin")
        .await
        .query_one("SELECT max(id) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    let mut have = 0;
    for _ in 0..300 {
        have = destination
            .superuser_client("follower")
            .await
            .query_one("SELECT COALESCE(max(id), 0) FROM events", &[])
            .await
            .unwrap()
            .get(0);
        if have >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(have, want);
}
