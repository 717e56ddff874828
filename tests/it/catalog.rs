//! The catalog snapshots in migrations/catalog/ are what the migrations really create: for each
//! layout and version, apply the migrations up to that version to a scratch database and compare.
//! After adding a migration, write its snapshot with the separate, ignored test
//! `cargo test --test it -- --ignored bless_catalog_snapshots`.

use std::path::Path;

use crate::support::Cluster;
use init_slate_db::store::catalog;
use init_slate_db::store::layout::Layout;

/// What the migrations really create, per layout and version.
async fn actual_catalogs(cluster: &Cluster) -> Vec<(Layout, i32, Vec<catalog::CatalogObject>)> {
    let mut catalogs = Vec::new();
    for layout in Layout::ALL {
        for version in 1..=layout.latest_version() {
            let database = format!("snap_{layout}_{version}");
            let client = cluster.database_at(&database, layout, version).await;
            catalogs.push((layout, version, catalog::read(&client).await.unwrap()));
        }
    }
    catalogs
}

#[tokio::test]
async fn catalog_snapshots_match_what_the_migrations_create() {
    let cluster = Cluster::start().await;
    let stale: Vec<String> = actual_catalogs(&cluster)
        .await
        .into_iter()
        .filter(|(layout, version, actual)| &catalog::expected(*layout, *version) != actual)
        .map(|(layout, version, _)| format!("migrations/catalog/{layout}/V{version}.json"))
        .collect();
    assert!(
        stale.is_empty(),
        "catalog snapshots differ from what the migrations create: {stale:?}; a landed snapshot must not change (it describes landed migrations); for a new migration run cargo test --test it -- --ignored bless_catalog_snapshots"
    );
}

/// Writes the snapshots (run by hand after adding a migration, never in CI).
#[tokio::test]
#[ignore = "writes migrations/catalog/: run by hand after adding a migration"]
async fn bless_catalog_snapshots() {
    let cluster = Cluster::start().await;
    for (layout, version, actual) in actual_catalogs(&cluster).await {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("migrations/catalog/{layout}/V{version}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
    }
}

#[test]
fn each_version_changes_exactly_the_objects_its_migration_names() {
    // What each migration is meant to add (+), remove (-) or redefine (~): its row's `changes`.
    for layout in Layout::ALL {
        for (index, file) in layout.files().iter().enumerate() {
            let version = index as i32 + 1;
            let expected = file.changes;
            let before = catalog::expected(layout, version - 1);
            let after = catalog::expected(layout, version);
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
            assert_eq!(changes, expected, "{layout} V{version}");
        }
    }
    assert_eq!(
        catalog::expected(Layout::Source, 1),
        catalog::expected(Layout::Destination, 1)
    );
}
