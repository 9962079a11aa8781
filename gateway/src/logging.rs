//! Log spans: every HTTP request, and the WebSocket session it may upgrade to, runs in a span keyed
//! by a short random log id, so an operator can follow one chat's or one request's lines without the
//! logs saying who anyone is.
//!
//! The id is drawn fresh for each request and stored nowhere: it is never derived from a pseudonym,
//! an address or a cookie, so it links nothing beyond the lines of that one request or session. The
//! span holds the method and the route pattern (e.g. `/api/conversations/{id}/transcript`), never
//! the raw path, the query, a header or the client's address.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// A short random id for one request or session: 8 hex digits, enough to tell apart the sessions
/// of one day, too short to be a tracking key.
pub fn log_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Middleware: runs the request (and, through [`tracing::Span::current`], any socket it upgrades
/// to) inside a `request` span with a fresh log id.
pub async fn request_span(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        log_id = %log_id(),
        method = %req.method(),
        route = %route,
    );
    next.run(req).instrument(span).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_are_short_hex_and_differ() {
        let (a, b) = (log_id(), log_id());
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b, "two ids in a row were equal (1 in 4 billion)");
    }
}
