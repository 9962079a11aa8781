//! Test 9 of the core issue: bad input is refused cleanly (CONTRACT.md sections 1, 3, 4, 5).
//! Oversize, binary, non-JSON and unknown frames get an `error` and the conversation goes on;
//! repeated bad frames close the socket with 1008; foreign origins and missing sessions cannot
//! open a WebSocket; the HTTP API answers 401/403/429 with JSON errors; `serve` against a Redis
//! nobody runs fails at once with one line. No input ever makes the gateway panic.

use std::time::Duration;

use helpline_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_millis(400);
const EVIL: &str = "https://evil.example";

fn no_panic(gw: &Gateway) {
    let log = gw.log_text();
    assert!(!log.contains("panicked"), "the gateway panicked:\n{log}");
}

/// Asserts an HTTP error body is `{"error":{"code","message"}}` with `code`.
fn json_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Sends a message frame and returns its `ack` (failing with the unmatched frames, e.g. an
/// `error`, when none comes).
async fn send_message(contact: &mut Contact, text: &str) -> anyhow::Result<Value> {
    let id = uuid();
    contact
        .client
        .send(json!({"type": "message", "text": text, "client_msg_id": id}))
        .await?;
    contact
        .client
        .expect_where("ack", SECS_5, |f| f["client_msg_id"] == id.as_str())
        .await
}

#[tokio::test]
async fn the_contact_socket_refuses_bad_frames_and_the_conversation_goes_on() -> anyhow::Result<()>
{
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    let mut contact = Contact::start(&gw, "ro").await?;

    // Exactly 4096 bytes is allowed; one more is too long.
    let ack = send_message(&mut contact, &"a".repeat(4096)).await?;
    assert!(ack["id"].as_str().is_some_and(|id| !id.is_empty()), "{ack}");

    let big = uuid();
    contact
        .client
        .send(json!({"type": "message", "text": "b".repeat(5000), "client_msg_id": big}))
        .await?;
    let err = contact.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "too_long", "{err}");
    contact.client.expect_none("ack", SHORT).await?;
    let ack = send_message(&mut contact, "a normal message after the long one").await?;
    assert_eq!(ack["type"], "ack");

    // A binary frame (a photo, a file) is refused.
    contact
        .client
        .send_raw(Message::Binary(vec![0xff, 0xd8, 0xff, 0xe0, 0, 16].into()))
        .await?;
    let err = contact.client.expect("error", SECS_5).await?;
    assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "{err}");
    send_message(&mut contact, "after the binary frame").await?;

    // Not JSON at all.
    contact
        .client
        .send_raw(Message::Text("hello, is anyone there?".into()))
        .await?;
    let err = contact.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "bad_frame", "{err}");
    // JSON, but not an object with a type.
    contact
        .client
        .send_raw(Message::Text("[1,2,3]".into()))
        .await?;
    let err = contact.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "bad_frame", "{err}");
    // A message frame without its client_msg_id.
    contact
        .client
        .send(json!({"type": "message", "text": "no id"}))
        .await?;
    let err = contact.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "bad_frame", "{err}");
    send_message(&mut contact, "after the bad frames").await?;

    // An unknown type.
    contact
        .client
        .send(json!({"type": "photo", "url": "http://example.com/x.jpg"}))
        .await?;
    let err = contact.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "unknown_type", "{err}");

    // Every refused frame was answered, none closed the socket, and the conversation still works.
    let ack = send_message(&mut contact, "still here").await?;
    assert_eq!(ack["type"], "ack");
    assert!(
        contact.client.closed(SHORT).await.is_err(),
        "the socket closed after a few bad frames"
    );
    contact.client.expect_none("ended", SHORT).await?;
    no_panic(&gw);
    Ok(())
}

#[tokio::test]
async fn more_than_five_bad_frames_in_a_row_close_the_contact_socket_with_1008(
) -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;

    // In a conversation: five refused frames are tolerated…
    let mut contact = Contact::start(&gw, "ro").await?;
    for i in 0..5 {
        contact
            .client
            .send_raw(Message::Text(format!("not json {i}").into()))
            .await?;
        let err = contact.client.expect("error", SECS_5).await?;
        assert_eq!(err["code"], "bad_frame", "{err}");
    }
    assert!(
        contact.client.closed(SHORT).await.is_err(),
        "closed after only five bad frames"
    );
    // …the sixth in a row closes the socket with 1008 (policy violation).
    contact
        .client
        .send_raw(Message::Text("not json 6".into()))
        .await?;
    let code = contact.client.closed(SECS_5).await?;
    assert_eq!(code, Some(1008), "close code after six bad frames");

    // A good frame in between resets the count.
    let mut contact = Contact::start(&gw, "ro").await?;
    for _ in 0..4 {
        contact
            .client
            .send_raw(Message::Binary(vec![1, 2, 3].into()))
            .await?;
        contact.client.expect("error", SECS_5).await?;
    }
    send_message(&mut contact, "a good one").await?;
    for _ in 0..5 {
        contact.client.send(json!({"type": "nonsense"})).await?;
        let err = contact.client.expect("error", SECS_5).await?;
        assert_eq!(err["code"], "unknown_type", "{err}");
    }
    assert!(
        contact.client.closed(SHORT).await.is_err(),
        "the strike count was not reset by a good frame"
    );

    // Before `start`: the same limit.
    let mut client = Client::contact(&gw).await?;
    for _ in 0..6 {
        client.send_raw(Message::Text("{".into())).await?;
    }
    let code = client.closed(SECS_5).await?;
    assert_eq!(
        code,
        Some(1008),
        "close code after six bad frames before start"
    );
    no_panic(&gw);
    Ok(())
}

#[tokio::test]
async fn websockets_refuse_foreign_origins_and_the_agent_socket_needs_a_session(
) -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    let cookie = login(&gw, "ana").await?;
    let origin = gw.origin();

    // The controls: the helpline's own origin opens both.
    assert_eq!(
        upgrade_status(&gw, "/ws/chat", Some(&origin), None).await?,
        101
    );
    assert_eq!(
        upgrade_status(&gw, "/ws/agent", Some(&origin), Some(&cookie)).await?,
        101
    );

    // Another site's page may not open either socket, even with a valid session.
    let chat = upgrade_status(&gw, "/ws/chat", Some(EVIL), None).await?;
    assert_eq!(chat, 403, "/ws/chat from {EVIL}");
    let agent = upgrade_status(&gw, "/ws/agent", Some(EVIL), Some(&cookie)).await?;
    assert_eq!(agent, 403, "/ws/agent from {EVIL}");
    // A look-alike origin (same host, other port) is another site too.
    let other_port = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(
        upgrade_status(&gw, "/ws/agent", Some(&other_port), Some(&cookie)).await?,
        403
    );

    // The staff socket without a session, or with a forged one.
    let agent = upgrade_status(&gw, "/ws/agent", Some(&origin), None).await?;
    assert_eq!(agent, 401, "/ws/agent without a session cookie");
    let forged = upgrade_status(
        &gw,
        "/ws/agent",
        Some(&origin),
        Some("helpline_session=forged"),
    )
    .await?;
    assert_eq!(forged, 401, "/ws/agent with a forged session cookie");
    no_panic(&gw);
    Ok(())
}

#[tokio::test]
async fn the_staff_socket_refuses_bad_frames_and_goes_on() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    let mut ana = Staff::connect(&gw, "ana").await?;

    ana.client
        .send_raw(Message::Text("accept everything".into()))
        .await?;
    let err = ana.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "bad_frame", "{err}");

    ana.client
        .send(json!({"type": "sudo", "conversation": "x"}))
        .await?;
    let err = ana.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "unknown_type", "{err}");

    ana.client.send(json!({"type": "accept"})).await?;
    let err = ana.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "bad_frame", "{err}");

    ana.client
        .send_raw(Message::Binary(vec![0, 1, 2].into()))
        .await?;
    let err = ana.client.expect("error", SECS_5).await?;
    assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "{err}");

    // A counsellor may not whisper (supervisors only).
    ana.client
        .send(json!({"type": "whisper", "conversation": "0123456789abcdef0123456789abcdef", "text": "psst"}))
        .await?;
    let err = ana.client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "forbidden", "{err}");

    // The socket still works.
    ana.available().await?;
    let mut contact = Contact::start(&gw, "ro").await?;
    let assigned = ana.take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], contact.conversation.as_str());
    contact.client.expect("assigned", SECS_5).await?;
    no_panic(&gw);
    Ok(())
}

#[tokio::test]
async fn the_api_refuses_by_role_and_without_a_session_with_json_errors() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    gw.add_user("ion", "counsellor", "ro", 2)?;

    let mut contact = Contact::start(&gw, "ro").await?;
    contact.say("Bună").await?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let assigned = ana.take_offer(SECS_5).await?;
    let conv = assigned["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(conv, contact.conversation);
    let transcript = format!("/api/conversations/{conv}/transcript");

    // The assigned counsellor reads it; another counsellor may not.
    let (status, _) = get(&gw, &transcript, &ana.cookie).await?;
    assert_eq!(status, 200);
    let ion = login(&gw, "ion").await?;
    let (status, body) = get(&gw, &transcript, &ion).await?;
    assert_eq!(
        status, 403,
        "another counsellor read the transcript: {body}"
    );
    json_error(&body, "forbidden");
    assert!(!body.to_string().contains("Bună"), "{body}");

    // The queue is for supervisors.
    let (status, body) = get(&gw, "/api/queue", &ion).await?;
    assert_eq!(status, 403, "a counsellor read the queue: {body}");
    json_error(&body, "forbidden");

    // No session: 401 with a JSON error, on /api/me and elsewhere.
    let http = reqwest::Client::new();
    for path in ["/api/me", "/api/queue", transcript.as_str()] {
        let res = http.get(format!("{}{path}", gw.base())).send().await?;
        assert_eq!(res.status(), 401, "{path} without a cookie");
        assert!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("json")),
            "{path}: not JSON"
        );
        let body: Value = res.json().await?;
        json_error(&body, "unauthorized");
    }
    let (status, body) = get(&gw, "/api/me", "helpline_session=forged").await?;
    assert_eq!(status, 401, "{body}");
    json_error(&body, "unauthorized");
    let (status, me) = get(&gw, "/api/me", &ion).await?;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "ion");
    no_panic(&gw);
    Ok(())
}

#[tokio::test]
async fn wrong_passwords_get_401_and_the_sixth_attempt_429() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;

    for i in 1..=5 {
        let (status, body) = try_login(&gw, "ana", "not the password").await?;
        assert_eq!(status, 401, "failure {i}: {body}");
        json_error(&body, "bad_credentials");
        assert!(!body.to_string().contains("not the password"), "{body}");
    }
    let (status, body) = try_login(&gw, "ana", "not the password").await?;
    assert_eq!(status, 429, "the sixth failure in a row: {body}");
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    // While limited, even the right password does not get in (else guessing would go on).
    let (status, body) = try_login(&gw, "ana", PASSWORD).await?;
    assert_eq!(status, 429, "the right password during the lockout: {body}");

    // An unknown username is a plain 401 too, not a different answer.
    let gw2 = Gateway::start(&redis, &[])?;
    let (status, body) = try_login(&gw2, "nobody-here", "whatever").await?;
    assert_eq!(status, 401, "{body}");
    json_error(&body, "bad_credentials");
    no_panic(&gw);
    no_panic(&gw2);
    Ok(())
}

#[test]
fn serve_against_a_redis_nobody_runs_fails_at_once_with_one_line() -> anyhow::Result<()> {
    let dead = free_port();
    let url = format!("redis://127.0.0.1:{dead}");
    let env = vec![
        ("HELPLINE_REDIS__URL".to_owned(), url.clone()),
        (
            "HELPLINE_SECURITY__MASTER_KEY".to_owned(),
            MASTER_KEY.to_owned(),
        ),
        (
            "HELPLINE_SERVER__LISTEN".to_owned(),
            format!("127.0.0.1:{}", free_port()),
        ),
        ("HELPLINE_LOG".to_owned(), "info".to_owned()),
    ];
    let (out, took) = run_cli_within(&env, &["serve"], Duration::from_secs(10))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "serve exited 0 without Redis; stderr: {err}"
    );
    assert!(
        took < Duration::from_secs(8),
        "serve took {took:?} to give up"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line on stderr, got:\n{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert!(
        err.contains(&dead.to_string()),
        "the error does not say which Redis: {err}"
    );
    assert!(!err.contains(MASTER_KEY), "the master key leaked: {err}");
    Ok(())
}
