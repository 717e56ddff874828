//! `verify` and `list`: a copy compared with its reference (identical, changed, swapped,
//! missing, extra, behind, millisecond timestamps, two servers), bad options, and the
//! inventory of a server's stores.

use serde_json::Value;

use crate::support::{run, Cluster, Outcome, PLAIN, PLAIN_PASSWORD, SUPERUSER, SUPERUSER_PASSWORD};

/// A destination store `name` holding ids 1..=n with microsecond timestamps.
async fn store_with(cluster: &Cluster, name: &str, n: i64) {
    run(cluster.tool().args(["-n", name, "-t", "destination"])).assert_code(0);
    cluster
        .superuser_client(name)
        .await
        .execute(
            "INSERT INTO events (id, ts, event)
             SELECT g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1.000123 second',
                    jsonb_build_object('entityName', 'Order', 'entityId', 'order-' || g)
               FROM generate_series(1, $1::bigint) g",
            &[&n],
        )
        .await
        .unwrap();
}

/// A copy of `from` on the same server, changed by `sql`.
async fn copy_of(cluster: &Cluster, from: &str, name: &str, sql: &str) {
    cluster
        .superuser_client("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {from}"))
        .await
        .unwrap();
    if !sql.is_empty() {
        cluster
            .superuser_client(name)
            .await
            .batch_execute(sql)
            .await
            .unwrap();
    }
}

fn verify(cluster: &Cluster, reference: &str, copy: &str, extra: &[&str]) -> (Outcome, Value) {
    let outcome = run(cluster
        .tool()
        .args([
            "verify",
            "-d",
            reference,
            "--replica-database",
            copy,
            "--format",
            "json",
        ])
        .args(extra));
    let doc = serde_json::from_str(&outcome.stdout()).unwrap_or(Value::Null);
    (outcome, doc)
}

#[tokio::test]
async fn identical_stores_pass_and_each_kind_of_difference_is_found_and_named() {
    let cluster = Cluster::start().await;
    store_with(&cluster, "reference", 25_000).await;
    copy_of(&cluster, "reference", "same", "").await;
    let (outcome, doc) = verify(&cluster, "reference", "same", &[]);
    outcome.assert_code(0);
    assert_eq!(doc["identical"], true);
    assert_eq!(doc["identical_up_to"], 25_000);
    assert_eq!(doc["rows_compared"], 25_000);
    assert_eq!(doc["format_version"], 1);

    let cases: &[(&str, &str, i64, &str)] = &[
        ("changed_event", "UPDATE events SET event = '{\"x\":1}' WHERE id = 12345", 12_344, "first_differences"),
        ("changed_ts", "UPDATE events SET ts = ts + interval '1 microsecond' WHERE id = 777", 776, "first_differences"),
        ("swapped", "UPDATE events e SET event = o.event FROM events o WHERE (e.id, o.id) IN ((100, 101), (101, 100))", 99, "first_differences"),
        ("missing_range", "DELETE FROM events WHERE id BETWEEN 5000 AND 5009", 4_999, "missing_in_copy"),
    ];
    for (name, sql, identical_up_to, field) in cases {
        copy_of(&cluster, "reference", name, sql).await;
        let (outcome, doc) = verify(&cluster, "reference", name, &[]);
        outcome.assert_code(19);
        assert_eq!(doc["identical"], false, "{name}");
        assert_eq!(doc["identical_up_to"], *identical_up_to, "{name}: {doc}");
        assert!(!doc[field].as_array().unwrap().is_empty(), "{name}: {doc}");
        assert_eq!(outcome.error_lines().len(), 1, "{}", outcome.stderr());
    }
    let (_, doc) = verify(&cluster, "reference", "changed_event", &[]);
    assert_eq!(doc["first_differences"][0]["id"], 12_345);
    assert_eq!(doc["first_differences"][0]["difference"], "event");
    let (_, doc) = verify(&cluster, "reference", "changed_ts", &[]);
    assert_eq!(doc["first_differences"][0]["difference"], "ts");
    let (_, doc) = verify(&cluster, "reference", "swapped", &[]);
    let ids: Vec<i64> = doc["first_differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![100, 101]);
    let (_, doc) = verify(&cluster, "reference", "missing_range", &[]);
    assert_eq!(doc["missing_in_copy"][0]["first"], 5_000);
    assert_eq!(doc["missing_in_copy"][0]["last"], 5_009);
    assert_eq!(doc["differing_rows"], 10);
}

#[tokio::test]
async fn extra_ids_on_either_side_are_differences() {
    let cluster = Cluster::start().await;
    store_with(&cluster, "reference", 3_000).await;
    // An id the reference lacks, inside the compared range...
    copy_of(
        &cluster,
        "reference",
        "ref_gap",
        "DELETE FROM events WHERE id = 20",
    )
    .await;
    let (outcome, doc) = verify(&cluster, "ref_gap", "reference", &[]);
    outcome.assert_code(19);
    assert_eq!(doc["missing_in_reference"][0]["first"], 20);
    // ...and ids beyond the reference's last: a copy cannot be ahead of its source.
    copy_of(
        &cluster,
        "reference",
        "ahead",
        "INSERT INTO events VALUES (3001, now(), '{}')",
    )
    .await;
    let (outcome, doc) = verify(&cluster, "reference", "ahead", &[]);
    outcome.assert_code(19);
    assert_eq!(doc["behind"], -1);
    assert!(
        outcome.error_lines()[0].contains("beyond the reference's last"),
        "{}",
        outcome.stderr()
    );
}

#[tokio::test]
async fn a_copy_behind_is_identical_so_far_unless_exact() {
    let cluster = Cluster::start().await;
    store_with(&cluster, "reference", 3_000).await;
    copy_of(
        &cluster,
        "reference",
        "behind",
        "DELETE FROM events WHERE id > 2000",
    )
    .await;
    let (outcome, doc) = verify(&cluster, "reference", "behind", &[]);
    outcome.assert_code(0);
    assert_eq!(doc["behind"], 1_000);
    assert_eq!(doc["compared_up_to"], 2_000);
    let (outcome, _) = verify(&cluster, "reference", "behind", &["--exact"]);
    outcome.assert_code(19);
    assert!(
        outcome.error_lines()[0].contains("1000 id(s) behind"),
        "{}",
        outcome.stderr()
    );
    // --up-to fixes the end: up to 1500 they are identical even with --exact.
    let (outcome, doc) = verify(&cluster, "reference", "behind", &["--up-to", "1500"]);
    outcome.assert_code(0);
    assert_eq!(doc["compared_up_to"], 1_500);
}

#[tokio::test]
async fn millisecond_timestamps_differ_exactly_and_match_at_ms_precision() {
    let cluster = Cluster::start().await;
    store_with(&cluster, "reference", 3_000).await;
    // What the elm-slate replicator writes: ts through a JavaScript Date.
    copy_of(
        &cluster,
        "reference",
        "by_replicator",
        "UPDATE events SET ts = date_trunc('milliseconds', ts)",
    )
    .await;
    let (outcome, doc) = verify(&cluster, "reference", "by_replicator", &[]);
    outcome.assert_code(19);
    assert_eq!(doc["first_differences"][0]["difference"], "ts");
    let (outcome, doc) = verify(
        &cluster,
        "reference",
        "by_replicator",
        &["--ts-precision", "ms"],
    );
    outcome.assert_code(0);
    assert_eq!(doc["ts_precision"], "ms");
}

#[tokio::test]
async fn a_copy_on_another_server_is_compared() {
    let reference = Cluster::start().await;
    let replica = Cluster::start().await;
    store_with(&reference, "reference", 12_000).await;
    store_with(&replica, "replica", 12_000).await;
    let outcome = run(reference
        .tool()
        .args(["verify", "-d", "reference", "--replica-database", "replica"])
        .args([
            "--replica-host",
            "127.0.0.1",
            "--replica-port",
            &replica.port.to_string(),
        ])
        .args(["--replica-user", SUPERUSER])
        .env("INIT_SLATE_DB_REPLICA_PASSWORD", SUPERUSER_PASSWORD));
    outcome.assert_code(0);
    assert!(
        outcome.stdout().contains("identical up to id 12000"),
        "{}",
        outcome.stdout()
    );
}

#[test]
fn bad_verify_options_are_one_line_each_with_exit_2() {
    for (args, expected) in [
        (
            &["verify", "-d", "a"][..],
            "--replica-database <NAME> is required",
        ),
        (
            &[
                "verify",
                "-d",
                "a",
                "--replica-database",
                "b",
                "--ts-precision",
                "ns",
            ][..],
            "--ts-precision \"ns\" is invalid",
        ),
        (
            &[
                "verify",
                "-d",
                "a",
                "--replica-database",
                "b",
                "--up-to",
                "0",
            ][..],
            "--up-to \"0\" is invalid",
        ),
        (
            &[
                "verify",
                "-d",
                "a",
                "--replica-database",
                "b",
                "--replica-port",
                "x",
            ][..],
            "--replica-port \"x\" is invalid",
        ),
    ] {
        let outcome = run(crate::support::tool().args(args));
        outcome.assert_code(2);
        let errors = outcome.error_lines();
        assert_eq!(errors.len(), 1, "{args:?}: {errors:?}");
        assert!(errors[0].contains(expected), "{args:?}: {errors:?}");
    }
}

#[tokio::test]
async fn list_shows_every_store_with_its_verdict_and_the_databases_it_may_not_enter() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "orders_source", "-t", "source"])).assert_code(0);
    store_with(&cluster, "orders_replica", 42).await;
    let admin = cluster.superuser_client("postgres").await;
    admin
        .batch_execute("CREATE DATABASE not_a_store")
        .await
        .unwrap();
    store_with(&cluster, "private_store", 1).await;
    admin
        .batch_execute("REVOKE CONNECT ON DATABASE private_store FROM PUBLIC")
        .await
        .unwrap();
    let list = |command: &mut std::process::Command| {
        let outcome = run(command.args(["list", "--format", "json"]));
        outcome.assert_code(0);
        let doc: Value = serde_json::from_str(&outcome.stdout()).unwrap();
        doc
    };
    // A role that may not connect to one database sees it listed as such.
    let as_plain = list(&mut cluster.tool_as(PLAIN, Some(PLAIN_PASSWORD)));
    let private = as_plain["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["database"] == "private_store")
        .cloned()
        .expect("listed as inaccessible");
    assert!(
        private["note"].as_str().unwrap().starts_with("no access"),
        "{private}"
    );
    let doc = list(&mut cluster.tool());
    let stores = doc["stores"].as_array().unwrap();
    let entry = |name: &str| stores.iter().find(|s| s["database"] == name).cloned();
    let source = entry("orders_source").expect("the source is listed");
    assert_eq!(source["layout"], "source");
    assert_eq!(source["verdict"], "up-to-date");
    assert_eq!(source["events"], 0);
    let replica = entry("orders_replica").expect("the destination is listed");
    assert_eq!(replica["layout"], "destination");
    assert_eq!(replica["events"], 42);
    assert!(replica["size_bytes"].as_i64().unwrap() > 0);
    assert!(
        entry("not_a_store").is_none(),
        "not a slate store: not listed"
    );
    assert_eq!(entry("private_store").unwrap()["events"], 1);
    assert_eq!(doc["format_version"], 1);
}

#[tokio::test]
async fn a_copy_ahead_of_its_reference_differs_with_or_without_up_to() {
    let cluster = Cluster::start().await;
    store_with(&cluster, "reference", 100).await;
    copy_of(
        &cluster,
        "reference",
        "ahead",
        "INSERT INTO events VALUES (101, now(), '{}'), (102, now(), '{}')",
    )
    .await;
    for extra in [&[][..], &["--up-to", "100"][..], &["--up-to", "50"][..]] {
        let (outcome, doc) = verify(&cluster, "reference", "ahead", extra);
        outcome.assert_code(19);
        assert_eq!(doc["identical"], false, "{extra:?}");
        assert!(
            outcome
                .stderr()
                .contains("beyond the reference's last (102 > 100)"),
            "{extra:?}: {}",
            outcome.stderr()
        );
    }
}

#[tokio::test]
async fn the_same_events_give_the_same_digest_on_a_latin1_server() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "unicode", "-t", "destination"])).assert_code(0);
    // LATIN1 needs a C locale for the database; the layout goes in with --into-existing.
    cluster
        .superuser_client("postgres")
        .await
        .batch_execute(
            "CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'",
        )
        .await
        .unwrap();
    run(cluster
        .tool()
        .args(["-n", "latin", "-t", "destination", "--into-existing"]))
    .assert_code(0);
    let events = "INSERT INTO events VALUES
        (1, '2026-01-01 00:00:00.123456+00', '{\"name\": \"café\"}'),
        (2, '2026-01-01 00:00:01+00', '{\"text\": \"Äé ñ\", \"n\": 1}'),
        (3, '2026-01-01 00:00:02+00', '{\"ascii\": \"plain\"}')";
    for database in ["unicode", "latin"] {
        cluster
            .superuser_client(database)
            .await
            .batch_execute(events)
            .await
            .unwrap();
    }
    let (outcome, doc) = verify(&cluster, "unicode", "latin", &["--exact"]);
    outcome.assert_code(0);
    assert_eq!(doc["identical"], true, "{doc}");
    // restore shares the digest: a LATIN1 backup restores into a UTF8 source, verified.
    run(cluster
        .tool()
        .args(["restore", "-n", "from_latin", "--from-host", "127.0.0.1"])
        .args([
            "--from-port",
            &cluster.port.to_string(),
            "--from-database",
            "latin",
        ])
        .args(["--from-user", SUPERUSER])
        .env("INIT_SLATE_DB_FROM_PASSWORD", SUPERUSER_PASSWORD))
    .assert_code(0);
    let (outcome, _) = verify(&cluster, "from_latin", "unicode", &["--exact"]);
    outcome.assert_code(0);
    // And a real difference in a non-ASCII character is still found.
    cluster
        .superuser_client("latin")
        .await
        .batch_execute("UPDATE events SET event = '{\"name\": \"cafè\"}' WHERE id = 1")
        .await
        .unwrap();
    let (outcome, doc) = verify(&cluster, "unicode", "latin", &[]);
    outcome.assert_code(19);
    assert_eq!(doc["first_differences"][0]["id"], 1, "{doc}");
}

#[tokio::test]
async fn copies_with_nulls_or_other_column_types_are_verdicts_not_panics() {
    let cluster = Cluster::start().await;
    store_with(&cluster, "reference", 10).await;
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "null_event",
            "ALTER TABLE events ALTER event DROP NOT NULL; UPDATE events SET event = NULL WHERE id = 4",
            19,
            "differing row",
        ),
        (
            "null_ts",
            "ALTER TABLE events ALTER ts DROP NOT NULL; UPDATE events SET ts = NULL WHERE id = 5",
            19,
            "differing row",
        ),
        (
            "null_id",
            "ALTER TABLE events DROP CONSTRAINT events_pkey; ALTER TABLE events ALTER id DROP NOT NULL; INSERT INTO events VALUES (NULL, now(), '{}')",
            12,
            "have no id",
        ),
        (
            "integer_id",
            "ALTER TABLE events ALTER id TYPE integer",
            12,
            "id integer",
        ),
    ];
    for (name, sql, code, says) in cases {
        copy_of(&cluster, "reference", name, sql).await;
        for (reference, copy) in [("reference", *name), (*name, "reference")] {
            let (outcome, _) = verify(&cluster, reference, copy, &[]);
            outcome.assert_code(*code);
            assert!(
                outcome.stderr().contains(says) && !outcome.stderr().contains("panicked"),
                "{reference} vs {copy}: {}",
                outcome.stderr()
            );
        }
    }
}

#[tokio::test]
async fn application_tables_named_events_are_not_stores_and_never_make_list_fail() {
    let cluster = Cluster::start().await;
    let admin = cluster.superuser_client("postgres").await;
    for (database, sql) in [
        ("app_serial", "CREATE TABLE events (id serial PRIMARY KEY, name text); INSERT INTO events (name) VALUES ('signup')"),
        ("app_bigserial", "CREATE TABLE events (id bigserial PRIMARY KEY, name text, happened timestamptz)"),
    ] {
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        cluster
            .superuser_client(database)
            .await
            .batch_execute(sql)
            .await
            .unwrap();
        let outcome = run(cluster.tool().args(["status", "-d", database]));
        outcome.assert_code(12);
    }
    // A store whose events.id was altered to integer: drift, named.
    run(cluster.tool().args(["-n", "narrowed", "-t", "source"])).assert_code(0);
    cluster
        .superuser_client("narrowed")
        .await
        .batch_execute("ALTER TABLE events ALTER id TYPE integer")
        .await
        .unwrap();
    let outcome = run(cluster.tool().args(["status", "-d", "narrowed"]));
    outcome.assert_code(11);
    assert!(
        outcome.stdout().contains("id integer"),
        "{}",
        outcome.stdout()
    );

    let outcome = run(cluster.tool().args(["list", "--format", "json"]));
    outcome.assert_code(0);
    let doc: Value = serde_json::from_str(&outcome.stdout()).unwrap();
    let names: Vec<&str> = doc["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["database"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"app_serial") && !names.contains(&"app_bigserial"),
        "{names:?}"
    );
    let narrowed = doc["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["database"] == "narrowed")
        .expect("the narrowed store is listed");
    assert_eq!(narrowed["verdict"], "drift");
}
