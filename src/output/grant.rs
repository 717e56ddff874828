//! The report of `grant`.

use serde::Serialize;

use super::{name_of, roles_table, Report};
use crate::store::access::GroupRow;
use crate::store::layout::Layout;

/// What `grant` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum GrantAction {
    /// The statements were executed in one transaction.
    Granted,
    /// Everything was already as asked: nothing was executed.
    Unchanged,
    /// A dry run: the statements a run would execute, none executed.
    Planned,
}

/// The result of `grant`.
#[derive(Debug, Serialize)]
pub struct GrantReport {
    pub format_version: u32,
    pub database: String,
    pub layout: Layout,
    pub action: GrantAction,
    /// The store's group roles and their members (after the run; before it, for a dry run).
    pub roles: Vec<GroupRow>,
    /// The statements executed (or, for a dry run, to be executed), in order.
    pub statements: Vec<String>,
    /// What a person should know about the roles named.
    pub notes: Vec<String>,
    /// What the run left for a person to do.
    pub warnings: Vec<String>,
}

impl Report for GrantReport {
    fn text(&self) -> String {
        let mut out = format!(
            "database  {} ({})\naction    {}\n",
            self.database,
            self.layout,
            name_of(&self.action)
        );
        let roles = roles_table(&self.roles, "created by the run");
        out.push_str(&format!("\nroles\n{roles}\n"));
        if self.statements.is_empty() {
            out.push_str("\nnothing to change: the store's grants are what its roles need\n");
        } else {
            out.push_str(match self.action {
                GrantAction::Planned => "\nstatements (dry run: none executed)\n",
                _ => "\nstatements (executed in one transaction)\n",
            });
            for statement in &self.statements {
                out.push_str(&format!("  {statement};\n"));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    }
}
