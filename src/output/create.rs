//! create's report and dry-run plan.

use serde::Serialize;

use super::{versions, Report};
use crate::store::layout::{AppliedMigration, Layout};

/// What a create run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreateAction {
    /// The database was created and initialized.
    Created,
    /// It existed as a verified, up-to-date store: nothing was done.
    Existed,
    /// It existed with pending migrations, which were applied.
    Migrated,
    /// It existed, empty, and the layout was applied into it (`--into-existing`).
    Initialized,
    /// Checks only.
    DryRun,
}

/// The result of a create run.
#[derive(Debug, Serialize)]
pub struct CreateReport {
    pub format_version: u32,
    pub database: String,
    pub layout: Layout,
    pub action: CreateAction,
    pub endpoint: String,
    pub migrations_applied: Vec<AppliedMigration>,
    pub duration_ms: u64,
    /// A dry run's parameters, checks and migrations (`null` otherwise).
    pub plan: Option<CreatePlan>,
}

impl CreateReport {
    /// The report with a dry run's plan.
    pub fn with_plan(self, plan: CreatePlan) -> CreateReport {
        CreateReport {
            plan: Some(plan),
            ..self
        }
    }
}

impl Report for CreateReport {
    fn text(&self) -> String {
        let seconds = self.duration_ms as f64 / 1000.0;
        match self.action {
            CreateAction::Created => format!(
                "created {} database \"{}\" on {}: applied {} migration(s) ({}) in {seconds:.2} s\n",
                self.layout,
                self.database,
                self.endpoint,
                self.migrations_applied.len(),
                versions(&self.migrations_applied)
            ),
            CreateAction::Migrated => format!(
                "database \"{}\" on {} existed as a verified {} store: applied pending migration(s) {} in {seconds:.2} s\n",
                self.database, self.endpoint, self.layout, versions(&self.migrations_applied)
            ),
            CreateAction::Initialized => format!(
                "initialized existing database \"{}\" on {} as a {} store: applied {} migration(s) ({}) in {seconds:.2} s\n",
                self.database,
                self.endpoint,
                self.layout,
                self.migrations_applied.len(),
                versions(&self.migrations_applied)
            ),
            CreateAction::Existed => format!(
                "database \"{}\" on {} exists and is a verified, up-to-date {} store: nothing was done\n",
                self.database, self.endpoint, self.layout
            ),
            CreateAction::DryRun => self.plan.as_ref().map(CreatePlan::text).unwrap_or_else(|| format!(
                "dry run: database \"{}\" on {} would be left as it is or brought up to date; nothing was changed\n",
                self.database, self.endpoint
            )),
        }
    }
}

/// What a create dry run shows: the parameters, the checks passed and the migrations.
#[derive(Debug, Serialize)]
pub struct CreatePlan {
    /// Name and value, in the order shown; JSON has them as one object with the names'
    /// spaces as underscores (`connect_timeout`).
    #[serde(serialize_with = "parameters_as_object")]
    pub parameters: Vec<(String, String)>,
    pub checks: Vec<String>,
    #[serde(skip)]
    pub database: String,
    pub migrations: Vec<PlannedMigration>,
}

fn parameters_as_object<S: serde::Serializer>(
    parameters: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        parameters
            .iter()
            .map(|(name, value)| (name.replace(' ', "_"), value)),
    )
}

impl CreatePlan {
    /// The dry run's text.
    pub fn text(&self) -> String {
        let mut out = String::from("dry run: nothing was created or changed\n\nrun parameters:\n");
        for (key, value) in &self.parameters {
            out.push_str(&format!("  {:<22}{value}\n", format!("{key}:")));
        }
        out.push_str("\nchecks passed:\n");
        for check in &self.checks {
            out.push_str(&format!("  {check}\n"));
        }
        out.push_str(&format!(
            "\nmigrations that would be applied to \"{}\" (history table {}):\n",
            self.database,
            crate::store::layout::HISTORY_TABLE
        ));
        for m in &self.migrations {
            out.push_str(&format!(
                "  V{:<3}{:<40}checksum {}\n",
                m.version, m.name, m.checksum
            ));
        }
        out
    }
}

/// A migration that would run: the `--dry-run` plan.
#[derive(Debug, Serialize)]
pub struct PlannedMigration {
    pub version: i32,
    pub name: String,
    pub checksum: String,
    /// The SQL that would run (migrate and adopt; create's plan leaves it out).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sql: String,
}
