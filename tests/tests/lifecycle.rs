//! The node's lifecycle as outsiders see it: probes, metrics, and graceful shutdown (close code
//! 1012), after which the contact resumes on another node and loses nothing.

use helpline_tests::*;
use serde_json::json;

#[tokio::test]
async fn probes_and_metrics_answer() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/healthz", gw.base()))
            .send()
            .await?
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{}/readyz", gw.base()))
            .send()
            .await?
            .status(),
        200
    );
    let metrics = http.get(format!("{}/metrics", gw.base())).send().await?;
    assert!(metrics.headers()["content-type"]
        .to_str()?
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await?;
    for name in ["helpline_counsellors", "helpline_offers_total"] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    drop(redis);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        http.get(format!("{}/readyz", gw.base()))
            .send()
            .await?
            .status(),
        503
    );
    assert_eq!(
        http.get(format!("{}/healthz", gw.base()))
            .send()
            .await?
            .status(),
        200
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1012_and_the_contact_resumes_elsewhere() -> anyhow::Result<()>
{
    let redis = Redis::start()?;
    let mut first = Gateway::start(&redis, &[])?;
    let second = Gateway::start(&redis, &[])?;
    second.add_user("ana", "counsellor", "ro", 2)?;

    let mut contact = Contact::start(&first, "ro").await?;
    contact.say("înainte de restart").await?;
    let mut ana = Staff::connect(&second, "ana").await?;
    ana.available().await?;
    let conv = ana.take_offer(SECS_5).await?["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let assigned = contact.client.expect("assigned", SECS_5).await?;
    assert_eq!(assigned["counsellor"], "ana");

    let status = first.terminate()?;
    assert!(
        status.success(),
        "the gateway should exit cleanly on SIGTERM: {status}"
    );
    assert_eq!(contact.client.closed(SECS_5).await?, Some(1012));

    // While the contact is away, the counsellor writes; the contact resumes on the other node.
    let missed = ana.say(&conv, "te aștept").await?;
    let mut back = Client::contact(&second).await?;
    back.send(json!({"type": "resume", "token": contact.token}))
        .await?;
    back.expect("resumed", SECS_5).await?;
    let replayed = back
        .expect_where("message", SECS_5, |f| f["from"] == "counsellor")
        .await?;
    assert_eq!(replayed["id"], missed.as_str());
    assert_eq!(replayed["text"], "te aștept");
    Ok(())
}

/// A draining node leaves what its outbox holds, even a send in flight, to the other nodes at
/// once (not after the five seconds a crashed node's entries wait): the SMS contact gets every
/// message once and in order.
#[tokio::test]
async fn sigterm_hands_the_outbox_to_the_other_nodes_at_once() -> anyhow::Result<()> {
    use helpline_tests::fake_twilio::{self, FakeTwilio, ACCOUNT_SID, FROM};
    use std::time::{Duration, Instant};

    let fake = FakeTwilio::start().await?;
    let redis = Redis::start()?;
    let settings = fake.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Long grace: the counsellor's socket closes with the first node and must not be re-queued.
    all.push(("HELPLINE_ROUTING__AGENT_GRACE_S", "300"));
    let mut first = Gateway::start(&redis, &all)?;
    first.add_user("ion", "counsellor", "ro", 2)?;
    let mut ion = Staff::connect(&first, "ion").await?;
    ion.available().await?;
    let child = "+37369100077";
    let url = format!("{}/webhooks/sms/twilio", first.base());
    let sid = "SM00000000000000000000000000000077";
    let form = [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", child),
        ("To", FROM),
        ("Body", "Salut"),
        ("NumMedia", "0"),
    ];
    let answer = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", fake_twilio::sign(&url, &form))
        .form(&form)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let conv = ion.take_offer(SECS_5).await?["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let t = Duration::from_secs(10);
    fake.wait_delivered(child, "este acum aici", t).await?;

    // Three replies; the first is with the provider when the node is told to stop, the other two
    // wait behind it (a contact gets them in order).
    let texts = ["Primul mesaj", "Al doilea mesaj", "Al treilea mesaj"];
    fake.hold_sends_containing(texts[0]);
    for text in texts {
        ion.say(&conv, text).await?;
    }
    let deadline = Instant::now() + t;
    while fake.held() == 0 {
        anyhow::ensure!(Instant::now() < deadline, "the send never reached the fake");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = Gateway::start(&redis, &all)?;
    helpline_tests::faults::signal(first.pid(), "TERM")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The provider never answers the send in flight (as if it never arrived).
    fake.drop_held();
    let deadline = Instant::now() + t;
    while first.running() {
        anyhow::ensure!(Instant::now() < deadline, "the first node did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = Instant::now();
    for text in texts {
        fake.wait_delivered(child, text, t).await?;
    }
    let took = stopped.elapsed();
    println!("the other node sent all three {took:?} after the drained node stopped");
    assert!(
        took < Duration::from_millis(4500),
        "the other node sent them {took:?} after the drain, as if the node had crashed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bodies: Vec<String> = fake
        .sends_to(child)
        .iter()
        .filter(|r| r.status == 201)
        .filter_map(|r| r.field("Body").map(str::to_owned))
        .filter(|b| texts.iter().any(|t| b.contains(t)))
        .collect();
    assert_eq!(bodies.len(), 3, "each once: {bodies:?}");
    for (body, text) in bodies.iter().zip(texts) {
        assert!(body.contains(text), "out of order: {bodies:?}");
    }
    let backlog = redis.cli(&["xlen", "helpline:outbox:sms"])?;
    assert_eq!(backlog.trim(), "0");
    drop(second);
    Ok(())
}
