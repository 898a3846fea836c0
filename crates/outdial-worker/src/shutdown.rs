//! Graceful shutdown (STYLE habit 2): binaries pass [`signal`] as the `shutdown` future of
//! their `run` functions; tests pass any future they control.

use tokio::signal::unix::{SignalKind, signal as unix_signal};

/// A future that resolves on SIGTERM (Kubernetes' stop signal) or SIGINT (Ctrl-C).
///
/// The handlers are installed when this is called, not when the future is first polled, so
/// a SIGTERM that arrives right after start-up (before the worker loop polls) still means
/// "shut down gracefully" instead of the default "die". Call it first thing in `main`, inside
/// the tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    let term = unix_signal(SignalKind::terminate());
    let int = unix_signal(SignalKind::interrupt());
    async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            tracing::warn!("signal handlers unavailable; shutdown only by process kill");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        }
    }
}
