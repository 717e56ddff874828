//! Creating and initializing: the objects each layout gets, the history table, dry runs,
//! existing databases, races, and clean-up after a failed initialization.

use crate::support::{run, Cluster};

/// Object names in the public schema, by kind, sorted.
async fn objects(client: &tokio_postgres::Client) -> Vec<String> {
    let rows = client
        .query(
            "SELECT kind || ' ' || name FROM (
                 SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' ELSE c.relkind::text END AS kind, c.relname::text AS name
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')
                 UNION ALL
                 SELECT 'function', p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = 'public' AND p.proname NOT LIKE 'dblink%'
                 UNION ALL
                 SELECT 'trigger', t.tgname::text FROM pg_trigger t WHERE NOT t.tgisinternal
                 UNION ALL
                 SELECT 'extension', e.extname::text FROM pg_extension e WHERE e.extname <> 'plpgsql'
             ) o ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

#[tokio::test]
async fn source_database_gets_exactly_the_source_objects() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "orders_events", "-t", "source"])).assert_code(0);
    let client = cluster.superuser_client("orders_events").await;
    insta::assert_snapshot!(objects(&client).await.join("\n"));

    let columns = client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns
              WHERE table_name = 'events' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap();
    let columns: Vec<(String, String, String)> = columns
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        columns,
        [
            ("id".into(), "bigint".into(), "NO".into()),
            ("ts".into(), "timestamp with time zone".into(), "NO".into()),
            ("event".into(), "jsonb".into(), "NO".into()),
        ]
    );
    let id: i64 = client
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 1);
    let id_rows: i64 = client
        .query_one("SELECT count(*) FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(id_rows, 1);
}

#[tokio::test]
async fn source_indexes_match_the_specification() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "ix", "-t", "source"])).assert_code(0);
    let client = cluster.superuser_client("ix").await;
    let rows = client
        .query("SELECT indexname::text, indexdef FROM pg_indexes WHERE tablename = 'events' ORDER BY 1", &[])
        .await
        .unwrap();
    let defs: Vec<String> = rows
        .iter()
        .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    insta::assert_snapshot!(defs.join("\n"));
}

#[tokio::test]
async fn replicator_sees_one_routine_per_name_and_two_check_trigger_rows() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "counted", "-t", "source"])).assert_code(0);
    let client = cluster.superuser_client("counted").await;
    for routine in [
        "insert_events",
        "restore_events",
        "notify_event_insert",
        "filter_sql_command",
    ] {
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.routines WHERE routine_name = $1",
                &[&routine],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 1, "{routine}");
    }
    let triggers = client
        .query(
            "SELECT trigger_name::text, event_manipulation::text, action_timing::text, action_orientation::text
               FROM information_schema.triggers WHERE event_object_table = 'events' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let triggers: Vec<String> = triggers
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            )
        })
        .collect();
    assert_eq!(
        triggers,
        [
            "check_sql_command DELETE BEFORE STATEMENT",
            "check_sql_command UPDATE BEFORE STATEMENT",
            "notify_insert INSERT AFTER STATEMENT",
        ]
    );
    let truncate_trigger: bool = client
        .query_one(
            "SELECT (tgtype & 32) <> 0 FROM pg_trigger WHERE tgname = 'check_sql_command'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        truncate_trigger,
        "check_sql_command must also fire on TRUNCATE"
    );
}

#[tokio::test]
async fn destination_database_has_only_the_events_table_and_accepts_plain_inserts() {
    let cluster = Cluster::start().await;
    run(cluster
        .tool()
        .args(["-n", "orders_replica", "-t", "destination"]))
    .assert_code(0);
    let client = cluster.superuser_client("orders_replica").await;
    insta::assert_snapshot!(objects(&client).await.join("\n"));
    client
        .execute(
            "INSERT INTO events (id, ts, event) VALUES (7, now(), '{\"a\": 1}')",
            &[],
        )
        .await
        .unwrap();
    client
        .execute("DELETE FROM events WHERE id = 7", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn history_table_records_each_migration_with_its_checksum() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "hist_src", "-t", "source"])).assert_code(0);
    run(cluster.tool().args(["-n", "hist_dst", "-t", "destination"])).assert_code(0);
    for (database, layout) in [
        ("hist_src", init_slate_db::store::layout::Layout::Source),
        (
            "hist_dst",
            init_slate_db::store::layout::Layout::Destination,
        ),
    ] {
        let client = cluster.superuser_client(database).await;
        let rows = client
            .query("SELECT version, name::text, checksum::text, applied_on::text FROM refinery_schema_history ORDER BY version", &[])
            .await
            .unwrap();
        let recorded: Vec<(i32, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected: Vec<(i32, String, String)> = layout
            .migrations()
            .iter()
            .map(|m| (m.version(), m.name().to_string(), m.checksum().to_string()))
            .collect();
        assert_eq!(recorded, expected, "{database}");
        for row in rows {
            let applied_on: String = row.get(3);
            assert!(
                applied_on.starts_with("20"),
                "RFC 3339 timestamp expected: {applied_on}"
            );
        }
    }
}

#[tokio::test]
async fn dry_run_creates_nothing_and_shows_no_password() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster
        .tool()
        .args(["-n", "dry_src", "-t", "source", "--dry-run"]));
    outcome.assert_code(0);
    assert!(!cluster.database_exists("dry_src").await);
    let stdout = outcome.stdout();
    for expected in [
        "dry run",
        "dry_src",
        "source",
        "V1",
        "events_table",
        "V6",
        "(given, not shown)",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains(crate::support::SUPERUSER_PASSWORD)
            && !outcome
                .stderr()
                .contains(crate::support::SUPERUSER_PASSWORD)
    );
    assert!(
        !stdout.contains("super secret"),
        "password leaked: {stdout}"
    );
}

#[tokio::test]
async fn dry_run_fails_when_the_database_exists() {
    let cluster = Cluster::start().await;
    cluster.empty_database("taken").await;
    let outcome = run(cluster
        .tool()
        .args(["-n", "taken", "-t", "destination", "--dry-run"]));
    outcome.assert_code(3);
    assert!(outcome
        .stderr()
        .contains("database \"taken\" already exists"));
}

#[tokio::test]
async fn existing_database_is_left_untouched() {
    let cluster = Cluster::start().await;
    let precious = cluster.empty_database("precious").await;
    precious
        .batch_execute("CREATE TABLE keep (v text); INSERT INTO keep VALUES ('mine')")
        .await
        .unwrap();
    drop(precious);

    let outcome = run(cluster.tool().args(["-n", "precious", "-t", "source"]));
    outcome.assert_code(3);
    assert_eq!(
        outcome.error_lines(),
        [format!(
            "error: database \"precious\" already exists on 127.0.0.1:{}; it was left untouched (choose another --new-database, or drop it first)",
            cluster.port
        )]
    );
    let precious = cluster.superuser_client("precious").await;
    let value: String = precious
        .query_one("SELECT v FROM keep", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, "mine");
    let tables: i64 = precious
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn database_name_case_is_kept() {
    let cluster = Cluster::start().await;
    run(cluster
        .tool()
        .args(["-n", "OrdersEvents", "-t", "destination"]))
    .assert_code(0);
    assert!(cluster.database_exists("OrdersEvents").await);
    assert!(!cluster.database_exists("ordersevents").await);
}

#[tokio::test]
async fn two_runs_racing_for_one_name_one_wins_and_the_database_is_complete() {
    let cluster = Cluster::start().await;
    for round in 0..3 {
        let name = format!("raced_{round}");
        let children: Vec<_> = (0..2)
            .map(|_| {
                cluster
                    .tool()
                    .args(["-n", &name, "-t", "source"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut codes: Vec<i32> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        codes.sort();
        assert_eq!(
            codes,
            [0, 3],
            "round {round}: one run wins, the other reports the database exists"
        );
        let client = cluster.superuser_client(&name).await;
        let applied: i64 = client
            .query_one("SELECT count(*) FROM refinery_schema_history", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            applied as usize,
            init_slate_db::store::layout::Layout::Source.files().len()
        );
        let id: i64 = client
            .query_one("SELECT id FROM id", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(id, 1);
    }
}

/// A template with an `events` table makes V1 fail after CREATE DATABASE succeeded.
async fn poison_template(cluster: &Cluster) {
    let template = cluster.superuser_client("template1").await;
    template
        .batch_execute("CREATE TABLE events (x int)")
        .await
        .unwrap();
    drop(template);
    cluster.wait_until_idle("template1").await;
}

#[tokio::test]
async fn failed_initialization_drops_the_database_it_created() {
    let cluster = Cluster::start().await;
    poison_template(&cluster).await;
    let outcome = run(cluster.tool().args(["-n", "doomed", "-t", "source"]));
    outcome.assert_code(6);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1, "{}", outcome.stderr());
    assert!(
        errors[0].contains("relation \"events\" already exists"),
        "{errors:?}"
    );
    assert!(errors[0].contains("42P07"), "{errors:?}");
    assert!(errors[0].contains("was dropped"), "{errors:?}");
    assert!(!cluster.database_exists("doomed").await);
}

#[tokio::test]
async fn keep_on_failure_keeps_the_failed_database() {
    let cluster = Cluster::start().await;
    poison_template(&cluster).await;
    let outcome =
        run(cluster
            .tool()
            .args(["-n", "kept", "-t", "destination", "--keep-on-failure"]));
    outcome.assert_code(6);
    assert!(
        outcome.stderr().contains("was kept (--keep-on-failure)"),
        "{}",
        outcome.stderr()
    );
    // Kept under its temporary name: the requested name never holds a half-made store.
    assert!(!cluster.database_exists("kept").await);
    assert!(
        cluster
            .database_exists(&init_slate_db::store::staging::temp_name("kept"))
            .await
    );
}

#[tokio::test]
async fn unix_socket_directory_as_host_works() {
    let cluster = Cluster::start().await;
    let outcome = run(crate::support::tool()
        .args([
            "--host",
            cluster.socket_dir().to_str().unwrap(),
            "--port",
            &cluster.port.to_string(),
        ])
        .args([
            "--user",
            crate::support::SUPERUSER,
            "-n",
            "via_socket",
            "-t",
            "destination",
        ])
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD));
    outcome.assert_code(0);
    assert!(
        outcome.stdout().contains(".s.PGSQL."),
        "{}",
        outcome.stdout()
    );
    assert!(cluster.database_exists("via_socket").await);
}

#[tokio::test]
async fn logs_start_up_information_and_each_migration_without_secrets() {
    let cluster = Cluster::start().await;
    let outcome = run(cluster.tool().args(["-n", "logged", "-t", "source"]));
    outcome.assert_code(0);
    let stderr = outcome.stderr();
    for expected in [
        "starting",
        "host=127.0.0.1",
        &format!("port={}", cluster.port),
        "user=\"slate_admin\"",
        "new_database=logged",
        "table_type=source",
        "connect_timeout_ms=15000",
        "applied migration V1__events_table",
        "applied migration V6__restore_events_quoted_connection",
        "database initialized",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains("super secret"));
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal"
    );
}

#[tokio::test]
async fn create_subcommand_with_connection_options_after_it_works_like_the_original_invocation() {
    let cluster = Cluster::start().await;
    let outcome = run(crate::support::tool()
        .args([
            "create",
            "-n",
            "via_subcommand",
            "-t",
            "destination",
            "--format",
            "json",
        ])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &cluster.port.to_string(),
            "--user",
            crate::support::SUPERUSER,
        ])
        .env("PGPASSWORD", crate::support::SUPERUSER_PASSWORD));
    outcome.assert_code(0);
    let report: serde_json::Value = serde_json::from_str(&outcome.stdout()).unwrap();
    assert_eq!(report["action"], "created");
    assert_eq!(report["layout"], "destination");
    assert_eq!(report["migrations_applied"][0]["name"], "events_table");
    assert!(cluster.database_exists("via_subcommand").await);
}

#[tokio::test]
async fn into_existing_initializes_an_empty_database_its_owner_made_without_createdb() {
    use crate::support::{PLAIN, PLAIN_PASSWORD};
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    // As a console or Terraform does: the database exists first, owned by the role that runs
    // the tool, which may not create databases.
    for database in ["console_dst", "console_src"] {
        admin
            .batch_execute(&format!("CREATE DATABASE {database} OWNER {PLAIN}"))
            .await
            .unwrap();
    }
    let as_owner = |args: &[&str]| run(cluster.tool_as(PLAIN, Some(PLAIN_PASSWORD)).args(args));
    let outcome = as_owner(&["-n", "console_dst", "-t", "destination", "--into-existing"]);
    outcome.assert_code(0);
    assert!(
        outcome
            .stdout()
            .starts_with("initialized existing database \"console_dst\""),
        "{}",
        outcome.stdout()
    );
    as_owner(&["status", "-d", "console_dst"]).assert_code(0);

    // A source needs dblink, which this role may not install: refused, nothing changed...
    let refused = as_owner(&["-n", "console_src", "-t", "source", "--into-existing"]);
    refused.assert_code(5);
    assert!(
        refused.error_lines()[0].contains("dblink"),
        "{}",
        refused.stderr()
    );
    let src = cluster.superuser_client("console_src").await;
    let tables: i64 = src
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was left behind");
    // ...until a DBA hands it the extension, which is welcome.
    src.batch_execute("CREATE EXTENSION dblink").await.unwrap();
    as_owner(&["-n", "console_src", "-t", "source", "--into-existing"]).assert_code(0);
    as_owner(&["status", "-d", "console_src"]).assert_code(0);
}

#[tokio::test]
async fn into_existing_refuses_a_database_with_objects_of_its_own_and_leaves_it_untouched() {
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    admin
        .batch_execute("CREATE DATABASE busy_db")
        .await
        .unwrap();
    cluster
        .superuser_client("busy_db")
        .await
        .batch_execute("CREATE TABLE orders (id int); CREATE TYPE mood AS ENUM ('ok')")
        .await
        .unwrap();
    let outcome = run(cluster
        .tool()
        .args(["-n", "busy_db", "-t", "source", "--into-existing"]));
    outcome.assert_code(18);
    let errors = outcome.error_lines();
    assert_eq!(errors.len(), 1, "{}", outcome.stderr());
    assert!(
        errors[0].contains("table public.orders") && errors[0].contains("type public.mood"),
        "{errors:?}"
    );
    let still: bool = cluster
        .superuser_client("busy_db")
        .await
        .query_one("SELECT to_regclass('public.events') IS NULL AND to_regclass('public.orders') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(still);
    // The empty database an older release could leave after a crash is recovered the same way.
    admin
        .batch_execute("CREATE DATABASE left_by_crash")
        .await
        .unwrap();
    run(cluster
        .tool()
        .args(["-n", "left_by_crash", "-t", "source", "--into-existing"]))
    .assert_code(0);
    run(cluster.tool().args(["status", "-d", "left_by_crash"])).assert_code(0);
}
