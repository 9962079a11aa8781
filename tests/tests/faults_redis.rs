//! Fault tests 2 and 3 of issue 7 (docs/guarantees.md): Redis killed with SIGKILL and restarted
//! from its AOF under load, ten times, with `appendfsync everysec` and `always`; and Redis frozen
//! with SIGSTOP for ten seconds. Meanwhile `/readyz` says 503, contact messages are refused with an
//! `error` (never acknowledged unless stored), the node stays up with bounded memory and sockets,
//! and it recovers by itself; after a restart it subscribes to the routing events again and has its
//! sockets re-read what they missed. The tests run one at a time: they measure time and memory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use helpline_tests::faults::{open_fds, rss_kib, signal, DurableRedis};
use helpline_tests::*;
use serde_json::{json, Value};
use tokio::sync::watch;

/// One test at a time: they kill and freeze processes and read memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONTACTS: usize = 3;

/// What became of one message a contact wrote.
#[derive(Debug, Clone)]
struct Outcome {
    client_msg_id: String,
    text: String,
    sent: Instant,
    answered: Instant,
    /// The stored id (ack), or the error code.
    result: Result<String, String>,
}

/// A contact writing one message after another, each after the answer to the last.
async fn write(
    mut contact: Contact,
    every: Duration,
    stop: watch::Receiver<bool>,
) -> Result<(Contact, Vec<Outcome>)> {
    let mut out = Vec::new();
    let prefix = contact.conversation[..8].to_owned();
    while !*stop.borrow() {
        let n = out.len();
        let outcome = send_once(&mut contact, &format!("{prefix} {n}"), &uuid()).await?;
        out.push(outcome);
        tokio::time::sleep(every).await;
    }
    Ok((contact, out))
}

/// Sends one message and waits for its ack or error (at most 10 s: a hang is a failure).
async fn send_once(contact: &mut Contact, text: &str, cmid: &str) -> Result<Outcome> {
    let sent = Instant::now();
    contact
        .client
        .send(json!({"type": "message", "text": text, "client_msg_id": cmid}))
        .await?;
    let is_answer =
        |f: &Value| f["client_msg_id"] == cmid && (f["type"] == "ack" || f["type"] == "error");
    let answer = loop {
        let left = Duration::from_secs(10).saturating_sub(sent.elapsed());
        match contact.client.next(left).await? {
            Some(f) if is_answer(&f) => break f,
            Some(_) => {}
            None => bail!("the contact's socket closed while {text:?} waited for an answer"),
        }
    };
    let result = if answer["type"] == "ack" {
        Ok(answer["id"].as_str().unwrap_or_default().to_owned())
    } else {
        Err(answer["code"].as_str().unwrap_or_default().to_owned())
    };
    Ok(Outcome {
        client_msg_id: cmid.to_owned(),
        text: text.to_owned(),
        sent,
        answered: Instant::now(),
        result,
    })
}

async fn readyz(gw: &Gateway) -> Result<(u16, Duration)> {
    let asked = Instant::now();
    let res = reqwest::Client::new()
        .get(format!("{}/readyz", gw.base()))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    Ok((res.status().as_u16(), asked.elapsed()))
}

/// Polls `/readyz` until it answers `status`; returns how long that took.
async fn until_ready_is(gw: &Gateway, status: u16, within: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if readyz(gw).await?.0 == status {
            return Ok(start.elapsed());
        }
        ensure!(
            start.elapsed() < within,
            "/readyz did not answer {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node, a counsellor and `CONTACTS` conversations assigned to her (auto assignment).
async fn setup(redis_url: &str) -> Result<(Gateway, Staff, Vec<Contact>)> {
    let gw = Gateway::start_url(
        redis_url,
        &[
            ("HELPLINE_ROUTING__ASSIGNMENT", "auto"),
            ("HELPLINE_WEBCHAT__MESSAGES_PER_MINUTE", "6000"),
            ("HELPLINE_LOG", "warn"),
        ],
    )?;
    gw.add_user("ana", "counsellor", "ro", 3)?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let mut contacts = Vec::new();
    for _ in 0..CONTACTS {
        let mut c = Contact::start(&gw, "ro").await?;
        c.client.expect("assigned", SECS_5).await?;
        contacts.push(c);
    }
    Ok((gw, ana, contacts))
}

/// A contact writing, until told to stop.
type Writer = tokio::task::JoinHandle<Result<(Contact, Vec<Outcome>)>>;

/// Starts every contact writing; returns the stop switch and the tasks.
fn start_writing(contacts: Vec<Contact>, every: Duration) -> (watch::Sender<bool>, Vec<Writer>) {
    let (stop, stopped) = watch::channel(false);
    let tasks = contacts
        .into_iter()
        .map(|c| tokio::spawn(write(c, every, stopped.clone())))
        .collect();
    (stop, tasks)
}

/// Refused messages are sent again with the same client_msg_id once Redis is back: each must be
/// acknowledged now (stored once, even if the refused attempt had reached Redis after all).
async fn resend_refused(contact: &mut Contact, outcomes: &mut [Outcome]) -> Result<()> {
    for o in outcomes.iter_mut().filter(|o| o.result.is_err()) {
        let again = send_once(contact, &o.text, &o.client_msg_id).await?;
        ensure!(
            again.result.is_ok(),
            "{:?} refused again after recovery: {:?}",
            o.text,
            again.result
        );
        o.result = again.result;
    }
    Ok(())
}

/// Every acknowledged message is in the conversation's history exactly once, as the counsellor
/// sees it on reconnecting; returns the texts that are missing (lost).
fn missing_from(history: &Value, outcomes: &[Outcome]) -> Result<Vec<Outcome>> {
    let texts: Vec<&str> = history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["text"].as_str())
        .collect();
    let mut lost = Vec::new();
    for o in outcomes.iter().filter(|o| o.result.is_ok()) {
        match texts.iter().filter(|t| **t == o.text).count() {
            0 => lost.push(o.clone()),
            1 => {}
            n => bail!("{:?} is in the history {n} times", o.text),
        }
    }
    Ok(lost)
}

/// The histories of Ana's conversations, from a fresh `hello`; then checks that live delivery
/// works again (the node subscribed anew by itself): `contact`'s next message reaches Ana at once.
async fn histories(gw: &Gateway, contact: &mut Contact) -> Result<HashMap<String, Value>> {
    let mut ana = Staff::connect(gw, "ana").await?;
    let histories = ana.hello["conversations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["conversation"].as_str().unwrap_or_default().to_owned(),
                c["history"].clone(),
            )
        })
        .collect();
    let id = contact.say("after the storm").await?;
    ana.client
        .expect_where("message", SECS_5, |f| f["id"] == id.as_str())
        .await?;
    Ok(histories)
}

/// Kills Redis ten times under load; returns (acknowledged, lost with how long before a crash
/// each was acknowledged).
async fn crash_redis_ten_times(appendfsync: &'static str) -> Result<(usize, Vec<Duration>)> {
    let began = Instant::now();
    let mut redis = DurableRedis::start(appendfsync)?;
    let (mut gw, _ana, contacts) = setup(&redis.url()).await?;
    // Let everysec write the set-up down before the first crash.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (stop, tasks) = start_writing(contacts, Duration::from_millis(50));
    let mut crashes = Vec::new();
    let mut outages = Vec::new();
    let mut recoveries = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        redis.crash();
        crashes.push(Instant::now());
        until_ready_is(&gw, 503, Duration::from_secs(3)).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let restarting = Instant::now();
        redis.restart()?;
        let restarted = Instant::now();
        outages.push((crashes[crashes.len() - 1], restarting));
        until_ready_is(&gw, 200, Duration::from_secs(10)).await?;
        recoveries.push(restarted.elapsed());
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.send(true)?;
    ensure!(gw.running(), "the gateway died:\n{}", gw.log_text());

    let mut acked = 0;
    let mut refused = 0;
    let mut lost = Vec::new();
    let mut results = Vec::new();
    for t in tasks {
        let (mut contact, mut outcomes) = t.await??;
        // Nothing is acknowledged while Redis is down: a message sent after a crash and
        // acknowledged before the restart would be acknowledged without being stored.
        for o in outcomes.iter().filter(|o| o.result.is_ok()) {
            ensure!(
                !outages
                    .iter()
                    .any(|(down, up)| o.sent > *down && o.answered < *up),
                "{:?} was acknowledged while Redis was down",
                o.text
            );
        }
        refused += outcomes.iter().filter(|o| o.result.is_err()).count();
        for o in &outcomes {
            if let Err(code) = &o.result {
                ensure!(
                    code == "unavailable",
                    "refused with {code:?}, not unavailable"
                );
            }
        }
        resend_refused(&mut contact, &mut outcomes).await?;
        results.push((contact, outcomes));
    }
    ensure!(
        refused >= 10,
        "only {refused} messages were refused over ten outages"
    );
    let histories = histories(&gw, &mut results[0].0).await?;
    for (contact, outcomes) in &results {
        acked += outcomes.len();
        let history = histories
            .get(&contact.conversation)
            .cloned()
            .unwrap_or(Value::Null);
        for o in missing_from(&history, outcomes)? {
            // How long before the next crash it was acknowledged.
            let crash = crashes.iter().find(|c| **c >= o.answered);
            lost.push(crash.map_or(Duration::MAX, |c| c.duration_since(o.answered)));
        }
    }
    let slowest = recoveries.iter().max().copied().unwrap_or_default();
    println!(
        "appendfsync {appendfsync}: 10 crashes, {acked} messages acknowledged (after resending \
         the {refused} refused), {} lost {lost:?}; slowest recovery {slowest:?}; {:?} in all",
        lost.len(),
        began.elapsed()
    );
    gw.kill();
    Ok((acked, lost))
}

#[tokio::test]
async fn redis_crashes_under_everysec_lose_at_most_the_last_second() -> Result<()> {
    let _one = SERIAL.lock().await;
    let (_, lost) = crash_redis_ten_times("everysec").await?;
    ensure!(
        lost.iter().all(|before| *before <= Duration::from_secs(2)),
        "lost messages acknowledged long before a crash: {lost:?}"
    );
    Ok(())
}

#[tokio::test]
async fn redis_crashes_under_always_lose_no_acknowledged_message() -> Result<()> {
    let _one = SERIAL.lock().await;
    let (acked, lost) = crash_redis_ten_times("always").await?;
    ensure!(acked > 0);
    ensure!(
        lost.is_empty(),
        "{} acknowledged messages lost: {lost:?}",
        lost.len()
    );
    Ok(())
}

#[tokio::test]
async fn a_frozen_redis_gives_timeouts_not_hangs_and_the_node_recovers() -> Result<()> {
    let _one = SERIAL.lock().await;
    let redis = Redis::start()?;
    let (mut gw, _ana, contacts) = setup(&redis.url()).await?;
    let (stop, tasks) = start_writing(contacts, Duration::from_millis(500));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = gw.pid();
    let (rss_before, fds_before) = (rss_kib(pid).unwrap_or(0), open_fds(pid));

    signal(redis.pid(), "STOP")?;
    let frozen = Instant::now();
    let (mut rss_most, mut fds_most, mut readyz_slowest) = (rss_before, fds_before, Duration::ZERO);
    while frozen.elapsed() < Duration::from_secs(10) {
        let (status, took) = readyz(&gw).await?;
        ensure!(
            status == 503,
            "/readyz answered {status} while Redis was frozen"
        );
        readyz_slowest = readyz_slowest.max(took);
        rss_most = rss_most.max(rss_kib(pid).unwrap_or(0));
        fds_most = fds_most.max(open_fds(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    signal(redis.pid(), "CONT")?;
    let recovered = until_ready_is(&gw, 200, Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true)?;
    ensure!(gw.running(), "the gateway died:\n{}", gw.log_text());
    let (rss_after, fds_after) = (rss_kib(pid).unwrap_or(0), open_fds(pid));

    let mut results = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut refused = 0;
    for t in tasks {
        let (mut contact, mut outcomes) = t.await??;
        for o in &outcomes {
            slowest = slowest.max(o.answered.duration_since(o.sent));
            if let Err(code) = &o.result {
                refused += 1;
                ensure!(
                    code == "unavailable",
                    "refused with {code:?}, not unavailable"
                );
            }
        }
        resend_refused(&mut contact, &mut outcomes).await?;
        results.push((contact, outcomes));
    }
    let histories = histories(&gw, &mut results[0].0).await?;
    for (contact, outcomes) in &results {
        let history = histories
            .get(&contact.conversation)
            .cloned()
            .unwrap_or(Value::Null);
        let lost = missing_from(&history, outcomes)?;
        ensure!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    }
    println!(
        "frozen 10 s: {refused} messages refused, slowest answer {slowest:?}, slowest /readyz \
         {readyz_slowest:?}, ready {recovered:?} after SIGCONT; RSS {rss_before} -> {rss_most} \
         -> {rss_after} KiB; fds {fds_before} -> {fds_most} -> {fds_after}"
    );
    ensure!(refused > 0, "nothing was refused while Redis was frozen");
    ensure!(
        slowest <= Duration::from_secs(7),
        "a message waited {slowest:?} for its answer: a hang, not a time-out"
    );
    ensure!(
        readyz_slowest <= Duration::from_secs(2),
        "/readyz took {readyz_slowest:?} while Redis was frozen (probes time out long before that)"
    );
    ensure!(
        rss_most <= rss_before + 32 * 1024,
        "memory grew from {rss_before} to {rss_most} KiB while Redis was frozen"
    );
    ensure!(
        fds_most <= fds_before + 16,
        "open sockets grew from {fds_before} to {fds_most} while Redis was frozen"
    );
    gw.kill();
    Ok(())
}

/// A node hears the routing events on its command connection. When Redis restarts, the node
/// subscribes again on the new connection and tells its sockets to re-read their state (events
/// were missed meanwhile): the console gets a fresh `hello` and then hears messages live again.
#[tokio::test]
async fn after_a_redis_restart_the_console_re_reads_and_hears_messages_live() -> Result<()> {
    let _one = SERIAL.lock().await;
    let mut redis = DurableRedis::start("always")?;
    let (mut gw, mut ana, mut contacts) = setup(&redis.url()).await?;
    let contact = &mut contacts[0];
    let is = |text: &'static str| move |f: &Value| f["text"] == text;
    contact.say("before the restart").await?;
    ana.client
        .expect_where("message", SECS_5, is("before the restart"))
        .await?;
    redis.crash();
    until_ready_is(&gw, 503, Duration::from_secs(3)).await?;
    redis.restart()?;
    until_ready_is(&gw, 200, Duration::from_secs(10)).await?;
    ana.client.expect("hello", Duration::from_secs(5)).await?;
    contact.say("after the restart").await?;
    let heard = ana
        .client
        .expect_where("message", SECS_5, is("after the restart"))
        .await;
    ensure!(heard.is_ok(), "{heard:?}; gateway log:\n{}", gw.log_text());
    gw.kill();
    Ok(())
}
