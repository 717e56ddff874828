//! The report of `replicate`.

use serde::Serialize;

use super::Report;

/// What `replicate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicateAction {
    /// The destination now follows the source.
    Following,
    /// It already did: nothing was changed.
    AlreadyFollowing,
    /// `--stop`: the subscription and the slot were removed.
    Stopped,
    /// Checks only.
    DryRun,
}

/// The result of `replicate`.
#[derive(Debug, Serialize)]
pub struct ReplicateReport {
    pub format_version: u32,
    /// `host:port/database`.
    pub source: String,
    pub destination: String,
    /// The subscription's name on the destination, and its slot's on the source.
    pub subscription: String,
    pub action: ReplicateAction,
    /// The destination database was created by this run.
    pub destination_created: bool,
    /// Events this run copied before subscribing.
    pub copied_events: u64,
    /// The last id before the slot: later events arrive through it.
    pub start_id: i64,
    /// The source's last id when the catch-up was checked.
    pub source_last_id: i64,
    /// The destination's last id then.
    pub destination_last_id: i64,
    /// The destination held the source's last id within `--catch-up-timeout`.
    pub caught_up: bool,
    pub duration_ms: u64,
}

impl Report for ReplicateReport {
    fn text(&self) -> String {
        let seconds = self.duration_ms as f64 / 1000.0;
        let catch_up = if self.caught_up {
            format!("caught up at id {}", self.destination_last_id)
        } else {
            format!(
                "at id {} of the source's {}, still catching up",
                self.destination_last_id, self.source_last_id
            )
        };
        match self.action {
            ReplicateAction::Following => format!(
                "{} follows {} (subscription {}{}): {} event(s) copied up to id {}, then streamed; {catch_up} in {seconds:.2} s\n",
                self.destination,
                self.source,
                self.subscription,
                if self.destination_created { ", destination created" } else { "" },
                self.copied_events,
                self.start_id
            ),
            ReplicateAction::AlreadyFollowing => format!(
                "{} already follows {} (subscription {}): {catch_up}\n",
                self.destination, self.source, self.subscription
            ),
            ReplicateAction::Stopped => format!(
                "{} no longer follows {}: subscription and slot {} removed\n",
                self.destination, self.source, self.subscription
            ),
            ReplicateAction::DryRun => format!(
                "dry run: {} could follow {} (subscription {}); nothing was created\n",
                self.destination, self.source, self.subscription
            ),
        }
    }
}
