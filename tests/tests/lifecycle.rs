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
