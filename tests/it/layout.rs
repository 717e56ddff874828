//! The layouts' migrations: pinned checksums (a landed migration is never edited), every file
//! listed in a layout, and one V1 shared by both layouts.

use std::collections::BTreeSet;
use std::path::Path;

use init_slate_db::store::layout::Layout;

/// Every database carries these checksums in refinery_schema_history; each row of
/// `src/store/layout.rs` pins its migration's. If this test fails, a landed migration was
/// edited: revert the edit and add the change as a new migration.
#[test]
fn landed_migrations_keep_their_checksums() {
    for layout in Layout::ALL {
        for (file, migration) in layout.files().iter().zip(layout.migrations()) {
            assert_eq!(
                migration.checksum(),
                file.checksum,
                "{layout} {}: the migration's checksum is not the pinned one: a landed migration was edited; add a new migration instead",
                file.path
            );
        }
    }
}

#[test]
fn each_migration_has_its_catalog_snapshot_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for layout in Layout::ALL {
        for (index, file) in layout.files().iter().enumerate() {
            assert_eq!(
                file.catalog_path,
                format!("catalog/{layout}/V{}.json", index + 1)
            );
            assert!(
                root.join(file.catalog_path).is_file(),
                "{}",
                file.catalog_path
            );
        }
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
        "every .sql file in migrations/ must be listed in src/store/layout.rs"
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
