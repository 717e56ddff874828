//! Entry point: parse, set up logging, run, turn the outcome into an exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    let invocation = match init_slate_db::cli::parse() {
        Ok(Some(invocation)) => invocation,
        Ok(None) => return ExitCode::SUCCESS, // --help or --version was printed
        Err(error) => return init_slate_db::report_error(&error),
    };
    init_slate_db::logging::init(&invocation.logging);
    match init_slate_db::run(invocation) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => init_slate_db::report_error(&error),
    }
}
