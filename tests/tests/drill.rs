//! Issue 8, test 6: the disclosure drill. Conversations with canary strings on every channel (web
//! chat behind a canary `X-Forwarded-For` address, Telegram with a canary chat id and names, SMS
//! with a canary phone number); then all of Redis (every key, value, hash, set, zset, list and
//! stream entry) and the gateway's log hold none of them, and `helpline privacy report` says what is
//! held, and fails (exit 1) when something is older than its retention period.

use std::time::Duration;

use anyhow::Result;
use helpline_tests::canary::{assert_absent, forms};
use helpline_tests::fake_telegram::{FakeTelegram, TgUser};
use helpline_tests::fake_twilio::{self, FakeTwilio};
use helpline_tests::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
const WEB_TEXT: &str = "CANARY-DRILL-WEB-a9f1";
const TG_TEXT: &str = "CANARY-DRILL-TG-5e22";
const SMS_TEXT: &str = "CANARY-DRILL-SMS-c3d8";
const PHONE: &str = "+37369987654";
const CHAT_ID: i64 = 987_654_321_001;
const IP: &str = "203.0.113.77";

#[tokio::test]
async fn nothing_identifying_is_held_and_the_report_says_what_is() -> Result<()> {
    let telegram = FakeTelegram::start().await?;
    let twilio = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let mut settings = telegram.settings();
    settings.extend(twilio.settings());
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = Gateway::start(&redis, &all)?;
    gw.add_user("ana", "counsellor", "ro,ru,uk", 3)?;
    telegram.wait_calls("deleteWebhook", 1, T).await?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;

    // Web chat, from behind a proxy that names the child's address.
    let mut web = Client::open_with_headers(&gw, "/ws/chat", &[("X-Forwarded-For", IP)]).await?;
    web.send(json!({"type": "start", "lang": "ro"})).await?;
    web.expect("started", T).await?;
    let id = uuid();
    web.send(json!({"type": "message", "text": format!("Ajutor {WEB_TEXT}"), "client_msg_id": id}))
        .await?;
    web.expect("ack", T).await?;
    ana.take_offer(T).await?;

    // Telegram, with names that must not be kept either.
    let child = TgUser::new(
        CHAT_ID,
        "CanaryFirst",
        "CanaryLast",
        "canary_handle",
        Some("uk"),
    );
    telegram.push(telegram.text_update(&child, &format!("Привіт {TG_TEXT}")));
    let tg = ana.take_offer(T).await?;
    let tg_conv = tg["conversation"].as_str().unwrap_or_default().to_owned();
    ana.say(&tg_conv, "Я тут.").await?;
    telegram.wait_sent(CHAT_ID, "Я тут.", T).await?;

    // SMS.
    fake_twilio::text_gateway(
        &gw,
        "SM20000000000000000000000000000001",
        PHONE,
        &format!("RU {SMS_TEXT}"),
    )
    .await?;
    let sms = ana.take_offer(T).await?;
    let sms_conv = sms["conversation"].as_str().unwrap_or_default().to_owned();
    ana.say(&sms_conv, "Я здесь.").await?;
    twilio.wait_delivered(PHONE, "Я здесь.", T).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut needles = Vec::new();
    for secret in [
        WEB_TEXT,
        TG_TEXT,
        SMS_TEXT,
        "CanaryFirst",
        "CanaryLast",
        "canary_handle",
    ] {
        needles.extend(forms(secret));
    }
    needles.extend([
        PHONE.to_owned(),
        PHONE.trim_start_matches('+').to_owned(),
        CHAT_ID.to_string(),
        IP.to_owned(),
    ]);
    let dump = redis.dump_everything()?;
    assert!(
        dump.contains(&format!("msgs:{tg_conv}")),
        "the dump missed the streams"
    );
    assert_absent("Redis", &dump, &needles);
    assert_absent("Redis", &dump, &["127.0.0.1".to_owned()]);
    let log = gw.log_text();
    assert!(!log.is_empty());
    assert_absent("the gateway log", &log, &needles);

    // The report: three live conversations, three data keys under version 1, nothing overdue.
    let out = gw.command(&["privacy", "report"], None)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "conversations.live: 3 (oldest ",
        "conversations.closed: 0",
        "messages.streams: 3 (oldest ",
        "data_keys.v1: 3",
        "nothing is held past its retention period",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert_absent("the report", &text, &needles);
    let out = gw.command(&["privacy", "report", "--json"], None)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let live = report["categories"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "conversations.live"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(live["count"], 3, "{report}");

    // An audit entry from long ago (a restored backup, a sweep that never ran): exit 1, one line.
    // The stream is emptied first: a stream only takes ids newer than its last one.
    redis.cli(&["del", "helpline:audit"])?;
    redis.cli(&[
        "xadd",
        "helpline:audit",
        "1000-0",
        "actor",
        "x",
        "action",
        "y",
        "conv",
        "",
        "reason",
        "",
    ])?;
    let out = gw.command(&["privacy", "report"], None)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(
        text.contains("OVERDUE: audit entries older than retention.audit_s"),
        "{text}"
    );
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("helpline: ") && last.contains("retention"),
        "{err}"
    );
    redis.cli(&["xdel", "helpline:audit", "1000-0"])?;
    let out = gw.command(&["privacy", "report"], None)?;
    assert!(out.status.success());
    Ok(())
}
