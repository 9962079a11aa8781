//! Fault test 1 of issue 7 (docs/guarantees.md): many conversations across three nodes while a
//! random node is killed with SIGKILL every few seconds, twenty times, and started again. Contacts
//! resume on another node with their token; counsellors reconnect and `hello` gives their
//! conversations back. Every acknowledged message must reach the other side, once as the client
//! sees it (by id) and in order, and every conversation must end up held by a counsellor or
//! waiting, never stuck in an offer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use helpline_tests::resilient::{stream_order, ContactLog, CounsellorLog, Manner, Phase, Received};
use helpline_tests::*;
use tokio::sync::watch;

const NODES: usize = 3;
const CONTACTS: usize = 36;
/// Counsellors during the kills, each holding `CAPACITY`: 24 conversations held, 12 waiting.
const COUNSELLORS: usize = 6;
/// Counsellors who come once the kills are over, so that every conversation is taken and each
/// holder's view can be checked against what its contact sent.
const LATE_COUNSELLORS: usize = 3;
const CAPACITY: u32 = 4;
const KILLS: usize = 20;
const KILL_EVERY: Duration = Duration::from_millis(2500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_random_nodes_loses_no_acknowledged_message_and_strands_no_conversation(
) -> Result<()> {
    let began = Instant::now();
    let redis = Redis::start()?;
    let settings = [
        ("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "3"),
        ("HELPLINE_ROUTING__MAX_CAPACITY", "4"),
        ("HELPLINE_ROUTING__AGENT_GRACE_S", "20"),
        ("HELPLINE_WEBCHAT__MESSAGES_PER_MINUTE", "600"),
        ("HELPLINE_LOG", "warn"),
    ];
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Gateway::start(&redis, &settings)?);
    }
    let ports: Vec<u16> = nodes.iter().map(|g| g.port).collect();
    let names: Vec<String> = (0..COUNSELLORS + LATE_COUNSELLORS)
        .map(|i| format!("c{i}"))
        .collect();
    for name in &names {
        nodes[0].add_user(name, "counsellor", "ro", CAPACITY)?;
    }
    let (phase, watch_phase) = watch::channel(Phase::Talk);
    let manner = Manner {
        write_every: Duration::from_millis(400),
        transfer_every: 12,
    };

    let mut counsellors = Vec::new();
    for (i, name) in names.iter().take(COUNSELLORS).enumerate() {
        let cookie = login(&nodes[i % NODES], name).await?;
        counsellors.push(tokio::spawn(CounsellorLog::run(
            name.clone(),
            cookie,
            ports.clone(),
            i,
            manner,
            watch_phase.clone(),
        )));
    }
    let mut contacts = Vec::new();
    for i in 0..CONTACTS {
        let (log, ws) = ContactLog::start(&ports, i, "ro").await?;
        contacts.push(tokio::spawn(log.run(
            ports.clone(),
            i,
            ws,
            Duration::from_millis(1500),
            watch_phase.clone(),
        )));
    }

    // The kills, on a thread of their own (starting a node blocks until it listens).
    let mut seed = u64::from(began.elapsed().subsec_nanos()) | 1;
    println!("kill order seed {seed}");
    let killer = tokio::task::spawn_blocking(move || -> Result<Vec<Gateway>> {
        for _ in 0..KILLS {
            std::thread::sleep(KILL_EVERY);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let victim = usize::try_from(seed % NODES as u64).unwrap_or(0);
            nodes[victim].restart()?;
        }
        Ok(nodes)
    });
    let nodes = killer.await??;
    let killing_took = began.elapsed();

    // Quiet: nothing new is written; what was not acknowledged is resent, offers are taken.
    phase.send(Phase::Quiet)?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let ids = conversation_ids(&redis)?;
    ensure!(
        ids.len() == CONTACTS,
        "{} conversations in Redis",
        ids.len()
    );
    let after_kills = states(&redis, &ids)?;
    let count = |s: &str| after_kills.values().filter(|v| v.0 == s).count();
    let held = COUNSELLORS * CAPACITY as usize;
    ensure!(
        count("active") == held && count("queued") == CONTACTS - held,
        "after the kills every counsellor should hold {CAPACITY} and the rest wait: {after_kills:?}"
    );

    // The late counsellors take the rest, each with its whole history.
    for (i, name) in names.iter().enumerate().skip(COUNSELLORS) {
        let cookie = login(&nodes[i % NODES], name).await?;
        counsellors.push(tokio::spawn(CounsellorLog::run(
            name.clone(),
            cookie,
            ports.clone(),
            i,
            manner,
            watch_phase.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = states(&redis, &ids)?;
        if now.values().all(|(s, _)| s == "active") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "not every conversation was taken: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    phase.send(Phase::Stop)?;
    let mut staff = Vec::new();
    for c in counsellors {
        staff.push(c.await??);
    }
    let mut children = Vec::new();
    for c in contacts {
        children.push(c.await??);
    }

    let report = check(&children, &staff, &states(&redis, &ids)?);
    println!(
        "{KILLS} kills in {killing_took:?}, whole test {:?}: {report}",
        began.elapsed()
    );
    drop(nodes);
    report.verdict()
}

/// Every conversation id in Redis.
fn conversation_ids(redis: &Redis) -> Result<Vec<String>> {
    Ok(redis
        .cli(&["--scan", "--pattern", "helpline:conv:*"])?
        .lines()
        .filter_map(|k| k.strip_prefix("helpline:conv:"))
        .filter(|id| !id.contains(':'))
        .map(str::to_owned)
        .collect())
}

/// (state, counsellor) of each conversation, read from Redis.
fn states(redis: &Redis, ids: &[String]) -> Result<HashMap<String, (String, String)>> {
    let mut out = HashMap::new();
    for id in ids {
        let key = format!("helpline:conv:{id}");
        let reply = redis.cli(&["hmget", &key, "state", "counsellor"])?;
        let mut lines = reply.lines().map(str::to_owned);
        let state = lines.next().unwrap_or_default();
        let counsellor = lines.next().unwrap_or_default();
        out.insert(id.clone(), (state, counsellor));
    }
    Ok(out)
}

/// What the check found.
#[derive(Default)]
struct Report {
    acked_in: usize,
    acked_out: usize,
    resumes: u32,
    reconnects: u32,
    repeats: u64,
    transfers: u32,
    faults: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} contact and {} counsellor messages acknowledged, {} contact resumes, {} counsellor \
             reconnects, {} transfers, {} replayed frames de-duplicated, {} faults",
            self.acked_in,
            self.acked_out,
            self.resumes,
            self.reconnects,
            self.transfers,
            self.repeats,
            self.faults.len()
        )
    }
}

impl Report {
    fn verdict(&self) -> Result<()> {
        let shown: Vec<&String> = self.faults.iter().take(30).collect();
        ensure!(self.faults.is_empty(), "faults: {shown:#?}");
        ensure!(self.acked_in > 0 && self.acked_out > 0, "nothing was said");
        Ok(())
    }
}

/// Checks each conversation both ways against the final holder and the contact.
fn check(
    children: &[ContactLog],
    staff: &[CounsellorLog],
    states: &HashMap<String, (String, String)>,
) -> Report {
    let mut r = Report::default();
    for s in staff {
        r.reconnects += s.reconnects;
        r.transfers += s.transfers;
        r.faults
            .extend(s.problems.iter().map(|p| format!("{}: {p}", s.username)));
    }
    for child in children {
        let conv = &child.conversation;
        r.resumes += child.resumes;
        r.repeats += child.received.repeats;
        r.faults.extend(
            child
                .problems
                .iter()
                .map(|p| format!("contact {conv}: {p}")),
        );
        let holders: Vec<&CounsellorLog> =
            staff.iter().filter(|s| s.holds.contains(conv)).collect();
        let Some((_, in_redis)) = states.get(conv) else {
            r.faults.push(format!("{conv} is not in Redis"));
            continue;
        };
        let [holder] = holders.as_slice() else {
            r.faults.push(format!(
                "{conv} is held by {} counsellors (Redis says {in_redis})",
                holders.len()
            ));
            continue;
        };
        if &holder.username != in_redis {
            r.faults.push(format!(
                "{conv}: {} thinks it holds it, Redis says {in_redis}",
                holder.username
            ));
        }
        let empty = Received::default();
        let heard = holder.received.get(conv).unwrap_or(&empty);
        r.repeats += heard.repeats;
        // Contact to counsellor.
        for sent in child.sent.iter().filter(|s| s.id.is_some()) {
            r.acked_in += 1;
            arrived(&mut r, heard, sent, "contact", &holder.username);
        }
        in_order(
            &mut r,
            heard,
            "contact",
            &format!("{conv} as {} saw it", holder.username),
        );
        // Counsellors to contact.
        for sent in staff
            .iter()
            .flat_map(|s| s.sent.iter())
            .filter(|s| &s.conversation == conv && s.id.is_some())
        {
            r.acked_out += 1;
            arrived(&mut r, &child.received, sent, "counsellor", "the contact");
        }
        in_order(
            &mut r,
            &child.received,
            "",
            &format!("{conv} as its contact saw it"),
        );
    }
    r
}

/// The acknowledged `sent` is among `heard` under its id, from `from`, with its text, once.
fn arrived(
    r: &mut Report,
    heard: &Received,
    sent: &helpline_tests::resilient::Sent,
    from: &str,
    who: &str,
) {
    let id = sent.id.as_deref().unwrap_or_default();
    let same_text = heard.messages.iter().filter(|m| m.2 == sent.text).count();
    match heard.messages.iter().find(|m| m.0 == id) {
        None => r.faults.push(format!(
            "{} {id} ({:?}) acknowledged but never reached {who}",
            sent.conversation, sent.text
        )),
        Some(m) if m.1 != from || m.2 != sent.text => r.faults.push(format!(
            "{} {id} reached {who} as {m:?}, sent as {:?}",
            sent.conversation, sent.text
        )),
        Some(_) if same_text != 1 => r.faults.push(format!(
            "{} {:?} reached {who} {same_text} times under different ids",
            sent.conversation, sent.text
        )),
        Some(_) => {}
    }
}

/// Messages (from `from`, or all when empty) were first received in stream order.
fn in_order(r: &mut Report, heard: &Received, from: &str, what: &str) {
    let ids: Vec<(u64, u64)> = heard
        .messages
        .iter()
        .filter(|m| from.is_empty() || m.1 == from)
        .map(|m| stream_order(&m.0))
        .collect();
    if let Some(w) = ids.windows(2).find(|w| w[0] >= w[1]) {
        r.faults
            .push(format!("{what}: {:?} came after {:?}", w[1], w[0]));
    }
}

/// The contact and the counsellor (on two nodes) write at the same time: every counsellor message
/// reaches the contact live, on the same socket. (A contact's ack once moved the point live
/// delivery continues from, so a counsellor's message stored just before it, still on its way
/// through pub/sub, was skipped; the load above meets that moment only rarely, this at once.)
#[tokio::test]
async fn writing_at_the_same_time_loses_no_message_live() -> Result<()> {
    let redis = Redis::start()?;
    let settings = [
        ("HELPLINE_ROUTING__ASSIGNMENT", "auto"),
        ("HELPLINE_WEBCHAT__MESSAGES_PER_MINUTE", "6000"),
    ];
    let gw1 = Gateway::start(&redis, &settings)?;
    let gw2 = Gateway::start(&redis, &settings)?;
    gw1.add_user("ana", "counsellor", "ro", 1)?;
    let mut ana = Staff::connect(&gw2, "ana").await?;
    ana.available().await?;
    let mut contact = Contact::start(&gw1, "ro").await?;
    contact.client.expect("assigned", SECS_5).await?;
    let conv = contact.conversation.clone();

    const N: usize = 150;
    let gap = Duration::from_millis(4);
    let ana_writes = async {
        for i in 0..N {
            let frame = serde_json::json!({"type": "message", "conversation": conv,
                "text": format!("ana {i}"), "client_msg_id": uuid()});
            ana.client.send(frame).await?;
            tokio::time::sleep(gap).await;
        }
        let mut ids = Vec::new();
        while ids.len() < N {
            let ack = ana.client.expect("ack", SECS_5).await?;
            ids.push(ack["id"].as_str().unwrap_or_default().to_owned());
        }
        Ok::<_, anyhow::Error>(ids)
    };
    let contact_writes = async {
        for i in 0..N {
            let frame = serde_json::json!({"type": "message", "text": format!("child {i}"),
                "client_msg_id": uuid()});
            contact.client.send(frame).await?;
            tokio::time::sleep(gap).await;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (ids, written) = tokio::join!(ana_writes, contact_writes);
    let (ids, ()) = (ids?, written?);

    let mut heard = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids.iter().any(|id| !heard.contains(id)) && Instant::now() < deadline {
        match contact.client.next(Duration::from_secs(2)).await {
            Ok(Some(f)) if f["type"] == "message" => {
                heard.insert(f["id"].as_str().unwrap_or_default().to_owned());
            }
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("the contact's socket closed"),
            Err(_) => break,
        }
    }
    let missed: Vec<&String> = ids.iter().filter(|id| !heard.contains(*id)).collect();
    ensure!(
        missed.is_empty(),
        "{} of {N} counsellor messages never reached the contact live: {missed:?}",
        missed.len()
    );
    Ok(())
}
