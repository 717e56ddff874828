//! All or nothing, whatever happens: signals at each step, SIGKILL, a server restart, a
//! terminated backend, the name taken in the window, two runs for one name on different
//! maintenance databases. After each, the requested name either does not exist or holds a
//! complete, verified store, nothing else was dropped, and the exit code and message are the
//! documented ones. The pauses come from the `test-hooks` build (src/hooks.rs).

use std::time::Duration;

use init_slate_db::store::staging::{temp_name, TEMP_PREFIX};
use serde_json::Value;

use crate::support::{run, spawn, Cluster};

/// No database of the tool's temporary prefix is left on the server.
async fn no_temporary_left(cluster: &Cluster) {
    let left: Vec<String> = cluster
        .databases()
        .await
        .into_iter()
        .filter(|d| d.starts_with(TEMP_PREFIX))
        .collect();
    assert!(left.is_empty(), "temporary databases left: {left:?}");
}

/// `status` of `database` exits 0: a complete, verified store.
fn verified(cluster: &Cluster, database: &str) {
    let status = run(cluster.tool().args(["status", "-d", database]));
    status.assert_code(0);
}

/// Waits until a session of the server runs a query starting with `prefix` and waits on a lock.
async fn wait_for_blocked_query(cluster: &Cluster, prefix: &str) {
    let admin = cluster.superuser_client("postgres").await;
    for _ in 0..200 {
        let blocked: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 || '%' AND wait_event_type = 'Lock')",
                &[&prefix],
            )
            .await
            .unwrap()
            .get(0);
        if blocked {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no session blocked on {prefix:?}");
}

#[tokio::test]
async fn a_signal_while_create_database_waits_cancels_it_and_leaves_nothing() {
    let cluster = Cluster::start().await;
    for signal in ["INT", "TERM"] {
        // A busy server: another session holds template1, so CREATE DATABASE waits.
        let blocker = cluster.superuser_client("template1").await;
        blocker
            .batch_execute("BEGIN; COMMENT ON DATABASE template1 IS 'busy'")
            .await
            .unwrap();
        let name = format!("waits_{}", signal.to_lowercase());
        let running = spawn(cluster.tool().args(["-n", &name, "-t", "destination"]));
        wait_for_blocked_query(&cluster, "CREATE DATABASE").await;
        running.signal(signal);
        let outcome = running.finish(Duration::from_secs(20));
        outcome.assert_code(130);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{}", outcome.stderr());
        assert!(
            errors[0].contains("interrupted while creating the database; nothing was created"),
            "{errors:?}"
        );
        blocker.batch_execute("ROLLBACK").await.unwrap();
        // The cancelled CREATE DATABASE is not running on, and created nothing.
        let admin = cluster.superuser_client("postgres").await;
        let still_running: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(still_running, 0);
        assert!(!cluster.database_exists(&name).await);
        no_temporary_left(&cluster).await;
    }
}

#[tokio::test]
async fn sigkill_at_any_step_never_leaves_a_half_made_store_and_the_next_run_recovers() {
    let cluster = Cluster::start().await;
    for step in ["created", "migrating", "publishing"] {
        let name = format!("killed_at_{step}");
        let running = spawn(
            cluster
                .tool()
                .args(["-n", &name, "-t", "source"])
                .env("INIT_SLATE_DB_TEST_PAUSE", step),
        );
        running.wait_for(&format!("paused at {step}"));
        running.signal("KILL");
        drop(running);
        assert!(!cluster.database_exists(&name).await, "{step}");
        // What is left is recognisably the tool's, and status says so.
        let temp = temp_name(&name);
        assert!(cluster.database_exists(&temp).await, "{step}");
        let status = run(cluster
            .tool()
            .args(["status", "-d", "postgres", "--format", "json"]));
        let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
        let leftovers = doc["leftovers"].as_array().unwrap();
        assert_eq!(leftovers.len(), 1, "{doc}");
        assert_eq!(leftovers[0]["database"], temp);
        assert_eq!(leftovers[0]["requested"], name);
        // The backend of the killed run may take a moment to notice.
        let mut state = leftovers[0]["state"].clone();
        for _ in 0..100 {
            if state == "abandoned" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = run(cluster
                .tool()
                .args(["status", "-d", "postgres", "--format", "json"]));
            let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
            state = doc["leftovers"][0]["state"].clone();
        }
        assert_eq!(state, "abandoned", "{step}");
        // The next run for the name removes the leftover, says so, and builds the store.
        let again = run(cluster.tool().args(["-n", &name, "-t", "source"]));
        again.assert_code(0);
        assert!(
            again
                .stderr()
                .contains(&format!("removed the temporary database \"{temp}\"")),
            "{}",
            again.stderr()
        );
        verified(&cluster, &name);
        no_temporary_left(&cluster).await;
    }
}

#[tokio::test]
async fn a_signal_during_a_running_migration_cancels_it_and_drops_what_the_run_created() {
    let cluster = Cluster::start().await;
    for signal in ["INT", "TERM"] {
        let name = format!("stopped_{}", signal.to_lowercase());
        let running = spawn(
            cluster
                .tool()
                .args(["-n", &name, "-t", "source"])
                .env("INIT_SLATE_DB_TEST_PAUSE", "migrating"),
        );
        running.wait_for("paused at migrating");
        running.signal(signal);
        let outcome = running.finish(Duration::from_secs(20));
        outcome.assert_code(130);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{}", outcome.stderr());
        assert!(
            errors[0].contains("interrupted while applying migrations")
                && errors[0].contains(&format!(
                    "the temporary database \"{}\" created by this run was dropped",
                    temp_name(&name)
                )),
            "{errors:?}"
        );
        assert!(!cluster.database_exists(&name).await);
        no_temporary_left(&cluster).await;
    }
}

/// Starts a source `name` paused in a running migration statement.
fn paused_in_a_migration(cluster: &Cluster, name: &str) -> crate::support::Running {
    let running = spawn(
        cluster
            .tool()
            .args(["-n", name, "-t", "source"])
            .env("INIT_SLATE_DB_TEST_PAUSE", "migrating"),
    );
    running.wait_for("paused at migrating");
    running
}

/// The run lost its connection: exit 6, and clean-up (reconnecting) left nothing.
async fn cleaned_up_after_a_lost_connection(
    cluster: &Cluster,
    name: &str,
    running: crate::support::Running,
) {
    let outcome = running.finish(Duration::from_secs(60));
    outcome.assert_code(6);
    assert!(
        outcome.stderr().contains("created by this run was dropped"),
        "{}",
        outcome.stderr()
    );
    assert!(!cluster.database_exists(name).await);
    no_temporary_left(cluster).await;
}

#[tokio::test]
async fn a_server_restart_during_initialization_is_cleaned_up_after_reconnecting() {
    let cluster = Cluster::start().await;
    let running = paused_in_a_migration(&cluster, "restarted");
    cluster.restart();
    cleaned_up_after_a_lost_connection(&cluster, "restarted", running).await;
}

#[tokio::test]
async fn a_terminated_backend_during_initialization_is_cleaned_up() {
    let cluster = Cluster::start().await;
    let running = paused_in_a_migration(&cluster, "terminated");
    cluster
        .superuser_client("postgres")
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&temp_name("terminated")],
        )
        .await
        .unwrap();
    cleaned_up_after_a_lost_connection(&cluster, "terminated", running).await;
}

#[tokio::test]
async fn a_name_taken_while_the_run_works_is_left_alone_and_the_run_ends_with_exit_3() {
    let cluster = Cluster::start().await;
    let running = spawn(
        cluster
            .tool()
            .args(["-n", "taken", "-t", "source"])
            .env("INIT_SLATE_DB_TEST_PAUSE", "publishing")
            .env("INIT_SLATE_DB_TEST_PAUSE_SECS", "2"),
    );
    running.wait_for("paused at publishing");
    // A DBA creates the same name, with something of their own in it.
    let admin = cluster.superuser_client("postgres").await;
    admin.batch_execute("CREATE DATABASE taken").await.unwrap();
    cluster
        .superuser_client("taken")
        .await
        .batch_execute("CREATE TABLE dba_table (x int)")
        .await
        .unwrap();
    let outcome = running.finish(Duration::from_secs(60));
    outcome.assert_code(3);
    assert!(
        outcome.stderr().contains("created by this run was dropped"),
        "{}",
        outcome.stderr()
    );
    // The DBA's database is untouched.
    let dba = cluster.superuser_client("taken").await;
    assert!(dba
        .query_one("SELECT to_regclass('dba_table') IS NOT NULL", &[])
        .await
        .unwrap()
        .get::<_, bool>(0));
    no_temporary_left(&cluster).await;
}

#[tokio::test]
async fn two_runs_for_one_name_exclude_each_other_whatever_their_maintenance_database() {
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    admin
        .batch_execute("CREATE DATABASE other_maintenance")
        .await
        .unwrap();
    let first = spawn(
        cluster
            .tool()
            .args(["-n", "contested", "-t", "source", "--if-not-exists"])
            .env("INIT_SLATE_DB_TEST_PAUSE", "migrating")
            .env("INIT_SLATE_DB_TEST_PAUSE_SECS", "3"),
    );
    first.wait_for("paused at migrating");
    let second = spawn(cluster.tool().args([
        "-n",
        "contested",
        "-t",
        "source",
        "--if-not-exists",
        "--maintenance-db",
        "other_maintenance",
    ]));
    second.wait_for("another run is building \"contested\"");
    let first = first.finish(Duration::from_secs(60));
    let second = second.finish(Duration::from_secs(60));
    first.assert_code(0);
    second.assert_code(0);
    assert!(
        first
            .stdout()
            .starts_with("created source database \"contested\""),
        "{}",
        first.stdout()
    );
    assert!(
        second
            .stdout()
            .contains("exists and is a verified, up-to-date source store"),
        "{}",
        second.stdout()
    );
    verified(&cluster, "contested");
    no_temporary_left(&cluster).await;
}

#[tokio::test]
async fn a_build_published_while_another_run_removes_it_as_abandoned_is_left_alone() {
    let cluster = Cluster::start().await;
    let name = "published_meanwhile";
    let temp = temp_name(name);
    // The first run has built the store and waits before publishing it.
    let first = spawn(
        cluster
            .tool()
            .args(["-n", name, "-t", "source"])
            .env("INIT_SLATE_DB_TEST_PAUSE", "publishing")
            .env("INIT_SLATE_DB_TEST_PAUSE_SECS", "8"),
    );
    first.wait_for("paused at publishing");
    // Its marker now names a maintenance session that does not exist: to another run, the
    // build looks abandoned.
    let admin = cluster.superuser_client("postgres").await;
    let row = admin
        .query_one(
            "SELECT oid, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&temp],
        )
        .await
        .unwrap();
    let built_oid: u32 = row.get(0);
    let mut marker: Value = serde_json::from_str(&row.get::<_, String>(1)).unwrap();
    marker["backend_pid"] = Value::from(0);
    admin
        .batch_execute(&format!("COMMENT ON DATABASE {temp} IS $m${marker}$m$"))
        .await
        .unwrap();
    // The second run examines it, finds it abandoned, and stops just before removing it.
    let second = spawn(
        cluster
            .tool()
            .args(["-n", name, "-t", "source", "--if-not-exists"])
            .env("INIT_SLATE_DB_TEST_PAUSE", "removing-abandoned")
            .env("INIT_SLATE_DB_TEST_PAUSE_SECS", "120"),
    );
    second.wait_for("paused at removing-abandoned");
    // Meanwhile the first run publishes: the build is renamed to the requested name.
    let first = first.finish(Duration::from_secs(60));
    first.assert_code(0);
    assert!(cluster.database_exists(name).await);
    // The second run goes on (its pause is a pg_sleep on its maintenance session).
    admin
        .batch_execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
              WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    let second = second.finish(Duration::from_secs(60));
    second.assert_code(0);
    assert!(
        second
            .stdout()
            .contains("exists and is a verified, up-to-date source store"),
        "{}",
        second.stdout()
    );
    assert!(
        !second.stderr().contains("removed the temporary database"),
        "{}",
        second.stderr()
    );
    // The published store is the first run's build, not a second one built after a DROP.
    let oid: u32 = admin
        .query_one("SELECT oid FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .get(0);
    assert_eq!(oid, built_oid);
    verified(&cluster, name);
    no_temporary_left(&cluster).await;
}
