//! Entry point: parse, set up logging, run, turn the outcome into an exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    init_slate_db::logging::install_panic_hook();
    let parsed = init_slate_db::cli::parse();
    init_slate_db::logging::init(&parsed.logging);
    let invocation = match parsed.outcome {
        Ok(Some(invocation)) => invocation,
        Ok(None) => return ExitCode::SUCCESS, // help, version, completions or man page printed
        Err(error) => return init_slate_db::report_error(&error),
    };
    match init_slate_db::run(invocation) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => init_slate_db::report_error(&error),
    }
}
