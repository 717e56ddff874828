//! Progress of restore's copy: a bar on a terminal, log lines every five seconds otherwise.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use super::checks::BackupFacts;

/// A progress bar on a terminal (bytes, rate, ETA, rows estimated from the bytes), log lines
/// every five seconds otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    rows: i64,
    estimate: u64,
    started: Instant,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    pub fn new(facts: &BackupFacts) -> Progress {
        // Binary COPY carries about 30 bytes of framing per row beside the stored data.
        let estimate = (facts.table_bytes.max(1) as u64).max(facts.rows as u64 * 64);
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = ProgressBar::new(estimate);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            rows: facts.rows,
            estimate,
            started: Instant::now(),
            last_log: std::cell::Cell::new(Instant::now()),
        }
    }

    fn estimated_rows(&self, bytes: u64) -> i64 {
        ((bytes as f64 / self.estimate as f64).min(1.0) * self.rows as f64) as i64
    }

    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            if bytes > bar.length().unwrap_or(0) {
                bar.set_length(bytes);
            }
            bar.set_position(bytes);
            bar.set_message(format!("~{} rows", self.estimated_rows(bytes)));
        } else if self.last_log.get().elapsed() >= Duration::from_secs(5) {
            self.last_log.set(Instant::now());
            let seconds = self.started.elapsed().as_secs_f64();
            info!(
                bytes,
                approx_rows = self.estimated_rows(bytes),
                of_rows = self.rows,
                mb_per_second = format!("{:.1}", bytes as f64 / 1e6 / seconds),
                "copying"
            );
        }
    }

    pub fn finish(&self, rows: i64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if rows != self.rows {
            warn!(
                copied = rows,
                expected = self.rows,
                "row count differs from the backup's"
            );
        }
        info!(
            rows,
            bytes,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "copy finished"
        );
    }
}
