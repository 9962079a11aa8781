//! Property tests of the routing invariants (DESIGN.md, "Routing" and "Conversations"), driving the
//! Redis `Store` directly with random sequences of arrivals, status changes, accepts, declines,
//! closes, contact endings, transfers, urgency changes, reconnections with a new capacity and
//! sweeps, and reading the whole routing
//! state back from Redis after every step:
//!
//! 1. no double assignment: an active conversation is held by exactly one counsellor, an offered one
//!    is offered to exactly one;
//! 2. capacity: a counsellor's active plus offered conversations never exceed their capacity, the
//!    `load` / `offers` counters match the sets, and the `free` set (the only counsellors a decision
//!    reads) holds exactly the available counsellors with room;
//! 3. no conversation lost: every conversation is in exactly one of queued (one queue and `waiting`),
//!    offered, active, or ended (and then in no queue or offer set); the sets kept beside the queue
//!    (`waiting:URGENCY:CHANNEL` for the gauges, `due:STAGE` for the sweep) hold exactly the queued
//!    conversations of their class and those with that stage still ahead;
//! 4. order: dispatch is work-conserving (no queued conversation is left while an available
//!    counsellor with room and the skill, who has not passed on it, exists), and a counsellor is
//!    never handed a conversation of a lower class than a queued one they could have taken.
//!
//! Each worker thread (one per core) has its own private `redis-server`, emptied after every case;
//! a step costs two round trips (the operation, then one pipelined snapshot of the whole state).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use helpline_router::store::{ScriptSettings, Store};
use helpline_router::Event;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use support::RedisServer;

const LANGS: [&str; 3] = ["ro", "ru", "en"];
const URGENCIES: [&str; 4] = ["low", "normal", "high", "critical"];
const AGENT_SKILLS: [&str; 4] = ["ro", "ru", "ro,ru", "en"];
const LONG_MS: u64 = 3_600_000;
/// Must match `CLASS_SPAN` in common.lua: the class part of a queue score.
const CLASS_SPAN: f64 = 1e13;

// ---------------------------------------------------------------------------------------------
// The private redis-server.

// ---------------------------------------------------------------------------------------------
// The generated cases.

#[derive(Debug, Clone)]
enum Op {
    /// A contact arrives: language `LANGS[lang]`, urgency `URGENCIES[urgency]`.
    Arrive {
        lang: usize,
        urgency: usize,
    },
    Status {
        c: usize,
        available: bool,
    },
    /// Accepts an offer standing to `c` (pick among them), or a conversation not offered to `c`;
    /// an odd `pick` moves on to the next counsellor who has an offer, if `c` has none.
    Accept {
        c: usize,
        pick: usize,
    },
    Decline {
        c: usize,
        pick: usize,
    },
    /// Closes an active conversation of `c`, or tries one that is not theirs; an odd `pick` moves on
    /// to the next counsellor with an active conversation, if `c` has none.
    Close {
        c: usize,
        pick: usize,
    },
    /// The contact of a conversation leaves.
    End {
        pick: usize,
    },
    /// `c` hands an active conversation back to the queue (skills: its language).
    Transfer {
        c: usize,
        pick: usize,
    },
    /// `c` hands an active conversation straight to counsellor `to`.
    TransferTo {
        c: usize,
        pick: usize,
        to: usize,
    },
    Urgency {
        pick: usize,
        level: usize,
        raise: bool,
    },
    /// `c` connects again with capacity `capacity` (raised to what they hold, as an account's
    /// capacity lowered below a counsellor's load is beyond what this test checks).
    Reconnect {
        c: usize,
        capacity: u32,
    },
    Sweep,
}

#[derive(Debug, Clone)]
struct Case {
    auto: bool,
    /// (capacity, index into `AGENT_SKILLS`) of counsellors c0, c1, ...
    agents: Vec<(u32, usize)>,
    ops: Vec<Op>,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let c = 0usize..5;
    let pick = 0usize..64;
    prop_oneof![
        5 => (0usize..3, 0usize..4).prop_map(|(lang, urgency)| Op::Arrive { lang, urgency }),
        4 => (c.clone(), prop::bool::weighted(0.75))
            .prop_map(|(c, available)| Op::Status { c, available }),
        5 => (c.clone(), pick.clone()).prop_map(|(c, pick)| Op::Accept { c, pick }),
        3 => (c.clone(), pick.clone()).prop_map(|(c, pick)| Op::Decline { c, pick }),
        3 => (c.clone(), pick.clone()).prop_map(|(c, pick)| Op::Close { c, pick }),
        1 => pick.clone().prop_map(|pick| Op::End { pick }),
        2 => (c.clone(), pick.clone()).prop_map(|(c, pick)| Op::Transfer { c, pick }),
        2 => (c.clone(), pick.clone(), c.clone()).prop_map(|(c, pick, to)| Op::TransferTo { c, pick, to }),
        2 => (pick, 0usize..4, any::<bool>())
            .prop_map(|(pick, level, raise)| Op::Urgency { pick, level, raise }),
        1 => (c, 1u32..=3).prop_map(|(c, capacity)| Op::Reconnect { c, capacity }),
        1 => Just(Op::Sweep),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop::collection::vec((1u32..=3, 0usize..AGENT_SKILLS.len()), 3..=5),
        prop::collection::vec(op_strategy(), 12..=40),
    )
        .prop_map(|(auto, agents, ops)| Case { auto, agents, ops })
}

// ---------------------------------------------------------------------------------------------
// Reading the routing state back.

#[derive(Debug, Default)]
struct AgentSnap {
    hash: HashMap<String, String>,
    convs: BTreeSet<String>,
    offered: BTreeSet<String>,
}

impl AgentSnap {
    fn num(&self, field: &str) -> i64 {
        self.hash
            .get(field)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn skills(&self) -> BTreeSet<String> {
        split(self.hash.get("skills").map(String::as_str).unwrap_or(""))
    }

    fn status(&self) -> &str {
        self.hash.get("status").map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    now: i64,
    available: BTreeSet<String>,
    free: BTreeSet<String>,
    sigs: BTreeSet<String>,
    waiting: Vec<(String, f64)>,
    offers: Vec<(String, f64)>,
    /// signature -> queued ids with their scores
    queues: BTreeMap<String, Vec<(String, f64)>>,
    /// `waiting:URGENCY:CHANNEL` and `due:STAGE` (key without the prefix) -> ids with their scores
    beside: BTreeMap<String, Vec<(String, f64)>>,
    agents: BTreeMap<String, AgentSnap>,
    convs: BTreeMap<String, HashMap<String, String>>,
    passed: BTreeMap<String, HashMap<String, i64>>,
}

impl Snapshot {
    fn conv_field(&self, id: &str, field: &str) -> Option<&str> {
        self.convs
            .get(id)
            .and_then(|h| h.get(field))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn state(&self, id: &str) -> &str {
        self.conv_field(id, "state").unwrap_or("<none>")
    }

    /// Counsellor `u` passed on conversation `id` and may not be offered it yet.
    fn has_passed(&self, id: &str, u: &str) -> bool {
        self.passed
            .get(id)
            .and_then(|p| p.get(u))
            .is_some_and(|&until| until > self.now)
    }

    fn class(&self, id: &str) -> i64 {
        class_rank(
            self.conv_field(id, "urgency").unwrap_or("normal"),
            self.conv_field(id, "aged").unwrap_or("0"),
        )
    }

    fn queued(&self) -> Vec<&str> {
        self.convs
            .keys()
            .filter(|id| self.state(id) == "queued")
            .map(String::as_str)
            .collect()
    }

    /// `u` is available-status-wise and skill-wise allowed to take queued conversation `id`.
    fn eligible(&self, u: &str, id: &str) -> bool {
        let Some(a) = self.agents.get(u) else {
            return false;
        };
        let skills = a.skills();
        let reqs = split(self.conv_field(id, "skills").unwrap_or(""));
        reqs.iter().all(|r| skills.contains(r)) && !self.has_passed(id, u)
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for (u, a) in &self.agents {
            let _ = writeln!(
                out,
                "  {u}: status={} cap={} skills={} load={} offers={} convs={:?} offered={:?}",
                a.status(),
                a.num("capacity"),
                a.hash.get("skills").map(String::as_str).unwrap_or(""),
                a.num("load"),
                a.num("offers"),
                a.convs,
                a.offered,
            );
        }
        for (id, h) in &self.convs {
            let f = |k: &str| h.get(k).map(String::as_str).unwrap_or("-");
            let _ = writeln!(
                out,
                "  {id}: state={} skills={} urgency={} counsellor={} offered_to={} passed={:?}",
                f("state"),
                f("skills"),
                f("urgency"),
                f("counsellor"),
                f("offered_to"),
                self.passed
                    .get(id)
                    .map(|p| p.keys().collect::<BTreeSet<_>>())
                    .unwrap_or_default(),
            );
        }
        let ids = |v: &Vec<(String, f64)>| v.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
        for (sig, q) in &self.queues {
            let _ = writeln!(out, "  queue:{sig} = {:?}", ids(q));
        }
        let _ = writeln!(out, "  waiting = {:?}", ids(&self.waiting));
        let _ = writeln!(out, "  offers = {:?}", ids(&self.offers));
        let _ = writeln!(
            out,
            "  available = {:?}, sigs = {:?}",
            self.available, self.sigs
        );
        out
    }
}

fn split(s: &str) -> BTreeSet<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn sig_of(skills: &str) -> String {
    if skills.is_empty() {
        "*".into()
    } else {
        skills.into()
    }
}

/// As `class_rank` in common.lua: 0 critical .. 3 low, aging raises one class but never to critical.
fn class_rank(urgency: &str, aged: &str) -> i64 {
    let r = match urgency {
        "critical" => 0,
        "high" => 1,
        "low" => 3,
        _ => 2,
    };
    if aged == "1" && r > 1 {
        r - 1
    } else {
        r
    }
}

fn rank(urgency: &str) -> i64 {
    class_rank(urgency, "0")
}

/// Every queue key under `ARGV[1]` with its members and scores, flattened: the queue keys are only
/// known inside Redis, so a script reads them in the same round trip as the rest of the snapshot.
const QUEUES_SCRIPT: &str = "local out = {} \
    for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
        out[#out + 1] = k \
        out[#out + 1] = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES') \
    end \
    return out";

fn scored(flat: Vec<String>) -> Vec<(String, f64)> {
    flat.chunks(2)
        .map(|p| {
            (
                p[0].clone(),
                p.get(1).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// Reads the whole routing state of `agents` and conversations `ids` in one pipelined round trip
/// (the step's cost is mostly round trips, and 10,000 cases make hundreds of thousands of steps).
async fn snapshot(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    agents: &[String],
    ids: &[String],
) -> Result<Snapshot, redis::RedisError> {
    let k = |s: &str| format!("{prefix}{s}");
    let mut pipe = redis::pipe();
    pipe.cmd("TIME")
        .smembers(k("available"))
        .smembers(k("free"))
        .smembers(k("sigs"))
        .zrange_withscores(k("waiting"), 0, -1)
        .zrange_withscores(k("offers"), 0, -1)
        .cmd("EVAL")
        .arg(QUEUES_SCRIPT)
        .arg(0)
        .arg(k("queue:*"));
    for pattern in ["waiting:*", "due:*"] {
        pipe.cmd("EVAL").arg(QUEUES_SCRIPT).arg(0).arg(k(pattern));
    }
    for u in agents {
        pipe.hgetall(k(&format!("agent:{u}")));
        pipe.smembers(k(&format!("agent:{u}:convs")));
        pipe.smembers(k(&format!("agent:{u}:offered")));
    }
    for id in ids {
        pipe.hgetall(k(&format!("conv:{id}")));
        pipe.hgetall(k(&format!("passed:{id}")));
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let mut replies = replies.into_iter();
    let mut next = || replies.next().unwrap_or(redis::Value::Nil);
    let time: (i64, i64) = redis::from_redis_value(next())?;
    let available: BTreeSet<String> = redis::from_redis_value(next())?;
    let free: BTreeSet<String> = redis::from_redis_value(next())?;
    let sigs: BTreeSet<String> = redis::from_redis_value(next())?;
    let waiting: Vec<(String, f64)> = redis::from_redis_value(next())?;
    let offers: Vec<(String, f64)> = redis::from_redis_value(next())?;
    let queue_rows: Vec<redis::Value> = redis::from_redis_value(next())?;
    let zsets = |rows: Vec<redis::Value>, skip: usize| {
        let mut out = BTreeMap::new();
        for pair in rows.chunks(2) {
            let key: String = redis::from_redis_value(pair[0].clone())?;
            let flat: Vec<String> =
                redis::from_redis_value(pair.get(1).cloned().unwrap_or(redis::Value::Nil))?;
            out.insert(key[skip..].to_owned(), scored(flat));
        }
        Ok::<_, redis::RedisError>(out)
    };
    let queues = zsets(queue_rows, prefix.len() + "queue:".len())?;
    let mut beside = zsets(redis::from_redis_value(next())?, prefix.len())?;
    beside.extend(zsets(redis::from_redis_value(next())?, prefix.len())?);
    let mut snap = Snapshot {
        now: time.0 * 1000 + time.1 / 1000,
        available,
        free,
        sigs,
        waiting,
        offers,
        queues,
        beside,
        ..Snapshot::default()
    };
    for u in agents {
        let a = AgentSnap {
            hash: redis::from_redis_value(next())?,
            convs: redis::from_redis_value(next())?,
            offered: redis::from_redis_value(next())?,
        };
        snap.agents.insert(u.clone(), a);
    }
    for id in ids {
        let conv: HashMap<String, String> = redis::from_redis_value(next())?;
        let passed: HashMap<String, String> = redis::from_redis_value(next())?;
        snap.convs.insert(id.clone(), conv);
        let passed = passed
            .into_iter()
            .map(|(u, v)| (u, v.parse().unwrap_or(0)))
            .collect();
        snap.passed.insert(id.clone(), passed);
    }
    Ok(snap)
}

// ---------------------------------------------------------------------------------------------
// The invariants.

/// What the model knows independently of Redis: which conversations exist and which have ended.
#[derive(Debug, Default)]
struct Model {
    ids: Vec<String>,
    /// id -> the state it ended in (`closed` or `abandoned`)
    ended: HashMap<String, &'static str>,
}

fn check_state(snap: &Snapshot, model: &Model) -> Result<(), String> {
    // Capacity and counters (2), and the available and free sets.
    for (u, a) in &snap.agents {
        let cap = a.num("capacity");
        let (nc, no) = (a.convs.len() as i64, a.offered.len() as i64);
        if nc + no > cap {
            return Err(format!(
                "{u} holds {nc} active + {no} offered > capacity {cap}"
            ));
        }
        if a.num("load") != nc {
            return Err(format!(
                "{u}: load={} but {nc} active conversations",
                a.num("load")
            ));
        }
        if a.num("offers") != no {
            return Err(format!(
                "{u}: offers={} but {no} standing offers",
                a.num("offers")
            ));
        }
        if let Some(id) = a.convs.intersection(&a.offered).next() {
            return Err(format!("{id} is both active with and offered to {u}"));
        }
        if (a.status() == "available") != snap.available.contains(u) {
            return Err(format!(
                "{u}: status {} but in available set: {}",
                a.status(),
                snap.available.contains(u)
            ));
        }
        let room = cap - nc - no;
        if (a.status() == "available" && room > 0) != snap.free.contains(u) {
            return Err(format!(
                "{u}: status {}, room {room}, but in free set: {}",
                a.status(),
                snap.free.contains(u)
            ));
        }
    }

    // Nothing in any routing set that this case did not create.
    let known: BTreeSet<&str> = model.ids.iter().map(String::as_str).collect();
    let mut members: Vec<(&str, String)> = Vec::new();
    for (u, a) in &snap.agents {
        members.extend(
            a.convs
                .iter()
                .map(|id| (id.as_str(), format!("agent:{u}:convs"))),
        );
        members.extend(
            a.offered
                .iter()
                .map(|id| (id.as_str(), format!("agent:{u}:offered"))),
        );
    }
    for (sig, q) in &snap.queues {
        members.extend(
            q.iter()
                .map(|(id, _)| (id.as_str(), format!("queue:{sig}"))),
        );
    }
    members.extend(
        snap.waiting
            .iter()
            .map(|(id, _)| (id.as_str(), "waiting".to_owned())),
    );
    members.extend(
        snap.offers
            .iter()
            .map(|(id, _)| (id.as_str(), "offers".to_owned())),
    );
    if let Some((id, set)) = members.iter().find(|(id, _)| !known.contains(id)) {
        return Err(format!("{set} holds unknown conversation {id}"));
    }
    let nonempty: BTreeSet<String> = snap
        .queues
        .iter()
        .filter(|(_, q)| !q.is_empty())
        .map(|(s, _)| s.clone())
        .collect();
    if nonempty != snap.sigs {
        return Err(format!(
            "sigs {:?} but non-empty queues {:?}",
            snap.sigs, nonempty
        ));
    }

    // The sets beside the queue (3): each queued conversation in its class and in the stages still
    // ahead of it, by first queue time, and nothing else.
    let mut expected: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for id in snap.queued() {
        let field = |f: &str| snap.conv_field(id, f).unwrap_or("");
        let at: f64 = field("queued_at").parse().unwrap_or(f64::NAN);
        let mut keys = vec![format!("waiting:{}:{}", field("urgency"), field("channel"))];
        if field("aged") != "1" {
            keys.push("due:aging".into());
        }
        if !matches!(field("relaxed"), "1" | "2") {
            keys.push("due:topic".into());
        }
        if field("relaxed") != "2" {
            keys.push("due:language".into());
        }
        for key in keys {
            expected.entry(key).or_default().push((id.to_owned(), at));
        }
    }
    for members in expected.values_mut() {
        members.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    }
    if expected != snap.beside {
        return Err(format!(
            "sets beside the queue {:?}, expected {expected:?}",
            snap.beside
        ));
    }

    // Every conversation in exactly one place (1, 3).
    for id in &model.ids {
        let state = snap.state(id);
        let holders: Vec<&str> = snap
            .agents
            .iter()
            .filter(|(_, a)| a.convs.contains(id))
            .map(|(u, _)| u.as_str())
            .collect();
        let offered_to: Vec<&str> = snap
            .agents
            .iter()
            .filter(|(_, a)| a.offered.contains(id))
            .map(|(u, _)| u.as_str())
            .collect();
        let in_queues: Vec<(&str, f64)> = snap
            .queues
            .iter()
            .filter_map(|(s, q)| {
                q.iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, sc)| (s.as_str(), *sc))
            })
            .collect();
        let waiting = snap.waiting.iter().find(|(i, _)| i == id).map(|(_, s)| *s);
        let in_offers = snap.offers.iter().any(|(i, _)| i == id);
        let place = format!(
            "{id} (state {state}): active with {holders:?}, offered to {offered_to:?}, \
             queues {in_queues:?}, waiting {waiting:?}, in offers {in_offers}"
        );
        match state {
            "queued" => {
                let sig = sig_of(snap.conv_field(id, "skills").unwrap_or(""));
                let ok = holders.is_empty()
                    && offered_to.is_empty()
                    && !in_offers
                    && in_queues.len() == 1
                    && in_queues[0].0 == sig
                    && waiting.is_some();
                if !ok {
                    return Err(format!("queued conversation misplaced: {place}"));
                }
                let class = (in_queues[0].1 / CLASS_SPAN).floor() as i64;
                if class != snap.class(id) {
                    return Err(format!(
                        "{id} is queued in class {class} but its urgency gives {}",
                        snap.class(id)
                    ));
                }
                let queued_at: f64 = snap
                    .conv_field(id, "queued_at")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1.0);
                if waiting != Some(queued_at) {
                    return Err(format!(
                        "{id}: waiting score {waiting:?} != queued_at {queued_at}"
                    ));
                }
                if snap.conv_field(id, "counsellor").is_some()
                    || snap.conv_field(id, "offered_to").is_some()
                {
                    return Err(format!("queued {id} still names a counsellor: {place}"));
                }
            }
            "offered" => {
                let to = snap.conv_field(id, "offered_to");
                let ok = holders.is_empty()
                    && offered_to.len() == 1
                    && to == Some(offered_to[0])
                    && in_offers
                    && in_queues.is_empty()
                    && waiting.is_none();
                if !ok {
                    return Err(format!(
                        "offered conversation misplaced (offered_to {to:?}): {place}"
                    ));
                }
            }
            "active" => {
                let by = snap.conv_field(id, "counsellor");
                let ok = holders.len() == 1
                    && by == Some(holders[0])
                    && offered_to.is_empty()
                    && !in_offers
                    && in_queues.is_empty()
                    && waiting.is_none();
                if !ok {
                    return Err(format!(
                        "active conversation misplaced (counsellor {by:?}): {place}"
                    ));
                }
            }
            "closed" | "abandoned" => {
                let ok = holders.is_empty()
                    && offered_to.is_empty()
                    && !in_offers
                    && in_queues.is_empty()
                    && waiting.is_none();
                if !ok {
                    return Err(format!("ended conversation still routed: {place}"));
                }
            }
            other => return Err(format!("{id} is in unknown state {other}: {place}")),
        }
        match model.ended.get(id.as_str()) {
            Some(&expected) if expected != state => {
                return Err(format!("{id} ended as {expected} but is now {state}"));
            }
            None if !matches!(state, "queued" | "offered" | "active") => {
                return Err(format!("{id} is {state} though nobody ended it"));
            }
            _ => {}
        }
    }

    // Work-conserving (4): no available counsellor with room could take a queued conversation.
    for (u, a) in &snap.agents {
        if a.status() != "available" || !snap.available.contains(u) {
            continue;
        }
        let room = a.num("capacity") - a.num("load") - a.num("offers");
        if room <= 0 {
            continue;
        }
        if let Some(id) = snap.queued().into_iter().find(|id| snap.eligible(u, id)) {
            return Err(format!(
                "not work-conserving: {id} (skills {}) is queued while {u} is available with room \
                 {room}, skills {:?}, and has not passed on it",
                snap.conv_field(id, "skills").unwrap_or(""),
                a.skills()
            ));
        }
    }
    Ok(())
}

/// Strict class order (4): the conversations a dispatch handed out in this step are never of a
/// lower class than a conversation still queued that the same counsellor could have taken.
fn check_order(
    snap: &Snapshot,
    events: &[Event],
    auto: bool,
    dispatched: bool,
) -> Result<(), String> {
    for ev in events {
        let (conv, agent) = match ev {
            Event::Offer {
                conv, agent, view, ..
            } => {
                if auto {
                    return Err(format!("an offer ({conv} to {agent}) in auto mode"));
                }
                // It carries what its counsellor is shown, as stored.
                let shown = ["alias", "channel", "lang", "urgency", "skills", "relaxed"];
                let wrong = shown.into_iter().chain(["queued_at", "state"]).find(|k| {
                    let carried = view.get(*k).map(String::as_str).filter(|v| !v.is_empty());
                    carried != snap.conv_field(conv, k)
                });
                if snap.conv_field(conv, "offered_to") == Some(agent.as_str()) {
                    if let Some(k) = wrong {
                        return Err(format!("the offer of {conv} shows {k} {:?}", view.get(k)));
                    }
                }
                (conv, agent)
            }
            Event::Assigned { conv, agent, .. } => {
                if !auto && dispatched {
                    return Err(format!(
                        "{conv} assigned to {agent} without an offer in offer mode"
                    ));
                }
                (conv, agent)
            }
            _ => continue,
        };
        if !dispatched {
            continue;
        }
        // What the dispatch decided is what stands now (one dispatch per script, at its end).
        let (want_state, field) = if auto {
            ("active", "counsellor")
        } else {
            ("offered", "offered_to")
        };
        if snap.state(conv) != want_state || snap.conv_field(conv, field) != Some(agent.as_str()) {
            return Err(format!(
                "event says {conv} went to {agent} but it is {} ({field} {:?})",
                snap.state(conv),
                snap.conv_field(conv, field)
            ));
        }
        let given = snap.class(conv);
        for z in snap.queued() {
            if snap.eligible(agent, z) && snap.class(z) < given {
                return Err(format!(
                    "class order: {agent} got {conv} (class {given}) while {z} (class {}, skills {}) \
                     stayed queued and {agent} could take it",
                    snap.class(z),
                    snap.conv_field(z, "skills").unwrap_or("")
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running one case.

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Where one worker runs its cases: a private redis-server (emptied after each case, so the
/// database and the `KEYS` the snapshot uses stay small however many cases run) and a store per
/// assignment mode, made once (a store per case would cost a connection each).
struct Worker {
    conn: MultiplexedConnection,
    auto: Store,
    offer: Store,
}

/// The key prefix of every case (each worker has its own redis-server).
const PREFIX: &str = "t:";

impl Worker {
    async fn connect(url: &str) -> Result<Worker, String> {
        let conn = redis::Client::open(url)
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let settings = |auto: bool| ScriptSettings {
            assignment: if auto { "auto" } else { "offer" },
            offer_timeout_ms: LONG_MS,
            lapses_before_away: 2,
            agent_grace_ms: LONG_MS,
            aging_ms: 0,
            relax_topic_ms: 0,
            relax_language_ms: 0,
            abandon_ms: LONG_MS,
            sparing_channels: helpline_router::SPARING_CHANNELS.to_vec(),
            stats_keep_s: 8 * 24 * 3600,
        };
        let store = |auto| async move {
            Store::connect(url, PREFIX, &settings(auto))
                .await
                .map_err(|e| e.to_string())
        };
        Ok(Worker {
            conn,
            auto: store(true).await?,
            offer: store(false).await?,
        })
    }

    /// Runs one case, then empties the database.
    async fn run_case(&self, case: Case) -> Result<(), TestCaseError> {
        let store = if case.auto { &self.auto } else { &self.offer };
        let result = run_steps(store, self.conn.clone(), PREFIX, &case).await;
        let _: () = redis::cmd("FLUSHDB")
            .query_async(&mut self.conn.clone())
            .await?;
        result
    }
}

async fn run_steps(
    store: &Store,
    mut conn: MultiplexedConnection,
    prefix: &str,
    case: &Case,
) -> Result<(), TestCaseError> {
    let prefix = prefix.to_owned();
    let agents: Vec<String> = (0..case.agents.len()).map(|i| format!("c{i}")).collect();
    for (u, &(cap, skills)) in agents.iter().zip(&case.agents) {
        let registered = store
            .register_agent(u, cap, AGENT_SKILLS[skills], &format!("Counsellor {u}"))
            .await
            .map_err(|e| fail(e.to_string()))?;
        prop_assert_eq!(registered.status, "away");
    }

    let mut model = Model::default();
    let mut snap = snapshot(&mut conn, &prefix, &agents, &model.ids).await?;
    for (step, op) in case.ops.iter().enumerate() {
        let ctx = |what: String, state: &Snapshot| {
            format!(
                "step {step} {op:?} (prefix {prefix}, {} mode): {what}\nops up to here: {:?}\n\
                 state after the step:\n{}",
                if case.auto { "auto" } else { "offer" },
                &case.ops[..=step],
                state.dump()
            )
        };
        let agent = |c: usize| agents[c % agents.len()].as_str();
        // With an odd pick, the first counsellor from c on who has something to act on (so most
        // accepts, declines, closes and transfers act); with an even one, c as generated (so
        // refusals are exercised too).
        let with = |snap: &Snapshot, c: usize, has: fn(&AgentSnap) -> bool| -> &str {
            (0..agents.len())
                .map(|i| agent(c + i))
                .find(|u| snap.agents.get(*u).is_some_and(has))
                .unwrap_or_else(|| agent(c))
        };
        let pick = |p: usize| -> String {
            if model.ids.is_empty() {
                "nope".to_owned()
            } else {
                model.ids[p % model.ids.len()].clone()
            }
        };
        // The outcome, the status it must have, whether the script ran a dispatch, and the
        // conversation it was about.
        let mut actor = "";
        let mut target_agent = "";
        let (outcome, expected, dispatched, target) = match *op {
            Op::Arrive { lang, urgency } => {
                let id = format!("k{:02}", model.ids.len());
                let fields = json!({
                    "channel": "webchat", "lang": LANGS[lang], "topic": "", "skills": LANGS[lang],
                    "alias": "A", "pseudonym": "p", "dek": "x", "urgency": URGENCIES[urgency],
                });
                let out = store
                    .create_conversation(&id, &fields, &format!("h-{id}"), 60)
                    .await;
                model.ids.push(id.clone());
                (out, "ok".to_owned(), true, Some(id))
            }
            Op::Status { c, available } => {
                let status = if available { "available" } else { "away" };
                (
                    store.set_status(agent(c), status).await,
                    "ok".to_owned(),
                    true,
                    None,
                )
            }
            Op::Accept { c, pick: p } | Op::Decline { c, pick: p } => {
                let u = if p % 2 == 1 {
                    with(&snap, c, |a| !a.offered.is_empty())
                } else {
                    agent(c)
                };
                actor = u;
                // The snapshot after the last step is the state now (only steps change it).
                let offered: Vec<String> = snap
                    .agents
                    .get(u)
                    .map(|a| a.offered.iter().cloned().collect())
                    .unwrap_or_default();
                let (id, expected) = if offered.is_empty() {
                    (pick(p), "not_offered")
                } else {
                    (offered[p % offered.len()].clone(), "ok")
                };
                let out = if matches!(op, Op::Accept { .. }) {
                    store.accept(&id, u).await
                } else {
                    store.decline(&id, u).await
                };
                let dispatched = matches!(op, Op::Decline { .. });
                (out, expected.to_owned(), dispatched, Some(id))
            }
            Op::Close { c, pick: p }
            | Op::Transfer { c, pick: p }
            | Op::TransferTo { c, pick: p, .. } => {
                let u = if p % 2 == 1 {
                    with(&snap, c, |a| !a.convs.is_empty())
                } else {
                    agent(c)
                };
                actor = u;
                let active: Vec<String> = snap
                    .agents
                    .get(u)
                    .map(|a| a.convs.iter().cloned().collect())
                    .unwrap_or_default();
                let (id, expected) = if active.is_empty() {
                    let id = pick(p);
                    let expected = if snap.state(&id) != "active" {
                        "not_active"
                    } else {
                        "not_yours"
                    };
                    (id, expected)
                } else {
                    (active[p % active.len()].clone(), "ok")
                };
                let (out, expected, dispatched) = match *op {
                    Op::Close { .. } => {
                        let out = store.close(&id, Some(u), "resolved", "").await;
                        (out, expected, true)
                    }
                    Op::TransferTo { to, .. } => {
                        let target = agent(to);
                        let expected = match snap.agents.get(target) {
                            _ if expected != "ok" => expected,
                            _ if target == u => "same_counsellor",
                            Some(t)
                                if t.status() == "available"
                                    && t.num("capacity") - t.num("load") - t.num("offers") > 0 =>
                            {
                                "ok"
                            }
                            _ => "counsellor_unavailable",
                        };
                        if expected == "ok" {
                            target_agent = target;
                        }
                        // Straight to a counsellor: no dispatch, so no class order to check.
                        (
                            store.transfer(&id, Some(u), "", Some(target)).await,
                            expected,
                            false,
                        )
                    }
                    _ => {
                        let lang = snap.conv_field(&id, "lang").unwrap_or("ro").to_owned();
                        let out = store.transfer(&id, Some(u), &lang, None).await;
                        (out, expected, true)
                    }
                };
                (out, expected.to_owned(), dispatched, Some(id))
            }
            Op::End { pick: p } => {
                let id = pick(p);
                let live = matches!(snap.state(&id), "queued" | "offered" | "active");
                let expected = if live { "ok" } else { "not_live" };
                (
                    store.end_conversation(&id, "contact_ended").await,
                    expected.to_owned(),
                    true,
                    Some(id),
                )
            }
            Op::Urgency {
                pick: p,
                level,
                raise,
            } => {
                let id = pick(p);
                let live = matches!(snap.state(&id), "queued" | "offered" | "active");
                let current = snap.conv_field(&id, "urgency").unwrap_or("normal");
                let level = URGENCIES[level];
                let expected = if !live {
                    "not_live"
                } else if (raise && rank(level) >= rank(current)) || level == current {
                    "unchanged"
                } else {
                    "ok"
                };
                let category = if raise { "self_harm" } else { "" };
                let out = store.set_urgency(&id, level, raise, category).await;
                (out, expected.to_owned(), false, Some(id))
            }
            Op::Reconnect { c, capacity } => {
                let u = agent(c);
                let held = snap
                    .agents
                    .get(u)
                    .map_or(0, |a| a.convs.len() + a.offered.len());
                let capacity = capacity.max(held as u32);
                let skills = AGENT_SKILLS[case.agents[c % agents.len()].1];
                let out = store
                    .register_agent(u, capacity, skills, &format!("Counsellor {u}"))
                    .await;
                // The status it had stays (available or away): only an unknown counsellor starts away.
                let status = snap.agents.get(u).map_or("away", |a| a.status());
                (out, status.to_owned(), true, None)
            }
            Op::Sweep => (store.sweep().await, "ok".to_owned(), true, None),
        };
        let outcome = outcome.map_err(|e| fail(format!("step {step} {op:?}: store error {e}")))?;
        let before = std::mem::take(&mut snap);
        snap = snapshot(&mut conn, &prefix, &agents, &model.ids).await?;
        if outcome.status != expected {
            return Err(fail(ctx(
                format!(
                    "status {:?}, expected {expected:?} (target {target:?} was {} before)",
                    outcome.status,
                    target.as_deref().map(|t| before.state(t)).unwrap_or("-")
                ),
                &snap,
            )));
        }

        // What the step must have done to its conversation.
        if let (Some(id), true) = (target.as_deref(), outcome.is_ok()) {
            let u = actor;
            let state = snap.state(id);
            let wrong = match op {
                Op::Accept { .. } => (state != "active"
                    || snap.conv_field(id, "counsellor") != Some(u))
                .then(|| format!("{id} accepted by {u} but is {state}")),
                Op::Decline { .. } => {
                    let again = state == "offered" && snap.conv_field(id, "offered_to") == Some(u);
                    (again || !snap.has_passed(id, u))
                        .then(|| format!("{id} declined by {u} but offered again or not passed"))
                }
                Op::Close { .. } => {
                    model.ended.insert(id.to_owned(), "closed");
                    None
                }
                Op::End { .. } => {
                    let end = if before.state(id) == "active" {
                        "closed"
                    } else {
                        "abandoned"
                    };
                    model.ended.insert(id.to_owned(), end);
                    None
                }
                Op::TransferTo { .. } => {
                    let (want, field) = if case.auto {
                        ("active", "counsellor")
                    } else {
                        ("offered", "offered_to")
                    };
                    (state != want || snap.conv_field(id, field) != Some(target_agent))
                        .then(|| format!("{id} transferred to {target_agent} but is {state}"))
                }
                Op::Urgency { level, .. } => (snap.conv_field(id, "urgency")
                    != Some(URGENCIES[*level]))
                .then(|| format!("{id} urgency not set")),
                _ => None,
            };
            if let Some(wrong) = wrong {
                return Err(fail(ctx(wrong, &snap)));
            }
        }

        if let Err(violation) = check_state(&snap, &model) {
            return Err(fail(ctx(violation, &snap)));
        }
        if let Err(violation) = check_order(&snap, &outcome.events, case.auto, dispatched) {
            return Err(fail(ctx(
                format!("{violation}; events {:?}", outcome.events),
                &snap,
            )));
        }
    }
    Ok(())
}

/// 10,000 random cases by default (`PROPTEST_CASES=N` runs more or fewer, as with proptest's own
/// macros), split over one worker per core, each with its own redis-server, runtime and random
/// seed; the fixed cases run first on the first worker. About a minute on two cores.
#[test]
fn routing_invariants_hold_under_random_operations() {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4)) as u32;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            // The first worker takes the remainder.
            let share = cases / workers + if w == 0 { cases % workers } else { 0 };
            std::thread::spawn(move || run_worker(w == 0, share))
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| {
            h.join()
                .unwrap_or_else(|_| vec!["a worker panicked".into()])
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `cases` random cases (and the fixed ones when `fixed`) on a private redis-server.
fn run_worker(fixed: bool, cases: u32) -> Vec<String> {
    let setup = RedisServer::start().and_then(|server| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("a tokio runtime: {e}"))?;
        let worker = rt.block_on(Worker::connect(&server.url()))?;
        Ok((server, rt, worker))
    });
    let (_server, rt, worker) = match setup {
        Ok(s) => s,
        Err(e) => return vec![format!("a worker could not start: {e}")],
    };
    let mut failures = Vec::new();
    if fixed {
        for (name, case) in fixed_cases() {
            if let Err(err) = rt.block_on(worker.run_case(case.clone())) {
                failures.push(format!("fixed case {name} failed: {err}\ncase: {case:#?}"));
            }
        }
    }
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..RunnerConfig::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(err) = runner.run(&case_strategy(), |case| rt.block_on(worker.run_case(case))) {
        failures.push(err.to_string());
    }
    failures
}

/// Sequences worth running every time, besides the random ones: situations random generation
/// reaches too rarely.
fn fixed_cases() -> Vec<(&'static str, Case)> {
    let arrive_ro = Op::Arrive {
        lang: 0,
        urgency: 1,
    };
    let decline = Op::Decline { c: 0, pick: 0 };
    // One counsellor able to take Romanian declines the conversation offered, five times over,
    // while six Romanian conversations wait: the sixth must still be offered to them.
    let mut ops = vec![arrive_ro.clone(); 6];
    ops.push(Op::Status {
        c: 0,
        available: true,
    });
    ops.extend(vec![decline; 5]);
    ops.push(Op::Accept { c: 0, pick: 0 });
    let declines_past_the_queue_heads = Case {
        auto: false,
        agents: vec![(1, 0), (1, 3), (1, 3)],
        ops,
    };

    // c0 (ro,ru) hands its only conversation straight to c1 while a Russian conversation waits
    // that only c0 can take: the slot c0 frees must go to it at once, as after any other release.
    let (arrive_ru, available) = (
        Op::Arrive {
            lang: 1,
            urgency: 1,
        },
        true,
    );
    let transfer_to_a_counsellor_frees_a_slot = Case {
        auto: false,
        agents: vec![(1, 2), (1, 0), (1, 3)],
        ops: vec![
            arrive_ro,
            Op::Status { c: 0, available },
            Op::Accept { c: 0, pick: 0 },
            arrive_ru,
            Op::Status { c: 1, available },
            Op::TransferTo {
                c: 0,
                pick: 0,
                to: 1,
            },
            Op::Sweep,
        ],
    };
    vec![
        (
            "declines_past_the_queue_heads",
            declines_past_the_queue_heads,
        ),
        (
            "transfer_to_a_counsellor_frees_a_slot",
            transfer_to_a_counsellor_frees_a_slot,
        ),
    ]
}
