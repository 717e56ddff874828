//! Everything a run prints on stdout: the report of each command, as text for people or one
//! JSON document for programs. Commands build a report; only this module prints.
//!
//! Every JSON document carries `format_version`; actions and verdicts are serde enums, so their
//! names in text and JSON are the same words.

use comfy_table::{presets, Cell, ContentArrangement, Table};
use serde::Serialize;

use crate::store::audit::{Audit, MigrationState, ObjectState};
use crate::store::build::Leftover;
use crate::store::layout::{AppliedMigration, Layout};

/// The version of the JSON documents' shape; raised when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// Output on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Tables and sentences for people.
    Text,
    /// One JSON document for programs.
    Json,
}

/// A command's result: a JSON document, and its text for people.
pub trait Report: Serialize {
    /// The text printed with `--format text`.
    fn text(&self) -> String;
}

/// Prints `report` on stdout in `format`.
pub fn emit<R: Report>(report: &R, format: OutputFormat) {
    match format {
        OutputFormat::Json => match serde_json::to_string_pretty(report) {
            Ok(json) => println!("{json}"),
            Err(e) => tracing::error!("cannot render the report as JSON: {e}"),
        },
        OutputFormat::Text => print!("{}", report.text()),
    }
}

/// The name serde gives a unit variant (`up-to-date`, `dry-run`, ...): one spelling everywhere.
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::from("?"),
    }
}

fn versions(migrations: &[AppliedMigration]) -> String {
    migrations
        .iter()
        .map(|m| format!("V{}", m.version))
        .collect::<Vec<_>>()
        .join(", ")
}

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
    /// Dry runs in text: the run parameters and the plan (not part of the JSON document).
    #[serde(skip)]
    pub dry_run_text: Option<String>,
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
            CreateAction::DryRun => self.dry_run_text.clone().unwrap_or_else(|| format!(
                "dry run: database \"{}\" on {} would be left as it is or brought up to date; nothing was changed\n",
                self.database, self.endpoint
            )),
        }
    }
}

/// What a create dry run shows: the parameters, the checks passed and the migrations.
pub struct CreatePlan<'a> {
    pub parameters: Vec<(&'static str, String)>,
    pub checks: Vec<String>,
    pub database: &'a str,
    pub migrations: Vec<PlannedMigration>,
}

impl CreatePlan<'_> {
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
    pub sql: String,
}

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

/// The result of `status`: the audit, with the document's version.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    pub format_version: u32,
    #[serde(flatten)]
    pub audit: &'a Audit,
    /// Temporary databases of builds on this server: running, or left by a run that ended.
    pub leftovers: Vec<Leftover>,
}

/// `status`: a header, the migrations table and the objects table.
impl Report for StatusReport<'_> {
    fn text(&self) -> String {
        let mut out = audit_text(self.audit);
        for leftover in &self.leftovers {
            out.push_str(&format!(
                "\nleftover  {} ({}): a build of \"{}\" by {}{}\n",
                leftover.database,
                leftover.state,
                leftover.requested.as_deref().unwrap_or("?"),
                leftover.run.as_deref().unwrap_or("an unknown run"),
                if leftover.state == "abandoned" {
                    "; the next create or restore of that name removes it"
                } else {
                    ""
                }
            ));
        }
        out
    }
}

fn audit_text(this: &Audit) -> String {
    {
        let mut out = String::new();
        out.push_str(&format!("database  {}\n", this.database));
        out.push_str(&format!(
            "layout    {}\n",
            this.layout
                .map(|l| l.name())
                .unwrap_or("none (not a slate event store)")
        ));
        out.push_str(&format!("verdict   {}\n", name_of(&this.verdict)));
        for note in &this.notes {
            out.push_str(&format!("          {note}\n"));
        }
        if this.layout.is_none() {
            return out;
        }

        let mut migrations = table(["version", "name", "state", "applied on", "checksum"]);
        for m in &this.migrations {
            let checksum = match (m.state, &m.checksum, &m.expected_checksum) {
                (MigrationState::Divergent, Some(found), Some(expected)) => {
                    format!("{found} (expected {expected})")
                }
                (_, Some(found), _) => found.clone(),
                (_, None, Some(expected)) => expected.clone(),
                _ => String::new(),
            };
            migrations.add_row([
                format!("V{}", m.version),
                m.name.clone(),
                name_of(&m.state),
                m.applied_on.as_deref().map(to_seconds).unwrap_or_default(),
                checksum,
            ]);
        }
        out.push_str(&format!("\nmigrations\n{migrations}\n"));

        let mut objects = table(["kind", "name", "state", "detail"]);
        for o in &this.objects {
            let detail = match o.state {
                ObjectState::Ok => String::new(),
                ObjectState::Changed => format!(
                    "expected: {}\nfound:    {}",
                    o.expected.as_deref().unwrap_or(""),
                    o.actual.as_deref().unwrap_or("")
                ),
                ObjectState::Missing | ObjectState::Pending => {
                    o.expected.clone().unwrap_or_default()
                }
                ObjectState::Extra | ObjectState::Unexpected => {
                    o.actual.clone().unwrap_or_default()
                }
            };
            objects.add_row([
                Cell::new(&o.kind),
                Cell::new(&o.name),
                Cell::new(name_of(&o.state)),
                Cell::new(detail),
            ]);
        }
        out.push_str(&format!("\nobjects\n{objects}\n"));
        if !this.access.is_empty() {
            let mut access = table(["kind", "name", "owner", "privileges"]);
            for a in &this.access {
                access.add_row([&a.kind, &a.name, &a.owner, &a.privileges]);
            }
            out.push_str(&format!(
                "\nowners and grants (reported, not verified)\n{access}\n"
            ));
        }
        out
    }
}

/// `2026-11-25T20:03:09.956942Z` as `2026-11-25 20:03:09Z`: the table needs no nanoseconds
/// (JSON keeps them).
fn to_seconds(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time}Z"),
        _ => rfc3339.to_string(),
    }
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// A range of ids, both ends included.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdRange {
    pub first: i64,
    pub last: i64,
}

impl std::fmt::Display for IdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One differing row present on both sides.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RowReport {
    pub id: i64,
    pub difference: crate::store::digest::RowDifference,
}

/// The result of `verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub format_version: u32,
    pub reference: String,
    pub copy: String,
    pub reference_max_id: i64,
    pub copy_max_id: i64,
    /// Ids 1..this were compared.
    pub compared_up_to: i64,
    /// `exact` or `ms`.
    pub ts_precision: &'static str,
    /// Rows of the reference within the comparison.
    pub rows_compared: i64,
    /// Every id up to this one is identical on both sides.
    pub identical_up_to: i64,
    /// How many ids the copy is behind the reference (negative: ahead).
    pub behind: i64,
    /// Ids that differ in any way (missing on a side, another ts or event).
    pub differing_rows: i64,
    /// Ids the reference has and the copy lacks (the first 100 ranges).
    pub missing_in_copy: Vec<IdRange>,
    /// Ids the copy has and the reference lacks (the first 100 ranges).
    pub missing_in_reference: Vec<IdRange>,
    /// The first 20 rows present on both sides that differ.
    pub first_differences: Vec<RowReport>,
    /// The verdict (with `--exact`, a copy behind is not identical).
    pub identical: bool,
}

impl Report for VerifyReport {
    fn text(&self) -> String {
        let mut out = format!(
            "reference  {}  (max id {})\ncopy       {}  (max id {}{})\ncompared   ids 1..{} ({} rows, timestamps {})\n",
            self.reference,
            self.reference_max_id,
            self.copy,
            self.copy_max_id,
            match self.behind {
                0 => String::new(),
                n if n > 0 => format!(", {n} behind"),
                n => format!(", {} ahead", -n),
            },
            self.compared_up_to,
            self.rows_compared,
            self.ts_precision
        );
        if self.differing_rows == 0 {
            out.push_str(&format!(
                "verdict    {}: identical up to id {}\n",
                if self.identical {
                    "identical"
                } else {
                    "different"
                },
                self.identical_up_to
            ));
            return out;
        }
        out.push_str(&format!(
            "verdict    different: {} differing row(s); identical up to id {}\n",
            self.differing_rows, self.identical_up_to
        ));
        let ranges = |rs: &[IdRange]| {
            rs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.missing_in_copy.is_empty() {
            out.push_str(&format!(
                "missing in the copy:      {}\n",
                ranges(&self.missing_in_copy)
            ));
        }
        if !self.missing_in_reference.is_empty() {
            out.push_str(&format!(
                "missing in the reference: {}\n",
                ranges(&self.missing_in_reference)
            ));
        }
        for row in &self.first_differences {
            out.push_str(&format!(
                "id {}: {} differs\n",
                row.id,
                match row.difference {
                    crate::store::digest::RowDifference::Ts => "ts",
                    crate::store::digest::RowDifference::Event => "event",
                    crate::store::digest::RowDifference::TsAndEvent => "ts and event",
                    _ => "presence",
                }
            ));
        }
        out
    }
}

/// One database of `list`.
#[derive(Debug, Serialize)]
pub struct StoreEntry {
    pub database: String,
    pub layout: Option<Layout>,
    pub applied_version: Option<i32>,
    pub latest_version: Option<i32>,
    pub verdict: Option<crate::store::audit::Verdict>,
    /// `max(id)`: the number of events of a gapless store.
    pub events: Option<i64>,
    pub size_bytes: Option<i64>,
    /// Why a field is missing (no access, a temporary build).
    pub note: Option<String>,
}

/// The result of `list`.
#[derive(Debug, Serialize)]
pub struct ListReport {
    pub format_version: u32,
    pub endpoint: String,
    pub stores: Vec<StoreEntry>,
}

impl Report for ListReport {
    fn text(&self) -> String {
        let mut stores = table([
            "database", "layout", "version", "verdict", "events", "size", "note",
        ]);
        for s in &self.stores {
            stores.add_row([
                s.database.clone(),
                s.layout.map(|l| l.name().to_string()).unwrap_or_default(),
                match (s.applied_version, s.latest_version) {
                    (Some(a), Some(l)) => format!("V{a} of V{l}"),
                    _ => String::new(),
                },
                s.verdict.as_ref().map(name_of).unwrap_or_default(),
                s.events.map(|e| e.to_string()).unwrap_or_default(),
                s.size_bytes
                    .map(|b| format!("{:.1} MB", b as f64 / 1e6))
                    .unwrap_or_default(),
                s.note.clone().unwrap_or_default(),
            ]);
        }
        format!("slate stores on {}\n{stores}\n", self.endpoint)
    }
}
