//! Every JSON document the tool prints: its shape (each field's path and type) pinned by a
//! snapshot, and the field tables in docs/ checked against that shape, as the README's exit-code
//! table is checked against the code.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::{run, Cluster, SUPERUSER, SUPERUSER_PASSWORD};

/// Objects whose keys are data, not fields: their keys are not listed.
const MAPS: &[&str] = &["plan.parameters"];

/// Adds the paths and types of `value` under `path` to `shape`.
fn walk(value: &Value, path: &str, shape: &mut BTreeMap<String, BTreeSet<&'static str>>) {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    // An array's elements are described by their fields (`plan.migrations[].version`), and
    // an array of plain values by the array itself.
    if !path.is_empty() && !path.ends_with("[]") {
        shape.entry(path.to_string()).or_default().insert(kind);
    }
    match value {
        Value::Object(fields) if !MAPS.contains(&path) => {
            for (key, field) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(field, &child, shape);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), shape);
            }
        }
        _ => {}
    }
}

/// The shape of several instances of one document, merged.
fn shape(documents: &[Value]) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut shape = BTreeMap::new();
    for document in documents {
        walk(document, "", &mut shape);
    }
    shape
}

fn shape_text(shape: &BTreeMap<String, BTreeSet<&'static str>>) -> String {
    shape
        .iter()
        .map(|(path, kinds)| {
            format!(
                "{path}: {}",
                kinds.iter().copied().collect::<Vec<_>>().join(" | ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fields the docs list under `#### JSON fields: <name>`, from every file in docs/.
fn documented_fields(name: &str) -> BTreeSet<String> {
    let heading = format!("#### JSON fields: {name}");
    let mut fields = BTreeSet::new();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for entry in std::fs::read_dir(&docs).expect("docs/ exists") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        let Some(start) = text.lines().position(|l| l.trim() == heading) else {
            continue;
        };
        for line in text.lines().skip(start + 1) {
            let line = line.trim();
            if line.starts_with('#') {
                break;
            }
            let Some(cell) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
                continue;
            };
            let cell = cell.trim();
            if let Some(field) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
                fields.insert(field.to_string());
            }
        }
    }
    fields
}

/// Snapshots the shape, and checks it against the docs' table: every field of the documents is
/// documented, and every documented field occurs.
fn check(name: &str, documents: &[Value]) {
    let shape = shape(documents);
    insta::assert_snapshot!(format!("json_{name}"), shape_text(&shape));
    let documented = documented_fields(name);
    assert!(
        !documented.is_empty(),
        "docs/ has no \"#### JSON fields: {name}\" table"
    );
    let printed: BTreeSet<String> = shape.keys().cloned().collect();
    let undocumented: Vec<_> = printed.difference(&documented).collect();
    let absent: Vec<_> = documented.difference(&printed).collect();
    assert!(
        undocumented.is_empty() && absent.is_empty(),
        "{name}: fields printed but not in docs/: {undocumented:?}; documented but never printed: {absent:?}"
    );
}

fn json(command: &mut std::process::Command, code: i32) -> Value {
    let outcome = run(command.args(["--format", "json"]));
    outcome.assert_code(code);
    serde_json::from_str(&outcome.stdout()).unwrap_or_else(|e| panic!("{e}: {}", outcome.stdout()))
}

#[tokio::test]
async fn every_json_document_has_the_documented_shape() {
    let cluster = Cluster::start_logical().await;
    let tool = || cluster.tool();

    let create = [
        json(tool().args(["-n", "made", "-t", "source"]), 0),
        json(
            tool().args(["-n", "planned", "-t", "source", "--dry-run"]),
            0,
        ),
    ];
    check("create", &create);
    let grant = [
        json(
            tool().args(["grant", "-d", "made", "--reader", "plain", "--dry-run"]),
            0,
        ),
        json(tool().args(["grant", "-d", "made", "--reader", "plain"]), 0),
    ];
    check("grant", &grant);

    // A backup with events, and a leftover build, so that the optional parts are printed.
    run(tool().args(["-n", "backup", "-t", "destination"])).assert_code(0);
    let backup = cluster.superuser_client("backup").await;
    backup
        .batch_execute(
            "INSERT INTO events (id, ts, event)
             SELECT g, '2026-01-01'::timestamptz + g * interval '1 second', '{\"n\": 1}'
               FROM generate_series(1, 20) g",
        )
        .await
        .unwrap();
    cluster
        .superuser_client("postgres")
        .await
        .batch_execute(&format!(
            "CREATE DATABASE {}",
            init_slate_db::store::staging::temp_name("left_behind")
        ))
        .await
        .unwrap();
    // A destination following the source, so that status shows both sides of replication.
    let replicate = [
        json(
            tool().args([
                "replicate",
                "-d",
                "made",
                "--replica-database",
                "follower",
                "--dry-run",
            ]),
            0,
        ),
        json(
            tool().args(["replicate", "-d", "made", "--replica-database", "follower"]),
            0,
        ),
    ];
    check("replicate", &replicate);
    // Once the subscription has connected and heard from the source, every field is set.
    let settled = |database: &str, pointer: &str| {
        for _ in 0..100 {
            let doc = json(tool().args(["status", "-d", database]), 0);
            if doc.pointer(pointer).is_some_and(|v| !v.is_null()) {
                return doc;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("status of {database} never set {pointer}");
    };
    let status = [
        settled("made", "/replication/source/slots/0/follower"),
        json(tool().args(["status", "-d", "backup"]), 0),
        settled(
            "follower",
            "/replication/subscriptions/0/seconds_since_source",
        ),
    ];
    check("status", &status);
    json(
        tool().args([
            "replicate",
            "-d",
            "made",
            "--replica-database",
            "follower",
            "--stop",
        ]),
        0,
    );

    // A store an older release left: its plan, then its migration.
    let older = init_slate_db::store::layout::Layout::Source;
    drop(cluster.database_at("older", older, 8).await);
    let lifecycle = [
        json(tool().args(["migrate", "-d", "made"]), 0),
        json(tool().args(["migrate", "-d", "older", "--dry-run"]), 0),
        json(tool().args(["migrate", "-d", "older"]), 0),
    ];
    check("lifecycle", &lifecycle);

    let restore = |name: &str, extra: &[&str]| {
        let mut command = tool();
        command
            .args(["restore", "-n", name, "--from-host", "127.0.0.1"])
            .args(["--from-port", &cluster.port.to_string()])
            .args(["--from-database", "backup", "--from-user", SUPERUSER])
            .args(extra)
            .env("INIT_SLATE_DB_FROM_PASSWORD", SUPERUSER_PASSWORD);
        json(&mut command, 0)
    };
    let restored = [
        restore("restored", &[]),
        restore("restore_planned", &["--dry-run"]),
    ];
    check("restore", &restored);

    // Identical, then with a row changed, one missing and one extra in the copy.
    let verify = |code| {
        json(
            tool().args(["verify", "-d", "restored", "--replica-database", "backup"]),
            code,
        )
    };
    let identical = verify(0);
    backup
        .batch_execute(
            "UPDATE events SET event = '{\"n\": 2}' WHERE id = 7;
             DELETE FROM events WHERE id = 3;
             INSERT INTO events VALUES (21, now(), '{}')",
        )
        .await
        .unwrap();
    // The other way round: the reference lacks a row the copy has.
    let reversed = json(
        tool().args(["verify", "-d", "backup", "--replica-database", "restored"]),
        19,
    );
    check("verify", &[identical, verify(19), reversed]);

    check("list", &[json(tool().arg("list"), 0)]);
}
