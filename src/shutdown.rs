//! Ctrl-C and SIGTERM, listened for once per run.
//!
//! A step that knows how to undo its work holds a [`Guard`] and waits on
//! [`Shutdown::requested`] beside its work; it then cleans up and ends with exit 130. A signal
//! that arrives while no step holds a guard (nothing has been changed yet) ends the run at once
//! with exit 130 and one line saying so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::Error;

/// The run's view of the signals: cheap to clone, one listener behind all clones.
#[derive(Clone)]
pub struct Shutdown {
    requested: watch::Receiver<bool>,
    guards: Arc<AtomicUsize>,
}

/// While alive, a signal is left to the step holding it instead of ending the process.
pub struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shutdown {
    /// Starts listening for Ctrl-C and SIGTERM. Call once, inside the runtime.
    pub fn install() -> Shutdown {
        let (sender, requested) = watch::channel(false);
        let guards = Arc::new(AtomicUsize::new(0));
        let unguarded = guards.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = sender.send(true);
            if unguarded.load(Ordering::SeqCst) == 0 {
                let interrupted = Error::Interrupted {
                    step: "starting".into(),
                };
                let code = crate::logging::report_error(
                    &interrupted.cleaned_up(Some("nothing had been changed".into())),
                );
                std::process::exit(code.into());
            }
            // Keep the sender: a closed channel would read as "requested" to nobody.
            std::future::pending::<()>().await;
        });
        Shutdown { requested, guards }
    }

    /// Hands signals to the caller until the guard is dropped.
    pub fn guard(&self) -> Guard {
        self.guards.fetch_add(1, Ordering::SeqCst);
        Guard(self.guards.clone())
    }

    /// Resolves once Ctrl-C or SIGTERM has arrived (at once if it already has).
    pub async fn requested(&self) {
        let mut requested = self.requested.clone();
        if requested.wait_for(|&yes| yes).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
