//! Test 6 of the core issue: a contact whose socket drops resumes with their token and the last
//! message id they saw, and gets exactly what they missed (CONTRACT.md section 4, DESIGN.md
//! "Durability and delivery"); a resent `client_msg_id` is stored once; an unknown token is refused.

use std::time::Duration;

use helpline_tests::*;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(1500);

/// A gateway, one Romanian counsellor "ana" and a contact already assigned to her.
async fn assigned_conversation(redis: &Redis) -> anyhow::Result<(Gateway, Staff, Contact)> {
    let gw = Gateway::start(redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    let mut contact = Contact::start(&gw, "ro").await?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let assigned = ana.take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], contact.conversation.as_str());
    contact.client.expect("assigned", SECS_5).await?;
    Ok((gw, ana, contact))
}

/// Opens a new socket and resumes `token` after `last_seen`.
async fn resume(gw: &Gateway, token: &str, last_seen: Option<&str>) -> anyhow::Result<Client> {
    let mut client = Client::contact(gw).await?;
    let mut frame = json!({"type": "resume", "token": token});
    if let Some(id) = last_seen {
        frame["last_seen"] = json!(id);
    }
    client.send(frame).await?;
    Ok(client)
}

/// Takes `n` message frames in arrival order.
async fn messages(client: &mut Client, n: usize) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(client.expect("message", SECS_5).await?);
    }
    Ok(out)
}

fn texts(transcript: &Value) -> Vec<String> {
    transcript["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_dropped_contact_resumes_and_gets_exactly_what_they_missed() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let (gw, mut ana, mut contact) = assigned_conversation(&redis).await?;
    let conv = contact.conversation.clone();
    let token = contact.token.clone();
    assert!(!token.is_empty(), "started carried no resume token");

    // Two messages the contact receives live.
    let seen1 = ana.say(&conv, "seen one").await?;
    let seen2 = ana.say(&conv, "seen two").await?;
    let got = messages(&mut contact.client, 2).await?;
    assert_eq!(got[0]["id"], seen1.as_str());
    assert_eq!(got[1]["id"], seen2.as_str());
    assert_eq!(got[1]["text"], "seen two");
    let last_seen = got[1]["id"].as_str().unwrap_or_default().to_owned();

    // The phone loses its connection: the socket is dropped without a close handshake.
    drop(contact);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut missed = Vec::new();
    for text in ["missed one", "missed two", "missed three"] {
        missed.push(ana.say(&conv, text).await?);
    }

    let client = resume(&gw, &token, Some(&last_seen)).await?;
    let mut contact = Contact {
        client,
        conversation: conv.clone(),
        token: token.clone(),
    };
    let replayed = messages(&mut contact.client, 3).await?;
    let ids: Vec<&str> = replayed
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default())
        .collect();
    let replayed_texts: Vec<&str> = replayed
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        missed.iter().map(String::as_str).collect::<Vec<_>>(),
        "replayed: {replayed:?}"
    );
    assert_eq!(replayed_texts, ["missed one", "missed two", "missed three"]);
    for m in &replayed {
        assert_eq!(m["from"], "counsellor", "{m}");
        assert!(
            m["ts"].as_str().is_some_and(|t| !t.is_empty()),
            "no ts in {m}"
        );
    }
    // Nothing twice, nothing from before `last_seen`.
    if let Ok(extra) = contact.client.expect("message", QUIET).await {
        panic!("a message was replayed beyond the three missed ones: {extra}");
    }

    // The conversation goes on both ways on the new socket.
    contact.say("back again").await?;
    let heard = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "back again");
    assert_eq!(heard["conversation"], conv.as_str());
    let reply = ana.say(&conv, "welcome back").await?;
    let got = contact.client.expect("message", SECS_5).await?;
    assert_eq!(got["id"], reply.as_str());
    assert_eq!(got["text"], "welcome back");

    let (status, transcript) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &ana.cookie,
    )
    .await?;
    assert_eq!(status, 200, "{transcript}");
    assert_eq!(
        texts(&transcript),
        [
            "seen one",
            "seen two",
            "missed one",
            "missed two",
            "missed three",
            "back again",
            "welcome back"
        ]
    );
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
    Ok(())
}

#[tokio::test]
async fn a_resent_client_msg_id_is_stored_once_on_one_socket_and_after_a_resume(
) -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let (gw, mut ana, mut contact) = assigned_conversation(&redis).await?;
    let conv = contact.conversation.clone();
    let token = contact.token.clone();

    // Same socket: the same frame twice gets two acks with one id.
    let once = uuid();
    let frame = json!({"type": "message", "text": "only once please", "client_msg_id": once});
    contact.client.send(frame.clone()).await?;
    let first = contact
        .client
        .expect_where("ack", SECS_5, |f| f["client_msg_id"] == once.as_str())
        .await?;
    contact.client.send(frame).await?;
    let second = contact
        .client
        .expect_where("ack", SECS_5, |f| f["client_msg_id"] == once.as_str())
        .await?;
    assert!(
        first["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{first}"
    );
    assert_eq!(
        first["id"], second["id"],
        "a resend was stored under a new id"
    );
    let heard = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "only once please");
    assert_eq!(heard["id"], first["id"]);
    if let Ok(dup) = ana
        .client
        .expect_where("message", QUIET, |f| f["from"] == "contact")
        .await
    {
        panic!("the counsellor saw the resent message again: {dup}");
    }

    // After a resume: the contact sent a message (and had its ack), lost the socket, and resends.
    let again = uuid();
    let frame =
        json!({"type": "message", "text": "sent before the tunnel", "client_msg_id": again});
    contact.client.send(frame.clone()).await?;
    let before = contact
        .client
        .expect_where("ack", SECS_5, |f| f["client_msg_id"] == again.as_str())
        .await?;
    let heard = ana
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "sent before the tunnel");
    let last_seen = before["id"].as_str().unwrap_or_default().to_owned();
    drop(contact);

    let mut client = resume(&gw, &token, Some(&last_seen)).await?;
    client.send(frame).await?;
    let after = client
        .expect_where("ack", SECS_5, |f| f["client_msg_id"] == again.as_str())
        .await?;
    assert_eq!(
        after["id"], before["id"],
        "the resend after a resume was stored under a new id"
    );
    if let Ok(dup) = ana
        .client
        .expect_where("message", QUIET, |f| f["from"] == "contact")
        .await
    {
        panic!("the counsellor saw the message resent after the resume again: {dup}");
    }
    if let Ok(err) = client.expect("error", Duration::from_millis(200)).await {
        panic!("the resend after the resume was refused: {err}");
    }

    let (status, transcript) = get(
        &gw,
        &format!("/api/conversations/{conv}/transcript"),
        &ana.cookie,
    )
    .await?;
    assert_eq!(status, 200, "{transcript}");
    assert_eq!(
        texts(&transcript),
        ["only once please", "sent before the tunnel"]
    );
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
    Ok(())
}

#[tokio::test]
async fn an_unknown_resume_token_is_refused_and_the_socket_may_still_start() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;

    let mut client = resume(
        &gw,
        "no-such-token-0123456789abcdef",
        Some("1700000000000-0"),
    )
    .await?;
    let err = client.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "unknown_token", "{err}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{err}"
    );
    client
        .expect_none("message", Duration::from_millis(300))
        .await?;

    // The refusal is not the end of the socket: a new conversation can start on it.
    client.send(json!({"type": "start", "lang": "ro"})).await?;
    let started = client.expect("started", SECS_5).await?;
    assert!(
        started["conversation"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{started}"
    );

    // Without last_seen, an unknown token is refused the same way.
    let mut other = resume(&gw, "another-unknown-token", None).await?;
    let err = other.expect("error", SECS_5).await?;
    assert_eq!(err["code"], "unknown_token", "{err}");
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
    Ok(())
}
