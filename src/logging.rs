//! Logging, set up in one place: human-readable lines on stderr, coloured only on a terminal.

use tracing_subscriber::EnvFilter;

use crate::error::Error;

/// The environment variable holding a tracing filter (e.g. `debug`, `init_slate_db=trace`).
pub const FILTER_ENV: &str = "INIT_SLATE_DB_LOG";

/// refinery and tokio-postgres log every statement batch and server notice at info: too chatty
/// for the user, who gets our own line per migration.
const DEFAULT_FILTER: &str = "info,refinery_core=warn,tokio_postgres=warn";

/// How to log.
#[derive(Debug, Clone)]
pub struct LoggingSettings {
    /// Colour codes: only when stderr is a terminal.
    pub ansi: bool,
}

/// Installs the global subscriber writing to stderr.
pub fn init(settings: &LoggingSettings) {
    let filter =
        EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(settings.ansi)
        .with_target(false)
        .try_init();
}

/// Prints the final error: one `error:` line per problem on stderr.
pub fn report_error(error: &Error) {
    for line in error.to_string().lines() {
        eprintln!("error: {line}");
    }
}
