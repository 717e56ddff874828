//! Every wait-and-try-again of the tool, with its policy named here: how long the first pause
//! is, how fast it grows, and when to stop. The delays come from `backon`'s exponential
//! backoff; [`Backoff`] adds the deadline that the commands' timeouts set.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

const fn exponential(first_ms: u64, max_ms: u64) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(first_ms))
        .with_max_delay(Duration::from_millis(max_ms))
        .with_factor(2.0)
        .without_max_times()
}

/// Polling for another run's advisory lock or temporary database: 100 ms, doubling to 1 s,
/// until `--lock-timeout`.
pub const WAIT_FOR_OTHER_RUN: ExponentialBuilder = exponential(100, 1_000);

/// Connecting to a server that refuses or is starting up: 250 ms, doubling to 2 s, for `--wait`.
pub const CONNECT: ExponentialBuilder = exponential(250, 2_000);

/// Removing what a failed run created, across a lost connection: 250 ms, doubling to 2 s,
/// for [`CLEANUP_DEADLINE`].
pub const CLEANUP: ExponentialBuilder = exponential(250, 2_000);

/// How long clean-up keeps trying to reach the server.
pub const CLEANUP_DEADLINE: Duration = Duration::from_secs(30);

/// A migration whose table lock was not granted within `--ddl-lock-timeout`: 250 ms, doubling
/// to 5 s, until `--lock-timeout`. Long pauses let the writers it queued behind drain.
pub const MIGRATION_LOCK: ExponentialBuilder = exponential(250, 5_000);

/// Renaming a finished store while our own last session in it is still exiting: every 200 ms,
/// 25 times.
pub const PUBLISH_IN_USE: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_millis(200))
    .with_factor(1.0)
    .with_max_times(25);

/// An audit that met another session's DDL ("cache lookup failed", a vanished table): 200 ms,
/// doubling, 5 times.
pub const AUDIT_DURING_DDL: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_millis(2_000))
    .with_factor(2.0)
    .with_max_times(5);

/// A policy's delays, cut off at a deadline: each pause ends at the deadline at the latest, and
/// none starts after it.
pub struct Backoff {
    delays: ExponentialBackoff,
    started: Instant,
    deadline: Option<Instant>,
    attempt: u32,
}

impl Backoff {
    /// Starts `policy` now, with `budget` as the deadline (`None`: the policy's own count).
    pub fn new(policy: ExponentialBuilder, budget: Option<Duration>) -> Backoff {
        let started = Instant::now();
        Backoff {
            delays: policy.build(),
            started,
            deadline: budget.and_then(|b| started.checked_add(b)),
            attempt: 1,
        }
    }

    /// The pause before the next attempt, or `None` when the policy or the deadline is spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let delay = self.delays.next()?;
        let delay = match self.deadline {
            Some(deadline) => {
                let left = deadline.checked_duration_since(Instant::now())?;
                if left.is_zero() {
                    return None;
                }
                delay.min(left)
            }
            None => delay,
        };
        self.attempt += 1;
        Some(delay)
    }

    /// Sleeps for the next pause; `false` (at once) when there is none.
    pub async fn pause(&mut self) -> bool {
        match self.next_delay() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }

    /// The attempt about to be made, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Time since the policy started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_policy_maximum() {
        let mut backoff = Backoff::new(WAIT_FOR_OTHER_RUN, None);
        let delays: Vec<u128> = (0..6)
            .map(|_| backoff.next_delay().unwrap().as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn a_counted_policy_stops_after_its_count() {
        let mut backoff = Backoff::new(AUDIT_DURING_DDL, None);
        assert_eq!((0..10).filter_map(|_| backoff.next_delay()).count(), 5);
    }

    #[test]
    fn no_pause_outlasts_the_deadline() {
        let mut backoff = Backoff::new(MIGRATION_LOCK, Some(Duration::from_millis(300)));
        let first = backoff.next_delay().unwrap();
        assert!(first <= Duration::from_millis(300));
        let mut spent = Backoff::new(MIGRATION_LOCK, Some(Duration::ZERO));
        assert_eq!(spent.next_delay(), None);
    }
}
