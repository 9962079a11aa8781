//! Break-glass with dual control end to end (issue 8, test 5): a supervisor's request for an SMS
//! contact's phone number is refused without a second approval, refused when the requester
//! approves it, refused after the time limit, and shown once when a second supervisor approves;
//! every step is audited and counted, and the number appears nowhere else (audit, logs).

use std::time::Duration;

use anyhow::{anyhow, Result};
use helpline_tests::fake_twilio::{self, FakeTwilio, ACCOUNT_SID, FROM};
use helpline_tests::*;
use serde_json::{json, Value};

const NUMBER: &str = "+37369000111";
/// The approval window these tests run with, so expiry takes seconds.
const WINDOW_S: &str = "3";
const REASON: &str = "she wrote that he is at the door now and she is hiding";

/// An inbound SMS, signed as Twilio signs it.
async fn text(gw: &Gateway, sid: &str, from: &str, body: &str) -> Result<()> {
    let url = format!("{}/webhooks/sms/twilio", gw.base());
    let params = [
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("To", FROM),
        ("Body", body),
        ("NumMedia", "0"),
    ];
    let signature = fake_twilio::sign(&url, &params);
    let res = reqwest::Client::new()
        .post(&url)
        .form(&params)
        .header("X-Twilio-Signature", signature)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "webhook gave {}", res.status());
    Ok(())
}

/// The waiting conversation of `channel`, as the supervisor's queue shows it.
async fn waiting(gw: &Gateway, cookie: &str, channel: &str) -> Result<String> {
    for _ in 0..50 {
        let (_, queue) = get(gw, "/api/queue", cookie).await?;
        if let Some(conv) = queue
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["channel"] == channel)
            .and_then(|v| v["conversation"].as_str())
        {
            return Ok(conv.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("no {channel} conversation in the queue"))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Asks for the address of `conv`; returns the request id.
async fn ask(gw: &Gateway, cookie: &str, conv: &str) -> Result<String> {
    let path = format!("/api/conversations/{conv}/break-glass");
    let (status, body) = post(gw, &path, cookie, json!({"reason": REASON})).await?;
    anyhow::ensure!(status == 201, "request gave {status}: {body}");
    assert_eq!(body["state"], "pending");
    Ok(body["request"].as_str().unwrap_or_default().to_owned())
}

async fn step(gw: &Gateway, cookie: &str, id: &str, what: &str) -> Result<(u16, Value)> {
    post(
        gw,
        &format!("/api/break-glass/{id}/{what}"),
        cookie,
        Value::Null,
    )
    .await
}

async fn metric(gw: &Gateway, step: &str) -> Result<String> {
    let text = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    let series = format!("helpline_break_glass_total{{step=\"{step}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or("missing")
        .to_owned())
}

#[tokio::test]
async fn break_glass_needs_a_second_supervisor_in_time_and_shows_once() -> Result<()> {
    let redis = Redis::start()?;
    let fake = FakeTwilio::start().await?;
    let mut settings: Vec<(&str, String)> = fake.settings();
    settings.push(("HELPLINE_SECURITY__BREAK_GLASS_APPROVE_S", WINDOW_S.into()));
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start(&redis, &all)?;
    for step in ["request", "approve", "deny", "expire", "reveal"] {
        assert_eq!(metric(&gw, step).await?, "0", "zero series for {step}");
    }
    gw.add_user("ana", "counsellor", "ro", 2)?;
    gw.add_user("sofia", "supervisor", "ro", 2)?;
    gw.add_user("maria", "supervisor", "ro", 2)?;
    gw.add_user("audra", "auditor", "", 1)?;
    let ana = login(&gw, "ana").await?;
    let sofia = login(&gw, "sofia").await?;
    let maria = login(&gw, "maria").await?;

    text(
        &gw,
        "SM00000000000000000000000000000001",
        NUMBER,
        "help me please",
    )
    .await?;
    let conv = waiting(&gw, &sofia, "sms").await?;
    let web = Contact::start(&gw, "ro").await?;

    // Input and roles.
    let path = format!("/api/conversations/{conv}/break-glass");
    let (status, body) = post(&gw, &path, &sofia, json!({"reason": "urgent"})).await?;
    assert_eq!((status, code(&body)), (400, "bad_reason"), "{body}");
    let (status, _) = post(&gw, &path, &sofia, json!({})).await?;
    assert_eq!(status, 400);
    let (status, _) = post(&gw, &path, &ana, json!({"reason": REASON})).await?;
    assert_eq!(status, 403, "a counsellor may not ask");
    let web_path = format!("/api/conversations/{}/break-glass", web.conversation);
    let (status, body) = post(&gw, &web_path, &sofia, json!({"reason": REASON})).await?;
    assert_eq!((status, code(&body)), (409, "no_address"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("webchat")));
    let unknown = format!("/api/conversations/{}/break-glass", "0".repeat(32));
    assert_eq!(
        post(&gw, &unknown, &sofia, json!({"reason": REASON}))
            .await?
            .0,
        404
    );

    // Without a second approval, and with only the requester's: refused.
    let first = ask(&gw, &sofia, &conv).await?;
    let (status, body) = step(&gw, &sofia, &first, "reveal").await?;
    assert_eq!((status, code(&body)), (409, "not_approved"), "{body}");
    let (status, body) = step(&gw, &sofia, &first, "approve").await?;
    assert_eq!((status, code(&body)), (403, "same_supervisor"), "{body}");
    let (status, list) = get(&gw, "/api/break-glass", &maria).await?;
    assert_eq!(status, 200);
    let listed = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["request"] == first.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            listed["requester"].as_str(),
            listed["reason"].as_str(),
            listed["channel"].as_str()
        ),
        (Some("sofia"), Some(REASON), Some("sms"))
    );
    assert!(!list.to_string().contains(NUMBER));

    // A second supervisor approves; only the requester sees it, once.
    assert_eq!(step(&gw, &maria, &first, "approve").await?.0, 204);
    let (status, body) = step(&gw, &maria, &first, "approve").await?;
    assert_eq!((status, code(&body)), (409, "not_pending"));
    assert_eq!(step(&gw, &maria, &first, "reveal").await?.0, 403);
    let (status, shown) = step(&gw, &sofia, &first, "reveal").await?;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown,
        json!({"conversation": conv, "channel": "sms", "address": NUMBER})
    );
    let (status, body) = step(&gw, &sofia, &first, "reveal").await?;
    assert_eq!((status, code(&body)), (410, "already_revealed"), "{body}");

    // Denied: never shown.
    let denied = ask(&gw, &sofia, &conv).await?;
    assert_eq!(step(&gw, &maria, &denied, "deny").await?.0, 204);
    let (status, body) = step(&gw, &sofia, &denied, "reveal").await?;
    assert_eq!((status, code(&body)), (409, "not_approved"));

    // Out of time: not approved within the window, or approved but not looked at within it.
    let late_approval = ask(&gw, &sofia, &conv).await?;
    let late_reveal = ask(&gw, &sofia, &conv).await?;
    assert_eq!(step(&gw, &maria, &late_reveal, "approve").await?.0, 204);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (status, body) = step(&gw, &maria, &late_approval, "approve").await?;
    assert_eq!((status, code(&body)), (410, "expired"), "{body}");
    let (status, body) = step(&gw, &sofia, &late_reveal, "reveal").await?;
    assert_eq!((status, code(&body)), (410, "expired"), "{body}");
    let (_, list) = get(&gw, "/api/break-glass", &sofia).await?;
    assert_eq!(list, json!([]), "nothing open any more");
    assert_eq!(step(&gw, &maria, &"f".repeat(32), "approve").await?.0, 404);
    assert_eq!(step(&gw, &maria, "not-an-id", "approve").await?.0, 404);

    // Counted and audited, every step, and the number is in neither.
    for (step, n) in [
        ("request", "4"),
        ("approve", "2"),
        ("deny", "1"),
        ("expire", "2"),
        ("reveal", "1"),
    ] {
        assert_eq!(
            metric(&gw, step).await?,
            n,
            "helpline_break_glass_total{{step={step}}}"
        );
    }
    let audra = login(&gw, "audra").await?;
    let (_, entries) = get(&gw, &format!("/api/audit?conversation={conv}"), &audra).await?;
    let entries = entries.as_array().cloned().unwrap_or_default();
    let count = |action: &str, actor: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["actor"] == actor)
            .count()
    };
    assert_eq!(count("break_glass.request", "sofia"), 4);
    assert_eq!(count("break_glass.approve", "maria"), 2);
    assert_eq!(count("break_glass.deny", "maria"), 1);
    assert_eq!(count("break_glass.expire", "sofia"), 2);
    assert_eq!(count("break_glass.reveal", "sofia"), 1);
    assert!(entries.iter().any(|e| e["action"] == "break_glass.request"
        && e["reason"]
            .as_str()
            .is_some_and(|r| r.contains(REASON) && r.contains(&first))));
    let digits = NUMBER.trim_start_matches('+');
    assert!(!serde_json::to_string(&entries)?.contains(digits));
    assert!(!gw.log_text().contains(digits), "the number is in the log");
    assert!(
        !redis.dump_everything()?.contains(digits),
        "the number is in Redis"
    );
    Ok(())
}
