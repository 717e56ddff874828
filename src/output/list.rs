//! list's report.

use serde::Serialize;

use super::{name_of, table, Report};
use crate::store::layout::Layout;

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
    /// A source's followers: each slot's destination while connected, else the slot's name.
    pub followed_by: Vec<String>,
    /// The sources a destination follows (its subscriptions).
    pub follows: Vec<String>,
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
            "database",
            "layout",
            "version",
            "verdict",
            "events",
            "size",
            "replication",
            "note",
        ]);
        for s in &self.stores {
            stores.add_row([
                s.database.clone(),
                s.layout.map(|l| l.name().to_string()).unwrap_or_default(),
                match (s.applied_version, s.latest_version) {
                    (Some(a), Some(l)) => format!("V{a} of V{l}"),
                    _ => String::new(),
                },
                s.verdict
                    .as_ref()
                    .map(name_of)
                    .unwrap_or_default()
                    .to_string(),
                s.events.map(|e| e.to_string()).unwrap_or_default(),
                s.size_bytes
                    .map(|b| format!("{:.1} MB", b as f64 / 1e6))
                    .unwrap_or_default(),
                s.follows
                    .iter()
                    .map(|f| format!("follows {f}"))
                    .chain(s.followed_by.iter().map(|f| format!("followed by {f}")))
                    .collect::<Vec<_>>()
                    .join("; "),
                s.note.clone().unwrap_or_default(),
            ]);
        }
        format!("slate stores on {}\n{stores}\n", self.endpoint)
    }
}
