//! The break-glass HTTP API (docs/CONTRACT.md, additions): supervisors only. The router holds the
//! rules (dual control, time limit, one reveal); this module checks roles, origins and input and
//! turns refusals into the right status.

use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use helpline_router::break_glass::valid_request_id;
use helpline_router::{Role, RouterError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Staff;
use crate::errors::ApiError;
use crate::server::App;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    reason: String,
}

/// The status each refusal answers with.
fn refused(e: RouterError) -> ApiError {
    let status = match e.code() {
        "no_address" | "not_pending" | "not_approved" => StatusCode::CONFLICT,
        "expired" | "already_revealed" => StatusCode::GONE,
        "same_supervisor" => StatusCode::FORBIDDEN,
        "unknown_request" => StatusCode::NOT_FOUND,
        _ => return ApiError::from(e),
    };
    match e {
        RouterError::Refused(code, message) => ApiError::new(status, code, message),
        other => ApiError::from(other),
    }
}

fn request_id(id: &str) -> Result<(), ApiError> {
    if valid_request_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_request",
            "no such break-glass request",
        ))
    }
}

/// `POST /api/conversations/{id}/break-glass` with `{"reason"}`: 201 and the pending request.
pub async fn request(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(conv): Path<String>,
    body: Result<Json<Request>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let account = staff.require_acting(&app, &headers, &[Role::Supervisor])?;
    let Json(body) = body.map_err(|_| {
        ApiError::bad_request("send JSON {\"reason\": \"…\"}: why the child is in immediate danger")
    })?;
    if !crate::api::valid_conversation_id(&conv) {
        return Err(RouterError::UnknownConversation.into());
    }
    let view = app
        .router
        .break_glass_request(&conv, account, &body.reason)
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(json!(view))))
}

/// `GET /api/break-glass`: pending requests (to approve or deny) and the caller's approved ones.
pub async fn list(State(app): State<App>, staff: Staff) -> Result<Json<Value>, ApiError> {
    let account = staff.require(&[Role::Supervisor])?;
    Ok(Json(json!(app.router.break_glass_open(account).await?)))
}

/// `POST /api/break-glass/{request}/approve`: a second supervisor approves; 204.
pub async fn approve(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    decide(app, staff, headers, id, true).await
}

/// `POST /api/break-glass/{request}/deny`: a second supervisor denies; 204.
pub async fn deny(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    decide(app, staff, headers, id, false).await
}

async fn decide(
    app: App,
    staff: Staff,
    headers: HeaderMap,
    id: String,
    approve: bool,
) -> Result<StatusCode, ApiError> {
    let account = staff.require_acting(&app, &headers, &[Role::Supervisor])?;
    request_id(&id)?;
    app.router
        .break_glass_decide(&id, account, approve)
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/break-glass/{request}/reveal`: the requester sees the address, once:
/// `{"conversation","channel","address"}`.
pub async fn reveal(
    State(app): State<App>,
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let account = staff.require_acting(&app, &headers, &[Role::Supervisor])?;
    request_id(&id)?;
    let shown = app
        .router
        .break_glass_reveal(&id, account)
        .await
        .map_err(refused)?;
    // Shown once: no browser or proxy may keep a copy.
    Ok(([(CACHE_CONTROL, "no-store")], Json(json!(shown))))
}
