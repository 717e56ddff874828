//! `grant`: each role can do its part and nothing else, a second run changes nothing, taking a
//! role out takes its rights away, status turns to drift on a privilege granted by hand, and a
//! CREATEROLE non-superuser runs it (told what it lacks where it does).

use std::time::Duration;

#[cfg(feature = "test-hooks")]
use crate::support::spawn;
use crate::support::{insert, listen_as, run, sqlstate, values, Cluster, Outcome};
use serde_json::Value;
use tokio_postgres::Client;

const APP: &str = "app";
const APP_PASSWORD: &str = "app-secret-1";
const PROJECTION: &str = "projection";
const PROJECTION_PASSWORD: &str = "projection-secret-1";
const SHIPPER: &str = "shipper";
const SHIPPER_PASSWORD: &str = "shipper-secret-1";

/// The three login roles of a deployment: an application, a projection, a replicator.
async fn login_roles(cluster: &Cluster) {
    cluster
        .superuser_client("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE {APP} LOGIN PASSWORD '{APP_PASSWORD}';
             CREATE ROLE {PROJECTION} LOGIN PASSWORD '{PROJECTION_PASSWORD}';
             CREATE ROLE {SHIPPER} LOGIN PASSWORD '{SHIPPER_PASSWORD}';"
        ))
        .await
        .unwrap();
}

async fn connect(
    cluster: &Cluster,
    user: &str,
    password: &str,
    database: &str,
) -> Result<Client, tokio_postgres::Error> {
    cluster.try_client_as(user, password, database).await
}

async fn refused(client: &Client, statement: &str) -> String {
    match client.batch_execute(statement).await {
        Ok(()) => format!("accepted: {statement}"),
        Err(e) => sqlstate(&e),
    }
}

fn grant(cluster: &Cluster, args: &[&str]) -> Outcome {
    run(cluster.tool().arg("grant").args(args))
}

fn json(outcome: &Outcome) -> Value {
    serde_json::from_str(&outcome.stdout()).unwrap_or_else(|e| panic!("{e}: {}", outcome.stdout()))
}

/// Everything grant may change: the database's, tables' and functions' ACLs, the roles and
/// memberships, the record.
async fn access_snapshot(cluster: &Cluster, database: &str) -> Vec<String> {
    let client = cluster.superuser_client(database).await;
    client
        .query(
            "SELECT 'database ' || COALESCE(datacl::text, '-') FROM pg_database WHERE datname = current_database()
             UNION ALL SELECT 'table ' || relname || ' ' || COALESCE(relacl::text, '-') FROM pg_class
              WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
             UNION ALL SELECT 'function ' || oid::regprocedure::text || ' ' || COALESCE(proacl::text, '-') FROM pg_proc
              WHERE pronamespace = 'public'::regnamespace
             UNION ALL SELECT 'role ' || rolname || ' ' || rolcanlogin || rolreplication FROM pg_roles
              WHERE rolname !~ '^pg_'
             UNION ALL SELECT 'member ' || roleid::regrole::text || ' ' || member::regrole::text FROM pg_auth_members
              WHERE roleid::regrole::text !~ '^pg_'
             UNION ALL SELECT 'record ' || kind || ' ' || role_name FROM slate_roles
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_writer_appends_and_can_do_nothing_else_not_even_connect_to_another_store() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("orders").await;
    cluster.source("billing").await;
    login_roles(&cluster).await;
    grant(&cluster, &["-d", "orders", "--writer", APP]).assert_code(0);
    grant(&cluster, &["-d", "billing"]).assert_code(0);

    let writer = connect(&cluster, APP, APP_PASSWORD, "orders")
        .await
        .unwrap();
    assert_eq!(
        insert(&writer, &values(&[r#"{"n":1}"#, r#"{"n":2}"#]))
            .await
            .unwrap(),
        2
    );
    let refusals = [
        "INSERT INTO events (id, ts, event) VALUES (100, now(), '{}')",
        "UPDATE events SET event = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE id SET id = id + 10",
        "ALTER TABLE events ADD COLUMN forged int",
        "CREATE TRIGGER forged BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION filter_sql_command()",
        "SELECT restore_events('h', 'd', 'u', 'p', 5432)",
        "SELECT dblink_connect('host=127.0.0.1')",
        "CREATE TEMP TABLE scratch (x int)",
        "CREATE TABLE public.scratch (x int)",
        "SELECT * FROM events",
    ];
    for statement in refusals {
        assert_eq!(refused(&writer, statement).await, "42501", "{statement}");
    }
    let other = connect(&cluster, APP, APP_PASSWORD, "billing").await;
    assert_eq!(
        other.map(|_| ()).map_err(|e| sqlstate(&e)),
        Err("42501".to_string()),
        "a writer of orders connects to billing"
    );
    let rows: Vec<(i64, String)> = owner
        .query("SELECT id, event::text FROM events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, r#"{"n": 1}"#.to_string()),
            (2, r#"{"n": 2}"#.to_string())
        ]
    );
    let next: i64 = owner
        .query_one("SELECT id FROM id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 3);
}

#[tokio::test]
async fn a_reader_selects_and_hears_inserts_but_cannot_write() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("orders").await;
    login_roles(&cluster).await;
    grant(&cluster, &["-d", "orders", "--reader", PROJECTION]).assert_code(0);

    let (reader, mut heard) = listen_as(
        &cluster,
        PROJECTION,
        PROJECTION_PASSWORD,
        "orders",
        "eventsinsert",
    )
    .await;
    insert(&owner, &values(&[r#"{"n":1}"#])).await.unwrap();
    let notification = tokio::time::timeout(Duration::from_secs(10), heard.recv())
        .await
        .expect("the reader heard no eventsinsert")
        .unwrap();
    assert!(
        notification.payload().contains("\"id\""),
        "{}",
        notification.payload()
    );
    let count: i64 = reader
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    for statement in [
        "SELECT insert_events($$($1[1], $2, '{}')$$)",
        "SELECT append_events(ARRAY['{}'::jsonb])",
        "INSERT INTO events (id, ts, event) VALUES (100, now(), '{}')",
        "UPDATE id SET id = id + 1",
        "SELECT * FROM id",
    ] {
        assert_eq!(refused(&reader, statement).await, "42501", "{statement}");
    }
}

/// The triggers the Node replicator's start-up check looks for in information_schema.
async fn visible_triggers(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT DISTINCT trigger_name::text FROM information_schema.triggers
              WHERE event_object_table = 'events' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_replicator_reads_what_the_node_replicator_and_a_subscription_read() {
    let cluster = Cluster::start_logical().await;
    let owner = cluster.source("orders").await;
    run(cluster
        .tool()
        .args(["-n", "orders_copy", "-t", "destination"]))
    .assert_code(0);
    login_roles(&cluster).await;
    grant(
        &cluster,
        &[
            "-d",
            "orders",
            "--replicator",
            SHIPPER,
            "--replication",
            "--reader",
            PROJECTION,
        ],
    )
    .assert_code(0);
    insert(&owner, &values(&[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#]))
        .await
        .unwrap();

    let replicator = connect(&cluster, SHIPPER, SHIPPER_PASSWORD, "orders")
        .await
        .unwrap();
    let count: i64 = replicator
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
    assert_eq!(
        visible_triggers(&replicator).await,
        ["check_sql_command", "notify_insert"],
        "the Node replicator's check sees the triggers"
    );
    // The control: SELECT alone does not show them.
    let reader = connect(&cluster, PROJECTION, PROJECTION_PASSWORD, "orders")
        .await
        .unwrap();
    assert!(visible_triggers(&reader).await.is_empty());
    for statement in [
        "UPDATE events SET event = '{}'",
        "SELECT insert_events('x')",
    ] {
        assert_eq!(
            refused(&replicator, statement).await,
            "42501",
            "{statement}"
        );
    }

    // A subscription whose connection logs in as the replicator copies the events.
    // Two statements: a slot cannot be made in a transaction that wrote.
    owner
        .batch_execute("CREATE PUBLICATION shipped FOR TABLE events WITH (publish = 'insert')")
        .await
        .unwrap();
    owner
        .batch_execute("SELECT pg_create_logical_replication_slot('shipped', 'pgoutput')")
        .await
        .unwrap();
    let copy = cluster.superuser_client("orders_copy").await;
    copy.batch_execute(&format!(
        "CREATE SUBSCRIPTION shipped CONNECTION 'host=127.0.0.1 port={} dbname=orders user={SHIPPER} password={SHIPPER_PASSWORD}'
           PUBLICATION shipped WITH (create_slot = false, slot_name = 'shipped', copy_data = true)",
        cluster.port
    ))
    .await
    .unwrap();
    let mut copied: i64 = 0;
    for _ in 0..300 {
        copied = copy
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .unwrap()
            .get(0);
        if copied == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        copied, 3,
        "the subscription as the replicator copied the events"
    );
    copy.batch_execute(
        "ALTER SUBSCRIPTION shipped DISABLE; ALTER SUBSCRIPTION shipped SET (slot_name = NONE); DROP SUBSCRIPTION shipped",
    )
    .await
    .unwrap();
    // The walsender may hold the slot a moment after the subscription is dropped.
    let mut dropped = Err(String::new());
    for _ in 0..100 {
        dropped = owner
            .batch_execute("SELECT pg_drop_replication_slot('shipped')")
            .await
            .map_err(|e| e.to_string());
        if dropped.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dropped.unwrap();
}

#[tokio::test]
async fn a_second_run_changes_nothing_and_the_dry_run_showed_what_the_run_did() {
    let cluster = Cluster::start().await;
    cluster.source("orders").await;
    login_roles(&cluster).await;
    let args = [
        "-d",
        "orders",
        "--writer",
        APP,
        "--reader",
        PROJECTION,
        "--replicator",
        SHIPPER,
        "--format",
        "json",
    ];
    let before = access_snapshot(&cluster, "orders").await;
    let mut dry: Vec<&str> = args.to_vec();
    dry.push("--dry-run");
    let planned = json(grant(&cluster, &dry).assert_code(0));
    assert_eq!(planned["action"], "planned");
    assert_eq!(
        access_snapshot(&cluster, "orders").await,
        before,
        "a dry run changed something"
    );

    let first = json(grant(&cluster, &args).assert_code(0));
    assert_eq!(first["action"], "granted");
    assert_eq!(first["statements"], planned["statements"]);
    let after = access_snapshot(&cluster, "orders").await;
    assert_ne!(after, before);

    let second = json(grant(&cluster, &args).assert_code(0));
    assert_eq!(second["action"], "unchanged");
    assert_eq!(second["statements"], serde_json::json!([]));
    assert_eq!(access_snapshot(&cluster, "orders").await, after);
    let members: Vec<Value> = second["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["members"].clone())
        .collect();
    assert_eq!(
        members,
        [
            serde_json::json!([APP]),
            serde_json::json!([PROJECTION]),
            serde_json::json!([SHIPPER])
        ]
    );
    run(cluster.tool().args(["status", "-d", "orders"])).assert_code(0);
}

#[tokio::test]
async fn taking_a_role_out_of_the_writers_takes_its_rights_away() {
    let cluster = Cluster::start().await;
    cluster.source("orders").await;
    login_roles(&cluster).await;
    grant(&cluster, &["-d", "orders", "--writer", APP]).assert_code(0);
    let writer = connect(&cluster, APP, APP_PASSWORD, "orders")
        .await
        .unwrap();
    assert_eq!(insert(&writer, &values(&["{}"])).await.unwrap(), 1);

    grant(&cluster, &["-d", "orders", "--remove", APP]).assert_code(0);
    // Privileges are checked per statement: the open session loses them at once.
    let error = insert(&writer, &values(&["{}"])).await.unwrap_err();
    assert_eq!(sqlstate(&error), "42501");
    let again = connect(&cluster, APP, APP_PASSWORD, "orders").await;
    assert_eq!(
        again.map(|_| ()).map_err(|e| sqlstate(&e)),
        Err("42501".to_string())
    );
}

#[tokio::test]
async fn status_names_a_privilege_granted_by_hand_as_drift_once_the_store_opted_in() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("orders").await;
    login_roles(&cluster).await;
    let status = || {
        run(cluster
            .tool()
            .args(["status", "-d", "orders", "--format", "json"]))
    };

    // Before opting in: reported with a hint, not drift.
    owner
        .batch_execute(&format!("GRANT UPDATE ON events TO {PROJECTION}"))
        .await
        .unwrap();
    let untouched = json(status().assert_code(0));
    assert_eq!(untouched["grants"]["managed"], false);
    let findings = untouched["grants"]["findings"].to_string();
    assert!(
        findings.contains(&format!("role \\\"{PROJECTION}\\\" holds UPDATE on events")),
        "{findings}"
    );
    assert!(
        findings.contains("PUBLIC (every role) holds CONNECT, TEMPORARY"),
        "{findings}"
    );
    owner
        .batch_execute(&format!("REVOKE UPDATE ON events FROM {PROJECTION}"))
        .await
        .unwrap();

    grant(
        &cluster,
        &["-d", "orders", "--writer", APP, "--reader", PROJECTION],
    )
    .assert_code(0);
    let opted_in = json(status().assert_code(0));
    assert_eq!(opted_in["grants"]["managed"], true);
    assert_eq!(opted_in["grants"]["findings"], serde_json::json!([]));

    // (statement, what status names, whether grant puts it right: PUBLIC's and the groups'
    // privileges it does; other roles' are the operator's to revoke).
    let hand_grants = [
        (
            format!("GRANT UPDATE ON events TO {PROJECTION}"),
            format!("role \"{PROJECTION}\" holds UPDATE on events"),
            false,
        ),
        (
            format!("GRANT TRUNCATE ON id TO {SHIPPER}"),
            format!("role \"{SHIPPER}\" holds TRUNCATE on id"),
            false,
        ),
        (
            format!("GRANT UPDATE (event) ON events TO {SHIPPER}"),
            format!("role \"{SHIPPER}\" holds UPDATE (event) on events"),
            false,
        ),
        (
            format!("GRANT DELETE ON slate_roles TO {SHIPPER}"),
            format!("role \"{SHIPPER}\" holds DELETE on slate_roles"),
            false,
        ),
        (
            "GRANT REFERENCES ON events TO orders_replicator".into(),
            "the replicator role \"orders_replicator\" holds REFERENCES on events".into(),
            true,
        ),
        (
            "GRANT INSERT ON events TO PUBLIC".into(),
            "PUBLIC (every role) holds INSERT on events".into(),
            true,
        ),
        (
            "GRANT REFERENCES ON events TO orders_reader".into(),
            "the reader role \"orders_reader\" holds REFERENCES on events".into(),
            true,
        ),
        (
            "GRANT SELECT ON events TO orders_writer".into(),
            "the writer role \"orders_writer\" holds SELECT on events".into(),
            true,
        ),
        (
            format!("GRANT SELECT ON events TO {APP}"),
            format!("role \"{APP}\", a writer, holds SELECT on events"),
            false,
        ),
        (
            "GRANT EXECUTE ON FUNCTION restore_events(text, text, text, text, integer) TO PUBLIC"
                .into(),
            "PUBLIC (every role) may execute restore_events".into(),
            true,
        ),
        (
            "GRANT EXECUTE ON FUNCTION dblink_connect(text) TO PUBLIC".into(),
            "dblink_connect(text)".into(),
            true,
        ),
        (
            "GRANT CONNECT ON DATABASE orders TO PUBLIC".into(),
            "PUBLIC (every role) holds CONNECT on database \"orders\"".into(),
            true,
        ),
    ];
    for (statement, named, grant_fixes) in &hand_grants {
        owner.batch_execute(statement).await.unwrap();
        let outcome = status();
        outcome.assert_code(11);
        let report = json(&outcome);
        assert_eq!(report["verdict"], "drift", "{statement}");
        assert_eq!(report["layout_verdict"], "up-to-date", "{statement}");
        let findings: Vec<String> = report["grants"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        assert!(
            findings.iter().any(|f| f.contains(named.as_str())),
            "{statement}: {findings:?}"
        );
        assert!(
            outcome.error_lines()[0].contains(named.as_str()),
            "{:?}",
            outcome.error_lines()
        );
        if *grant_fixes {
            grant(&cluster, &["-d", "orders"]).assert_code(0);
        } else {
            let revoke = statement
                .replacen("GRANT", "REVOKE", 1)
                .replace(" TO ", " FROM ");
            owner.batch_execute(&revoke).await.unwrap();
        }
        status().assert_code(0);
    }
    // A V10-style writer (INSERT on events) put into the writers loses its table rights.
    owner
        .batch_execute(&format!(
            "GRANT INSERT ON events TO {SHIPPER}; GRANT UPDATE ON id TO {SHIPPER}"
        ))
        .await
        .unwrap();
    status().assert_code(11);
    let moved = json(
        grant(
            &cluster,
            &["-d", "orders", "--writer", SHIPPER, "--format", "json"],
        )
        .assert_code(0),
    );
    let statements = moved["statements"].to_string();
    assert!(
        statements.contains(&format!(
            "REVOKE INSERT ON TABLE public.events FROM \\\"{SHIPPER}\\\""
        )),
        "{statements}"
    );
    status().assert_code(0);
}

#[tokio::test]
async fn a_failing_statement_rolls_the_whole_run_back() {
    let cluster = Cluster::start().await;
    cluster.source("orders").await;
    login_roles(&cluster).await;
    // The writer group exists and is a member of app: granting it to app is circular, so the
    // run's membership statement fails after the roles and grants before it.
    cluster
        .superuser_client("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE orders_writer NOLOGIN; GRANT {APP} TO orders_writer"
        ))
        .await
        .unwrap();
    let before = access_snapshot(&cluster, "orders").await;
    let outcome = grant(
        &cluster,
        &["-d", "orders", "--writer", APP, "--reader", PROJECTION],
    );
    assert_ne!(outcome.code(), 0);
    assert!(
        outcome.error_lines()[0].contains("nothing was changed"),
        "{:?}",
        outcome.error_lines()
    );
    assert_eq!(access_snapshot(&cluster, "orders").await, before);
}

#[tokio::test]
async fn grant_waits_for_the_stores_lock_and_gives_up_changing_nothing() {
    let cluster = Cluster::start().await;
    let holder = cluster.source("orders").await;
    login_roles(&cluster).await;
    holder
        .batch_execute("SELECT pg_advisory_lock(334462, hashtext('migrate'))")
        .await
        .unwrap();
    let before = access_snapshot(&cluster, "orders").await;
    let outcome = run(cluster.tool().args([
        "grant",
        "-d",
        "orders",
        "--writer",
        APP,
        "--lock-timeout",
        "1",
    ]));
    outcome.assert_code(7);
    assert_eq!(access_snapshot(&cluster, "orders").await, before);
}

/// SIGTERM and SIGKILL after every statement ran, before the commit: nothing stays.
#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_run_stopped_before_its_commit_leaves_nothing_and_the_next_run_succeeds() {
    let cluster = Cluster::start().await;
    cluster.source("orders").await;
    login_roles(&cluster).await;
    let before = access_snapshot(&cluster, "orders").await;
    for signal in ["TERM", "KILL"] {
        let running = spawn(
            cluster
                .tool()
                .args([
                    "grant", "-d", "orders", "--writer", APP, "--reader", PROJECTION,
                ])
                .env("INIT_SLATE_DB_TEST_PAUSE", "granting"),
        );
        running.wait_for("paused at granting");
        running.signal(signal);
        let outcome = running.finish(Duration::from_secs(60));
        if signal == "TERM" {
            outcome.assert_code(130);
        }
        cluster.wait_until_idle("orders").await;
        assert_eq!(
            access_snapshot(&cluster, "orders").await,
            before,
            "{signal}"
        );
    }
    grant(
        &cluster,
        &["-d", "orders", "--writer", APP, "--reader", PROJECTION],
    )
    .assert_code(0);
    run(cluster.tool().args(["status", "-d", "orders"])).assert_code(0);
}

#[tokio::test]
async fn bad_roles_are_refused_with_one_line_and_nothing_is_changed() {
    let cluster = Cluster::start().await;
    cluster.source("orders").await;
    run(cluster
        .tool()
        .args(["-n", "orders_copy", "-t", "destination"]))
    .assert_code(0);
    login_roles(&cluster).await;
    let before = access_snapshot(&cluster, "orders").await;
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["-d", "orders", "--writer", "ghost"],
            26,
            "role \"ghost\" does not exist",
        ),
        (
            &["-d", "orders", "--writer", crate::support::SUPERUSER],
            26,
            "owns the store",
        ),
        (&["-d", "orders", "--reader", "PUBLIC"], 2, "reserved"),
        (
            &["-d", "orders", "--reader-role", "orders_writer"],
            2,
            "a name of its own",
        ),
        (&["-d", "orders", "--writer-role", APP], 26, "can log in"),
        (
            &["-d", "orders", "--writer", APP, "--remove", APP],
            2,
            "both put into a role and removed",
        ),
        (&["-d", "orders", "--replication"], 2, "--replication"),
        (&["-d", "orders_copy", "--writer", APP], 2, "readers only"),
    ];
    for (args, code, says) in cases {
        let outcome = grant(&cluster, args);
        outcome.assert_code(code);
        let lines = outcome.error_lines();
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(lines[0].contains(says), "{args:?}: {lines:?}");
    }
    assert_eq!(access_snapshot(&cluster, "orders").await, before);
    // A replica has readers.
    grant(&cluster, &["-d", "orders_copy", "--reader", PROJECTION]).assert_code(0);
    let reader = connect(&cluster, PROJECTION, PROJECTION_PASSWORD, "orders_copy")
        .await
        .unwrap();
    reader
        .batch_execute("SELECT count(*) FROM events")
        .await
        .unwrap();
    run(cluster.tool().args(["status", "-d", "orders_copy"])).assert_code(0);
}

/// A managed server's admin: CREATEDB and CREATEROLE, no superuser. The store is handed to it
/// as a managed service's provisioning would leave it.
#[tokio::test]
async fn a_createrole_non_superuser_runs_grant_and_is_told_what_it_lacks() {
    let cluster = Cluster::start().await;
    let owner = cluster.source("orders").await;
    login_roles(&cluster).await;
    let admin = cluster.superuser_client("postgres").await;
    let version = cluster.server_version().await;
    admin
        .batch_execute(
            "CREATE ROLE ops LOGIN CREATEDB CREATEROLE PASSWORD 'ops-pw';
             ALTER DATABASE orders OWNER TO ops;
             CREATE ROLE orders_replicator NOLOGIN;",
        )
        .await
        .unwrap();
    owner
        .batch_execute(
            "ALTER TABLE events OWNER TO ops; ALTER TABLE id OWNER TO ops;
             ALTER TABLE slate_roles OWNER TO ops; ALTER TABLE refinery_schema_history OWNER TO ops;
             DO $$ DECLARE f regprocedure; BEGIN
               FOR f IN SELECT oid FROM pg_proc WHERE pronamespace = 'public'::regnamespace
                          AND proname IN ('insert_events', 'append_events', 'restore_events', 'filter_sql_command', 'notify_event_insert')
               LOOP EXECUTE format('ALTER FUNCTION %s OWNER TO ops', f); END LOOP;
             END $$;",
        )
        .await
        .unwrap();
    let as_ops = |args: &[&str]| {
        run(cluster
            .tool_as("ops", Some("ops-pw"))
            .arg("grant")
            .args(args))
    };

    // A group created by someone else: from 16 ops holds no ADMIN OPTION on it.
    let outcome = as_ops(&["-d", "orders", "--writer", APP, "--replicator", SHIPPER]);
    if version >= 160000 {
        outcome.assert_code(5);
        assert!(
            outcome.error_lines()[0].contains("ADMIN OPTION"),
            "{:?}",
            outcome.error_lines()
        );
        // What the message advises: ADMIN without the group's rights.
        admin
            .batch_execute(
                "GRANT orders_replicator TO ops WITH ADMIN OPTION, INHERIT FALSE, SET FALSE",
            )
            .await
            .unwrap();
        as_ops(&["-d", "orders", "--writer", APP, "--replicator", SHIPPER]).assert_code(0);
    } else {
        outcome.assert_code(0);
    }
    let writer = connect(&cluster, APP, APP_PASSWORD, "orders")
        .await
        .unwrap();
    assert_eq!(insert(&writer, &values(&["{}"])).await.unwrap(), 1);

    // REPLICATION takes more than CREATEROLE, and the message says what.
    let outcome = as_ops(&["-d", "orders", "--replicator", SHIPPER, "--replication"]);
    outcome.assert_code(5);
    let line = &outcome.error_lines()[0];
    assert!(
        line.contains("REPLICATION") && line.contains("superuser"),
        "{line}"
    );
    run(cluster
        .tool_as("ops", Some("ops-pw"))
        .args(["status", "-d", "orders"]))
    .assert_code(0);

    // A superuser takes out a member ops put in (from 16, ops's grant is revoked by name). On
    // 13 and 14 it also takes PUBLIC's CREATE in schema public, and ops, the store's owner,
    // keeps creating there (its next migration must).
    grant(&cluster, &["-d", "orders", "--remove", SHIPPER]).assert_code(0);
    let report = json(&run(cluster
        .tool()
        .args(["status", "-d", "orders", "--format", "json"])));
    let members = report["grants"]["roles"].to_string();
    assert!(!members.contains(SHIPPER), "{members}");
    assert!(members.contains(APP), "{members}");
    let ops = cluster.client_as("ops", "ops-pw", "orders").await;
    ops.batch_execute("CREATE TABLE public.probe (x int); DROP TABLE public.probe")
        .await
        .unwrap();
    assert_eq!(
        refused(&writer, "CREATE TABLE public.probe (x int)").await,
        "42501"
    );
}
