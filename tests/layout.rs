//! The layouts' migrations: pinned checksums (a landed migration is never edited), every file
//! listed in a layout, and one V1 shared by both layouts.

use std::collections::BTreeSet;
use std::path::Path;

use init_slate_db::layout::Layout;

/// Every database carries these checksums in refinery_schema_history. If this test fails, a
/// landed migration was edited: revert the edit and add the change as a new migration.
const PINNED: &[(Layout, i32, &str, u64)] = &[
    (Layout::Source, 1, "events_table", 3149701040799298330),
    (Layout::Source, 2, "id_table", 2985975261210996440),
    (Layout::Source, 3, "insert_events", 1874623350915239036),
    (Layout::Source, 4, "restore_events", 1503612355900278680),
    (Layout::Source, 5, "event_triggers", 5410471960463406770),
    (
        Layout::Source,
        6,
        "restore_events_quoted_connection",
        12368680991499647696,
    ),
    (
        Layout::Source,
        7,
        "insert_events_parse_before_lock",
        9771406837633688135,
    ),
    (
        Layout::Source,
        8,
        "notify_per_statement_with_large_events",
        2105254151371261219,
    ),
    (Layout::Destination, 1, "events_table", 3149701040799298330),
];

#[test]
fn landed_migrations_keep_their_checksums() {
    for layout in Layout::ALL {
        let migrations = layout.migrations();
        let pinned: Vec<_> = PINNED.iter().filter(|p| p.0 == layout).collect();
        assert!(
            migrations.len() >= pinned.len(),
            "{layout}: a landed migration was removed"
        );
        for (migration, (_, version, name, checksum)) in migrations.iter().zip(&pinned) {
            assert_eq!(
                (migration.version(), migration.name(), migration.checksum()),
                (*version, *name, *checksum),
                "{layout} V{version}: a landed migration was edited; add a new migration instead"
            );
        }
        assert_eq!(
            migrations.len(),
            pinned.len(),
            "{layout}: a new migration needs its checksum pinned here"
        );
    }
}

#[test]
fn versions_are_consecutive_from_one() {
    for layout in Layout::ALL {
        let versions: Vec<i32> = layout.migrations().iter().map(|m| m.version()).collect();
        let expected: Vec<i32> = (1..=versions.len() as i32).collect();
        assert_eq!(versions, expected, "{layout}");
    }
}

#[test]
fn both_layouts_apply_the_same_events_table_migration() {
    let source = &Layout::Source.files()[0];
    let destination = &Layout::Destination.files()[0];
    assert_eq!(source.path, "shared/V1__events_table.sql");
    assert_eq!(source.path, destination.path);
    assert_eq!(
        Layout::Source.migrations()[0].checksum(),
        Layout::Destination.migrations()[0].checksum()
    );
}

#[test]
fn every_migration_file_belongs_to_a_layout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut on_disk = BTreeSet::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "sql") {
                on_disk.insert(
                    file.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let listed: BTreeSet<String> = Layout::ALL
        .iter()
        .flat_map(|l| l.files().iter().map(|f| f.path.to_string()))
        .collect();
    assert_eq!(
        on_disk, listed,
        "every .sql file in migrations/ must be listed in src/layout.rs"
    );
}

#[test]
fn migrations_use_lf_line_endings() {
    for layout in Layout::ALL {
        for file in layout.files() {
            assert!(
                !file.sql.contains('\r'),
                "{} has CR line endings; the checksum counts them",
                file.path
            );
        }
    }
}
