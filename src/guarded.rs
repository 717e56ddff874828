//! The one runner for work that must be undone when it ends early: it listens for Ctrl-C and
//! SIGTERM beside the work, cancels the queries in flight on the server when a signal comes,
//! and hands the failure to the command's clean-up, which says what it undid.

use std::future::Future;

use crate::connect::Canceller;
use crate::error::Error;
use crate::shutdown::Shutdown;

/// Runs `work` on `context`. A signal ends it with [`Error::Interrupted`] at the step `step`
/// reports, after the queries of every `cancellers` connection are cancelled (so an open
/// transaction is rolled back on the server, not left running). Any failure then goes to
/// `clean_up`, with `context` back in hand, which returns the error to report (usually the
/// failure with [`Error::cleaned_up`]).
pub async fn guarded<C, T>(
    shutdown: &Shutdown,
    cancellers: &[Canceller],
    step: impl Fn() -> &'static str,
    context: &mut C,
    work: impl AsyncFnOnce(&mut C) -> Result<T, Error>,
    clean_up: impl AsyncFnOnce(&mut C, Error) -> Error,
) -> Result<T, Error> {
    let _guard = shutdown.guard();
    let outcome = interruptible(shutdown, &step, work(context)).await;
    match outcome {
        Ok(value) => Ok(value),
        Err(error) => {
            if error.is_interrupted() {
                for canceller in cancellers {
                    canceller.cancel_all().await;
                }
            }
            Err(clean_up(context, error).await)
        }
    }
}

async fn interruptible<T>(
    shutdown: &Shutdown,
    step: &impl Fn() -> &'static str,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        result = work => result,
        () = shutdown.requested() => Err(Error::Interrupted { step: step().into() }),
    }
}
