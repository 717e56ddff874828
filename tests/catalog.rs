//! The catalog snapshots in migrations/catalog/ are what the migrations really create: for each
//! layout and version, apply the migrations up to that version to a scratch database and compare.
//! After adding a migration, write its snapshot with `INIT_SLATE_DB_BLESS=1 cargo test --test catalog`.

mod support;

use std::path::Path;

use init_slate_db::catalog;
use init_slate_db::layout::Layout;
use support::Cluster;

#[tokio::test]
async fn catalog_snapshots_match_what_the_migrations_create() {
    let cluster = Cluster::start().await;
    let bless = std::env::var_os("INIT_SLATE_DB_BLESS").is_some();
    let mut stale = Vec::new();
    for layout in Layout::ALL {
        for version in 1..=layout.latest_version() {
            let database = format!("snap_{layout}_{version}");
            let client = cluster.database_at(&database, layout, version).await;
            let actual = catalog::read(&client).await.unwrap();
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("migrations/catalog/{layout}/V{version}.json"));
            let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
            if bless {
                std::fs::write(&path, &text).unwrap();
            } else if catalog::expected(layout, version) != actual {
                stale.push(format!("{}", path.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "catalog snapshots differ from what the migrations create: {stale:?}; a landed snapshot must not change (it describes landed migrations); for a new migration run INIT_SLATE_DB_BLESS=1 cargo test --test catalog"
    );
}

#[tokio::test]
async fn each_source_version_changes_exactly_the_objects_its_migration_names() {
    // What each migration is meant to add (+), remove (-) or redefine (~), by kind and name.
    let intended: &[(i32, &[&str])] = &[
        (
            1,
            &[
                "+constraint events.events_pkey",
                "+index events_event_entityid",
                "+index events_event_entityname",
                "+index events_event_metadata_command",
                "+index events_event_operation",
                "+index events_event_propertyname",
                "+index events_pkey",
                "+index events_ts",
                "+table events",
            ],
        ),
        (
            2,
            &["+constraint id.id_pkey", "+index id_pkey", "+table id"],
        ),
        (3, &["+function insert_events(text)"]),
        (
            4,
            &[
                "+extension dblink",
                "+function restore_events(text,text,text,text)",
            ],
        ),
        (
            5,
            &[
                "+function filter_sql_command()",
                "+function notify_event_insert()",
                "+trigger events.check_sql_command",
                "+trigger events.notify_insert",
            ],
        ),
        (
            6,
            &[
                "+function restore_events(text,text,text,text,integer)",
                "-function restore_events(text,text,text,text)",
            ],
        ),
        (7, &["~function insert_events(text)"]),
        (
            8,
            &[
                "~function notify_event_insert()",
                "~trigger events.notify_insert",
            ],
        ),
    ];
    assert_eq!(
        intended.len() as i32,
        Layout::Source.latest_version(),
        "a new migration needs its line here"
    );
    for (version, expected) in intended {
        let before = catalog::expected(Layout::Source, version - 1);
        let after = catalog::expected(Layout::Source, *version);
        let (before, after) = (catalog::by_key(&before), catalog::by_key(&after));
        let mut changes = Vec::new();
        for (key, object) in &after {
            match before.get(key) {
                None => changes.push(format!("+{} {}", key.0, key.1)),
                Some(old) if old.definition != object.definition => {
                    changes.push(format!("~{} {}", key.0, key.1))
                }
                Some(_) => {}
            }
        }
        for key in before.keys().filter(|key| !after.contains_key(*key)) {
            changes.push(format!("-{} {}", key.0, key.1));
        }
        changes.sort();
        let mut expected: Vec<String> = expected.iter().map(|c| c.to_string()).collect();
        expected.sort();
        assert_eq!(changes, expected, "source V{version}");
    }
    assert_eq!(
        catalog::expected(Layout::Source, 1),
        catalog::expected(Layout::Destination, 1)
    );
}
