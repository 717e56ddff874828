//! init-slate-db: create and initialize PostgreSQL event stores of the slate family.
//!
//! The binary is a thin shell around this library: [`cli::parse`] turns the command line into
//! validated settings, [`run`] carries them out, and [`report_error`] is the one place where an
//! [`Error`] becomes a message on stderr and an exit code.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod connect;
pub mod create;
pub mod error;
pub mod identifier;
pub mod layout;
pub mod lifecycle;
pub mod lock;
pub mod logging;
pub mod pg;
pub mod pgpass;
pub mod restore;
pub mod status;
pub mod tls;

pub use error::Error;

use std::process::ExitCode;

/// Runs a parsed invocation to completion on a fresh Tokio runtime.
pub fn run(invocation: cli::Invocation) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Internal(format!("cannot start the async runtime: {source}")))?;
    runtime.block_on(async move {
        invocation.warn_about_visible_password();
        let connection = invocation.connection;
        match invocation.command {
            cli::Command::Create(settings) => create::run(connection, settings).await,
            cli::Command::Status(settings) => status::run(connection, settings).await,
            cli::Command::Migrate(settings) => lifecycle::migrate(connection, settings).await,
            cli::Command::Adopt(settings) => lifecycle::adopt(connection, settings).await,
            cli::Command::Restore(settings) => restore::run(connection, *settings).await,
        }
    })
}

/// Prints `error` for a person (one line per problem, no backtrace) and returns its exit code.
pub fn report_error(error: &Error) -> ExitCode {
    logging::report_error(error);
    ExitCode::from(error.exit_code())
}
