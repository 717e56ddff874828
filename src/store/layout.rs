//! The two layouts of a slate event store, each an ordered set of refinery migrations whose
//! SQL lives in `migrations/`, and applying them.

use refinery::{Migration, Runner, Target};
use serde::Serialize;
use tokio_postgres::Client;

/// refinery's history table: version, name, applied_on, checksum of each applied migration.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// One migration of a layout: the file, the catalog it leaves, its pinned checksum and the
/// objects it changes. Adding a migration is one row here (plus the .sql file and the blessed
/// snapshot); the tests read everything else from this row.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    /// refinery's name: `V{version}__{name}`.
    pub name: &'static str,
    /// Path below `migrations/`.
    pub path: &'static str,
    /// The exact SQL (its bytes are part of the checksum).
    pub sql: &'static str,
    /// Path below `migrations/` of the catalog snapshot after this version.
    pub catalog_path: &'static str,
    /// The catalog after this version (JSON, see [`crate::store::catalog`]).
    pub catalog: &'static str,
    /// refinery's checksum, pinned: every database carries it, so a landed file never changes.
    pub checksum: u64,
    /// What the migration adds (`+`), removes (`-`) or redefines (`~`): `kind name`.
    pub changes: &'static [&'static str],
}

macro_rules! migration {
    ($layout:literal, $dir:literal, $name:literal, $version:literal, $checksum:literal, [$($change:literal),* $(,)?]) => {
        MigrationFile {
            name: $name,
            path: concat!($dir, "/", $name, ".sql"),
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", $name, ".sql")),
            catalog_path: concat!("catalog/", $layout, "/V", $version, ".json"),
            catalog: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/catalog/", $layout, "/V", $version, ".json")),
            checksum: $checksum,
            changes: &[$($change),*],
        }
    };
}

/// The events table, shared by both layouts (same file, same checksum).
macro_rules! events_table {
    ($layout:literal) => {
        migration!(
            $layout,
            "shared",
            "V1__events_table",
            "1",
            3149701040799298330,
            [
                "+table events",
                "+constraint events.events_pkey",
                "+index events_pkey",
                "+index events_ts",
                "+index events_event_entityid",
                "+index events_event_entityname",
                "+index events_event_metadata_command",
                "+index events_event_operation",
                "+index events_event_propertyname",
            ]
        )
    };
}

#[rustfmt::skip]
const SOURCE: &[MigrationFile] = &[
    events_table!("source"),
    migration!("source", "source", "V2__id_table", "2", 2985975261210996440,
        ["+table id", "+constraint id.id_pkey", "+index id_pkey"]),
    migration!("source", "source", "V3__insert_events", "3", 1874623350915239036,
        ["+function insert_events(text)"]),
    migration!("source", "source", "V4__restore_events", "4", 1503612355900278680,
        ["+extension dblink", "+function restore_events(text,text,text,text)"]),
    migration!("source", "source", "V5__event_triggers", "5", 5410471960463406770,
        ["+function filter_sql_command()", "+function notify_event_insert()",
         "+trigger events.check_sql_command", "+trigger events.notify_insert"]),
    migration!("source", "source", "V6__restore_events_quoted_connection", "6", 12368680991499647696,
        ["+function restore_events(text,text,text,text,integer)", "-function restore_events(text,text,text,text)"]),
    migration!("source", "source", "V7__insert_events_parse_before_lock", "7", 9771406837633688135,
        ["~function insert_events(text)"]),
    migration!("source", "source", "V8__notify_per_statement_with_large_events", "8", 2105254151371261219,
        ["~function notify_event_insert()", "~trigger events.notify_insert"]),
    migration!("source", "source", "V9__insert_events_linear_memory_no_gap", "9", 14386219248936472325,
        ["~function insert_events(text)"]),
    migration!("source", "source", "V10__insert_events_deallocate_when_cancelled", "10", 11791918325669928065,
        ["~function insert_events(text)"]),
    migration!("source", "source", "V11__append_only_writers", "11", 8698946099856888712,
        ["+function append_events(jsonb[],integer[])", "~function insert_events(text)",
         "~function notify_event_insert()"]),
    migration!("source", "source", "V12__slate_roles", "12", 1097247466867779106,
        ["+table slate_roles", "+constraint slate_roles.slate_roles_pkey",
         "+constraint slate_roles.slate_roles_role_name_key", "+constraint slate_roles.slate_roles_kind_check",
         "+index slate_roles_pkey", "+index slate_roles_role_name_key"]),
];

#[rustfmt::skip]
const DESTINATION: &[MigrationFile] = &[
    events_table!("destination"),
    migration!("destination", "destination", "V2__slate_roles", "2", 11394406931145204565,
        ["+table slate_roles", "+constraint slate_roles.slate_roles_pkey",
         "+constraint slate_roles.slate_roles_role_name_key", "+constraint slate_roles.slate_roles_kind_check",
         "+index slate_roles_pkey", "+index slate_roles_role_name_key"]),
];

/// The versions that the original Node.js tool's databases correspond to: everything it
/// created, without our later fixes.
const SOURCE_ORIGINAL_VERSION: i32 = 5;
const DESTINATION_ORIGINAL_VERSION: i32 = 1;

/// What kind of event store a database is. Its names (`source`, `destination`) are the same in
/// options, text and JSON.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Layout {
    /// The master event log: gapless ids, its own clock, NOTIFY, restore_events.
    Source,
    /// A replica filled by a replicator: the events table and its indexes only.
    Destination,
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 2] = [Layout::Source, Layout::Destination];

    /// The name users type and read.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The layout's migration files, in order.
    pub fn files(self) -> &'static [MigrationFile] {
        match self {
            Layout::Source => SOURCE,
            Layout::Destination => DESTINATION,
        }
    }

    /// The highest version this build knows.
    pub fn latest_version(self) -> i32 {
        self.files().len() as i32
    }

    /// The version a database made by the original Node.js tool is at.
    pub fn original_version(self) -> i32 {
        match self {
            Layout::Source => SOURCE_ORIGINAL_VERSION,
            Layout::Destination => DESTINATION_ORIGINAL_VERSION,
        }
    }

    /// The catalog snapshot (JSON) after applying migrations up to `version`.
    pub fn catalog_snapshot(self, version: i32) -> Option<&'static str> {
        usize::try_from(version)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|i| self.files().get(i))
            .map(|file| file.catalog)
    }

    /// The layout's migrations as refinery builds them (version, name, checksum, SQL).
    pub fn migrations(self) -> Vec<Migration> {
        self.files()
            .iter()
            .map(|file| {
                Migration::unapplied(file.name, file.sql)
                    .unwrap_or_else(|e| panic!("embedded migration {} is misnamed: {e}", file.path))
            })
            .collect()
    }

    /// Whether this layout needs the dblink extension.
    pub fn needs_dblink(self) -> bool {
        self == Layout::Source
    }
}

/// A migration applied by [`apply`].
#[derive(Debug, Clone, Serialize)]
pub struct AppliedMigration {
    /// The version number.
    pub version: i32,
    /// The name after `V{version}__`.
    pub name: String,
    /// refinery's checksum, as stored in the history table.
    pub checksum: String,
}

impl From<&Migration> for AppliedMigration {
    fn from(migration: &Migration) -> Self {
        AppliedMigration {
            version: migration.version(),
            name: migration.name().to_string(),
            checksum: migration.checksum().to_string(),
        }
    }
}

/// Logs each applied migration, one line each.
pub fn log_applied(applied: &[AppliedMigration]) {
    for m in applied {
        tracing::info!(version = m.version, checksum = %m.checksum, "applied migration V{}__{}", m.version, m.name);
    }
}

/// Applies the layout's pending migrations up to `target` (all of them for `None`) in one
/// transaction, with refinery's divergence and missing-version checks on, recording each in
/// the history table.
pub async fn apply(
    client: &mut Client,
    layout: Layout,
    target: Option<i32>,
) -> Result<Vec<AppliedMigration>, ApplyError> {
    pin_search_path(client).await?;
    let mut runner = Runner::new(&layout.migrations())
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    if let Some(version) = target {
        runner = runner.set_target(Target::Version(version));
    }
    let report = runner.run_async(client).await.map_err(Box::new)?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(AppliedMigration::from)
        .collect())
}

/// Records the layout's migrations up to `version` as applied without running them (adopting
/// a database whose objects were verified to be exactly those migrations' objects).
pub async fn record_as_applied(
    client: &mut Client,
    layout: Layout,
    version: i32,
) -> Result<(), ApplyError> {
    pin_search_path(client).await?;
    Runner::new(&layout.migrations())
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .set_target(Target::FakeVersion(version))
        .run_async(client)
        .await
        .map(|_| ())
        .map_err(|e| Box::new(e) as ApplyError)
}

/// Why applying migrations failed: refinery's error, or setting the search path before it.
pub type ApplyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The migrations create their objects unqualified, meaning schema `public`: whatever the role's
/// or the database's search_path says, they run with `public` alone on it.
async fn pin_search_path(client: &Client) -> Result<(), ApplyError> {
    Ok(client.batch_execute("SET search_path = public").await?)
}
