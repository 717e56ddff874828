//! Logging, set up in one place: on stderr, human-readable lines (coloured only on a terminal)
//! or one JSON object per line; the final error of a failed run included.

use std::io::Write;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::error::Error;

/// The environment variable holding a tracing filter (e.g. `debug`, `init_slate_db=trace`).
pub const FILTER_ENV: &str = "INIT_SLATE_DB_LOG";

/// The environment variable that sets the log format when `--log-format` is absent.
pub const FORMAT_ENV: &str = "INIT_SLATE_DB_LOG_FORMAT";

/// refinery, tokio-postgres and rustls log every statement batch, notice or handshake at info:
/// too chatty for the user, who gets our own line per step.
const DEFAULT_FILTER: &str = "info,refinery_core=warn,tokio_postgres=warn,rustls=warn";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::VariantNames)]
#[strum(serialize_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line: timestamp, level, message, fields.
    Json,
}

impl LogFormat {
    /// Parses a `--log-format` value.
    pub fn parse(value: &str) -> Option<LogFormat> {
        value.parse().ok()
    }
}

/// How to log.
#[derive(Debug, Clone)]
pub struct LoggingSettings {
    /// Colour codes: only when stderr is a terminal (text only).
    pub ansi: bool,
    /// Text or JSON.
    pub format: LogFormat,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the global subscriber writing to stderr.
pub fn init(settings: &LoggingSettings) {
    let _ = FORMAT.set(settings.format);
    let filter =
        EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Text => builder
            .with_ansi(settings.ansi)
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}

/// Prints the final error: one `error:` line per problem on stderr, or in JSON one `ERROR`
/// object with the message and the exit code. Returns the exit code.
pub fn report_error(error: &Error) -> u8 {
    let code = error.exit_code();
    if FORMAT.get() == Some(&LogFormat::Json) {
        for line in error.to_string().lines() {
            tracing::error!(exit_code = code, "{line}");
        }
        return code;
    }
    // A closed stderr (`2>&1 | head -1`) must not turn an error into a panic.
    let mut stderr = std::io::stderr().lock();
    for line in error.to_string().lines() {
        let _ = writeln!(stderr, "error: {line}");
    }
    code
}

/// The variable that asks for a stack backtrace when the tool panics.
pub const BACKTRACE_ENV: &str = "INIT_SLATE_DB_BACKTRACE";

/// A panic is a bug of the tool: say so on one line, where it happened, and how to get a
/// backtrace. The backtrace itself only when [`BACKTRACE_ENV`] is `1` (`RUST_BACKTRACE` is
/// often set machine-wide, and a user did not ask for one by that).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::env::var(BACKTRACE_ENV).is_ok_and(|v| v == "1");
        let mut text = format!(
            "error: internal error: {message}{location}; this is a bug of init-slate-db {}, please report it{}\n",
            env!("CARGO_PKG_VERSION"),
            if backtrace { "" } else { " (set INIT_SLATE_DB_BACKTRACE=1 for a backtrace)" }
        );
        if backtrace {
            text.push_str(&std::backtrace::Backtrace::force_capture().to_string());
        }
        let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    }));
}
