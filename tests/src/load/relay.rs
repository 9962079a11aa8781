//! The relay scenario: N live conversations, each contact sending on an open-loop schedule and its
//! counsellor answering every message, through the real gateway; and the same schedule against the
//! floor, where the "counsellor" is the server's echo.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::conn::{available, open, staff, wait_for, Ws};
use super::drive::{self, ContactRun, Plan};
use super::frames::{Clock, Frame};
use super::rig::{add_counsellors, counsellor_name, cpu_secs, CAPACITY};
use super::stats::{histogram, Delivery, Latency, Schedule};
use crate::Gateway;

/// What to run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RelayParams {
    pub conversations: usize,
    /// Messages stored and relayed per second, both directions together (for the floor: echoed).
    pub rate: f64,
    pub secs: f64,
    pub warmup_secs: f64,
}

/// What a relay run measured (also read back from `--json` files by [`super::summary`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayResult {
    /// `gateway` or `floor`.
    pub target: String,
    pub params: RelayParams,
    /// Contact → counsellor (gateway) or the whole echo (floor): one hop in, one store, one hop out.
    pub one_leg: Latency,
    /// Counsellor → contact (gateway only).
    pub back_leg: Latency,
    /// Contact's send → the counsellor's answer received (gateway) or the echo (floor).
    pub round_trip: Latency,
    pub delivery: Delivery,
    pub schedule: Schedule,
    /// Server CPU time per message stored, in µs (user + system over the measured seconds).
    pub cpu_us_per_msg: f64,
    pub achieved_rate: f64,
    pub broken_sockets: u64,
}

/// Runs the relay through `gw` (whose process is `pid`).
pub async fn gateway(gw: &Gateway, pid: u32, p: RelayParams) -> Result<RelayResult> {
    let counsellors = p.conversations.div_ceil(CAPACITY);
    // Setup, before any clock runs: blocking the runtime's thread here costs nothing measured.
    add_counsellors(gw, counsellors, CAPACITY, |_| "en".into())?;
    let clock = Clock::start();
    let (stop, stopped) = watch::channel(false);
    // Samples count from the end of the warm-up, known once every contact is assigned.
    let record_from = Arc::new(AtomicU64::new(u64::MAX));
    let mut staff_tasks = Vec::new();
    for i in 0..counsellors {
        let mut ws = staff(gw, &counsellor_name(i)).await?;
        available(&mut ws).await?;
        let (stopped, record_from) = (stopped.clone(), record_from.clone());
        staff_tasks.push(tokio::spawn(drive::counsellor(
            ws,
            i * CAPACITY,
            record_from,
            clock,
            stopped,
        )));
    }
    let mut contacts = Vec::new();
    for chunk in (0..p.conversations).collect::<Vec<_>>().chunks(50) {
        let opened =
            futures_util::future::join_all(chunk.iter().map(|_| assigned_contact(gw.port))).await;
        for c in opened {
            contacts.push(c?);
        }
    }
    // Each contact message is answered, so the gateway stores `rate` messages a second.
    let plan = plan(&p, p.rate / 2.0);
    record_from.store(drive::ns_at(clock, plan.record_from), Ordering::Relaxed);
    let runs = spawn_contacts(contacts, plan, clock);
    let cpu = tokio::spawn(measure_cpu(pid, plan));
    let runs = join(runs).await?;
    let cpu = cpu.await??;
    let _ = stop.send(true);
    let mut there = histogram();
    let mut delivery = Delivery::default();
    let mut broken = 0;
    let mut heard = std::collections::HashMap::new();
    for t in staff_tasks {
        let run = t.await?;
        there.add(&run.there_leg)?;
        broken += u64::from(run.broken);
        heard.extend(run.heard);
    }
    for (conv, run) in &runs {
        let (check, replies) = heard
            .remove(conv)
            .ok_or_else(|| anyhow!("conversation {conv} was never assigned to a counsellor"))?;
        delivery.add(run.sent, &check);
        delivery.add(replies, &run.answers);
    }
    let runs: Vec<ContactRun> = runs.into_iter().map(|(_, r)| r).collect();
    Ok(summarize(
        "gateway",
        p,
        Some(there),
        &runs,
        delivery,
        broken,
        cpu,
    ))
}

/// Runs the same schedule against the floor on `port` (process `pid`).
pub async fn floor(port: u16, pid: u32, p: RelayParams) -> Result<RelayResult> {
    let clock = Clock::start();
    let mut socks = Vec::new();
    for i in 0..p.conversations {
        socks.push((i.to_string(), open(port, "/", None).await?));
    }
    // Every floor message is stored once: the clients send `rate` messages a second.
    let plan = plan(&p, p.rate);
    let runs = spawn_contacts(socks, plan, clock);
    let cpu = tokio::spawn(measure_cpu(pid, plan));
    let runs = join(runs).await?;
    let cpu = cpu.await??;
    let mut delivery = Delivery::default();
    for (_, r) in &runs {
        delivery.add(r.sent, &r.answers);
    }
    let runs: Vec<ContactRun> = runs.into_iter().map(|(_, r)| r).collect();
    Ok(summarize("floor", p, None, &runs, delivery, 0, cpu))
}

/// The schedule: the conversations share `sends` sends per second, each socket sending at an even
/// period (phases are spread over one period by [`spawn_contacts`]).
fn plan(p: &RelayParams, sends: f64) -> Plan {
    let per_sender = sends / p.conversations.max(1) as f64;
    let period = Duration::from_secs_f64(1.0 / per_sender);
    let start = Instant::now() + Duration::from_millis(300);
    Plan {
        first: start,
        period,
        end: start + Duration::from_secs_f64(p.warmup_secs + p.secs),
        record_from: start + Duration::from_secs_f64(p.warmup_secs),
        drain: Duration::from_secs(5),
    }
}

fn spawn_contacts(
    contacts: Vec<(String, Ws)>,
    plan: Plan,
    clock: Clock,
) -> Vec<(String, tokio::task::JoinHandle<ContactRun>)> {
    let n = contacts.len() as u32;
    contacts
        .into_iter()
        .enumerate()
        .map(|(i, (conv, ws))| {
            let mut plan = plan;
            plan.first += plan.period * i as u32 / n.max(1);
            let frame = Frame::contact(i);
            (conv, tokio::spawn(drive::contact(ws, frame, plan, clock)))
        })
        .collect()
}

async fn join(
    runs: Vec<(String, tokio::task::JoinHandle<ContactRun>)>,
) -> Result<Vec<(String, ContactRun)>> {
    let mut out = Vec::with_capacity(runs.len());
    for (id, h) in runs {
        out.push((id, h.await?));
    }
    Ok(out)
}

/// Server CPU seconds spent between the end of the warm-up and the end of sending.
async fn measure_cpu(pid: u32, plan: Plan) -> Result<f64> {
    tokio::time::sleep_until(plan.record_from).await;
    let before = cpu_secs(pid)?;
    tokio::time::sleep_until(plan.end).await;
    Ok(cpu_secs(pid)? - before)
}

fn summarize(
    target: &str,
    p: RelayParams,
    there: Option<Histogram<u64>>,
    runs: &[ContactRun],
    delivery: Delivery,
    broken: u64,
    cpu: f64,
) -> RelayResult {
    let (mut rtt, mut back, mut lag) = (histogram(), histogram(), histogram());
    let mut late = 0;
    let mut broken = broken;
    for r in runs {
        let _ = rtt.add(&r.round_trip);
        let _ = back.add(&r.back_leg);
        let _ = lag.add(&r.lag);
        late += r.late_sends;
        broken += u64::from(r.broken);
    }
    // Messages the server stored while CPU was measured: the sends after warm-up and their answers.
    let stored = (delivery.sent as f64) * p.secs / (p.secs + p.warmup_secs);
    RelayResult {
        target: target.to_owned(),
        params: p,
        one_leg: Latency::of(there.as_ref().unwrap_or(&rtt)),
        back_leg: Latency::of(&back),
        round_trip: Latency::of(&rtt),
        delivery,
        schedule: Schedule::of(&lag, late),
        cpu_us_per_msg: if stored > 0.0 {
            cpu * 1e6 / stored
        } else {
            0.0
        },
        achieved_rate: stored / p.secs,
        broken_sockets: broken,
    }
}

/// Opens `/ws/chat`, starts a conversation in English and waits until a counsellor has it.
async fn assigned_contact(port: u16) -> Result<(String, Ws)> {
    let mut ws = open(port, "/ws/chat", None).await?;
    ws.send(Message::text(r#"{"type":"start","lang":"en"}"#))
        .await?;
    let started = wait_for(&mut ws, "started").await?;
    let conv = started["conversation"]
        .as_str()
        .context("a started frame without a conversation")?
        .to_owned();
    wait_for(&mut ws, "assigned").await?;
    Ok((conv, ws))
}
