//! The JSON the console and the supervisor dashboard read besides CONTRACT.md's endpoints: the
//! console's lists from the configuration, the colleagues a conversation can be handed to, the
//! live conversations a supervisor may monitor, and today's figures. Roles are checked on every
//! handler; nothing here carries message text, an address or an IP.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::Json;
use helpline_router::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Staff;
use crate::errors::ApiError;
use crate::server::App;

/// Roles that use the console.
const CONSOLE: &[Role] = &[Role::Counsellor, Role::Supervisor, Role::Admin];
/// Roles that use the dashboard.
const SUPERVISION: &[Role] = &[Role::Supervisor, Role::Admin];

/// `GET /api/console-config`: close outcomes and tags, canned responses by language, the
/// languages and topics a conversation may be transferred to, and the limits the console checks
/// before sending.
pub async fn console_config(State(app): State<App>, staff: Staff) -> Result<Json<Value>, ApiError> {
    staff.require(CONSOLE)?;
    let config = app.router.config();
    let pages = &config.pages;
    let mut canned: BTreeMap<&str, Vec<&str>> = config
        .routing
        .languages
        .iter()
        .map(|l| (l.as_str(), Vec::new()))
        .collect();
    for item in &pages.canned_responses {
        if let Some((lang, text)) = item.split_once(':') {
            if let Some(list) = canned.get_mut(lang.trim()) {
                list.push(text.trim());
            }
        }
    }
    Ok(Json(json!({
        "outcomes": pages.outcomes,
        "tags": pages.tags,
        "canned": canned,
        "languages": config.routing.languages,
        "topics": config.routing.topics,
        "target_wait_s": pages.target_wait_s,
        "max_message_bytes": config.webchat.max_message_bytes,
        "offer_timeout_s": config.routing.offer_timeout_s,
    })))
}

/// `GET /api/colleagues`: who a counsellor can hand a conversation to by name (status and whether
/// they have room; no load figures, no conversations).
pub async fn colleagues(State(app): State<App>, staff: Staff) -> Result<Json<Value>, ApiError> {
    let me = staff.require(CONSOLE)?;
    let rows: Vec<Value> = app
        .router
        .counsellors()
        .await?
        .into_iter()
        .filter(|c| c.username != me.username)
        .map(|c| {
            json!({
                "username": c.username,
                "display_name": c.display_name,
                "status": c.status,
                "skills": c.skills,
                "has_room": c.status == "available" && c.load < c.capacity,
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

/// `GET /api/conversations`: every active conversation (supervisors), most urgent first.
pub async fn live(State(app): State<App>, staff: Staff) -> Result<Json<Value>, ApiError> {
    staff.require(SUPERVISION)?;
    let rows: Vec<Value> = app
        .router
        .live_conversations()
        .await?
        .into_iter()
        .map(|v| {
            json!({
                "conversation": v.conversation,
                "alias": v.alias,
                "channel": v.channel,
                "lang": v.lang,
                "urgency": v.urgency,
                "skills": v.skills,
                "counsellor": v.counsellor,
                "waited_s": v.waited_s,
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

#[derive(Deserialize)]
pub struct StatsQuery {
    /// Start of "today" in ms since the epoch, as the dashboard's clock sees its midnight.
    since: Option<i64>,
}

/// `GET /api/stats?since=MS`: today's figures (supervisors).
pub async fn stats(
    State(app): State<App>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    staff.require(SUPERVISION)?;
    let figures = app.router.figures(q.since).await?;
    Ok(Json(json!(figures)))
}
