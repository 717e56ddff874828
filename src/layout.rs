//! The two layouts of a slate event store, each an ordered set of refinery migrations whose
//! SQL lives in `migrations/`, and applying them.

use std::fmt;

use refinery::{Migration, Runner};
use serde::Serialize;
use tokio_postgres::Client;

/// refinery's history table: version, name, applied_on, checksum of each applied migration.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// One migration file, embedded in the binary at build time.
#[derive(Debug, Clone, Copy)]
pub struct MigrationFile {
    /// refinery's name: `V{version}__{name}`.
    pub name: &'static str,
    /// Path below `migrations/`.
    pub path: &'static str,
    /// The exact SQL (its bytes are part of the checksum).
    pub sql: &'static str,
}

macro_rules! migration_file {
    ($dir:literal, $name:literal) => {
        MigrationFile {
            name: $name,
            path: concat!($dir, "/", $name, ".sql"),
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/",
                $dir,
                "/",
                $name,
                ".sql"
            )),
        }
    };
}

/// Both layouts apply the same V1: the events table exists once in the repository.
const EVENTS_TABLE: MigrationFile = migration_file!("shared", "V1__events_table");

const SOURCE: &[MigrationFile] = &[
    EVENTS_TABLE,
    migration_file!("source", "V2__id_table"),
    migration_file!("source", "V3__insert_events"),
    migration_file!("source", "V4__restore_events"),
    migration_file!("source", "V5__event_triggers"),
    migration_file!("source", "V6__restore_events_quoted_connection"),
];

const DESTINATION: &[MigrationFile] = &[EVENTS_TABLE];

/// What kind of event store a database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The master event log: gapless ids, its own clock, NOTIFY, restore_events.
    Source,
    /// A replica filled by a replicator: the events table and its indexes only.
    Destination,
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 2] = [Layout::Source, Layout::Destination];

    /// Parses the `--table-type` value.
    pub fn parse(value: &str) -> Option<Layout> {
        match value {
            "source" => Some(Layout::Source),
            "destination" => Some(Layout::Destination),
            _ => None,
        }
    }

    /// The name users type and read.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Source => "source",
            Layout::Destination => "destination",
        }
    }

    /// The layout's migration files, in order.
    pub fn files(self) -> &'static [MigrationFile] {
        match self {
            Layout::Source => SOURCE,
            Layout::Destination => DESTINATION,
        }
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

    /// Whether this layout needs the dblink extension (and so a superuser, or dblink in the
    /// template database).
    pub fn needs_dblink(self) -> bool {
        self == Layout::Source
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// Applies the layout's pending migrations in one transaction, with refinery's divergence and
/// missing-version checks on, recording each in the history table.
pub async fn apply(
    client: &mut Client,
    layout: Layout,
) -> Result<Vec<AppliedMigration>, refinery::Error> {
    let report = Runner::new(&layout.migrations())
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(AppliedMigration::from)
        .collect())
}
