//! Fault test 5 of issue 7 (docs/guarantees.md): a counsellor's browser vanishes without a close
//! frame, either with its connection reset or silently (the connection stays open but nothing
//! answers, not even the gateway's pings). After the grace time the conversation goes back to the
//! queue, the contact is told, and another counsellor takes it with its whole history.
//! (routing.rs covers a counsellor who closes the socket cleanly.)

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use futures_util::{SinkExt, StreamExt};
use helpline_tests::faults::{raw_socket, reset, RawWs};
use helpline_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const GRACE_S: u64 = 2;
const PING_S: u64 = 1;

/// Waits on a raw socket for a frame of `kind` about `conv` (or any when empty).
async fn expect_raw(ws: &mut RawWs, kind: &str, conv: &str) -> Result<Value> {
    let wait = tokio::time::timeout(SECS_5, async {
        while let Some(msg) = ws.next().await {
            if let Message::Text(t) = msg? {
                let f: Value = serde_json::from_str(&t)?;
                if f["type"] == kind && (conv.is_empty() || f["conversation"] == conv) {
                    return Ok(f);
                }
            }
        }
        bail!("socket closed while waiting for {kind}")
    });
    wait.await.unwrap_or_else(|_| bail!("no {kind} within 5 s"))
}

async fn say_raw(ws: &mut RawWs, frame: Value) -> Result<()> {
    ws.send(Message::Text(frame.to_string().into())).await?;
    Ok(())
}

/// Ana takes a conversation and answers in it; then her browser vanishes as `vanish` does.
/// Bea must get the conversation with both messages within the grace time plus a little.
async fn vanished_counsellor_hands_over(vanish: fn(RawWs) -> Option<RawWs>) -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(
        &redis,
        &[
            ("HELPLINE_ROUTING__AGENT_GRACE_S", &GRACE_S.to_string()),
            ("HELPLINE_SERVER__WS_PING_S", &PING_S.to_string()),
        ],
    )?;
    gw.add_user("ana", "counsellor", "ro", 1)?;
    gw.add_user("bea", "counsellor", "ro", 1)?;

    let cookie = login(&gw, "ana").await?;
    let mut ana = raw_socket(gw.port, "/ws/agent", Some(&cookie)).await?;
    expect_raw(&mut ana, "hello", "").await?;
    say_raw(&mut ana, json!({"type": "status", "status": "available"})).await?;
    let mut contact = Contact::start(&gw, "ro").await?;
    let conv = contact.conversation.clone();
    contact.say("Nu știu cui să spun").await?;
    expect_raw(&mut ana, "offer", &conv).await?;
    say_raw(&mut ana, json!({"type": "accept", "conversation": conv})).await?;
    expect_raw(&mut ana, "assigned", &conv).await?;
    let cmid = uuid();
    say_raw(
        &mut ana,
        json!({"type": "message", "conversation": conv, "text": "Sunt aici, spune-mi.", "client_msg_id": cmid}),
    )
    .await?;
    expect_raw(&mut ana, "ack", "").await?;
    contact
        .client
        .expect_where("message", SECS_5, |f| f["from"] == "counsellor")
        .await?;

    let vanished = Instant::now();
    let _silent = vanish(ana);
    let notice = contact
        .client
        .expect_where(
            "notice",
            Duration::from_secs(GRACE_S + 3 * PING_S + 5),
            |f| f["code"] == "transferred",
        )
        .await?;
    let took = vanished.elapsed();
    println!("re-queued {took:?} after the browser vanished: {notice}");
    ensure!(
        took >= Duration::from_secs(GRACE_S - 1),
        "re-queued after only {took:?}, before the grace time"
    );

    let mut bea = Staff::connect(&gw, "bea").await?;
    bea.available().await?;
    let assigned = bea.take_offer(SECS_5).await?;
    ensure!(assigned["conversation"] == conv.as_str(), "{assigned}");
    let history: Vec<(&str, &str)> = assigned["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["from"] != "system")
        .map(|m| {
            (
                m["from"].as_str().unwrap_or_default(),
                m["text"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("contact", "Nu știu cui să spun"),
            ("counsellor", "Sunt aici, spune-mi.")
        ],
        "{assigned}"
    );
    contact
        .client
        .expect_where("assigned", SECS_5, |f| f["counsellor"] == "bea")
        .await?;
    let answer = bea.say(&conv, "Bună, sunt Bea.").await?;
    contact
        .client
        .expect_where("message", SECS_5, |f| f["id"] == answer.as_str())
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_reset_connection_without_a_close_frame_hands_the_conversation_over() -> Result<()> {
    vanished_counsellor_hands_over(|ws| {
        reset(ws).ok();
        None
    })
    .await
}

#[tokio::test]
async fn a_silent_connection_that_answers_no_ping_hands_the_conversation_over() -> Result<()> {
    // The socket stays open but is never read again: no pong, no frame, as a frozen laptop.
    vanished_counsellor_hands_over(Some).await
}
