//! Everything a run prints on stdout: the report of each command, as text for people or one
//! JSON document for programs. Commands build a report; only this module prints.
//!
//! Every JSON document carries `format_version`; actions and verdicts are serde enums, so their
//! names in text and JSON are the same words.

mod create;
mod grant;
mod lifecycle;
mod list;
mod replicate;
mod restore;
mod status;
mod verify;

use std::io::Write;

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

use crate::error::Error;
use crate::store::layout::AppliedMigration;

pub use create::{CreateAction, CreatePlan, CreateReport, PlannedMigration};
pub use grant::{GrantAction, GrantReport};
pub use lifecycle::{LifecycleAction, LifecycleReport};
pub use list::{ListReport, StoreEntry};
pub use replicate::{ReplicateAction, ReplicateReport};
pub use restore::{RestoreAction, RestoreReport};
pub use status::StatusReport;
pub use verify::{IdRange, RowReport, VerifyReport};

/// The store's group roles and their members, as `status` and `grant` print them; a role that
/// does not exist carries `absent` after its name.
fn roles_table(roles: &[crate::store::access::GroupRow], absent: &str) -> Table {
    let mut table = table(["role", "group role", "members"]);
    for role in roles {
        table.add_row([
            name_of(&role.kind).to_string(),
            if role.exists {
                role.name.clone()
            } else {
                format!("{} ({absent})", role.name)
            },
            if role.members.is_empty() {
                "(none)".to_string()
            } else {
                role.members.join(", ")
            },
        ]);
    }
    table
}

/// The version of the JSON documents' shape; raised when a field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// Output on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::VariantNames)]
#[strum(serialize_all = "lowercase")]
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
pub fn emit<R: Report>(report: &R, format: OutputFormat) -> Result<(), Error> {
    let text = match format {
        OutputFormat::Json => {
            let mut json = serde_json::to_string_pretty(report)
                .map_err(|e| Error::Internal(format!("cannot render the report as JSON: {e}")))?;
            json.push('\n');
            json
        }
        OutputFormat::Text => report.text(),
    };
    print_stdout(text.as_bytes())
}

/// Writes `bytes` to stdout. A reader that closed the pipe (`| head -1`) has all it wanted:
/// that ends the output quietly, as ripgrep does, never with a panic.
pub fn print_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Internal(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// The name a unit variant has in text and JSON alike (`up-to-date`, `dry-run`, ...): the
/// enums derive it with the same rename rule as serde.
pub fn name_of<T: Copy + Into<&'static str>>(value: &T) -> &'static str {
    (*value).into()
}

/// `V4, V5, V6`.
fn versions(migrations: &[AppliedMigration]) -> String {
    migrations
        .iter()
        .map(|m| format!("V{}", m.version))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table for people: markdown-style ASCII, one line per row.
fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}
