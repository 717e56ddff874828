//! restore's report.

use serde::Serialize;

use super::Report;

/// What `restore` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreAction {
    /// Copied, verified and committed.
    Restored,
    /// Checks only.
    DryRun,
}

/// The result of `restore`.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub format_version: u32,
    pub database: String,
    pub backup: String,
    pub action: RestoreAction,
    /// Whether this run created the database.
    pub created: bool,
    /// Into an existing, freshly initialized source.
    pub into_existing: bool,
    pub backup_rows: i64,
    pub rows_restored: i64,
    pub next_insert_id: i64,
    pub bytes_copied: u64,
    pub duration_ms: u64,
    pub events_per_second: f64,
}

impl Report for RestoreReport {
    fn text(&self) -> String {
        if self.action == RestoreAction::DryRun {
            let target = if self.into_existing {
                format!(
                    "  target \"{}\" is a freshly initialized, verified source\n",
                    self.database
                )
            } else {
                format!(
                    "  would create source database \"{}\" (checks passed)\n",
                    self.database
                )
            };
            return format!(
                "dry run: nothing was created or changed\n  backup {}: {} events, ids 1..{} without gaps\n{target}  would copy {} events in one transaction, verify count, max id and digests, and set the next id to {}\n",
                self.backup, self.backup_rows, self.backup_rows, self.backup_rows, self.next_insert_id
            );
        }
        format!(
            "restored {} events from {} into \"{}\"{}: next insert id {}, {:.1} s, {:.0} events/s, verified\n",
            self.rows_restored,
            self.backup,
            self.database,
            if self.created { " (created)" } else { "" },
            self.next_insert_id,
            self.duration_ms as f64 / 1000.0,
            self.events_per_second
        )
    }
}
