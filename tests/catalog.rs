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
async fn every_snapshot_adds_to_the_previous_one_as_its_migration_says() {
    // V6 replaces restore_events: the only object of V5 that V6 does not keep.
    let v5 = catalog::expected(Layout::Source, 5);
    let v6 = catalog::expected(Layout::Source, 6);
    let removed: Vec<&str> = v5
        .iter()
        .filter(|o| !v6.contains(o))
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(removed, ["restore_events(text,text,text,text)"]);
    assert_eq!(
        catalog::expected(Layout::Source, 1),
        catalog::expected(Layout::Destination, 1)
    );
    assert!(catalog::expected(Layout::Source, 0).is_empty());
}
