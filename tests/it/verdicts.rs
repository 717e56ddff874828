//! Verdicts that cannot be fooled: every change to how a store behaves is drift, named; the
//! verdict does not depend on the session's search_path; a run changing the store makes status
//! wait or say who is busy; a role without the privileges status needs is told which.

use std::time::Duration;

use serde_json::Value;

use crate::support::{run, spawn, Cluster, PLAIN, PLAIN_PASSWORD};

fn status_json(cluster: &Cluster, database: &str, extra: &[&str]) -> (i32, Value, String) {
    let outcome = run(cluster
        .tool()
        .args(["status", "-d", database, "--format", "json"])
        .args(extra));
    let doc = serde_json::from_str(&outcome.stdout()).unwrap_or(Value::Null);
    (outcome.code(), doc, outcome.stderr())
}

/// The objects whose state is not ok or extra: `state kind name`.
fn drifted(doc: &Value) -> Vec<String> {
    doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["state"] != "ok" && o["state"] != "extra")
        .map(|o| {
            format!(
                "{} {} {}",
                o["state"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn every_change_to_how_the_store_behaves_is_drift_naming_the_object() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "pristine", "-t", "source"])).assert_code(0);
    let admin = cluster.superuser_client("postgres").await;
    let cases: &[(&str, &str, &str)] = &[
        ("ALTER TABLE events DISABLE TRIGGER check_sql_command", "changed trigger events.check_sql_command", "[DISABLED]"),
        ("ALTER TABLE events DISABLE TRIGGER notify_insert", "changed trigger events.notify_insert", "[DISABLED]"),
        ("ALTER TABLE events ENABLE ALWAYS TRIGGER notify_insert", "changed trigger events.notify_insert", "[ENABLED ALWAYS]"),
        ("ALTER TABLE events SET UNLOGGED", "changed table events", "UNLOGGED"),
        ("CREATE RULE swallow AS ON INSERT TO events DO INSTEAD NOTHING", "unexpected rule events.swallow", "DO INSTEAD NOTHING"),
        ("ALTER FUNCTION insert_events(text) SECURITY DEFINER", "changed function insert_events(text)", "SECURITY DEFINER"),
        ("ALTER FUNCTION insert_events(text) SET search_path = evil, public", "changed function insert_events(text)", "SET search_path=evil, public"),
        ("ALTER FUNCTION insert_events(text) STABLE STRICT", "changed function insert_events(text)", "STABLE STRICT"),
        ("ALTER TABLE events ENABLE ROW LEVEL SECURITY", "changed table events", "ROW LEVEL SECURITY"),
        ("CREATE POLICY only_some ON events USING (id < 10)", "unexpected policy events.only_some", "USING ((id < 10))"),
        ("ALTER TABLE events ADD CONSTRAINT small CHECK (id < 1000)", "unexpected constraint events.small", "CHECK ((id < 1000))"),
        ("ALTER TABLE events ALTER ts SET DEFAULT now()", "changed table events", "DEFAULT now()"),
        ("CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; CREATE TRIGGER extra BEFORE INSERT ON id FOR EACH ROW EXECUTE FUNCTION noop()", "unexpected trigger id.extra", "BEFORE INSERT ON public.id"),
    ];
    for (index, (sql, expected, detail)) in cases.iter().enumerate() {
        let database = format!("tampered_{index}");
        admin
            .batch_execute(&format!("CREATE DATABASE {database} TEMPLATE pristine"))
            .await
            .unwrap();
        cluster
            .superuser_client(&database)
            .await
            .batch_execute(sql)
            .await
            .unwrap();
        let (code, doc, stderr) = status_json(&cluster, &database, &[]);
        assert_eq!(code, 11, "{sql}: {stderr}");
        assert_eq!(doc["verdict"], "drift", "{sql}");
        let found = drifted(&doc);
        assert!(found.contains(&expected.to_string()), "{sql}: {found:?}");
        let text = serde_json::to_string(&doc["objects"]).unwrap();
        assert!(text.contains(detail), "{sql}: {detail:?} not in {text}");
    }
}

#[tokio::test]
async fn owners_and_grants_are_reported_not_drift() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "granted", "-t", "source"])).assert_code(0);
    cluster
        .superuser_client("granted")
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON events TO {PLAIN}; ALTER TABLE id OWNER TO {PLAIN}"
        ))
        .await
        .unwrap();
    let (code, doc, stderr) = status_json(&cluster, "granted", &[]);
    assert_eq!(code, 0, "{stderr}");
    let access = doc["access"].as_array().unwrap();
    let id = access.iter().find(|a| a["name"] == "id").unwrap();
    assert_eq!(id["owner"], PLAIN);
    let events = access.iter().find(|a| a["name"] == "events").unwrap();
    assert!(
        events["privileges"]
            .as_str()
            .unwrap()
            .contains(&format!("{PLAIN}=r/")),
        "{events}"
    );
}

#[tokio::test]
async fn the_verdict_and_the_names_do_not_depend_on_the_search_path() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "pathless", "-t", "source"])).assert_code(0);
    let (code, reference, stderr) = status_json(&cluster, "pathless", &[]);
    assert_eq!(code, 0, "{stderr}");
    let admin = cluster.superuser_client("postgres").await;
    for (setting, shadow) in [
        ("'\"$user\"'", false),
        ("shadow, public", true),
        ("shadow", true),
    ] {
        admin
            .batch_execute(&format!(
                "ALTER DATABASE pathless SET search_path = {setting}"
            ))
            .await
            .unwrap();
        if shadow {
            // A same-named table in another schema, first on the path.
            cluster
                .superuser_client("pathless")
                .await
                .batch_execute("CREATE SCHEMA IF NOT EXISTS shadow; CREATE TABLE IF NOT EXISTS shadow.events (x int); CREATE TABLE IF NOT EXISTS shadow.id (x int)")
                .await
                .unwrap();
        }
        let (code, doc, stderr) = status_json(&cluster, "pathless", &[]);
        assert_eq!(code, 0, "search_path = {setting}: {stderr}");
        assert_eq!(
            doc["objects"], reference["objects"],
            "search_path = {setting}"
        );
    }
}

#[tokio::test]
async fn status_waits_for_a_run_changing_the_store_or_names_it() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "busy_store", "-t", "source"])).assert_code(0);
    // A migrate-like holder of the store's lock: an --into-existing restore's or migrate's.
    let holder = cluster.superuser_client("busy_store").await;
    holder
        .batch_execute("SELECT pg_advisory_lock(334462, hashtext('migrate'))")
        .await
        .unwrap();
    let (code, _, stderr) = status_json(&cluster, "busy_store", &["--lock-timeout", "1"]);
    assert_eq!(code, 7, "{stderr}");
    assert!(
        stderr.contains("another run holds the lock \"migrate\": pid"),
        "{stderr}"
    );
    // With time to wait, it gives its verdict once the run is over.
    let waiting =
        spawn(
            cluster
                .tool()
                .args(["status", "-d", "busy_store", "--lock-timeout", "30"]),
        );
    waiting.wait_for("waiting for another run to release the lock");
    holder
        .batch_execute("SELECT pg_advisory_unlock(334462, hashtext('migrate'))")
        .await
        .unwrap();
    waiting.finish(Duration::from_secs(30)).assert_code(0);
}

#[tokio::test]
async fn a_role_that_may_not_read_the_tables_is_told_which_privilege_status_needs() {
    let cluster = Cluster::start().await;
    run(cluster.tool().args(["-n", "guarded", "-t", "source"])).assert_code(0);
    let as_plain = |cluster: &Cluster| {
        run(cluster
            .tool_as(PLAIN, Some(PLAIN_PASSWORD))
            .args(["status", "-d", "guarded"]))
    };
    let refused = as_plain(&cluster);
    refused.assert_code(5);
    let errors = refused.error_lines();
    assert_eq!(errors.len(), 1, "{}", refused.stderr());
    assert!(
        errors[0].contains("SELECT on refinery_schema_history, events and id"),
        "{errors:?}"
    );
    cluster
        .superuser_client("guarded")
        .await
        .batch_execute(&format!(
            "GRANT SELECT ON refinery_schema_history, events, id TO {PLAIN}"
        ))
        .await
        .unwrap();
    as_plain(&cluster).assert_code(0);
}
