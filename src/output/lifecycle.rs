//! The report of `migrate` and `adopt`.

use serde::Serialize;

use super::{name_of, versions, PlannedMigration, Report};
use crate::store::layout::{AppliedMigration, Layout};

/// What `migrate` or `adopt` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleAction {
    /// Nothing to do.
    UpToDate,
    /// Pending migrations were applied.
    Migrated,
    /// The original's migrations were recorded as applied (and later ones applied).
    Adopted,
    /// The plan only.
    DryRun,
}

/// The result of `migrate` or `adopt`.
#[derive(Debug, Serialize)]
pub struct LifecycleReport {
    pub format_version: u32,
    pub database: String,
    pub layout: Option<Layout>,
    pub action: LifecycleAction,
    /// Versions recorded as applied without running them (adopt).
    pub recorded: Vec<i32>,
    pub migrations_applied: Vec<AppliedMigration>,
    /// What a dry run would apply.
    pub plan: Vec<PlannedMigration>,
    /// The verdict of the audit at the end.
    pub verdict: crate::store::audit::Verdict,
}

impl Report for LifecycleReport {
    fn text(&self) -> String {
        let layout = self.layout.map(Layout::name).unwrap_or("unknown");
        let database = &self.database;
        let recorded = || {
            format!(
                "V{}-V{}",
                self.recorded.first().copied().unwrap_or(1),
                self.recorded.last().copied().unwrap_or(0)
            )
        };
        let mut out = String::new();
        match self.action {
            LifecycleAction::UpToDate => out.push_str(&format!(
                "database \"{database}\" ({layout}) is up to date: nothing to do\n"
            )),
            LifecycleAction::Migrated => out.push_str(&format!(
                "database \"{database}\" ({layout}): applied {} in one transaction; verified, up to date\n",
                versions(&self.migrations_applied)
            )),
            LifecycleAction::Adopted => {
                out.push_str(&format!(
                    "database \"{database}\" ({layout}): recorded {} as applied (objects verified against the original init-slate-db's)\n",
                    recorded()
                ));
                if self.migrations_applied.is_empty() {
                    out.push_str(&format!("verdict: {}\n", name_of(&self.verdict)));
                } else {
                    out.push_str(&format!(
                        "applied {}; verified, up to date\n",
                        versions(&self.migrations_applied)
                    ));
                }
            }
            LifecycleAction::DryRun => {
                out.push_str(&format!(
                    "dry run on database \"{database}\" ({layout}): nothing was changed\n"
                ));
                if !self.recorded.is_empty() {
                    out.push_str(&format!(
                        "would record {} as applied without running them\n",
                        recorded()
                    ));
                }
                for m in &self.plan {
                    out.push_str(&format!(
                        "\n-- would apply V{}__{} (checksum {})\n{}\n",
                        m.version,
                        m.name,
                        m.checksum,
                        m.sql.trim_end()
                    ));
                }
            }
        }
        out
    }
}
