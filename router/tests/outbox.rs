//! The outbox entries the routing scripts write for contacts without a socket (Telegram, SMS),
//! against a real redis-server: welcome and position at start, one live conversation per contact,
//! position updates only when they improve and at most once a minute, the assignment and end
//! notices, the per-conversation order, and nothing at all for web chat.

// A test's helpers may panic: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helpline_router::store::Store;
use redis::AsyncCommands;
use serde_json::{json, Value};
use support::{settings, RedisServer};

const P: &str = "t:";

async fn create(store: &Store, id: &str, channel: &str, pseudonym: &str) -> String {
    let fields = json!({
        "channel": channel, "lang": "ru", "topic": "", "skills": "ru", "alias": "A",
        "pseudonym": pseudonym, "dek": "x", "urgency": "normal",
    });
    store
        .create_conversation(id, &fields, &format!("{P}resume:{id}"), 60)
        .await
        .unwrap()
        .status
}

/// The outbox entries of `conv` in order, as (kind, code, vars) from the conversation's order list.
async fn entries(
    conn: &mut redis::aio::MultiplexedConnection,
    conv: &str,
) -> Vec<(String, String, Value)> {
    entries_of(conn, "telegram", conv).await
}

async fn entries_of(
    conn: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    conv: &str,
) -> Vec<(String, String, Value)> {
    let ids: Vec<String> = conn
        .lrange(format!("{P}outbox:{channel}:order:{conv}"), 0, -1)
        .await
        .unwrap();
    let mut out = Vec::new();
    for id in ids {
        let reply: redis::streams::StreamRangeReply = conn
            .xrange(format!("{P}outbox:{channel}"), &id, &id)
            .await
            .unwrap();
        let e = &reply.ids[0];
        let get = |k: &str| e.get::<String>(k).unwrap_or_default();
        let vars = serde_json::from_str(&get("vars")).unwrap_or(Value::Null);
        out.push((get("kind"), get("code"), vars));
    }
    out
}

#[tokio::test]
async fn a_sparing_channel_hears_one_acknowledgement_then_only_assigned_and_ended() {
    let redis = RedisServer::start().unwrap();
    let store = Store::connect(&redis.url(), P, &settings()).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    assert_eq!(create(&store, "s1", "sms", "ps1").await, "ok");
    assert_eq!(create(&store, "s2", "sms", "ps2").await, "ok");
    let s2 = entries_of(&mut conn, "sms", "s2").await;
    assert_eq!(s2.len(), 1, "{s2:?}");
    assert_eq!((s2[0].0.as_str(), s2[0].1.as_str()), ("notice", "welcome"));
    assert_eq!(s2[0].2["position"], 2);
    let due: Option<f64> = conn.zscore(format!("{P}feedback"), "s2").await.unwrap();
    assert!(
        due.is_none(),
        "a sparing channel is never told its position again"
    );

    // s1 leaves, s2 moves up: nothing is said about it.
    store.end_conversation("s1", "contact_ended").await.unwrap();
    let _: i64 = conn.zadd(format!("{P}feedback"), "s2", 0).await.unwrap();
    store.sweep().await.unwrap();
    let _: i64 = conn.zrem(format!("{P}feedback"), "s2").await.unwrap();
    assert_eq!(entries_of(&mut conn, "sms", "s2").await.len(), 1);

    store.register_agent("u", 2, "ru", "Ion").await.unwrap();
    store.set_status("u", "available").await.unwrap();
    store.accept("s2", "u").await.unwrap();
    store.end_conversation("s2", "contact_ended").await.unwrap();
    let codes: Vec<String> = entries_of(&mut conn, "sms", "s2")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(codes, ["welcome", "assigned", "ended_by_contact"]);
}

#[tokio::test]
async fn contacts_without_a_socket_are_told_by_outbox_entries() {
    let redis = RedisServer::start().unwrap();
    let store = Store::connect(&redis.url(), P, &settings()).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    assert_eq!(create(&store, "c1", "telegram", "p1").await, "ok");
    assert_eq!(create(&store, "c2", "telegram", "p2").await, "ok");
    // One live conversation per contact: a second start of p1 opens nothing.
    assert_eq!(create(&store, "c1bis", "telegram", "p1").await, "exists");
    let live: String = conn.get(format!("{P}live:p1")).await.unwrap();
    assert_eq!(live, "c1");

    let c2 = entries(&mut conn, "c2").await;
    assert_eq!(c2.len(), 2);
    assert_eq!((c2[0].0.as_str(), c2[0].1.as_str()), ("notice", "welcome"));
    assert_eq!((c2[1].0.as_str(), c2[1].1.as_str()), ("notice", "queued"));
    assert_eq!(c2[1].2["position"], 2);

    // Web chat contacts have a socket: no entries, and they are watched for abandonment.
    assert_eq!(create(&store, "w1", "webchat", "pw").await, "ok");
    assert!(entries(&mut conn, "w1").await.is_empty());
    let watched: Option<f64> = conn
        .zscore(format!("{P}seen:contacts"), "w1")
        .await
        .unwrap();
    assert!(watched.is_some());
    let unwatched: Option<f64> = conn
        .zscore(format!("{P}seen:contacts"), "c1")
        .await
        .unwrap();
    assert!(
        unwatched.is_none(),
        "a Telegram wait must not count as abandoned"
    );

    // c1 leaves: its last entry says so (and p1 may start again); c2 moves up.
    store.end_conversation("c1", "contact_ended").await.unwrap();
    let c1 = entries(&mut conn, "c1").await;
    let last = c1.last().unwrap();
    assert_eq!(last.1, "ended_by_contact");
    let last_id: Vec<String> = conn
        .lrange(format!("{P}outbox:telegram:order:c1"), -1, -1)
        .await
        .unwrap();
    let reply: redis::streams::StreamRangeReply = conn
        .xrange(format!("{P}outbox:telegram"), &last_id[0], &last_id[0])
        .await
        .unwrap();
    assert_eq!(reply.ids[0].get::<String>("last").as_deref(), Some("1"));
    let live: Option<String> = conn.get(format!("{P}live:p1")).await.unwrap();
    assert_eq!(live, None);

    // Within the minute nothing is said; once due, the better position is told, once.
    store.sweep().await.unwrap();
    assert_eq!(entries(&mut conn, "c2").await.len(), 2);
    let _: i64 = conn.zadd(format!("{P}feedback"), "c2", 0).await.unwrap();
    store.sweep().await.unwrap();
    let c2 = entries(&mut conn, "c2").await;
    assert_eq!(c2.len(), 3);
    assert_eq!(c2[2].1, "queued");
    assert_eq!(c2[2].2["position"], 1);
    let _: i64 = conn.zadd(format!("{P}feedback"), "c2", 0).await.unwrap();
    store.sweep().await.unwrap();
    assert_eq!(
        entries(&mut conn, "c2").await.len(),
        3,
        "told the same position twice"
    );

    // A counsellor takes it: the contact is told who, and no more positions.
    store.register_agent("u", 2, "ru", "Olena").await.unwrap();
    store.set_status("u", "available").await.unwrap();
    store.accept("c2", "u").await.unwrap();
    let c2 = entries(&mut conn, "c2").await;
    assert_eq!(c2[3].1, "assigned");
    assert_eq!(c2[3].2["counsellor"], "Olena");
    let due: Option<f64> = conn.zscore(format!("{P}feedback"), "c2").await.unwrap();
    assert!(due.is_none());

    // A counsellor's message is an entry with its id, never its text.
    let appended = store
        .append_message("c2", "counsellor", 1, "U0VBTEVE", "m1", false, "u")
        .await
        .unwrap();
    let ids: Vec<String> = conn
        .lrange(format!("{P}outbox:telegram:order:c2"), -1, -1)
        .await
        .unwrap();
    let reply: redis::streams::StreamRangeReply = conn
        .xrange(format!("{P}outbox:telegram"), &ids[0], &ids[0])
        .await
        .unwrap();
    let e = &reply.ids[0];
    assert_eq!(e.get::<String>("kind").as_deref(), Some("msg"));
    assert_eq!(e.get::<String>("id"), Some(appended.id));
    assert!(
        e.get::<String>("c").is_none(),
        "sealed text copied into the outbox"
    );

    // The counsellor closes it: the end notice is the last entry.
    store.close("c2", Some("u"), "listened", "").await.unwrap();
    let c2 = entries(&mut conn, "c2").await;
    assert_eq!(c2.last().unwrap().1, "ended_by_counsellor");
}

#[tokio::test]
async fn a_message_id_delivered_after_an_erasure_is_not_kept() {
    let redis = RedisServer::start().unwrap();
    let store = Store::connect(&redis.url(), P, &settings()).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    assert_eq!(create(&store, "c1", "telegram", "tg:1").await, "ok");
    store
        .remember_channel_message("c1", 41, week)
        .await
        .unwrap();
    store
        .remember_channel_message("c1", 42, week)
        .await
        .unwrap();
    assert_eq!(store.channel_messages("c1").await.unwrap(), vec![41, 42]);

    assert!(store.erase("c1").await.unwrap().is_ok());
    // A delivery that was in flight during the erasure finishes now.
    store
        .remember_channel_message("c1", 43, week)
        .await
        .unwrap();
    let left: bool = conn.exists(format!("{P}chanmsgs:c1")).await.unwrap();
    assert!(!left, "the erased conversation's message ids came back");
}
