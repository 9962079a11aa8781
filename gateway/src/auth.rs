//! Staff authentication: the session cookie, the extractor that turns it into an account, the
//! login rate limit, and the `Origin` check of WebSocket upgrades and state-changing requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use helpline_router::{Account, Role};

use crate::errors::ApiError;
use crate::server::App;

/// The staff session cookie.
pub const COOKIE_NAME: &str = "helpline_session";

/// The session token in the request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value of a new session (`Secure` when the public URL is https).
pub fn session_cookie(token: &str, secure: bool, max_age_s: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    session_cookie("", secure, 0)
}

/// A logged-in staff member, extracted from the session cookie (401 without one).
pub struct Staff(pub Account);

impl Staff {
    /// Refuses (403) unless the account has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Account, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// [`Staff::require`] for an action that changes something (erase, block, break-glass): the
    /// request must also come from the helpline's own pages.
    pub fn require_acting(
        &self,
        app: &App,
        headers: &HeaderMap,
        roles: &[Role],
    ) -> Result<&Account, ApiError> {
        let account = self.require(roles)?;
        if !origin_allowed(app, headers, false) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_origin",
                "act from the helpline's own pages",
            ));
        }
        Ok(account)
    }
}

impl FromRequestParts<App> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = session_token(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let account = app.router.accounts().session(&token).await?;
        account.map(Staff).ok_or_else(ApiError::unauthorized)
    }
}

/// Whether the request's `Origin` is the public URL or an allowed origin. A request without
/// `Origin` passes only where browsers always send one (`require` false: plain API calls).
pub fn origin_allowed(app: &App, headers: &HeaderMap, require: bool) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return !require;
    };
    let server = &app.router.config().server;
    let trim = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    let origin = trim(origin);
    trim(&server.public_url) == origin || server.allowed_origins.iter().any(|o| trim(o) == origin)
}

/// How many times the per-username limit one source address may fail in a window.
const SOURCE_FACTOR: u32 = 4;

/// Failed-login counters per username and per source, kept in memory for one window only (the
/// source address is never written anywhere).
#[derive(Clone, Default)]
pub struct LoginLimiter {
    failures: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
}

impl LoginLimiter {
    /// The counters an attempt touches, each with its share of the limit: a source (an office
    /// behind one address) may fail more often than one username before it is stopped.
    fn keys(username: &str, source: Option<IpAddr>) -> Vec<(String, u32)> {
        let mut keys = vec![(format!("user:{username}"), 1)];
        if let Some(ip) = source {
            keys.push((format!("ip:{ip}"), SOURCE_FACTOR));
        }
        keys
    }

    /// Whether another attempt is allowed now.
    pub fn allowed(
        &self,
        username: &str,
        source: Option<IpAddr>,
        max: u32,
        window: Duration,
    ) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, since)| since.elapsed() < window);
        Self::keys(username, source).iter().all(|(k, factor)| {
            map.get(k)
                .is_none_or(|(n, _)| *n < max.saturating_mul(*factor))
        })
    }

    pub fn failed(&self, username: &str, source: Option<IpAddr>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (k, _) in Self::keys(username, source) {
            map.entry(k).or_insert((0, Instant::now())).0 += 1;
        }
    }

    pub fn succeeded(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=1; helpline_session=tok; b=2".parse().unwrap());
        assert_eq!(session_token(&h).as_deref(), Some("tok"));
    }

    #[test]
    fn limiter_blocks_after_max_failures_per_user() {
        let l = LoginLimiter::default();
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.allowed("ana", None, 3, w));
            l.failed("ana", None);
        }
        assert!(!l.allowed("ana", None, 3, w));
        assert!(l.allowed("ion", None, 3, w));
    }
}
