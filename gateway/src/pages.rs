//! The three web pages, the widget script and their static files, embedded in the binary, with the
//! security headers every page carries.
//!
//! The pages are plain HTML, CSS and ES modules: no build step, nothing from another site. What a
//! page needs from the configuration (the quick-exit address, the phone numbers, the languages) is
//! written into it as a JSON data block that no browser executes; nothing else is ever templated,
//! and text from contacts never passes through here.

use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::App;

/// Everything but the frame ancestors: scripts, styles and sockets from this origin only, no
/// inline script or style, no plugins, no `<base>` games.
const CSP_BASE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The static files under `/static/`, by name.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../static/app.css")),
    ("chat.css", CSS, include_str!("../static/chat.css")),
    ("staff.css", CSS, include_str!("../static/staff.css")),
    (
        "dashboard.css",
        CSS,
        include_str!("../static/dashboard.css"),
    ),
    ("dom.js", JS, include_str!("../static/dom.js")),
    ("i18n.js", JS, include_str!("../static/i18n.js")),
    ("thread.js", JS, include_str!("../static/thread.js")),
    ("socket.js", JS, include_str!("../static/socket.js")),
    ("chat.js", JS, include_str!("../static/chat.js")),
    ("staff.js", JS, include_str!("../static/staff.js")),
    ("sms.js", JS, include_str!("../static/sms.js")),
    ("console.js", JS, include_str!("../static/console.js")),
    ("dialogs.js", JS, include_str!("../static/dialogs.js")),
    ("supervisor.js", JS, include_str!("../static/supervisor.js")),
    ("breakglass.js", JS, include_str!("../static/breakglass.js")),
];

/// The headers of every page and file: the CSP with `frame_ancestors`, no sniffing, no referrer,
/// no caching (a shared family computer keeps no trace of the chat in its cache).
fn headers(content_type: &'static str, frame_ancestors: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(CONTENT_TYPE, content_type);
    put(
        CONTENT_SECURITY_POLICY,
        &format!("{CSP_BASE}; frame-ancestors {frame_ancestors}"),
    );
    put(X_CONTENT_TYPE_OPTIONS, "nosniff");
    put(REFERRER_POLICY, "no-referrer");
    put(CACHE_CONTROL, "no-store");
    put(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    if frame_ancestors == "'none'" {
        put(X_FRAME_OPTIONS, "DENY");
        put(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        );
    }
    h
}

/// JSON that is safe inside a `<script type="application/json">` block and a JS literal: no
/// `<`, `>` or `&` (so no `</script>`), no line separators.
fn embeddable(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// What the contact page and the widget need to know.
fn contact_config(app: &App) -> String {
    let config = app.router.config();
    let pages = &config.pages;
    embeddable(&json!({
        "exit_url": pages.exit_url,
        "helpline_number": pages.helpline_number,
        "emergency_number": pages.emergency_number,
        "languages": config.routing.languages,
        "topics": config.routing.topics,
        "max_message_bytes": config.webchat.max_message_bytes,
    }))
}

/// `GET /`: the contact's chat; the configured widget hosts may frame it.
pub async fn chat(State(app): State<App>) -> Response {
    let hosts = &app.router.config().pages.widget_hosts;
    let ancestors = std::iter::once("'self'")
        .chain(hosts.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let body = include_str!("../static/chat.html").replace("{{CONFIG}}", &contact_config(&app));
    (headers(HTML, &ancestors), body).into_response()
}

/// `GET /console`.
pub async fn console() -> Response {
    (
        headers(HTML, "'none'"),
        include_str!("../static/console.html"),
    )
        .into_response()
}

/// `GET /supervisor`.
pub async fn supervisor() -> Response {
    (
        headers(HTML, "'none'"),
        include_str!("../static/supervisor.html"),
    )
        .into_response()
}

/// `GET /widget.js`: runs on a helpline's own site, so it carries its settings with it.
pub async fn widget(State(app): State<App>) -> Response {
    let body = include_str!("../static/widget.js").replace("{{CONFIG}}", &contact_config(&app));
    (headers(JS, "'none'"), body).into_response()
}

/// `GET /static/{name}`: one of the embedded files, else 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (headers(content_type, "'none'"), *body).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            headers("text/plain; charset=utf-8", "'none'"),
            "no such file",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_block() {
        let v = json!({"exit_url": "https://x.org/</script><script>alert(1)</script>&\u{2028}"});
        let out = embeddable(&v);
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn no_script_parses_html() {
        let sinks = [
            ".innerHTML",
            ".outerHTML",
            "insertAdjacentHTML(",
            "document.write(",
        ];
        let widget = include_str!("../static/widget.js");
        for (name, _, body) in ASSETS.iter().chain([&("widget.js", JS, widget)]) {
            for sink in sinks {
                assert!(!body.contains(sink), "{name} uses {sink}");
            }
        }
    }

    #[test]
    fn every_static_file_is_served() {
        let pages = ["chat.html", "console.html", "supervisor.html", "widget.js"];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let served =
                pages.contains(&name.as_str()) || ASSETS.iter().any(|(n, _, _)| *n == name);
            assert!(served, "gateway/static/{name} is not in pages.rs ASSETS");
        }
    }

    #[test]
    fn every_page_forbids_inline_script_and_sniffing() {
        let h = headers(HTML, "'self'");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"));
        assert!(csp.ends_with("frame-ancestors 'self'"));
        assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[REFERRER_POLICY], "no-referrer");
        assert_eq!(h[CACHE_CONTROL], "no-store");
    }
}
