//! The HTTP server of one node: routes, shared state, the accept loop, and the graceful shutdown
//! that closes every socket with 1012 (so clients resume on another node) and waits for in-flight
//! work.
//!
//! The accept loop is hyper's HTTP/1 connection builder rather than `axum::serve`, because only the
//! builder bounds how long a client may take to send a request's head (`limits.header_timeout_s`,
//! against slowloris) and how big that head may be (`limits.header_bytes`).

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::routing::{any, get};
use helpline_adapters::sms::Sms;
use helpline_adapters::telegram::Telegram;
use helpline_adapters::webchat::Webchat;
use helpline_config::{Config, Limits};
use helpline_router::{Router, RouterError};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::LoginLimiter;
use crate::sources::Sockets;
use crate::{api, chat, pages, probes, staff};

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub router: Router,
    pub webchat: Webchat,
    /// The Telegram channel, when `channels.telegram.token` is set.
    pub telegram: Option<Telegram>,
    /// The SMS channel, when `channels.sms.provider` is set.
    pub sms: Option<Sms>,
    /// Cancelled on SIGTERM: sockets close with 1012, `/readyz` turns 503.
    pub shutdown: CancellationToken,
    /// Every socket task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    pub logins: LoginLimiter,
    /// Open WebSockets per source and per node (`limits.sockets_per_source`, `max_sockets`).
    pub sockets: Sockets,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Router(#[from] RouterError),
    #[error("cannot listen on {addr}: {source}; is another process using it? (server.listen)")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

fn routes(app: App) -> axum::Router {
    axum::Router::new()
        .route("/", get(pages::chat))
        .route("/widget.js", get(pages::widget))
        .route("/console", get(pages::console))
        .route("/supervisor", get(pages::supervisor))
        .route("/static/{name}", get(pages::asset))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .route(
            "/api/session",
            axum::routing::post(api::login).delete(api::logout),
        )
        .route("/api/me", get(api::me))
        .route("/api/queue", get(api::queue))
        .route("/api/counsellors", get(api::counsellors))
        .route("/api/conversations/{id}/transcript", get(api::transcript))
        .route(
            "/api/conversations/{id}/erase",
            axum::routing::post(api::erase),
        )
        .route(
            "/api/conversations/{id}/block",
            axum::routing::post(api::block),
        )
        .route("/api/audit", get(api::audit))
        .route(
            "/api/users/{username}/unlock",
            axum::routing::post(api::unlock_user),
        )
        .route(
            "/api/conversations/{id}/break-glass",
            axum::routing::post(crate::break_glass::request),
        )
        .route("/api/break-glass", get(crate::break_glass::list))
        .route(
            "/api/break-glass/{request}/approve",
            axum::routing::post(crate::break_glass::approve),
        )
        .route(
            "/api/break-glass/{request}/deny",
            axum::routing::post(crate::break_glass::deny),
        )
        .route(
            "/api/break-glass/{request}/reveal",
            axum::routing::post(crate::break_glass::reveal),
        )
        .route("/api/console-config", get(crate::dashboard::console_config))
        .route("/api/colleagues", get(crate::dashboard::colleagues))
        .route("/api/conversations", get(crate::dashboard::live))
        .route("/api/stats", get(crate::dashboard::stats))
        .route("/api/{*rest}", any(api::not_found))
        .route("/ws/chat", get(chat::upgrade))
        .route("/ws/agent", get(staff::upgrade))
        .route(
            "/webhooks/telegram",
            axum::routing::post(crate::webhooks::telegram),
        )
        .route(
            crate::webhooks::TWILIO_PATH,
            axum::routing::post(crate::webhooks::sms_twilio),
        )
        .layer(axum::middleware::from_fn(crate::logging::request_span))
        .with_state(app)
}

/// Runs a gateway node until `shutdown` is cancelled, then drains within `server.shutdown_grace_s`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let addr = config.server.listen.clone();
    let grace = Duration::from_secs(config.server.shutdown_grace_s);
    let router = Router::connect(config).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let tracker = TaskTracker::new();
    let telegram = Telegram::from_router(&router)?;
    let sms = Sms::from_router(&router)?;
    let app = App {
        webchat: Webchat::new(router.clone()),
        telegram: telegram.clone(),
        sms: sms.clone(),
        router: router.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        logins: LoginLimiter::default(),
        sockets: Sockets::new(&router.config().limits),
    };
    let background = {
        let (router, token) = (router.clone(), shutdown.clone());
        tracker.spawn(async move { router.run_background(token).await })
    };
    if let Some(telegram) = telegram {
        let token = shutdown.clone();
        tracker.spawn(async move { telegram.run(token).await });
    }
    if let Some(sms) = sms {
        let token = shutdown.clone();
        tracker.spawn(async move { sms.run(token).await });
    }
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(listen = %addr, workers, "helpline gateway ready");
    let limits = router.config().limits.clone();
    accept(listener, routes(app), &limits, &shutdown, &tracker).await;
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("some sockets did not close within the shutdown grace time");
    }
    background.abort();
    tracing::info!("helpline gateway stopped");
    Ok(())
}

/// Serves every connection until `shutdown`; each runs as a tracked task, so the drain waits for it.
async fn accept(
    listener: tokio::net::TcpListener,
    routes: axum::Router,
    limits: &Limits,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_s))
        .max_buf_size(limits.header_bytes);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Frames are small and latency matters: send each at once instead of waiting
                    // (Nagle) for the peer's delayed acknowledgement of the previous one, which
                    // costs up to 40 ms a frame.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not turn Nagle off on a connection");
                    }
                    (stream, peer)
                }
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: the listener
                    // itself is fine, so wait a moment and go on.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let routes = routes.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // axum's router is always ready, so it is called without `poll_ready`.
            tower_service::Service::call(&mut routes.clone(), request)
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                // Timeouts, oversized heads and resets: the client's doing, never its address.
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
}
