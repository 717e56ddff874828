//! What is refused, touching nothing: template and maintenance databases (exit 21), databases
//! under the tool's reserved temporary names that are not its builds (22), read-only servers
//! (20), in dry runs as in real runs.

use serde_json::Value;

use crate::support::{run, Cluster};

#[tokio::test]
async fn templates_and_the_maintenance_database_are_never_made_stores() {
    let cluster = Cluster::start().await;
    let cases: &[&[&str]] = &[
        &["-n", "template1", "-t", "source", "--into-existing"],
        &[
            "-n",
            "template1",
            "-t",
            "source",
            "--into-existing",
            "--dry-run",
        ],
        &["-n", "template1", "-t", "destination", "--if-not-exists"],
        &["-n", "postgres", "-t", "destination", "--into-existing"],
        &["migrate", "-d", "template1"],
        &["adopt", "-d", "postgres"],
    ];
    for args in cases {
        let outcome = run(cluster.tool().args(*args));
        outcome.assert_code(21);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{args:?}: {errors:?}");
        assert!(
            errors[0].contains("template") || errors[0].contains("maintenance"),
            "{args:?}: {errors:?}"
        );
    }
    // Nothing went in: a database created afterwards inherits no store.
    for database in ["template1", "postgres"] {
        let client = cluster.superuser_client(database).await;
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "{database}");
    }
}

#[tokio::test]
async fn a_database_under_a_reserved_name_that_is_not_the_tools_build_is_left_alone() {
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    // A DBA's database that happens to have the temporary name of "orders", with a comment
    // and a row of its own; and one of "invoices" with no comment at all.
    let orders = init_slate_db::store::staging::temp_name("orders");
    let invoices = init_slate_db::store::staging::temp_name("invoices");
    for sql in [
        format!("CREATE DATABASE {orders}"),
        format!("COMMENT ON DATABASE {orders} IS 'reporting scratch, do not drop'"),
        format!("CREATE DATABASE {invoices}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    cluster
        .superuser_client(&orders)
        .await
        .batch_execute("CREATE TABLE notes (t text); INSERT INTO notes VALUES ('mine')")
        .await
        .unwrap();
    for (name, temp) in [("orders", &orders), ("invoices", &invoices)] {
        let outcome = run(cluster.tool().args(["-n", name, "-t", "source"]));
        outcome.assert_code(22);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains(temp.as_str()), "{errors:?}");
        assert!(cluster.database_exists(temp).await, "{temp} was removed");
        assert!(!cluster.database_exists(name).await);
    }
    let rows: i64 = cluster
        .superuser_client(&orders)
        .await
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    // status reports them as someone else's.
    let status = run(cluster
        .tool()
        .args(["status", "-d", "postgres", "--format", "json"]));
    let doc: Value = serde_json::from_str(&status.stdout()).unwrap();
    let states: Vec<&str> = doc["leftovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["foreign", "foreign"], "{doc}");
}

#[tokio::test]
async fn a_hot_standby_is_refused_with_the_same_code_in_dry_runs_and_real_runs() {
    let mut primary = Cluster::start().await;
    run(primary.tool().args(["-n", "store", "-t", "source"])).assert_code(0);
    let standby = primary.hot_standby();
    let cases: &[&[&str]] = &[
        &["-n", "fresh", "-t", "source", "--dry-run"],
        &["-n", "fresh", "-t", "source"],
        &[
            "-n",
            "store",
            "-t",
            "source",
            "--if-not-exists",
            "--dry-run",
        ],
        &["migrate", "-d", "store", "--dry-run"],
        &["migrate", "-d", "store"],
    ];
    for args in cases {
        let outcome = run(standby.tool().args(*args));
        outcome.assert_code(20);
        let errors = outcome.error_lines();
        assert!(
            errors.len() == 1 && errors[0].contains("hot standby"),
            "{args:?}: {errors:?}"
        );
    }
    // status reads a standby as it reads the primary.
    run(standby.tool().args(["status", "-d", "store"])).assert_code(0);
    // A role whose default_transaction_read_only is on gets the same refusal.
    primary
        .superuser_client("postgres")
        .await
        .batch_execute("ALTER ROLE creator SET default_transaction_read_only = on")
        .await
        .unwrap();
    let outcome = run(primary
        .tool_as(
            crate::support::CREATOR,
            Some(crate::support::CREATOR_PASSWORD),
        )
        .args(["-n", "fresh", "-t", "destination", "--dry-run"]));
    outcome.assert_code(20);
    assert!(
        outcome.error_lines()[0].contains("default_transaction_read_only"),
        "{:?}",
        outcome.error_lines()
    );
}

#[tokio::test]
async fn through_a_transaction_pooler_every_command_refuses_at_once_and_leaves_nothing() {
    use crate::support::pooler::PgBouncer;
    use crate::support::{SUPERUSER, SUPERUSER_PASSWORD};
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "pooled", "-t", "source"])).assert_code(0);
    let through = |bouncer: &PgBouncer| {
        let mut command = crate::support::tool();
        command
            .args(["--host", "127.0.0.1", "--port", &bouncer.port.to_string()])
            .args(["--user", SUPERUSER])
            .env("PGPASSWORD", SUPERUSER_PASSWORD);
        command
    };
    let transaction = PgBouncer::start(&cluster, "transaction").await;
    let cases: &[&[&str]] = &[
        &["status", "-d", "pooled"],
        &["migrate", "-d", "pooled"],
        &["-n", "pooled", "-t", "source", "--if-not-exists"],
        &["-n", "through_pool", "-t", "source"],
        &["list"],
    ];
    for args in cases {
        let outcome = run(through(&transaction).args(*args));
        outcome.assert_code(23);
        let errors = outcome.error_lines();
        assert!(
            errors.len() == 1 && errors[0].contains("pooler"),
            "{args:?}: {errors:?}"
        );
    }
    // Nothing was left in a pooled session: no advisory lock, no database.
    let admin = cluster.superuser_client("postgres").await;
    let locks: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0);
    assert!(!cluster.database_exists("through_pool").await);
    run(cluster
        .tool()
        .args(["migrate", "-d", "pooled", "--lock-timeout", "2"]))
    .assert_code(0);
    // A session-mode pool keeps each client's session: it works.
    let session = PgBouncer::start(&cluster, "session").await;
    run(through(&session).args(["status", "-d", "pooled"])).assert_code(0);
    run(through(&session).args(["migrate", "-d", "pooled"])).assert_code(0);
}
