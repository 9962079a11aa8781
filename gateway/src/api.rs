//! The staff HTTP API (CONTRACT.md section 3): sessions, the account, the queue, the counsellors,
//! transcripts and the audit log. Roles are checked on every handler.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use helpline_router::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, Staff};
use crate::errors::ApiError;
use crate::server::App;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
    #[serde(default)]
    #[allow(dead_code)]
    totp: Option<String>,
}

fn secure(app: &App) -> bool {
    app.router
        .config()
        .server
        .public_url
        .starts_with("https://")
}

/// `POST /api/session`: 204 and a cookie, 401 on bad credentials, 429 when rate-limited.
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    if !auth::origin_allowed(&app, &headers, false) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "this origin may not log in here",
        ));
    }
    let Json(login) = body.map_err(|_| {
        ApiError::bad_request("send JSON {\"username\": \"…\", \"password\": \"…\"}")
    })?;
    let sec = &app.router.config().security;
    let window = Duration::from_secs(sec.login_window_s);
    let source = Some(app.sockets.source(peer, &headers));
    if !app
        .logins
        .allowed(&login.username, source, sec.login_attempts, window)
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many failed logins; wait {} minutes",
                sec.login_window_s.div_ceil(60)
            ),
        ));
    }
    match app
        .router
        .accounts()
        .login(&login.username, &login.password)
        .await?
    {
        Some((token, account)) => {
            app.logins.succeeded(&login.username);
            tracing::info!(username = %account.username, "staff login");
            let cookie = auth::session_cookie(&token, secure(&app), sec.session_max_s);
            Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
        }
        None => {
            app.logins.failed(&login.username, source);
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong username or password",
            ))
        }
    }
}

/// `DELETE /api/session`.
pub async fn logout(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = auth::session_token(&headers) {
        app.router.accounts().logout(&token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, auth::cleared_cookie(secure(&app)))],
    )
        .into_response())
}

/// `GET /api/me`.
pub async fn me(staff: Staff) -> Json<Value> {
    let a = staff.0;
    Json(json!({
        "username": a.username,
        "role": a.role,
        "display_name": a.display_name,
        "skills": a.skills,
        "capacity": a.capacity,
    }))
}

/// `GET /api/queue`: waiting conversations, never text.
pub async fn queue(State(app): State<App>, staff: Staff) -> Result<Json<Value>, ApiError> {
    staff.require(&[Role::Supervisor, Role::Admin])?;
    let queue = app.router.queue().await?;
    let rows: Vec<Value> = queue
        .into_iter()
        .map(|v| {
            json!({
                "conversation": v.conversation,
                "alias": v.alias,
                "channel": v.channel,
                "lang": v.lang,
                "urgency": v.urgency,
                "skills": v.skills,
                "waited_s": v.waited_s,
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

/// `GET /api/counsellors`.
pub async fn counsellors(State(app): State<App>, staff: Staff) -> Result<Json<Value>, ApiError> {
    staff.require(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(json!(app.router.counsellors().await?)))
}

#[derive(Deserialize)]
pub struct TranscriptQuery {
    reason: Option<String>,
}

/// `GET /api/conversations/{id}/transcript`: the assigned counsellor or a supervisor; audited.
pub async fn transcript(
    State(app): State<App>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<TranscriptQuery>,
) -> Result<Json<Value>, ApiError> {
    let account = staff.require(&[Role::Counsellor, Role::Supervisor, Role::Admin])?;
    if !valid_conversation_id(&id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such conversation",
        ));
    }
    let reason = q.reason.unwrap_or_else(|| "viewed".into());
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let messages = app.router.transcript(&id, account, &reason).await?;
    // A message reads the same in the transcript as in the staff socket's frames.
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| crate::staff::frames::message_json(&id, m))
        .collect();
    Ok(Json(json!({"conversation": id, "messages": messages})))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
}

/// `GET /api/audit`: newest first; who, what, when, why; never text.
pub async fn audit(
    State(app): State<App>,
    staff: Staff,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(&[Role::Auditor, Role::Admin])?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let entries = app.router.audit_log(limit).await?;
    let rows: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "ts": helpline_router::conversation::rfc3339(e.ts_ms),
                "actor": e.actor,
                "action": e.action,
                "conversation": e.conversation,
                "reason": e.reason,
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

#[derive(Deserialize)]
pub struct Block {
    minutes: u64,
    reason: String,
}

/// `POST /api/conversations/{id}/block`: a supervisor keeps the conversation's contact from starting
/// new conversations for `minutes`; audited. Answers `{"conversation","blocked_s"}`.
pub async fn block(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<Block>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let account = staff.require(&[Role::Supervisor, Role::Admin])?;
    if !auth::origin_allowed(&app, &headers, false) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "this origin may not block contacts",
        ));
    }
    if !valid_conversation_id(&id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such conversation",
        ));
    }
    let Json(block) = body.map_err(|_| {
        ApiError::bad_request(format!(
            "send JSON {{\"minutes\": 1 to {}, \"reason\": \"…\"}}",
            helpline_router::MAX_BLOCK_MINUTES
        ))
    })?;
    let seconds = app
        .router
        .block(&account.username, &id, block.minutes, &block.reason)
        .await?;
    Ok(Json(json!({"conversation": id, "blocked_s": seconds})))
}

/// A conversation id as the router makes them: 32 hex digits.
fn valid_conversation_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Any other `/api/…` path.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/CONTRACT.md",
    )
}
