//! init-slate-db: create and initialize PostgreSQL event stores of the slate family.
//!
//! The binary is a thin shell around this library: [`cli::parse`] turns the command line into
//! validated settings, [`run`] carries them out, and [`report_error`] is the one place where an
//! [`Error`] becomes a message on stderr and an exit code.
//!
//! Modules, top to bottom (imports point only down): `cli` → `commands` → `output` → `store` →
//! `guarded` → `shutdown` → `logging`, and `connect`, `lock` → `retry` → `error` → `pg`,
//! `identifier`, `hooks`.

pub mod cli;
pub mod commands;
pub mod connect;
pub mod error;
pub mod guarded;
pub mod hooks;
pub mod identifier;
pub mod lock;
pub mod logging;
pub mod output;
pub mod pg;
pub mod retry;
pub mod shutdown;
pub mod store;

pub use error::Error;

use std::process::ExitCode;

use commands::{create, grant, lifecycle, list, replicate, restore, status, verify};
use shutdown::Shutdown;

/// Runs a parsed invocation to completion on a fresh Tokio runtime, listening for Ctrl-C and
/// SIGTERM once for the whole run.
pub fn run(invocation: cli::Invocation) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Internal(format!("cannot start the async runtime: {source}")))?;
    runtime.block_on(async move {
        let shutdown = Shutdown::install();
        invocation.warn_about_visible_password();
        let connection = invocation.connection;
        match invocation.command {
            cli::Command::Create(settings) => create::run(connection, settings, &shutdown).await,
            cli::Command::Status(settings) => status::run(connection, settings).await,
            cli::Command::Migrate(settings) => {
                lifecycle::migrate(connection, settings, &shutdown).await
            }
            cli::Command::Adopt(settings) => {
                lifecycle::adopt(connection, settings, &shutdown).await
            }
            cli::Command::Restore(settings) => restore::run(connection, *settings, &shutdown).await,
            cli::Command::Verify(settings) => verify::run(connection, *settings).await,
            cli::Command::List(settings) => list::run(connection, settings).await,
            cli::Command::Replicate(settings) => {
                replicate::run(connection, *settings, &shutdown).await
            }
            cli::Command::Grant(settings) => grant::run(connection, settings, &shutdown).await,
        }
    })
}

/// Prints `error` for a person (one line per problem, no backtrace) and returns its exit code.
pub fn report_error(error: &Error) -> ExitCode {
    ExitCode::from(logging::report_error(error))
}
