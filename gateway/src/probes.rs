//! Probes and metrics: `/healthz` (the process runs), `/readyz` (Redis answers and work is
//! accepted), `/metrics` (Prometheus text format 0.0.4).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use crate::server::App;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

pub async fn readyz(State(app): State<App>) -> impl IntoResponse {
    if !app.shutdown.is_cancelled() && app.router.ready().await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.router.telemetry().render(),
    )
}
