//! The staff HTTP API (CONTRACT.md section 3): sessions, the account, the queue, the counsellors,
//! transcripts, the audit log and account unlocking. Roles are checked on every handler.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use helpline_router::store::AuditEntry;
use helpline_router::{AuditAction, AuditFilter, LoginOutcome, Role};
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
    /// The one-time code, for accounts with TOTP (CONTRACT.md section 3).
    #[serde(default)]
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
    let outcome = app
        .router
        .accounts()
        .login(&login.username, &login.password, login.totp.as_deref())
        .await?;
    let refused = |status, code, message: &str| Err(ApiError::new(status, code, message));
    match outcome {
        LoginOutcome::Session(token, account) => {
            app.logins.succeeded(&login.username);
            tracing::info!(username = %account.username, "staff login");
            let cookie = auth::session_cookie(&token, secure(&app), sec.session_max_s);
            Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
        }
        LoginOutcome::TotpRequired => refused(
            StatusCode::UNAUTHORIZED,
            "totp_required",
            "this account needs its one-time code: send \"totp\" with the 6 digits your \
             authenticator app shows",
        ),
        LoginOutcome::TotpNotEnrolled => refused(
            StatusCode::UNAUTHORIZED,
            "totp_not_enrolled",
            "this account's role needs a one-time code and none is enrolled yet; ask an \
             administrator to run `helpline user totp --username <you>`",
        ),
        LoginOutcome::Locked => refused(
            StatusCode::LOCKED,
            "locked",
            "this account is locked after too many failed logins; ask an administrator to \
             unlock it (`helpline user unlock`)",
        ),
        LoginOutcome::BadTotp { replayed } => {
            app.logins.failed(&login.username, source);
            let message = if replayed {
                "that one-time code was already used; wait for the next one"
            } else {
                "the one-time code is wrong; type the current one (and check the phone's clock)"
            };
            refused(StatusCode::UNAUTHORIZED, "bad_totp", message)
        }
        LoginOutcome::BadCredentials => {
            app.logins.failed(&login.username, source);
            refused(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong username or password",
            )
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
    conversation_id(&id)?;
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

/// Longest reason a supervisor may give for an erasure.
const MAX_REASON_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    reason: String,
}

/// `POST /api/conversations/{id}/erase` with `{"reason"}`: a supervisor or admin erases a live or
/// closed conversation at once (its data key first); audited with the reason, never content.
pub async fn erase(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<EraseRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let account = staff.require_acting(&app, &headers, &[Role::Supervisor, Role::Admin])?;
    conversation_id(&id)?;
    let Json(req) = body.map_err(|_| {
        ApiError::bad_request("send JSON {\"reason\": \"why the conversation is erased\"}")
    })?;
    let reason = req.reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters of one line, saying why the \
             conversation is erased (it goes to the audit log)"
        )));
    }
    let channel = app.router.erase(&id, &account.username, reason).await?;
    Ok(Json(
        json!({"conversation": id, "erased": true, "channel": channel}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<usize>,
    since: Option<i64>,
    until: Option<i64>,
    action: Option<String>,
    actor: Option<String>,
    conversation: Option<String>,
}

/// `GET /api/audit`: newest first, filtered by time (`since`, `until`: ms since the epoch),
/// `action`, `actor` and `conversation`; who, what, when, why; never text.
pub async fn audit(
    State(app): State<App>,
    staff: Staff,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    staff.require(&[Role::Auditor, Role::Admin])?;
    let Query(q) = query.map_err(|_| {
        ApiError::bad_request(
            "the audit filters are since and until (ms since the epoch), action, actor, \
             conversation and limit (1-1000)",
        )
    })?;
    if let Some(action) = q.action.as_deref() {
        if AuditAction::parse(action).is_none() {
            let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "unknown action {action:?}; use one of {}",
                known.join(", ")
            )));
        }
    }
    let filter = AuditFilter {
        since_ms: q.since,
        until_ms: q.until,
        action: q.action,
        actor: q.actor,
        conversation: q.conversation,
    };
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let entries = app.router.audit_log(&filter, limit).await?;
    Ok(Json(Value::Array(entries.iter().map(audit_json).collect())))
}

/// One audit entry as the API and `helpline audit export` show it.
pub fn audit_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "ts": helpline_router::conversation::rfc3339(e.ts_ms),
        "ts_ms": e.ts_ms,
        "actor": e.actor,
        "action": e.action,
        "conversation": e.conversation,
        "reason": e.reason,
    })
}

/// `POST /api/users/{username}/unlock`: an admin unlocks an account locked by failed logins.
pub async fn unlock_user(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    let admin = staff.require(&[Role::Admin])?;
    if !auth::origin_allowed(&app, &headers, false) {
        return Err(ApiError::forbidden());
    }
    app.router
        .accounts()
        .unlock(&username, &admin.username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
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
    let account = staff.require_acting(&app, &headers, &[Role::Supervisor, Role::Admin])?;
    conversation_id(&id)?;
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
pub(crate) fn valid_conversation_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 404 for a path id that cannot be a conversation's.
fn conversation_id(id: &str) -> Result<(), ApiError> {
    if valid_conversation_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such conversation",
        ))
    }
}

/// Any other `/api/…` path.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/CONTRACT.md",
    )
}
