//! The shutdown signal: Ctrl-C (SIGINT) or SIGTERM, whichever comes first.

use std::future::Future;

/// Starts listening for SIGINT and SIGTERM at once (so a signal that
/// arrives during start-up is not missed) and returns a future that resolves
/// when one arrives.
///
/// # Panics
/// Outside a tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (Ok(mut interrupt), Ok(mut terminate)) = (interrupt, terminate) else {
                tracing::error!("cannot listen for SIGINT/SIGTERM; stop the process with SIGKILL");
                return std::future::pending().await;
            };
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("Ctrl-C received, shutting down"),
                _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C received, shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    }
}
