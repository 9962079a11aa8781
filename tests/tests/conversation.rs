//! Test 1 of the core issue: a Romanian contact reaches a Romanian-speaking counsellor, they talk
//! both ways, the counsellor closes, and the transcript returns the messages in order.

use helpline_tests::*;
use serde_json::json;

#[tokio::test]
async fn contact_reaches_a_counsellor_and_the_transcript_is_in_order() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;

    let mut contact = Contact::start(&gw, "ro").await?;
    let queued = contact.client.expect("queued", SECS_5).await?;
    assert_eq!(queued["position"], 1);
    let first = contact.say("Bună, am nevoie de ajutor").await?;

    let mut ana = Staff::connect(&gw, "ana").await?;
    assert_eq!(ana.hello["username"], "ana");
    ana.available().await?;
    let assigned = ana.take_offer(SECS_5).await?;
    let conv = contact.conversation.clone();
    assert_eq!(assigned["conversation"], conv.as_str());
    assert_eq!(assigned["history"][0]["text"], "Bună, am nevoie de ajutor");
    assert_eq!(assigned["history"][0]["id"], first.as_str());

    let told = contact.client.expect("assigned", SECS_5).await?;
    assert_eq!(told["counsellor"], "ana");

    let reply = ana
        .say(&conv, "Salut, sunt aici. Ce s-a întâmplat?")
        .await?;
    let got = contact.client.expect("message", SECS_5).await?;
    assert_eq!(got["id"], reply.as_str());
    assert_eq!(got["from"], "counsellor");
    assert_eq!(got["text"], "Salut, sunt aici. Ce s-a întâmplat?");

    contact.say("Mă simt singur").await?;
    let heard = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "Mă simt singur");

    ana.client.send(json!({"type": "close", "conversation": conv, "outcome": "supported", "tags": ["loneliness"]})).await?;
    let ended = contact.client.expect("ended", SECS_5).await?;
    assert_eq!(ended["reason"], "counsellor_closed");
    ana.client
        .expect_where("ended", SECS_5, |f| f["conversation"] == conv.as_str())
        .await?;

    let (status, transcript) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &ana.cookie,
    )
    .await?;
    assert_eq!(status, 200, "{transcript}");
    let texts: Vec<&str> = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Bună, am nevoie de ajutor",
            "Salut, sunt aici. Ce s-a întâmplat?",
            "Mă simt singur"
        ]
    );
    Ok(())
}

/// A waiting contact hears their place move up as the queue moves (the node asks for all of its
/// waiting contacts' places every few seconds, the contract's "at most every 5 s").
#[tokio::test]
async fn a_waiting_contact_hears_their_place_move_up() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    let mut first = Contact::start(&gw, "ro").await?;
    assert_eq!(first.client.expect("queued", SECS_5).await?["position"], 1);
    let mut second = Contact::start(&gw, "ro").await?;
    assert_eq!(second.client.expect("queued", SECS_5).await?["position"], 2);

    first.client.send(json!({"type": "end"})).await?;
    first.client.expect("ended", SECS_5).await?;
    let moved = second
        .client
        .expect("queued", std::time::Duration::from_secs(8))
        .await?;
    assert_eq!(moved["position"], 1, "{moved}");
    Ok(())
}
