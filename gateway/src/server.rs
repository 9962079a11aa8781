//! The HTTP server of one node: routes, shared state, and the graceful shutdown that closes every
//! socket with 1012 (so clients resume on another node) and waits for in-flight work.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{any, get};
use axum::serve::ListenerExt;
use helpline_adapters::sms::Sms;
use helpline_adapters::telegram::Telegram;
use helpline_adapters::webchat::Webchat;
use helpline_config::Config;
use helpline_router::{Router, RouterError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::LoginLimiter;
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
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
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
    tracing::info!(listen = %addr, "helpline gateway ready");
    let service = routes(app).into_make_service_with_connect_info::<SocketAddr>();
    // Frames are small and latency matters: send each at once instead of waiting (Nagle) for the
    // peer's delayed acknowledgement of the previous one, which costs up to 40 ms a frame.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not turn Nagle off on a connection");
        }
    });
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("some sockets did not close within the shutdown grace time");
    }
    background.abort();
    served?;
    tracing::info!("helpline gateway stopped");
    Ok(())
}
