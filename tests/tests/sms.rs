//! The SMS channel end to end (issue 5): the real binary against a fake Twilio REST API
//! (`helpline_tests::fake_twilio`) and a real redis-server, with inbound webhooks signed by
//! Twilio's algorithm. Signature checks, de-duplication, sparing queue feedback, media that is
//! never fetched, delivery that retries 429 and 5xx but not a hopeless 400, and no phone number
//! left anywhere.

use std::time::Duration;

use anyhow::{anyhow, Result};
use helpline_tests::fake_twilio::{self, FakeTwilio, ACCOUNT_SID, FROM};
use helpline_tests::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
const PATH: &str = "/webhooks/sms/twilio";

fn gateway(redis: &Redis, fake: &FakeTwilio) -> Result<Gateway> {
    let settings = fake.settings();
    let all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Gateway::start(redis, &all)
}

/// The form Twilio posts for an inbound SMS.
fn sms_params(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    [
        ("ToCountry", "MD"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", FROM),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Posts a webhook call signed with `signature` (`None`: signed correctly for the gateway's
/// public URL); returns the status and the body.
async fn post(
    gw: &Gateway,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(u16, String, String)> {
    let url = format!("{}{PATH}", gw.base());
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let good = fake_twilio::sign(&url, &pairs);
    let mut request = reqwest::Client::new().post(&url).form(&pairs);
    match signature {
        None => request = request.header("X-Twilio-Signature", good),
        Some("") => {}
        Some(bad) => request = request.header("X-Twilio-Signature", bad),
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((status, kind, response.text().await?))
}

/// Texts `body` from `from` as message `sid`, signed; asserts the TwiML answer.
async fn text(gw: &Gateway, sid: &str, from: &str, body: &str) -> Result<()> {
    let (status, kind, answer) = post(gw, &sms_params(sid, from, body), None).await?;
    assert_eq!(status, 200, "{answer}");
    assert!(kind.starts_with("text/xml"), "{kind}");
    assert!(answer.contains("<Response/>"), "{answer}");
    Ok(())
}

async fn available(gw: &Gateway, username: &str) -> Result<Staff> {
    let mut staff = Staff::connect(gw, username).await?;
    staff.available().await?;
    Ok(staff)
}

fn conversation_of(assigned: &Value) -> Result<String> {
    assert_eq!(assigned["channel"], "sms");
    Ok(assigned["conversation"]
        .as_str()
        .ok_or_else(|| anyhow!("no conversation in {assigned}"))?
        .to_owned())
}

async fn metrics(gw: &Gateway) -> Result<String> {
    Ok(reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?)
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_text_starts_a_conversation_and_replies_go_out_by_rest_sparingly() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake)?;
    gw.add_user("ion", "counsellor", "ro,ru", 2)?;
    let mut ion = available(&gw, "ion").await?;
    let child = "+37369100001";

    // The first word chooses the language; the rest is the first message.
    text(
        &gw,
        "SM00000000000000000000000000000001",
        child,
        "RU Мне страшно",
    )
    .await?;
    let assigned = ion.take_offer(T).await?;
    let conv = conversation_of(&assigned)?;
    assert!(assigned["skills"].to_string().contains("ru"), "{assigned}");
    let history = assigned["history"].to_string();
    assert!(history.contains("Мне страшно"), "{history}");
    assert!(!history.contains("RU Мне"), "{history}");

    // One acknowledgement: welcome, position and how to switch language, in a single SMS.
    let ack = fake.wait_delivered(child, "Привет!", T).await?;
    let body = ack.field("Body").unwrap_or_default();
    assert!(body.contains("Твоё место в очереди: 1"), "{body}");
    assert!(body.contains("RO, RU, UA"), "{body}");
    fake.wait_delivered(child, "ion теперь здесь", T).await?;

    // A later text joins the conversation; the same MessageSid twice is stored once.
    let sid = "SM00000000000000000000000000000002";
    text(&gw, sid, child, "Второе сообщение").await?;
    text(&gw, sid, child, "Второе сообщение").await?;
    let heard = ion
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "Второе сообщение");
    assert_eq!(heard["conversation"], conv.as_str());
    ion.client
        .expect_none("message", Duration::from_millis(800))
        .await?;

    // The counsellor's reply: a form post with Basic auth, to the child's number, from ours.
    // Its ack says what it costs as SMS: Cyrillic is UCS-2, 70 characters a segment.
    let id = uuid();
    ion.client
        .send(json!({"type": "message", "conversation": conv,
                     "text": "Я здесь. Что случилось?", "client_msg_id": id}))
        .await?;
    let ack = ion
        .client
        .expect_where("ack", T, |f| f["client_msg_id"] == id.as_str())
        .await?;
    assert_eq!(
        ack["sms"],
        json!({"chars": 23, "encoding": "ucs2", "segments": 1}),
        "{ack}"
    );
    let sent = fake.wait_delivered(child, "Я здесь.", T).await?;
    assert_eq!(
        sent.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(sent.field("From"), Some(FROM));
    assert_eq!(sent.field("Body"), Some("Я здесь. Что случилось?"));
    let auth = sent.auth.clone().unwrap_or_default();
    assert!(auth.starts_with("Basic "), "{auth}");

    // Sparing: nothing was sent but the acknowledgement, the assignment and the reply.
    assert_eq!(fake.sends_to(child).len(), 3, "{:?}", fake.sends_to(child));

    // An end keyword ends it (in any case), and the contact is told.
    text(&gw, "SM00000000000000000000000000000003", child, "стоп").await?;
    let ended = ion
        .client
        .expect_where("ended", T, |f| f["conversation"] == conv.as_str())
        .await?;
    assert_eq!(ended["reason"], "contact_ended");
    fake.wait_delivered(child, "Ты завершил(а) разговор", T)
        .await?;
    // The same END again starts nothing.
    text(&gw, "SM00000000000000000000000000000003", child, "стоп").await?;
    ion.client
        .expect_none("offer", Duration::from_millis(800))
        .await?;

    // A new text without a keyword starts a new conversation in the default language (ro).
    text(&gw, "SM00000000000000000000000000000004", child, "Salut").await?;
    let again = ion.take_offer(T).await?;
    assert_ne!(conversation_of(&again)?, conv);
    fake.wait_delivered(child, "Bună!", T).await?;
    Ok(())
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_403_counted_and_stores_nothing() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake)?;
    let child = "+37369100002";
    let params = sms_params("SM00000000000000000000000000000010", child, "salut");

    let (status, _, _) = post(&gw, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")).await?;
    assert_eq!(status, 403);
    let (status, _, _) = post(&gw, &params, Some("")).await?;
    assert_eq!(status, 403);
    // Signed correctly, then one field changed.
    let url = format!("{}{PATH}", gw.base());
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let good = fake_twilio::sign(&url, &pairs);
    let mut tampered = params.clone();
    tampered[5].1 = "altered".into();
    let (status, _, _) = post(&gw, &tampered, Some(&good)).await?;
    assert_eq!(status, 403);

    let text = metrics(&gw).await?;
    let rejected = "helpline_webhook_rejected_total{channel=\"sms\",reason=";
    assert_eq!(
        metric(&text, &format!("{rejected}\"bad_signature\"}}")),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, &format!("{rejected}\"missing_signature\"}}")),
        Some(1.0)
    );
    let everything = redis.dump_everything()?;
    assert!(!everything.contains(":conv:"), "{everything}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    Ok(())
}

#[tokio::test]
async fn mms_media_is_never_fetched_but_withheld_and_deleted() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake)?;
    gw.add_user("ion", "counsellor", "ro", 2)?;
    let mut ion = available(&gw, "ion").await?;
    let child = "+37369100003";

    text(&gw, "SM00000000000000000000000000000020", child, "Salut").await?;
    let conv = conversation_of(&ion.take_offer(T).await?)?;
    fake.wait_delivered(child, "este acum aici", T).await?;

    let sid = "MM00000000000000000000000000000021";
    let mut params = sms_params(sid, child, "uite poza");
    params.retain(|(k, _)| k != "NumMedia");
    params.push(("NumMedia".into(), "2".into()));
    for (i, media) in [
        "ME00000000000000000000000000000001",
        "ME00000000000000000000000000000002",
    ]
    .iter()
    .enumerate()
    {
        params.push((format!("MediaUrl{i}"), fake.media_url(sid, media)));
        params.push((format!("MediaContentType{i}"), "image/jpeg".into()));
    }
    let (status, _, answer) = post(&gw, &params, None).await?;
    assert_eq!(status, 200, "{answer}");

    let caption = ion
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;
    assert_eq!(caption["text"], "uite poza");
    let withheld = ion
        .client
        .expect_where("message", T, |f| f["from"] == "system")
        .await?;
    assert_eq!(withheld["text"], "[media withheld]");
    assert_eq!(withheld["conversation"], conv.as_str());
    fake.wait_delivered(child, "nu putem primi poze", T).await?;
    let deletes = fake.wait_requests(2, T, |r| r.method == "DELETE").await?;
    for (r, media) in deletes.iter().zip([
        "ME00000000000000000000000000000001",
        "ME00000000000000000000000000000002",
    ]) {
        assert_eq!(
            r.path,
            format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media/{media}.json")
        );
        assert_eq!(r.status, 204);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fetched: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/media/"))
        .collect();
    assert!(fetched.is_empty(), "the gateway fetched media: {fetched:?}");
    let text = metrics(&gw).await?;
    assert_eq!(
        metric(&text, "helpline_media_withheld_total{channel=\"sms\"}"),
        Some(1.0)
    );
    Ok(())
}

#[tokio::test]
async fn delivery_retries_429_and_5xx_once_accepted_and_drops_a_hopeless_400() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake)?;
    gw.add_user("ion", "counsellor", "ro", 2)?;
    let mut ion = available(&gw, "ion").await?;
    let child = "+37369100004";

    text(&gw, "SM00000000000000000000000000000030", child, "Salut").await?;
    let conv = conversation_of(&ion.take_offer(T).await?)?;
    fake.wait_delivered(child, "este acum aici", T).await?;

    fake.fail_next_sends(&[429, 500]);
    ion.say(&conv, "după o eroare").await?;
    fake.wait_delivered(child, "după o eroare", T).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tries: Vec<u16> = fake
        .sends_to(child)
        .iter()
        .filter(|r| r.field("Body") == Some("după o eroare"))
        .map(|r| r.status)
        .collect();
    assert_eq!(tries, [429, 500, 201]);

    // Past Twilio's 1600 characters a reply goes in parts, split between words; a failure after
    // the first part resends only what is left.
    let long = format!("lung{}", " cuvânt".repeat(300));
    fake.fail_once_starting_with("cuvânt", 503);
    let id = uuid();
    ion.client
        .send(json!({"type": "message", "conversation": conv, "text": long, "client_msg_id": id}))
        .await?;
    fake.wait_delivered(child, "cuvânt cuvânt", T).await?;
    let tries = fake
        .wait_requests(3, T, |r| {
            r.field("Body").is_some_and(|b| b.contains("cuvânt"))
        })
        .await?;
    let statuses: Vec<u16> = tries.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 503, 201]);
    assert!(tries[0]
        .field("Body")
        .is_some_and(|b| b.starts_with("lung")));
    let parts: Vec<&str> = [&tries[0], &tries[2]]
        .iter()
        .filter_map(|r| r.field("Body"))
        .collect();
    assert!(parts.iter().all(|p| p.chars().count() <= 1600));
    assert_eq!(parts.join(" "), long);

    // A 400 that cannot succeed is not tried again; the next message still goes.
    fake.refuse_number(child);
    ion.say(&conv, "fără speranță").await?;
    fake.wait_requests(1, T, |r| r.field("Body") == Some("fără speranță"))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hopeless = fake
        .sends_to(child)
        .into_iter()
        .filter(|r| r.field("Body") == Some("fără speranță"))
        .count();
    assert_eq!(hopeless, 1);
    let text = metrics(&gw).await?;
    assert!(
        text.lines().any(|l| l.starts_with("helpline_outbox_total")
            && l.contains("channel=\"sms\"")
            && l.contains("result=\"dropped\"")),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn no_phone_number_is_kept_or_logged() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake)?;
    gw.add_user("ion", "counsellor", "ro,uk", 2)?;
    let mut ion = available(&gw, "ion").await?;
    let child = "+37369555123";
    let sid = "SM5555512300000000000000000000CANARY";

    text(&gw, sid, child, "UA Мені потрібна допомога").await?;
    let assigned = ion.take_offer(T).await?;
    let conv = conversation_of(&assigned)?;
    ion.say(&conv, "Я тут, розкажи").await?;
    fake.wait_delivered(child, "Я тут, розкажи", T).await?;
    ion.client
        .send(json!({"type": "close", "conversation": conv, "outcome": "listened", "tags": []}))
        .await?;
    fake.wait_delivered(child, "завершив", T).await?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let everything = redis.dump_everything()?;
    let log = gw.log_text();
    let metrics = metrics(&gw).await?;
    let frames = assigned.to_string();
    for canary in [child, "37369555123", "69555123", sid] {
        assert!(!everything.contains(canary), "{canary} is in Redis");
        assert!(!log.contains(canary), "{canary} is in the log");
        assert!(!metrics.contains(canary), "{canary} is in /metrics");
        assert!(!frames.contains(canary), "{canary} is in a staff frame");
    }
    assert!(log.contains("SMS channel ready"), "{log}");
    Ok(())
}

#[tokio::test]
async fn a_crash_mid_send_sends_exactly_once_after_a_restart() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let settings = fake.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Long grace: the counsellor's socket dies with the first node and must not be re-queued.
    all.push(("HELPLINE_ROUTING__AGENT_GRACE_S", "300"));
    let mut first = Gateway::start(&redis, &all)?;
    first.add_user("ion", "counsellor", "ro", 2)?;
    let mut ion = available(&first, "ion").await?;
    let child = "+37369100005";
    text(&first, "SM00000000000000000000000000000050", child, "Salut").await?;
    let conv = conversation_of(&ion.take_offer(T).await?)?;
    fake.wait_delivered(child, "este acum aici", T).await?;

    // Stored, handed to the provider, and the gateway dies before the provider answers.
    let survivor = "Un mesaj care supraviețuiește";
    fake.hold_sends_containing(survivor);
    ion.say(&conv, survivor).await?;
    let deadline = std::time::Instant::now() + T;
    while fake.held() == 0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the send never reached the fake"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    fake.drop_held();
    assert!(fake.delivered(child, survivor).is_empty());

    let second = Gateway::start(&redis, &all)?;
    fake.wait_delivered(child, survivor, Duration::from_secs(20))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.delivered(child, survivor).len(), 1);
    for earlier in ["Bună!", "este acum aici"] {
        assert_eq!(
            fake.delivered(child, earlier).len(),
            1,
            "{earlier} sent again"
        );
    }
    let text = metrics(&second).await?;
    assert_eq!(
        metric(
            &text,
            "helpline_outbox_total{channel=\"sms\",result=\"resent\"}"
        ),
        Some(1.0)
    );
    let backlog = redis.cli(&["xlen", "helpline:outbox:sms"])?;
    assert_eq!(backlog.trim(), "0");
    Ok(())
}

#[tokio::test]
async fn an_opt_out_ends_the_conversation_and_nothing_more_is_sent() -> Result<()> {
    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &fake)?;
    gw.add_user("ion", "counsellor", "ro", 2)?;
    let mut ion = available(&gw, "ion").await?;
    let child = "+37369100006";
    text(&gw, "SM00000000000000000000000000000060", child, "Salut").await?;
    let conv = conversation_of(&ion.take_offer(T).await?)?;
    fake.wait_delivered(child, "este acum aici", T).await?;

    // Twilio handled STOP itself (the number is opted out) and tells us so.
    let mut params = sms_params("SM00000000000000000000000000000061", child, "Stop");
    params.push(("OptOutType".into(), "STOP".into()));
    let (status, _, answer) = post(&gw, &params, None).await?;
    assert_eq!(status, 200, "{answer}");
    let ended = ion
        .client
        .expect_where("ended", T, |f| f["conversation"] == conv.as_str())
        .await?;
    assert_eq!(ended["reason"], "contact_ended");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.sends_to(child).len(), 2, "{:?}", fake.sends_to(child));
    Ok(())
}
