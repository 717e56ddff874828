//! `restore`: two clusters (backup and target on different ports), a verified copy, refusals
//! that touch nothing, and roll-back on every failure.

use std::process::Command;
use std::time::Duration;

use crate::support::{run, Cluster, SUPERUSER, SUPERUSER_PASSWORD};

/// A backup: a destination store holding `events` rows with ids 1..=events.
async fn backup_with(events: i64) -> Cluster {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "backup", "-t", "destination"])).assert_code(0);
    let client = cluster.superuser_client("backup").await;
    client
        .execute(
            "INSERT INTO events (id, ts, event)
             SELECT g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1.000123 second',
                    jsonb_build_object('entityName', 'Order', 'entityId', 'order-' || g, 'operation', 'update',
                                       'propertyName', 'status', 'value', repeat('v', 200), 'metadata', jsonb_build_object('command', 'ship'))
               FROM generate_series(1, $1::bigint) g",
            &[&events],
        )
        .await
        .unwrap();
    cluster
}

fn restore(target: &Cluster, backup: &Cluster, extra: &[&str]) -> Command {
    let mut command = target.tool();
    command
        .args([
            "restore",
            "--from-host",
            "127.0.0.1",
            "--from-port",
            &backup.port.to_string(),
        ])
        .args(["--from-database", "backup", "--from-user", SUPERUSER])
        .args(extra)
        .env("INIT_SLATE_DB_FROM_PASSWORD", SUPERUSER_PASSWORD);
    command
}

/// Every row as text, in id order.
async fn rows_text(cluster: &Cluster, database: &str) -> (i64, String) {
    let client = cluster.superuser_client(database).await;
    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let row = client
        .query_one("SELECT count(*), md5(string_agg(id || '|' || ts::text || '|' || event::text, E'\\n' ORDER BY id)) FROM events", &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn restore_copies_every_event_byte_for_byte_and_writing_continues() {
    // More than 10,000 rows: the secondary indexes are rebuilt after the copy, and status must
    // then find them exactly as the layout defines them.
    let backup = backup_with(12_000).await;
    let target = Cluster::start().await;
    let outcome = run(&mut restore(
        &target,
        &backup,
        &["-n", "recovered", "--format", "json"],
    ));
    outcome.assert_code(0);
    let report: serde_json::Value = serde_json::from_str(&outcome.stdout()).unwrap();
    assert_eq!(report["rows_restored"], 12_000);
    assert_eq!(report["next_insert_id"], 12_001);
    assert_eq!(report["created"], true);
    assert_eq!(
        rows_text(&target, "recovered").await,
        rows_text(&backup, "backup").await
    );

    let client = target.superuser_client("recovered").await;
    let inserted: i32 = client
        .query_one(
            "SELECT insert_events($1)",
            &[&"($1[1], $2, '{\"after\":\"restore\"}')"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(inserted, 1);
    let max: i64 = client
        .query_one("SELECT max(id) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(max, 12_001);
    run(target.tool().args(["status", "-d", "recovered"])).assert_code(0);
}

#[tokio::test]
async fn restore_into_existing_sends_no_notification_for_restored_events() {
    let backup = backup_with(500).await;
    let target = Cluster::start().await;
    run(target.tool().args(["-n", "fresh", "-t", "source"])).assert_code(0);
    let (_listener, mut notifications) =
        crate::support::listen(&target, "fresh", "eventsinsert").await;
    run(&mut restore(
        &target,
        &backup,
        &["-n", "fresh", "--into-existing"],
    ))
    .assert_code(0);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), notifications.recv())
            .await
            .is_err(),
        "restored events are not announced"
    );
    let client = target.superuser_client("fresh").await;
    client
        .query_one("SELECT insert_events($1)", &[&"($1[1], $2, '{}')"])
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(n.payload().contains("\"id\" : 501"), "{}", n.payload());
}

#[tokio::test]
async fn backup_with_a_gap_is_refused_and_nothing_is_created() {
    let backup = backup_with(100).await;
    backup
        .superuser_client("backup")
        .await
        .batch_execute("DELETE FROM events WHERE id = 50")
        .await
        .unwrap();
    let target = Cluster::start().await;
    let outcome = run(&mut restore(&target, &backup, &["-n", "never"]));
    outcome.assert_code(15);
    assert!(
        outcome.error_lines()[0].contains("ids are not 1..count without gaps: 99 rows, ids 1..100"),
        "{}",
        outcome.stderr()
    );
    assert!(!target.database_exists("never").await);
}

#[tokio::test]
async fn non_empty_target_with_into_existing_is_refused_and_untouched() {
    let backup = backup_with(100).await;
    let target = Cluster::start().await;
    run(target.tool().args(["-n", "busy", "-t", "source"])).assert_code(0);
    let client = target.superuser_client("busy").await;
    client
        .query_one(
            "SELECT insert_events($1)",
            &[&"($1[1], $2, '{\"keep\":1}')"],
        )
        .await
        .unwrap();
    let outcome = run(&mut restore(
        &target,
        &backup,
        &["-n", "busy", "--into-existing"],
    ));
    outcome.assert_code(16);
    assert!(
        outcome.error_lines()[0].contains("is not freshly initialized (1 events, id table at 2"),
        "{}",
        outcome.stderr()
    );
    let (count, _) = rows_text(&target, "busy").await;
    assert_eq!(count, 1);
}

#[tokio::test]
async fn dropped_backup_connection_rolls_back_and_drops_the_target() {
    // About 15 MB of COPY data forwarded in 256 KiB blocks with 50 ms between blocks: the copy
    // takes about 3 s, long enough to cut it.
    let backup = backup_with(40_000).await;
    let target = Cluster::start().await;
    let mut command = restore(&target, &backup, &["-n", "interrupted"]);
    command.env("INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS", "50");
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the COPY out of the backup, then cut its connection.
    let admin = backup.superuser_client("postgres").await;
    let mut terminated = false;
    for _ in 0..200 {
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT id, ts, event FROM events%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if killed > 0 {
            terminated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(terminated, "the copy never started");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("nothing was committed"), "{stderr}");
    assert!(stderr.contains("was dropped"), "{stderr}");
    assert!(!target.database_exists("interrupted").await);
}

#[tokio::test]
async fn digest_mismatch_names_the_first_differing_id_and_commits_nothing() {
    let backup = backup_with(25_000).await;
    let target = Cluster::start().await;
    let mut command = restore(&target, &backup, &["-n", "tampered"]);
    command.env("INIT_SLATE_DB_TEST_TAMPER_ID", "12345");
    let outcome = run(&mut command);
    outcome.assert_code(17);
    assert!(
        outcome.error_lines()[0].contains("the digests differ, first at id 12345"),
        "{}",
        outcome.stderr()
    );
    assert!(!target.database_exists("tampered").await);
}

#[tokio::test]
async fn dry_run_checks_both_sides_and_changes_nothing() {
    let backup = backup_with(10).await;
    let target = Cluster::start().await;
    let outcome = run(&mut restore(
        &target,
        &backup,
        &["-n", "planned", "--dry-run"],
    ));
    outcome.assert_code(0);
    assert!(
        outcome
            .stdout()
            .contains("10 events, ids 1..10 without gaps"),
        "{}",
        outcome.stdout()
    );
    assert!(!target.database_exists("planned").await);
    // Without a backup database the dry run fails: the checks are real.
    let outcome = run(target
        .tool()
        .args([
            "restore",
            "-n",
            "planned",
            "--from-host",
            "127.0.0.1",
            "--from-port",
            &backup.port.to_string(),
        ])
        .args([
            "--from-database",
            "postgres",
            "--from-user",
            SUPERUSER,
            "--dry-run",
        ])
        .env("INIT_SLATE_DB_FROM_PASSWORD", SUPERUSER_PASSWORD));
    outcome.assert_code(15);
    assert!(outcome.error_lines()[0].contains("it has no events table"));
}

#[tokio::test]
async fn backup_password_on_the_command_line_is_warned_about_and_never_printed() {
    let backup = backup_with(5).await;
    let target = Cluster::start().await;
    let outcome = run(target
        .tool()
        .args([
            "restore",
            "-n",
            "warned",
            "--from-host",
            "127.0.0.1",
            "--from-port",
            &backup.port.to_string(),
        ])
        .args([
            "--from-database",
            "backup",
            "--from-user",
            SUPERUSER,
            "--from-password",
            SUPERUSER_PASSWORD,
            "--dry-run",
        ]));
    outcome.assert_code(0);
    assert_eq!(
        outcome.stderr().matches("visible to other users").count(),
        1,
        "{}",
        outcome.stderr()
    );
    assert!(
        !outcome.stderr().contains(SUPERUSER_PASSWORD)
            && !outcome.stdout().contains(SUPERUSER_PASSWORD)
    );
}

/// A backup whose events table has no primary key, holding exactly `ids`.
async fn backup_without_primary_key(ids: &[i64], ts: &str) -> Cluster {
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    admin.batch_execute("CREATE DATABASE backup").await.unwrap();
    let client = cluster.superuser_client("backup").await;
    client
        .batch_execute("CREATE TABLE events (id bigint NOT NULL, ts timestamptz NOT NULL, event jsonb NOT NULL)")
        .await
        .unwrap();
    for id in ids {
        client
            .execute(
                "INSERT INTO events VALUES ($1, $2::text::timestamptz, '{\"a\":1}')",
                &[id, &ts],
            )
            .await
            .unwrap();
    }
    cluster
}

#[tokio::test]
async fn backup_with_duplicate_ids_or_infinite_timestamps_is_refused_before_anything_is_created() {
    let target = Cluster::start().await;
    let before = target.databases().await;
    for (backup, reason) in [
        (
            backup_without_primary_key(&[1, 1, 3], "2026-01-01 00:00:00+00").await,
            "its ids are not unique: 3 rows but 2 distinct ids",
        ),
        (
            backup_without_primary_key(&[1, 2, 3], "infinity").await,
            "3 of its events have an infinite timestamp",
        ),
    ] {
        let outcome = run(&mut restore(&target, &backup, &["-n", "never_bad"]));
        outcome.assert_code(15);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{}", outcome.stderr());
        assert!(errors[0].contains(reason), "{errors:?}");
        assert_eq!(target.databases().await, before, "nothing was created");
    }
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_signal_or_a_server_restart_during_the_copy_leaves_nothing_under_the_name() {
    let backup = backup_with(40_000).await;
    let target = Cluster::start().await;
    for fault in ["TERM", "INT", "restart"] {
        let name = format!("cut_{}", fault.to_lowercase());
        let mut command = restore(&target, &backup, &["-n", &name]);
        command.env("INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS", "50");
        let running = crate::support::spawn(&mut command);
        running.wait_for("dblink"); // the layout is being applied: the copy follows
        let admin = target.superuser_client("postgres").await;
        let mut copying = false;
        for _ in 0..400 {
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY events%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                copying = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(copying, "the copy never started");
        drop(admin);
        let expected = if fault == "restart" {
            target.restart();
            6
        } else {
            running.signal(fault);
            130
        };
        let outcome = running.finish(Duration::from_secs(60));
        outcome.assert_code(expected);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{}", outcome.stderr());
        assert!(
            errors[0].contains("nothing was committed")
                && errors[0].contains("created by this run was dropped"),
            "{errors:?}"
        );
        assert!(!target.database_exists(&name).await);
        let left: Vec<String> = target
            .databases()
            .await
            .into_iter()
            .filter(|d| d.starts_with(init_slate_db::store::staging::TEMP_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn swapped_events_or_timestamps_inside_a_chunk_fail_verification_naming_the_first_id() {
    let backup = backup_with(3_000).await;
    let target = Cluster::start().await;
    for (swap, first) in [("event:100,101", 100), ("ts:2001,2002", 2001)] {
        let name = format!("swapped_{first}");
        let mut command = restore(&target, &backup, &["-n", &name]);
        command.env("INIT_SLATE_DB_TEST_SWAP", swap);
        let outcome = run(&mut command);
        outcome.assert_code(17);
        assert!(
            outcome.error_lines()[0].contains(&format!("the digests differ, first at id {first}")),
            "{swap}: {}",
            outcome.stderr()
        );
        assert!(!target.database_exists(&name).await);
    }
}

/// A backup on one server restored into another. With `PG_BINDIR_OTHER` (CI sets it to the
/// oldest and newest supported versions in turn) the backup's server runs those binaries, and
/// the test asserts the two versions differ; without it both are the same version, which the
/// name says.
#[tokio::test]
async fn restore_from_another_server_is_verified_and_across_versions_with_pg_bindir_other() {
    let backup = match std::env::var_os("PG_BINDIR_OTHER") {
        Some(dir) => Cluster::start_from(std::path::PathBuf::from(dir)).await,
        None => Cluster::start().await,
    };
    run(backup.tool().args(["-n", "backup", "-t", "destination"])).assert_code(0);
    backup
        .superuser_client("backup")
        .await
        .batch_execute(
            "INSERT INTO events (id, ts, event)
             SELECT g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1.000123 second',
                    jsonb_build_object('entityName', 'Order', 'entityId', 'order-' || g, 'n', g * 1.5)
               FROM generate_series(1, 25000) g",
        )
        .await
        .unwrap();
    let target = Cluster::start().await;
    let version = |cluster: &Cluster| {
        let cluster_port = cluster.port;
        async move {
            let client = crate::support::Cluster::client_on_port(cluster_port).await;
            client
                .query_one("SHOW server_version_num", &[])
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    let (from, to) = (version(&backup).await, version(&target).await);
    if std::env::var_os("PG_BINDIR_OTHER").is_some() {
        assert_ne!(from[..2], to[..2], "two versions");
    }
    let outcome = run(&mut restore(&target, &backup, &["-n", "across"]));
    outcome.assert_code(0);
    assert_eq!(
        rows_text(&target, "across").await,
        rows_text(&backup, "backup").await,
        "from {from} to {to}"
    );
    run(target.tool().args(["status", "-d", "across"])).assert_code(0);
}

#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_signal_while_restore_opens_its_copy_connection_commits_nothing() {
    let backup = backup_with(2_000).await;
    let target = Cluster::start().await;
    for signal in ["TERM", "INT"] {
        let name = format!("opening_{}", signal.to_lowercase());
        let mut command = restore(&target, &backup, &["-n", &name]);
        command.env("INIT_SLATE_DB_TEST_PAUSE", "copy-connection");
        let running = crate::support::spawn(&mut command);
        running.wait_for("paused at copy-connection");
        running.signal(signal);
        let outcome = running.finish(Duration::from_secs(30));
        outcome.assert_code(130);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{}", outcome.stderr());
        assert!(
            errors[0].contains("interrupted while opening the copy connection")
                && errors[0].contains("created by this run was dropped"),
            "{errors:?}"
        );
        assert!(!target.database_exists(&name).await);
    }
}
