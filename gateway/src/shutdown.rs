//! The shutdown signal: SIGTERM or SIGINT cancel one token that every task watches.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGTERM or SIGINT.
pub async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down: closing sockets with 1012 so clients resume elsewhere");
    token.cancel();
}
