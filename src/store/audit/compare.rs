//! The comparisons behind the audit: the history against this build's migrations, the catalog
//! against the snapshots, and the id counter against the events.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::{HistoryRow, MigrationRow, MigrationState, ObjectRow, ObjectState};
use crate::store::catalog::{self, CatalogObject};
use crate::store::layout::Layout;

pub(super) fn join_versions(migrations: &[MigrationRow], state: MigrationState) -> String {
    migrations
        .iter()
        .filter(|m| m.state == state)
        .map(|m| m.version.to_string())
        .collect::<Vec<_>>()
        .join(", V")
}

/// Source when anything says so (a history row of a source-only migration, or a source-only
/// object), destination
/// when there is an events table or a history, else none.
pub(super) fn detect_layout(history: &[HistoryRow], objects: &[CatalogObject]) -> Option<Layout> {
    let destination = catalog::expected(Layout::Destination, Layout::Destination.latest_version());
    let destination_keys = catalog::by_key(&destination);
    // Without a history table, only an events table of the layout's shape makes a store: an
    // application's own `events(id serial, name text)` is not one.
    if history.is_empty() {
        let shape = destination_keys
            .get(&("table".to_string(), "events".to_string()))
            .map(|o| o.definition.as_str());
        let has_shape = objects.iter().any(|o| {
            o.kind == "table" && o.name == "events" && Some(o.definition.as_str()) == shape
        });
        if !has_shape {
            return None;
        }
    }
    let source = catalog::expected(Layout::Source, Layout::Source.latest_version());
    let source_only = source.iter().any(|o| {
        !destination_keys.contains_key(&o.key())
            && objects
                .iter()
                .any(|a| a.kind == o.kind && a.name.split('(').next() == o.name.split('(').next())
    });
    let source_migrations = Layout::Source.migrations();
    let source_history = history.iter().any(|h| {
        h.version > 1
            && source_migrations
                .iter()
                .any(|m| m.version() == h.version && m.name() == h.name)
    });
    if source_history || source_only {
        Some(Layout::Source)
    } else if !history.is_empty()
        || objects
            .iter()
            .any(|o| o.kind == "table" && o.name == "events")
    {
        Some(Layout::Destination)
    } else {
        None
    }
}

pub(super) fn compare_history(layout: Layout, history: &[HistoryRow]) -> Vec<MigrationRow> {
    let recorded: BTreeMap<i32, &HistoryRow> = history.iter().map(|h| (h.version, h)).collect();
    let mut rows: Vec<MigrationRow> = layout
        .migrations()
        .iter()
        .map(|m| {
            let expected_checksum = Some(m.checksum().to_string());
            match recorded.get(&m.version()) {
                Some(h) => MigrationRow {
                    version: m.version(),
                    name: h.name.clone(),
                    state: if h.name == m.name() && h.checksum == m.checksum().to_string() {
                        MigrationState::Applied
                    } else {
                        MigrationState::Divergent
                    },
                    applied_on: Some(h.applied_on.clone()),
                    checksum: Some(h.checksum.clone()),
                    expected_checksum,
                },
                None => MigrationRow {
                    version: m.version(),
                    name: m.name().to_string(),
                    state: MigrationState::Pending,
                    applied_on: None,
                    checksum: None,
                    expected_checksum,
                },
            }
        })
        .collect();
    for h in history
        .iter()
        .filter(|h| h.version < 1 || h.version > layout.latest_version())
    {
        rows.push(MigrationRow {
            version: h.version,
            name: h.name.clone(),
            state: MigrationState::Unknown,
            applied_on: Some(h.applied_on.clone()),
            checksum: Some(h.checksum.clone()),
            expected_checksum: None,
        });
    }
    rows.sort_by_key(|r| r.version);
    rows
}

/// `expected`: the catalog after the applied migrations; `latest`: after all of this build's.
pub(super) fn compare_objects(
    expected: &[CatalogObject],
    latest: &[CatalogObject],
    actual: &[CatalogObject],
) -> Vec<ObjectRow> {
    let expected_keys = catalog::by_key(expected);
    let actual_keys = catalog::by_key(actual);
    // Objects that hang on the layout's own tables change what the store does.
    let layout_tables: Vec<&str> = latest
        .iter()
        .filter(|o| o.kind == "table")
        .map(|o| o.name.as_str())
        .collect();
    let on_layout_table = |o: &CatalogObject| {
        matches!(
            o.kind.as_str(),
            "trigger" | "rule" | "policy" | "constraint"
        ) && o
            .name
            .split_once('.')
            .is_some_and(|(table, _)| layout_tables.contains(&table))
    };
    let mut rows = Vec::new();
    for o in expected {
        let row = match actual_keys.get(&o.key()) {
            Some(a) if a.definition == o.definition => {
                row(o, ObjectState::Ok, Some(&o.definition), Some(&a.definition))
            }
            Some(a) => row(
                o,
                ObjectState::Changed,
                Some(&o.definition),
                Some(&a.definition),
            ),
            None => row(o, ObjectState::Missing, Some(&o.definition), None),
        };
        rows.push(row);
    }
    for a in actual
        .iter()
        .filter(|a| !expected_keys.contains_key(&a.key()))
    {
        let state = if on_layout_table(a) {
            ObjectState::Unexpected
        } else {
            ObjectState::Extra
        };
        rows.push(row(a, state, None, Some(&a.definition)));
    }
    for l in latest
        .iter()
        .filter(|l| !expected_keys.contains_key(&l.key()) && !actual_keys.contains_key(&l.key()))
    {
        rows.push(row(l, ObjectState::Pending, Some(&l.definition), None));
    }
    rows.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    rows
}

fn row(
    o: &CatalogObject,
    state: ObjectState,
    expected: Option<&str>,
    actual: Option<&str>,
) -> ObjectRow {
    ObjectRow {
        kind: o.kind.clone(),
        name: o.name.clone(),
        state,
        expected: expected.map(String::from),
        actual: actual.map(String::from),
    }
}

/// The id table must hold one row equal to max(events.id) + 1 (1 when empty): anything else
/// means ids were handed out or events inserted without insert_events.
pub(super) async fn check_id_counter(client: &Client) -> Result<ObjectRow, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT (SELECT count(*) FROM public.id), (SELECT min(id)::bigint FROM public.id), (SELECT COALESCE(max(id)::bigint, 0) + 1 FROM public.events)", &[])
        .await?;
    let (rows, value, next): (i64, Option<i64>, i64) = (row.get(0), row.get(1), row.get(2));
    let expected = format!("one row, {next} (max(events.id) + 1)");
    let actual = match (rows, value) {
        (1, Some(v)) => format!("one row, {v}"),
        (0, _) => "no row".to_string(),
        (n, _) => format!("{n} rows"),
    };
    Ok(ObjectRow {
        kind: "data".into(),
        name: "id counter".into(),
        state: if rows == 1 && value == Some(next) {
            ObjectState::Ok
        } else {
            ObjectState::Changed
        },
        expected: Some(expected),
        actual: Some(actual),
    })
}
