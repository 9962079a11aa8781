//! The three web pages and the widget script, embedded in the binary, with security headers.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::IntoResponse;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'";

fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}

pub async fn chat() -> impl IntoResponse {
    page(
        "text/html; charset=utf-8",
        include_str!("../static/chat.html"),
    )
}

pub async fn console() -> impl IntoResponse {
    page(
        "text/html; charset=utf-8",
        include_str!("../static/console.html"),
    )
}

pub async fn supervisor() -> impl IntoResponse {
    page(
        "text/html; charset=utf-8",
        include_str!("../static/supervisor.html"),
    )
}

pub async fn widget() -> impl IntoResponse {
    page(
        "text/javascript; charset=utf-8",
        include_str!("../static/widget.js"),
    )
}
