//! Everything a run prints on stdout: the report of each command, as text for people or one
//! JSON document for programs. Commands build a report; only this module prints.
//!
//! Every JSON document carries `format_version`; actions and verdicts are serde enums, so their
//! names in text and JSON are the same words.

mod create;
mod lifecycle;
mod list;
mod restore;
mod status;
mod verify;

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

use crate::store::layout::AppliedMigration;

pub use create::{CreateAction, CreatePlan, CreateReport, PlannedMigration};
pub use lifecycle::{LifecycleAction, LifecycleReport};
pub use list::{ListReport, StoreEntry};
pub use restore::{RestoreAction, RestoreReport};
pub use status::StatusReport;
pub use verify::{IdRange, RowReport, VerifyReport};

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
