//! The routing scenario: how fast waiting conversations reach counsellors, through the real
//! gateway in offer mode (`routing.assignment = offer`) over real WebSockets. Each of the three
//! measurements runs against its own redis-server and gateway. Conversations are spread evenly over
//! 20 requirement signatures: 5 languages × (no topic, or one of 3 routed topics), since a
//! conversation requires its language and its topic when that topic is routed
//! (`routing.routed_topics`); a counsellor's skills are languages and topic names.
//!
//! 1. **Burst.** `queued` web chat contacts connect, send `start` and get `started`, and stay
//!    connected. `counsellors` counsellors of capacity 1 are logged in on `/ws/agent` but away
//!    (while they wait, the generator reads every socket: the gateway closes one that answered no
//!    ping for 30 s). Counsellor `i` has the skills of signature `i % 20` (its language, and its
//!    topic if any), so it may take two signatures (one without a topic) and every signature has
//!    counsellors who may take it once there are 20. Then all of them send `status: available` at
//!    one instant. Per counsellor: its own status send → its `offer` frame. Also the time from the
//!    first status send to the last offer (the "500 offers within 100 ms") and how many
//!    offers came within 100 ms of the first send; and Redis's time in scripts over the burst (the
//!    `INFO commandstats` delta of `EVALSHA`, below, from 10 ms before the first send to the last
//!    offer): the status scripts, plus whatever else ran meanwhile (the node's sweep, heartbeat and
//!    its batched ask for its waiting contacts' queue places, each once a second). Every offer is
//!    checked: a conversation that was queued, whose required skills (the offer's `skills`) the
//!    counsellor has, offered to no one else.
//! 2. **Enqueue → offer with a free counsellor.** The queue is empty; `enqueue_counsellors`
//!    counsellors with every skill, at the validated maximum capacity, are available. Contacts
//!    start open-loop at `rate` per second over `secs` seconds (each opens its socket half a second
//!    before its slot; its send's lag behind the slot is recorded as in the relay). Per contact:
//!    its `start` send → the `offer` frame at the counsellor. Counsellors stay free by accepting
//!    each offer and closing the conversation as soon as it is assigned: the room comes back at
//!    once. Declining would instead put the conversation back in the queue, to be offered again (a
//!    second decision for one start) after marking the counsellor as having passed on it.
//! 3. **Decision cost vs queue size.** For each queue size the queue is filled in waves of sockets
//!    that connect, start, wait for their queue position and close. A web chat conversation whose
//!    contact is gone stays `queued` until no node has seen its contact for
//!    `routing.abandon_after_s` (the abandon sweep of sweep.lua reads `seen:contacts`), set here to
//!    a year (validation asks only for more than 0); the waiting set's size is checked after the
//!    fill and after the samples. Then one probe counsellor with every skill, capacity 1, repeats:
//!    `status: available` → its `offer` (timed end to end), then away, accept, close, and one new
//!    conversation of the offered one's signature joins the back of its queue, so the queue keeps
//!    its size and shape. Accepting leaves no mark on later decisions: a decline records a pass
//!    (`passed:ID`, decline.lua) that keeps the counsellor from that conversation for
//!    `offer_timeout_s`, and the next decisions would read past every head it passed on (common.lua
//!    `heads_of`), a cost growing with the number of samples rather than the queue; an offer
//!    answered at once never lapses either (`lapses` set a counsellor away). Going away before the
//!    close keeps the freed room from drawing an offer outside the clock. The status script's own
//!    execution time is the change of Redis's `INFO commandstats` line `cmdstat_evalsha` (calls,
//!    usec) from just before the status send to the offer: it excludes the network, the gateway and
//!    any wait behind other commands. A sample in which another script ran too (the sweep and the
//!    heartbeat run every second) has a calls delta above 1 and counts as missing. (SLOWLOG at
//!    threshold 0 would name the script, but Redis 7 also logs every command a script calls, which
//!    slows the script it measures.) The first samples warm up and are not recorded. The growth of
//!    each median from the smallest queue to the largest is reported beside
//!    log(largest)/log(smallest), the growth of a decision that costs log(queue).
//!
//! Aging and both relaxations are off (0): they would move waiting conversations to another class
//! or signature while a large queue fills.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::{stream, SinkExt, StreamExt, TryStreamExt};
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::conn::{available, open, staff, wait_for, Ws, AVAILABLE};
use super::drive::{ns_at, LATE_NS};
use super::frames::Clock;
use super::rig::{self, add_counsellors, counsellor_name, CAPACITY};
use super::stats::{histogram, Latency, Schedule};
use crate::{Gateway, Redis};

const LANGUAGES: [&str; 5] = ["ro", "ru", "uk", "en", "fr"];
/// Three of the default `routing.topics`.
const ROUTED_TOPICS: [&str; 3] = ["online-safety", "abuse", "family"];
/// Requirement signatures: each language alone or with one routed topic.
pub const SIGNATURES: usize = LANGUAGES.len() * (ROUTED_TOPICS.len() + 1);
/// A year: long enough that no conversation of a run is abandoned.
const ABANDON_AFTER_S: &str = "31536000";
/// The waiting set and the set of non-empty signature queues, under the gateway's default key
/// prefix (the harness sets none).
const WAITING: &str = "helpline:waiting";
const SIGS: &str = "helpline:sigs";
/// Contacts starting at once while a queue fills.
const FILL_CONCURRENCY: usize = 128;
/// How long before its slot an enqueue-phase contact opens its socket.
const OPEN_AHEAD: Duration = Duration::from_millis(500);
/// Decision samples taken before recording (the first also loads the status script).
const WARMUP_SAMPLES: usize = 5;

/// What the burst measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstResult {
    pub queued: usize,
    pub counsellors: usize,
    /// Seconds the contacts took to connect and start.
    pub fill_secs: f64,
    /// Counsellors who got an offer.
    pub offered: usize,
    /// Offers of a conversation that was not queued, or that needs a skill the counsellor lacks.
    pub mismatched: usize,
    /// Offers of a conversation already offered to another counsellor.
    pub doubled: usize,
    /// Each counsellor's status send → its offer received.
    pub status_to_offer: Latency,
    /// The first status send → the last one (the generator's own spread).
    pub sends_spread_ms: f64,
    /// The first status send → the last offer received.
    pub first_send_to_last_offer_ms: f64,
    /// Offers received within 100 ms of the first status send.
    pub offers_within_100ms: usize,
    /// Scripts Redis ran from 10 ms before the first status send to the last offer, and the
    /// time it spent in them.
    pub scripts: u64,
    pub scripts_ms: f64,
}

/// What the enqueue phase measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnqueueResult {
    pub rate: f64,
    pub secs: f64,
    pub counsellors: usize,
    /// Contacts whose `start` was answered with `started`.
    pub enqueued: usize,
    /// Of those, conversations a counsellor was offered.
    pub offered: usize,
    /// The contact's `start` send → the counsellor's `offer` received.
    pub start_to_offer: Latency,
    pub schedule: Schedule,
}

/// The cost of one routing decision with `queued` conversations waiting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionResult {
    pub queued: usize,
    pub samples: usize,
    pub fill_secs: f64,
    /// The waiting set's size after the fill and after the samples (both should be `queued`).
    pub waiting_before: u64,
    pub waiting_after: u64,
    /// Signature queues holding conversations after the fill.
    pub signatures: u64,
    /// The probe's status send → its offer received.
    pub end_to_end: Latency,
    /// The status script's execution time in Redis (`INFO commandstats`).
    pub script: Latency,
    /// Samples in which another script ran too, so the status script's time is unknown.
    pub script_missing: usize,
}

/// How the median decision cost grew from the smallest queue to the largest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Growth {
    pub from: usize,
    pub to: usize,
    pub end_to_end_p50_ratio: f64,
    pub script_p50_ratio: f64,
    /// ln(to) / ln(from): the ratio of a cost growing like log(queue).
    pub log_ratio: f64,
}

/// Everything one `helpline-load routing` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutingResult {
    pub burst: BurstResult,
    pub enqueue: EnqueueResult,
    pub decision: Vec<DecisionResult>,
    pub growth: Option<Growth>,
}

/// A redis-server and a gateway set up for routing (see the module's header), dropped in that
/// order's reverse: the gateway first.
struct Server {
    gw: Gateway,
    redis: Redis,
}

impl Server {
    fn start() -> Result<Server> {
        let redis = Redis::start()?;
        let languages = LANGUAGES.join(",");
        let topics = ROUTED_TOPICS.join(",");
        let gw = rig::gateway_with(
            &redis,
            &[
                ("HELPLINE_ROUTING__ASSIGNMENT", "offer"),
                ("HELPLINE_ROUTING__LANGUAGES", &languages),
                ("HELPLINE_ROUTING__ROUTED_TOPICS", &topics),
                ("HELPLINE_ROUTING__ABANDON_AFTER_S", ABANDON_AFTER_S),
                ("HELPLINE_ROUTING__AGING_S", "0"),
                ("HELPLINE_ROUTING__RELAX_TOPIC_S", "0"),
                ("HELPLINE_ROUTING__RELAX_LANGUAGE_S", "0"),
            ],
        )?;
        Ok(Server { gw, redis })
    }

    async fn redis_connection(&self) -> Result<MultiplexedConnection> {
        let client = redis::Client::open(self.redis.url())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }
}

/// Signature `i` (mod 20): language `i % 5`, and no topic (`i / 5 == 0`) or routed topic
/// `i / 5 - 1`.
fn signature(i: usize) -> (&'static str, Option<&'static str>) {
    let i = i % SIGNATURES;
    let topic = (i / LANGUAGES.len())
        .checked_sub(1)
        .map(|t| ROUTED_TOPICS[t]);
    (LANGUAGES[i % LANGUAGES.len()], topic)
}

/// The skills of signature `i`, comma-separated as `user add --skills` takes them.
fn signature_skills(i: usize) -> String {
    match signature(i) {
        (lang, Some(topic)) => format!("{lang},{topic}"),
        (lang, None) => lang.to_owned(),
    }
}

fn every_skill() -> String {
    LANGUAGES
        .iter()
        .chain(&ROUTED_TOPICS)
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

fn start_frame(lang: &str, topic: Option<&str>) -> String {
    match topic {
        Some(t) => json!({"type": "start", "lang": lang, "topic": t}),
        None => json!({"type": "start", "lang": lang}),
    }
    .to_string()
}

fn conversation_of(frame: &Value) -> Result<String> {
    frame["conversation"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("a frame without a conversation: {frame}"))
}

/// Opens `/ws/chat` and starts a conversation; returns its id and the socket.
async fn queued_contact(port: u16, lang: &str, topic: Option<&str>) -> Result<(String, Ws)> {
    let mut ws = open(port, "/ws/chat", None).await?;
    ws.send(Message::text(start_frame(lang, topic))).await?;
    let conv = conversation_of(&wait_for(&mut ws, "started").await?)?;
    Ok((conv, ws))
}

/// Starts a conversation and leaves once told its queue position (the gateway's last work for a
/// new contact): the conversation stays queued (see the module's header).
async fn leave_queued(port: u16, lang: &str, topic: Option<&str>) -> Result<()> {
    let (_, mut ws) = queued_contact(port, lang, topic).await?;
    wait_for(&mut ws, "queued").await?;
    let _ = ws.close(None).await;
    Ok(())
}

/// A waiting contact: reads its socket (answering the gateway's pings) until `stop`.
async fn wait_connected(mut ws: Ws, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            msg = ws.next() => if !matches!(msg, Some(Ok(_))) { return },
            _ = stop.changed() => break,
        }
    }
    let _ = ws.close(None).await;
}

/// Runs the burst: `queued` conversations wait, then `counsellors` counsellors go available at
/// once.
pub async fn burst(queued: usize, counsellors: usize) -> Result<BurstResult> {
    let server = Server::start()?;
    let gw = &server.gw;
    // Setup, before any clock runs: blocking the runtime's thread here costs nothing measured.
    add_counsellors(gw, counsellors, 1, signature_skills)?;
    let clock = Clock::start();
    let (go, going) = watch::channel(None);
    // Two logins at a time: each hashes a password (Argon2id, 19 MiB), and a gateway starved of
    // CPU by more times its Redis calls out.
    let tasks: Vec<_> = stream::iter(0..counsellors)
        .map(|i| {
            let going = going.clone();
            async move {
                let ws = staff(gw, &counsellor_name(i)).await?;
                anyhow::Ok(tokio::spawn(go_available(ws, going, clock)))
            }
        })
        .buffered(2)
        .try_collect()
        .await?;
    let (stop, stopped) = watch::channel(false);
    let filling = Instant::now();
    let contacts: Vec<(String, tokio::task::JoinHandle<()>)> = stream::iter(0..queued)
        .map(|i| {
            let stopped = stopped.clone();
            async move {
                let (lang, topic) = signature(i);
                let (conv, ws) = queued_contact(gw.port, lang, topic).await?;
                anyhow::Ok((conv, tokio::spawn(wait_connected(ws, stopped))))
            }
        })
        .buffer_unordered(FILL_CONCURRENCY)
        .try_collect()
        .await?;
    let fill_secs = filling.elapsed().as_secs_f64();
    // Let the gateway finish what the starts queued (first queue positions) before the burst.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut redis = server.redis_connection().await?;
    let at = Instant::now() + Duration::from_millis(200);
    let _ = go.send(Some(at));
    tokio::time::sleep_until(at - Duration::from_millis(10)).await;
    let before = script_totals(&mut redis).await?;
    let mut runs = Vec::with_capacity(tasks.len());
    for t in tasks {
        runs.push(t.await??);
    }
    let after = script_totals(&mut redis).await?;
    let _ = stop.send(true);
    let queued_ids: HashSet<String> = contacts.iter().map(|(c, _)| c.clone()).collect();
    for (_, waiting) in contacts {
        let _ = waiting.await;
    }
    Ok(summarize_burst(
        queued,
        counsellors,
        fill_secs,
        &queued_ids,
        &runs,
        after.since(before),
    ))
}

/// One counsellor of the burst: what it sent when, and the offer it got (and when).
struct BurstRun {
    sent_ns: u64,
    offer: Option<(u64, Value)>,
    /// Held until every counsellor is done, so none leaves during the burst.
    _ws: Ws,
}

/// A counsellor of the burst: reads its socket (answering the gateway's pings: one silent for 30 s
/// is closed as gone) until `go` names the burst's instant, then goes available at that instant
/// and waits for its offer.
async fn go_available(
    mut ws: Ws,
    mut go: watch::Receiver<Option<Instant>>,
    clock: Clock,
) -> Result<BurstRun> {
    let at = loop {
        tokio::select! {
            msg = ws.next() => if !matches!(msg, Some(Ok(_))) {
                bail!("a counsellor's socket closed before the burst");
            },
            changed = go.changed() => {
                changed?;
                if let Some(at) = *go.borrow() {
                    break at;
                }
            }
        }
    };
    tokio::time::sleep_until(at).await;
    let sent_ns = clock.now_ns();
    ws.send(Message::text(AVAILABLE)).await?;
    let offer = wait_for(&mut ws, "offer")
        .await
        .ok()
        .map(|o| (clock.now_ns(), o));
    Ok(BurstRun {
        sent_ns,
        offer,
        _ws: ws,
    })
}

fn summarize_burst(
    queued: usize,
    counsellors: usize,
    fill_secs: f64,
    queued_ids: &HashSet<String>,
    runs: &[BurstRun],
    scripts: ScriptTotals,
) -> BurstResult {
    let first_send = runs.iter().map(|r| r.sent_ns).min().unwrap_or(0);
    let last_send = runs.iter().map(|r| r.sent_ns).max().unwrap_or(0);
    let mut latency = histogram();
    let (mut offered, mut mismatched, mut doubled, mut within, mut last_offer) = (0, 0, 0, 0, 0);
    let mut seen = HashSet::new();
    for (i, run) in runs.iter().enumerate() {
        let Some((got_ns, offer)) = &run.offer else {
            continue;
        };
        offered += 1;
        let _ = latency.record(got_ns.saturating_sub(run.sent_ns).max(1_000));
        last_offer = last_offer.max(*got_ns);
        if got_ns.saturating_sub(first_send) <= 100_000_000 {
            within += 1;
        }
        let conv = offer["conversation"].as_str().unwrap_or_default();
        if !seen.insert(conv.to_owned()) {
            doubled += 1;
        }
        let skills = signature_skills(i);
        let mine: Vec<&str> = skills.split(',').collect();
        let fits = offer["skills"].as_array().is_some_and(|req| {
            req.iter()
                .all(|r| r.as_str().is_some_and(|r| mine.contains(&r)))
        });
        if !fits || !queued_ids.contains(conv) {
            mismatched += 1;
        }
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    BurstResult {
        queued,
        counsellors,
        fill_secs,
        offered,
        mismatched,
        doubled,
        status_to_offer: Latency::of(&latency),
        sends_spread_ms: ms(last_send - first_send),
        first_send_to_last_offer_ms: ms(last_offer.saturating_sub(first_send)),
        offers_within_100ms: within,
        scripts: scripts.calls,
        scripts_ms: scripts.usec as f64 / 1e3,
    }
}

/// Runs the enqueue phase: contacts start at `rate` per second for `secs` seconds while
/// `counsellors` counsellors with every skill are free.
pub async fn enqueue(rate: f64, secs: f64, counsellors: usize) -> Result<EnqueueResult> {
    let server = Server::start()?;
    let gw = &server.gw;
    add_counsellors(gw, counsellors, CAPACITY, |_| every_skill())?;
    let clock = Clock::start();
    let (stop, stopped) = watch::channel(false);
    let mut staff_tasks = Vec::with_capacity(counsellors);
    for i in 0..counsellors {
        let mut ws = staff(gw, &counsellor_name(i)).await?;
        available(&mut ws).await?;
        staff_tasks.push(tokio::spawn(take_and_close(ws, clock, stopped.clone())));
    }
    let n = (rate * secs).round() as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let first = Instant::now() + OPEN_AHEAD + Duration::from_millis(500);
    let contacts: Vec<_> = (0..n)
        .map(|i| tokio::spawn(start_at(gw.port, i, first + period * i as u32, clock)))
        .collect();
    let mut starts = Vec::with_capacity(n);
    for c in contacts {
        starts.push(c.await??);
    }
    let _ = stop.send(true);
    let mut offered_at = HashMap::new();
    for t in staff_tasks {
        offered_at.extend(t.await?);
    }
    let (mut latency, mut lag) = (histogram(), histogram());
    let (mut offered, mut late) = (0, 0);
    for s in &starts {
        let _ = lag.record(s.lag_ns.max(1_000));
        if s.lag_ns > LATE_NS {
            late += 1;
        }
        if let Some(got_ns) = offered_at.get(&s.conv) {
            offered += 1;
            let _ = latency.record(got_ns.saturating_sub(s.sent_ns).max(1_000));
        }
    }
    Ok(EnqueueResult {
        rate,
        secs,
        counsellors,
        enqueued: starts.len(),
        offered,
        start_to_offer: Latency::of(&latency),
        schedule: Schedule::of(&lag, late),
    })
}

/// One enqueue-phase contact's start.
struct Start {
    conv: String,
    sent_ns: u64,
    /// The send's lag behind its slot.
    lag_ns: u64,
}

/// Contact `i` of the enqueue phase: opens its socket shortly before `due`, sends `start` at
/// `due`, and leaves once a counsellor has the conversation (or after 30 s).
async fn start_at(port: u16, i: usize, due: Instant, clock: Clock) -> Result<Start> {
    tokio::time::sleep_until(due - OPEN_AHEAD).await;
    let mut ws = open(port, "/ws/chat", None).await?;
    let (lang, topic) = signature(i);
    let frame = start_frame(lang, topic);
    tokio::time::sleep_until(due).await;
    let sent_ns = clock.now_ns();
    ws.send(Message::text(frame)).await?;
    let conv = conversation_of(&wait_for(&mut ws, "started").await?)?;
    let _ = wait_for(&mut ws, "assigned").await;
    let _ = ws.close(None).await;
    Ok(Start {
        conv,
        sent_ns,
        lag_ns: sent_ns.saturating_sub(ns_at(clock, due)),
    })
}

/// A counsellor of the enqueue phase: notes when each offer arrives, accepts it, and closes the
/// conversation once assigned, until `stop`. Returns each offered conversation's arrival time.
async fn take_and_close(
    mut ws: Ws,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> HashMap<String, u64> {
    let mut offered = HashMap::new();
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let now = clock.now_ns();
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => break,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let conv = frame["conversation"].as_str().unwrap_or_default();
        let reply = match frame["type"].as_str() {
            Some("offer") => {
                offered.entry(conv.to_owned()).or_insert(now);
                json!({"type": "accept", "conversation": conv})
            }
            Some("assigned") => {
                json!({"type": "close", "conversation": conv, "outcome": "supported"})
            }
            _ => continue,
        };
        if ws.send(Message::text(reply.to_string())).await.is_err() {
            break;
        }
    }
    let _ = ws.close(None).await;
    offered
}

/// Measures `samples` routing decisions with `queued` conversations waiting.
pub async fn decision(queued: usize, samples: usize) -> Result<DecisionResult> {
    let server = Server::start()?;
    let gw = &server.gw;
    add_counsellors(gw, 1, 1, |_| every_skill())?;
    let mut redis = server.redis_connection().await?;
    let filling = Instant::now();
    stream::iter(0..queued)
        .map(|i| {
            let (lang, topic) = signature(i);
            leave_queued(gw.port, lang, topic)
        })
        .buffer_unordered(FILL_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let fill_secs = filling.elapsed().as_secs_f64();
    // Connected only now: a socket nobody reads answers no ping, and the gateway closes one
    // silent for 30 s (a large fill takes longer).
    let mut ws = staff(gw, &counsellor_name(0)).await?;
    let waiting_before: u64 = redis::cmd("ZCARD")
        .arg(WAITING)
        .query_async(&mut redis)
        .await?;
    let signatures: u64 = redis::cmd("SCARD")
        .arg(SIGS)
        .query_async(&mut redis)
        .await?;
    let (mut end_to_end, mut script) = (histogram(), histogram());
    let mut script_missing = 0;
    for n in 0..WARMUP_SAMPLES + samples {
        let (took, script_us, offer) = decide(&mut ws, &mut redis).await?;
        if n >= WARMUP_SAMPLES {
            let _ = end_to_end.record(took.max(1_000));
            match script_us {
                Some(us) => {
                    let _ = script.record((us * 1_000).max(1_000));
                }
                None => script_missing += 1,
            }
        }
        let_go(&mut ws, gw.port, &offer).await?;
    }
    let waiting_after: u64 = redis::cmd("ZCARD")
        .arg(WAITING)
        .query_async(&mut redis)
        .await?;
    Ok(DecisionResult {
        queued,
        samples,
        fill_secs,
        waiting_before,
        waiting_after,
        signatures,
        end_to_end: Latency::of(&end_to_end),
        script: Latency::of(&script),
        script_missing,
    })
}

/// One decision: the probe goes available. Returns the time to its offer (ns), the status
/// script's execution time (µs) unless another script ran meanwhile, and the offer.
async fn decide(
    ws: &mut Ws,
    redis: &mut MultiplexedConnection,
) -> Result<(u64, Option<u64>, Value)> {
    let before = script_totals(redis).await?;
    let sent = Instant::now();
    ws.send(Message::text(AVAILABLE)).await?;
    let offer = wait_for(ws, "offer").await?;
    let took = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let scripts = script_totals(redis).await?.since(before);
    Ok((took, (scripts.calls == 1).then_some(scripts.usec), offer))
}

/// Redis's running totals of script calls (`EVALSHA`, how the gateway runs every script) and of
/// the µs spent in them, from `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default)]
struct ScriptTotals {
    calls: u64,
    usec: u64,
}

impl ScriptTotals {
    fn since(self, earlier: ScriptTotals) -> ScriptTotals {
        ScriptTotals {
            calls: self.calls.saturating_sub(earlier.calls),
            usec: self.usec.saturating_sub(earlier.usec),
        }
    }
}

async fn script_totals(redis: &mut MultiplexedConnection) -> Result<ScriptTotals> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await?;
    let mut totals = ScriptTotals::default();
    // cmdstat_evalsha:calls=N,usec=M,usec_per_call=…; absent before the first call.
    let fields = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .unwrap_or_default();
    for (name, value) in fields.split(',').filter_map(|f| f.split_once('=')) {
        match name {
            "calls" => totals.calls = value.parse()?,
            "usec" => totals.usec = value.parse()?,
            _ => {}
        }
    }
    Ok(totals)
}

/// Lets the probe's offer go without a mark on later decisions (see the module's header), and
/// queues one new conversation of the same signature in its place.
async fn let_go(ws: &mut Ws, port: u16, offer: &Value) -> Result<()> {
    let conv = conversation_of(offer)?;
    let frames = [
        json!({"type": "status", "status": "away"}),
        json!({"type": "accept", "conversation": conv}),
    ];
    for f in frames {
        ws.send(Message::text(f.to_string())).await?;
    }
    wait_for(ws, "assigned").await?;
    let close = json!({"type": "close", "conversation": conv, "outcome": "supported"});
    ws.send(Message::text(close.to_string())).await?;
    wait_for(ws, "ended").await?;
    let lang = offer["lang"]
        .as_str()
        .context("an offer without a language")?;
    let topic = offer["skills"]
        .as_array()
        .and_then(|skills| skills.iter().filter_map(Value::as_str).find(|s| *s != lang));
    leave_queued(port, lang, topic).await
}

/// The growth of the median decision cost from the smallest queue measured to the largest.
pub fn growth(results: &[DecisionResult]) -> Option<Growth> {
    let small = results.iter().min_by_key(|r| r.queued)?;
    let large = results.iter().max_by_key(|r| r.queued)?;
    if small.queued < 2 || large.queued <= small.queued {
        return None;
    }
    Some(Growth {
        from: small.queued,
        to: large.queued,
        end_to_end_p50_ratio: large.end_to_end.p50_us / small.end_to_end.p50_us,
        script_p50_ratio: large.script.p50_us / small.script.p50_us,
        log_ratio: (large.queued as f64).ln() / (small.queued as f64).ln(),
    })
}
