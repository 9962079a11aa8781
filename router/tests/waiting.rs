//! What waiting does to a queued conversation, against a real redis-server: aging raises its class
//! once, relaxation drops its topic and then its language once each, and the sets kept beside the
//! queue (`due:STAGE`, which the sweep reads instead of every long wait, and
//! `waiting:URGENCY:CHANNEL`, which the queue gauges read) follow every move.

// A test's helpers may panic: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use helpline_router::store::{ScriptSettings, Store};
use helpline_router::Event;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde_json::json;
use support::{settings, RedisServer};

const P: &str = "t:";
/// Must match `CLASS_SPAN` in common.lua: the class part of a queue score.
const CLASS_SPAN: f64 = 1e13;

async fn create(store: &Store, id: &str, skills: &str, urgency: &str) {
    let fields = json!({
        "channel": "webchat", "lang": "ro", "topic": "abuse", "skills": skills, "alias": "A",
        "pseudonym": "p", "dek": "x", "urgency": urgency,
    });
    let out = store
        .create_conversation(id, &fields, &format!("{P}resume:{id}"), 60)
        .await
        .unwrap();
    assert_eq!(out.status, "ok");
}

async fn conv(conn: &mut MultiplexedConnection, id: &str, field: &str) -> String {
    let v: Option<String> = conn.hget(format!("{P}conv:{id}"), field).await.unwrap();
    v.unwrap_or_default()
}

/// The `due:STAGE` sets that hold `id`.
async fn due(conn: &mut MultiplexedConnection, id: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for stage in ["aging", "topic", "language"] {
        let score: Option<f64> = conn.zscore(format!("{P}due:{stage}"), id).await.unwrap();
        if score.is_some() {
            out.push(stage);
        }
    }
    out
}

/// The queue score of `id` in signature `sig`'s queue, as (class, first queue time).
async fn queued_in(conn: &mut MultiplexedConnection, sig: &str, id: &str) -> Option<(i64, i64)> {
    let score: Option<f64> = conn.zscore(format!("{P}queue:{sig}"), id).await.unwrap();
    score.map(|s| ((s / CLASS_SPAN) as i64, (s % CLASS_SPAN) as i64))
}

fn timers(aging_ms: u64, relax_topic_ms: u64, relax_language_ms: u64) -> ScriptSettings {
    ScriptSettings {
        aging_ms,
        relax_topic_ms,
        relax_language_ms,
        ..settings()
    }
}

#[tokio::test]
async fn waiting_ages_and_relaxes_a_conversation_once_per_stage_and_the_sets_beside_follow() {
    let redis = RedisServer::start().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Every timer far away: nothing moves, everything is still ahead.
    let still = Store::connect(&redis.url(), P, &settings()).await.unwrap();
    create(&still, "w1", "ro,abuse", "low").await;
    create(&still, "w2", "ro", "normal").await;
    let queued_at: i64 = conv(&mut conn, "w1", "queued_at").await.parse().unwrap();
    assert_eq!(due(&mut conn, "w1").await, ["aging", "topic", "language"]);
    assert_eq!(
        queued_in(&mut conn, "ro,abuse", "w1").await,
        Some((3, queued_at))
    );
    let classes = [
        ("low", "webchat"),
        ("normal", "webchat"),
        ("high", "webchat"),
    ];
    let counts = still.queue_classes(&classes).await.unwrap();
    assert_eq!(counts[0], (1, Some(queued_at)));
    assert_eq!(counts[1].0, 1);
    assert_eq!(counts[2], (0, None));

    // An English-speaking counsellor is free, but may take neither while they need Romanian.
    still.register_agent("e", 1, "en", "Emma").await.unwrap();
    let out = still.set_status("e", "available").await.unwrap();
    assert!(!out.events.iter().any(|e| matches!(e, Event::Offer { .. })));

    // Past aging and the topic's relaxation: each happens once, and only language is still ahead.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let topic_gone = Store::connect(&redis.url(), P, &timers(1, 1, 3_600_000))
        .await
        .unwrap();
    for _ in 0..2 {
        let out = topic_gone.sweep().await.unwrap();
        assert!(!out.events.iter().any(|e| matches!(e, Event::Offer { .. })));
        assert_eq!(conv(&mut conn, "w1", "aged").await, "1");
        assert_eq!(conv(&mut conn, "w1", "relaxed").await, "1");
        assert_eq!(conv(&mut conn, "w1", "skills").await, "ro");
        assert_eq!(due(&mut conn, "w1").await, ["language"]);
        // Raised from low to normal, keeping its first queue time.
        assert_eq!(queued_in(&mut conn, "ro", "w1").await, Some((2, queued_at)));
        assert_eq!(queued_in(&mut conn, "ro,abuse", "w1").await, None);
    }

    // An urgency change while queued moves it to its new class's set; the counts follow.
    let out = still.set_urgency("w2", "high", false, "").await.unwrap();
    assert_eq!(out.status, "ok");
    let counts = still.queue_classes(&classes).await.unwrap();
    assert_eq!(
        counts.iter().map(|c| c.0).collect::<Vec<_>>(),
        [1, 0, 1],
        "{counts:?}"
    );

    // Past the language's relaxation: anyone may take them, the more urgent first, and nothing
    // is left ahead of either or counted as waiting once offered.
    let all_gone = Store::connect(&redis.url(), P, &timers(1, 1, 1))
        .await
        .unwrap();
    let out = all_gone.sweep().await.unwrap();
    let offers: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Offer { conv, agent, .. } => Some((conv.as_str(), agent.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(offers, [("w2", "e")]);
    assert_eq!(conv(&mut conn, "w1", "relaxed").await, "2");
    assert_eq!(conv(&mut conn, "w1", "skills").await, "");
    assert_eq!(queued_in(&mut conn, "*", "w1").await, Some((2, queued_at)));
    for id in ["w1", "w2"] {
        assert!(due(&mut conn, id).await.is_empty(), "{id}");
    }
    let counts = still.queue_classes(&classes).await.unwrap();
    assert_eq!(counts, [(1, Some(queued_at)), (0, None), (0, None)]);
}
