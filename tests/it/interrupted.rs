//! Runs cut short by the world around them: a live run whose idle sessions are ended keeps its
//! build against a second run, and an `--into-existing` run stopped by a signal or a terminated
//! backend leaves the database exactly as it was.

use std::time::Duration;

use crate::support::{run, spawn, Cluster, SUPERUSER, SUPERUSER_PASSWORD};

#[tokio::test]
async fn a_live_restore_whose_idle_sessions_are_ended_keeps_its_build_against_a_second_run() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "backup", "-t", "destination"])).assert_code(0);
    cluster
        .superuser_client("backup")
        .await
        .batch_execute(
            "INSERT INTO events SELECT g, '2026-01-01'::timestamptz + g * interval '1 ms',
                    jsonb_build_object('n', g, 'pad', repeat('x', 100))
               FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
    let restore = |extra: &[&str]| {
        let mut command = cluster.tool();
        command
            .args(["restore", "-n", "recovered", "--from-host", "127.0.0.1"])
            .args([
                "--from-port",
                &cluster.port.to_string(),
                "--from-database",
                "backup",
            ])
            .args(["--from-user", SUPERUSER])
            .args(extra)
            .env("INIT_SLATE_DB_FROM_PASSWORD", SUPERUSER_PASSWORD);
        command
    };
    // The first run copies slowly: about 20 s.
    let first = spawn(restore(&[]).env("INIT_SLATE_DB_TEST_COPY_CHUNK_DELAY_MS", "1500"));
    first.wait_for("backup checked");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // An idle-connection reaper ends every idle session of the tool: the maintenance session
    // and the keeper; the copy, busy, goes on.
    let admin = cluster.superuser_client("postgres").await;
    let ended: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE application_name = 'init-slate-db' AND state = 'idle' AND pid <> pg_backend_pid()) t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ended >= 2, "ended {ended} idle sessions");
    // A second run for the same name waits longer than the abandon grace, and must find the
    // first alive all along.
    let second = run(&mut restore(&["--lock-timeout", "12"]));
    second.assert_code(7);
    assert!(
        second.stderr().contains("another run is building"),
        "{}",
        second.stderr()
    );
    assert!(
        !second.stderr().contains("removed the temporary database"),
        "{}",
        second.stderr()
    );
    let first = first.finish(Duration::from_secs(90));
    first.assert_code(0);
    let verify = run(cluster.tool().args([
        "verify",
        "-d",
        "recovered",
        "--replica-database",
        "backup",
        "--exact",
    ]));
    verify.assert_code(0);
}

/// The number of tables, views and sequences in `database`'s public schema.
async fn own_relations(cluster: &Cluster, database: &str) -> i64 {
    cluster
        .superuser_client(database)
        .await
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_into_existing_run_cut_short_leaves_the_database_as_it_was() {
    let cluster = Cluster::start().await;
    for (index, cut) in ["TERM", "terminate the backend"].iter().enumerate() {
        let database = format!("provisioned_{index}");
        let blocker = cluster.empty_database(&database).await;
        // CREATE EXTENSION dblink (V4) waits behind this lock, after refinery has committed its
        // history table.
        blocker
            .batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let running =
            spawn(
                cluster
                    .tool()
                    .args(["-n", &database, "-t", "source", "--into-existing"]),
            );
        let admin = cluster.superuser_client("postgres").await;
        let mut pid = None;
        for _ in 0..200 {
            pid = admin
                .query_opt(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                    &[&database],
                )
                .await
                .unwrap()
                .map(|r| r.get::<_, i32>(0));
            if pid.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pid = pid.expect("the migration waits on the lock");
        if *cut == "TERM" {
            running.signal("TERM");
        } else {
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
        }
        blocker.batch_execute("ROLLBACK").await.unwrap();
        let outcome = running.finish(Duration::from_secs(60));
        assert_ne!(outcome.code(), 0, "{cut}");
        if *cut == "TERM" {
            outcome.assert_code(130);
        }
        assert_eq!(
            own_relations(&cluster, &database).await,
            0,
            "{cut}: {}",
            outcome.stderr()
        );
        // The same command now succeeds.
        run(cluster
            .tool()
            .args(["-n", &database, "-t", "source", "--into-existing"]))
        .assert_code(0);
    }
}
