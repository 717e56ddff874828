//! status's report: the audit's tables, owners and grants, leftovers.

use comfy_table::Cell;
use serde::Serialize;

use super::{name_of, roles_table, table, Report};
use crate::store::audit::{Audit, Grants, MigrationState, ObjectState};
use crate::store::follow::Replication;
use crate::store::staging::{Leftover, LeftoverState};

/// The result of `status`: the audit, with the document's version.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    pub format_version: u32,
    #[serde(flatten)]
    pub audit: &'a Audit,
    /// Temporary databases of builds on this server: running, or left by a run that ended.
    pub leftovers: Vec<Leftover>,
    /// The store's publication and slots (a source), its subscriptions (a destination).
    pub replication: Replication,
}

/// `status`: a header, the migrations table and the objects table.
impl Report for StatusReport<'_> {
    fn text(&self) -> String {
        let mut out = audit_text(self.audit);
        out.push_str(&replication_text(&self.replication));
        for leftover in &self.leftovers {
            out.push_str(&format!(
                "\nleftover  {} ({}): a build of \"{}\" by {}{}\n",
                leftover.database,
                leftover.state,
                leftover.requested.as_deref().unwrap_or("?"),
                leftover.run.as_deref().unwrap_or("an unknown run"),
                if leftover.state == LeftoverState::Abandoned {
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
                name_of(&m.state).to_string(),
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
                "\nowners and grants ({})\n{access}\n",
                if this.grants.managed {
                    "verified against the store's roles"
                } else {
                    "reported, not verified: init-slate-db grant manages no roles here"
                }
            ));
        }
        out.push_str(&grants_text(&this.grants));
        out
    }
}

/// Who holds which of the store's roles, and what is wrong with its grants.
fn grants_text(grants: &Grants) -> String {
    let mut out = String::new();
    if !grants.roles.is_empty() {
        let roles = roles_table(&grants.roles, "MISSING");
        out.push_str(&format!("\nroles\n{roles}\n"));
    }
    if !grants.findings.is_empty() {
        out.push_str(if grants.managed {
            "\ngrants: drift\n"
        } else {
            "\ngrants (not verified until the store opts in with init-slate-db grant)\n"
        });
        for finding in &grants.findings {
            out.push_str(&format!("  - {finding}\n"));
        }
    }
    out
}

/// `2026-11-25T20:03:09.956942Z` as `2026-11-25 20:03:09Z`: the table needs no nanoseconds
/// (JSON keeps them).
fn to_seconds(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) if rfc3339.ends_with('Z') => format!("{date} {time}Z"),
        _ => rfc3339.to_string(),
    }
}

/// The replication lines of `status`: slots and the WAL they keep, subscriptions and lag.
fn replication_text(replication: &Replication) -> String {
    let mut out = String::new();
    if let Some(source) = &replication.source {
        out.push_str(&format!(
            "\npublication  {}\n",
            if source.publication {
                "slate_events (insert-only, events)"
            } else {
                "none"
            }
        ));
        for slot in &source.slots {
            out.push_str(&format!(
                "slot  {}: {}, {} bytes of WAL kept, wal_status {}\n",
                slot.slot,
                if slot.active {
                    "active"
                } else {
                    "INACTIVE (its subscriber is not connected)"
                },
                slot.retained_bytes.unwrap_or(0),
                slot.wal_status.as_deref().unwrap_or("?")
            ));
        }
        if source.max_slot_wal_keep_size_mb < 0 && !source.slots.is_empty() {
            out.push_str("warning: max_slot_wal_keep_size is unlimited: a replica that stops keeps all WAL from then on and can fill the source's disk; set a limit, or remove its slot (init-slate-db replicate --stop)\n");
        }
    }
    for sub in &replication.subscriptions {
        out.push_str(&format!(
            "\nsubscription  {}: {}, applied up to id {}, {}\n",
            sub.subscription,
            if sub.enabled {
                "enabled"
            } else {
                "DISABLED (an apply error stops it: see the server log)"
            },
            sub.last_id,
            match (sub.worker_running, sub.seconds_since_source) {
                (true, Some(s)) => format!("last word from the source {s:.1} s ago"),
                (true, None) => "worker running".to_string(),
                (false, _) => "no worker running".to_string(),
            }
        ));
    }
    out
}
