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

/// `helpline serve` against `url`: what it printed on stderr, and how long it took to give up.
fn serve_against(url: &str) -> anyhow::Result<(String, Duration)> {
    let env = vec![
        ("HELPLINE_REDIS__URL".to_owned(), url.to_owned()),
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
        "serve exited 0 without a usable Redis; stderr: {err}"
    );
    Ok((err, took))
}

#[test]
fn serve_against_a_redis_nobody_runs_fails_at_once_with_one_line() -> anyhow::Result<()> {
    let dead = free_port();
    let (err, took) = serve_against(&format!("redis://127.0.0.1:{dead}"))?;
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

/// A server that answers every command as Redis 5 answers `HELLO` (this machine has no Redis 5):
/// the gateway speaks RESP3, so it must say that Redis is too old, not that it is unreachable.
#[test]
fn serve_against_a_redis_older_than_6_says_to_upgrade_it() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    // One answer per command: each starts a line with `*`.
                    let read = &buf[..n];
                    let commands = read.windows(3).filter(|w| w == b"\r\n*").count()
                        + usize::from(read.starts_with(b"*"));
                    let refusal =
                        "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n";
                    if conn.write_all(refusal.repeat(commands).as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (err, took) = serve_against(&format!("redis://127.0.0.1:{port}"))?;
    assert!(
        took < Duration::from_secs(8),
        "serve took {took:?} to give up"
    );
    assert!(
        err.contains("needs Redis 6 or newer") && err.contains(&port.to_string()),
        "the error does not say to upgrade that Redis: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    Ok(())
}

/// Issue 7: deeply nested, truncated, invalid UTF-8 and oversized frames on both sockets. A deep
/// or truncated frame gets an `error` and the socket goes on; a frame the WebSocket layer itself
/// refuses (invalid UTF-8 in a text frame, a frame past the size cap) ends only that socket; the
/// node and everyone else carry on. About 2 s.
#[tokio::test]
async fn deep_truncated_invalid_and_oversized_frames_never_hurt_the_node() -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    let mut contact = Contact::start(&gw, "ro").await?;

    let deep = format!("{}{}", "[".repeat(64), "]".repeat(64));
    let deep_message = format!(
        r#"{{"type":"message","client_msg_id":"d1","text":"x","extra":{}{}}}"#,
        "{\"a\":".repeat(40),
        "1".to_owned() + &"}".repeat(40)
    );
    for frame in [deep.as_str(), deep_message.as_str()] {
        contact.client.send_raw(Message::Text(frame.into())).await?;
        let err = contact.client.expect("error", SECS_5).await?;
        assert_eq!(err["code"], "too_deep", "{err}");
        assert!(
            err["message"].as_str().is_some_and(|m| m.contains("16")),
            "{err}"
        );
        ana.client.send_raw(Message::Text(frame.into())).await?;
        let err = ana.client.expect("error", SECS_5).await?;
        assert_eq!(err["code"], "too_deep", "{err}");
    }
    // Truncated in the middle of a string, and in the middle of a frame.
    for truncated in [r#"{"type":"message","text":"I need hel"#, r#"{"type":"#] {
        contact
            .client
            .send_raw(Message::Text(truncated.into()))
            .await?;
        let err = contact.client.expect("error", SECS_5).await?;
        assert_eq!(err["code"], "bad_frame", "{err}");
        ana.client.send_raw(Message::Text(truncated.into())).await?;
        let err = ana.client.expect("error", SECS_5).await?;
        assert_eq!(err["code"], "bad_frame", "{err}");
    }
    send_message(&mut contact, "after the deep and truncated frames").await?;

    // A text frame that is not UTF-8: the WebSocket layer refuses it and only this socket ends.
    let mut broken = Contact::start(&gw, "ro").await?;
    let payload =
        b"{\"type\":\"message\",\"text\":\"\xff\xfe\xc3\",\"client_msg_id\":\"u\"}".to_vec();
    let frame = Frame::from_payload(
        FrameHeader {
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        },
        payload.into(),
    );
    broken.client.send_raw(Message::Frame(frame)).await?;
    broken.client.closed(SECS_5).await?;

    // A frame far past the size cap (4096 bytes of text, some 25 KiB of frame).
    let mut huge = Contact::start(&gw, "ro").await?;
    huge.client
        .send_raw(Message::Text("x".repeat(200_000).into()))
        .await?;
    huge.client.closed(SECS_5).await?;
    let mut huge_staff = Staff::connect(&gw, "ana").await?;
    huge_staff
        .client
        .send_raw(Message::Text("y".repeat(200_000).into()))
        .await?;
    huge_staff.client.closed(SECS_5).await?;

    // Everyone else carries on.
    send_message(&mut contact, "still here after the broken sockets").await?;
    ana.client
        .send(json!({"type": "status", "status": "available"}))
        .await?;
    ana.client.expect("status", SECS_5).await?;
    no_panic(&gw);
    Ok(())
}

/// Writes `request` on a fresh connection and returns the head of the answer.
async fn raw_answer(port: u16, request: &[u8]) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    // The server may answer and close before it has read everything; that is its right.
    let _ = s.write_all(request).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(SECS_5, s.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Issue 7: HTTP heads and bodies past their caps. A head larger than `limits.header_bytes` gets
/// 431; a webhook body larger than `limits.body_bytes` 413 (by its Content-Length, or as it streams
/// in without one); a body that trickles in slower than `limits.body_timeout_s` 408. About 4 s.
#[tokio::test]
async fn oversized_heads_and_bodies_and_slow_bodies_are_refused() -> anyhow::Result<()> {
    let fake = helpline_tests::fake_twilio::FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let mut settings: Vec<(&str, String)> = fake.settings();
    settings.push(("HELPLINE_LIMITS__BODY_BYTES", "8192".into()));
    settings.push(("HELPLINE_LIMITS__BODY_TIMEOUT_S", "1".into()));
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start(&redis, &all)?;
    let http = reqwest::Client::new();

    let res = http
        .get(format!("{}/healthz", gw.base()))
        .header("X-Big", "a".repeat(40_000))
        .send()
        .await?;
    assert_eq!(res.status(), 431);

    let url = format!("{}/webhooks/sms/twilio", gw.base());
    let res = http
        .post(&url)
        .body("a=".to_owned() + &"b".repeat(20_000))
        .send()
        .await?;
    assert_eq!(res.status(), 413);
    json_error(&res.json().await?, "too_large");
    // Chunked, with no Content-Length: refused once past the cap.
    let mut chunked = b"POST /webhooks/sms/twilio HTTP/1.1\r\nHost: x\r\n\
                        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(b"800\r\n");
        chunked.extend_from_slice(&[b'c'; 0x800]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = raw_answer(gw.port, &chunked).await?;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // A body that trickles: the head says 100 bytes, 10 arrive, then nothing.
    let started = std::time::Instant::now();
    let head = raw_answer(
        gw.port,
        b"POST /webhooks/sms/twilio HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\r\nFrom=%2B37",
    )
    .await?;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let metrics = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    for reason in ["too_large", "too_slow"] {
        let line =
            format!("helpline_webhook_rejected_total{{channel=\"sms\",reason=\"{reason}\"}}");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&line) && !l.ends_with(" 0")),
            "{line} missing or 0"
        );
    }
    let (status, _) = get(&gw, "/healthz", "").await?;
    assert_eq!(status, 200);
    no_panic(&gw);
    Ok(())
}

/// Issue 7: webhooks with malformed, truncated, binary, invalid UTF-8, deeply nested and oversized
/// bodies. Telegram (secret right) and Twilio (signature right, so the body is what is judged)
/// answer 4xx with a JSON error, and a good call afterwards is taken as usual. About 3 s.
#[tokio::test]
async fn broken_webhook_bodies_get_errors_and_good_ones_still_pass() -> anyhow::Result<()> {
    use helpline_tests::fake_telegram::{FakeTelegram, TgUser};
    use helpline_tests::fake_twilio::{self, FakeTwilio};

    let tg = FakeTelegram::start().await?;
    let tw = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let secret = "hostile-webhook-secret";
    let mut settings: Vec<(&str, String)> = tg.settings();
    settings.extend(tw.settings());
    settings.push(("HELPLINE_CHANNELS__TELEGRAM__MODE", "webhook".into()));
    settings.push(("HELPLINE_CHANNELS__TELEGRAM__WEBHOOK_SECRET", secret.into()));
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start(&redis, &all)?;
    let http = reqwest::Client::new();

    let telegram = |body: Vec<u8>| {
        http.post(format!("{}/webhooks/telegram", gw.base()))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let deep = format!(
        r#"{{"update_id":1,"message":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"update_id\": 5, \"message\": {\"text\": \"tru".to_vec(),
            "bad_request",
        ),
        (
            vec![0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F'],
            "bad_request",
        ),
        (b"{\"update_id\": \"\xff\xfe\"}".to_vec(), "bad_request"),
        (deep.into_bytes(), "too_deep"),
    ];
    for (body, code) in cases {
        let res = telegram(body).await?;
        assert!(res.status().is_client_error(), "{}", res.status());
        json_error(&res.json().await?, code);
    }
    // Declared larger than limits.body_bytes: refused before a byte of it is read.
    let head = format!(
        "POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\n\
         Content-Type: application/json\r\nContent-Length: 300000\r\n\r\n{{\"update_id\":"
    );
    let answer = raw_answer(gw.port, head.as_bytes()).await?;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let child = TgUser::new(7401, "Ana", "Rusu", "ana_r", Some("ro"));
    let start = tg.text_update(&child, "/start");
    assert_eq!(
        telegram(start.to_string().into_bytes()).await?.status(),
        200
    );

    let url = format!("{}/webhooks/sms/twilio", gw.base());
    let signed = |body: Vec<u8>| {
        let params: Vec<(String, String)> = form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let refs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let signature = fake_twilio::sign(&format!("{}/webhooks/sms/twilio", gw.base()), &refs);
        http.post(&url)
            .header("X-Twilio-Signature", signature)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let cases: Vec<Vec<u8>> = vec![
        b"MessageSid=SM1&Fr".to_vec(),
        vec![0, 159, 146, 150, 0xff],
        b"MessageSid=SM%FF%FE&From=%2B37369000001&Body=%C3".to_vec(),
        b"MessageSid=../../etc&From=%2B37369000001".to_vec(),
        b"&&&===&".to_vec(),
    ];
    for body in cases {
        let res = signed(body).await?;
        assert_eq!(res.status(), 400);
        json_error(&res.json().await?, "bad_request");
    }
    let answer = raw_answer(
        gw.port,
        b"POST /webhooks/sms/twilio HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\nFrom=",
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let good = b"MessageSid=SM0123456789abcdef&From=%2B37369000001&Body=Salut".to_vec();
    let res = signed(good).await?;
    assert_eq!(res.status(), 200);
    assert!(res.text().await?.contains("<Response/>"));
    no_panic(&gw);
    Ok(())
}
