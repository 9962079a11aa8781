//! The two roles the generator plays during a measured run: the contact, who sends on an open-loop
//! schedule, and the counsellor, who answers every message at once. Each task keeps its own
//! histograms and sequence checks and hands them back at the end, so nothing is shared while the
//! clock runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::conn::Ws;
use super::frames::{Clock, Frame, Stamp};
use super::pace::Pacer;
use super::stats::{histogram, SeqCheck};

/// The fields of a received frame the generator looks at.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    from: Option<&'a str>,
    #[serde(default, borrow)]
    conversation: Option<&'a str>,
    #[serde(default, borrow)]
    text: Option<&'a str>,
}

/// A send this far behind its scheduled instant counts as late.
pub const LATE_NS: u64 = 5_000_000;

/// When one sender sends: every `period` from `first` until `end`; latencies of messages sent before
/// `record_from` (the warm-up) are not recorded.
#[derive(Clone, Copy)]
pub struct Plan {
    pub first: Instant,
    pub period: Duration,
    pub end: Instant,
    pub record_from: Instant,
    /// How long to wait for the last answers after `end`.
    pub drain: Duration,
}

/// What one contact (or floor client) measured.
pub struct ContactRun {
    pub sent: u64,
    /// Answers received, checked for loss, doubles and order.
    pub answers: SeqCheck,
    /// Own send → answer received.
    pub round_trip: Histogram<u64>,
    /// Counsellor's send → received here (gateway only).
    pub back_leg: Histogram<u64>,
    /// Actual send − scheduled send.
    pub lag: Histogram<u64>,
    pub late_sends: u64,
    /// Socket or timer errors, or an early close.
    pub broken: bool,
}

/// Sends `frame` on `plan`'s schedule and checks that every answer comes back once and in order.
/// An answer is a `message` frame whose `from` is `counsellor` (gateway) or absent (floor echo).
pub async fn contact(mut ws: Ws, mut frame: Frame, plan: Plan, clock: Clock) -> ContactRun {
    let mut run = ContactRun {
        sent: 0,
        answers: SeqCheck::default(),
        round_trip: histogram(),
        back_leg: histogram(),
        lag: histogram(),
        late_sends: 0,
        broken: false,
    };
    let record_from = ns_at(clock, plan.record_from);
    let Ok(mut pacer) = Pacer::new(plan.first, plan.period) else {
        run.broken = true;
        return run;
    };
    let drain_until = plan.end + plan.drain;
    loop {
        let sending = Instant::now() < plan.end;
        if !sending && run.answers.unique >= run.sent {
            break;
        }
        tokio::select! {
            due = pacer.tick(), if sending => {
                let Ok(due) = due else {
                    run.broken = true;
                    break;
                };
                // A tick that came due at or after the end belongs to no run.
                if due >= plan.end {
                    continue;
                }
                let sent_ns = clock.now_ns();
                let text = frame.stamp(Stamp { seq: run.sent, sent_ns, echoed_ns: 0 }).to_owned();
                if ws.send(Message::text(text)).await.is_err() {
                    run.broken = true;
                    break;
                }
                // The schedule is judged over the measured seconds only, like the latencies: the
                // warm-up's first ticks include the time taken to start every sender.
                let due_ns = ns_at(clock, due);
                if due_ns >= record_from {
                    let lag = sent_ns.saturating_sub(due_ns);
                    let _ = run.lag.record(lag.max(1_000));
                    if lag > LATE_NS {
                        run.late_sends += 1;
                    }
                }
                run.sent += 1;
            }
            msg = ws.next() => {
                let now = clock.now_ns();
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let Some(stamp) = answer(&t, |f| f.from.is_none_or(|who| who == "counsellor")) else {
                            continue;
                        };
                        run.answers.saw(stamp.seq);
                        if stamp.sent_ns >= record_from {
                            let _ = run.round_trip.record(now.saturating_sub(stamp.sent_ns).max(1_000));
                            if stamp.echoed_ns > 0 {
                                let _ = run.back_leg.record(now.saturating_sub(stamp.echoed_ns).max(1_000));
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => {
                        run.broken = true;
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(drain_until), if !sending => break,
        }
    }
    let _ = ws.close(None).await;
    run
}

/// What one counsellor measured, per conversation.
pub struct CounsellorRun {
    /// Per conversation id: the contact's messages as received, and how many replies were sent.
    pub heard: HashMap<String, (SeqCheck, u64)>,
    /// Contact's send → received here.
    pub there_leg: Histogram<u64>,
    pub broken: bool,
}

/// Answers every contact message at once with the same text (its own send time filled in), in the
/// conversation it came from, until `stop` changes.
pub async fn counsellor(
    mut ws: Ws,
    first_index: usize,
    record_from: Arc<AtomicU64>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> CounsellorRun {
    let mut run = CounsellorRun {
        heard: HashMap::new(),
        there_leg: histogram(),
        broken: false,
    };
    let mut frames: HashMap<String, Frame> = HashMap::new();
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let now = clock.now_ns();
        let t = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => {
                run.broken = true;
                break;
            }
        };
        let Ok(f) = serde_json::from_str::<Incoming>(&t) else {
            continue;
        };
        let Some(conv) = f.conversation else { continue };
        if f.kind == "assigned" && !frames.contains_key(conv) {
            let index = first_index + frames.len();
            frames.insert(conv.to_owned(), Frame::staff(conv, index));
            run.heard.insert(conv.to_owned(), (SeqCheck::default(), 0));
            continue;
        }
        if f.kind != "message" || f.from != Some("contact") {
            continue;
        }
        let Some(stamp) = f.text.and_then(Stamp::read) else {
            continue;
        };
        let (Some(frame), Some((check, replies))) = (frames.get_mut(conv), run.heard.get_mut(conv))
        else {
            continue;
        };
        check.saw(stamp.seq);
        if stamp.sent_ns >= record_from.load(Ordering::Relaxed) {
            let _ = run
                .there_leg
                .record(now.saturating_sub(stamp.sent_ns).max(1_000));
        }
        let reply = frame
            .stamp(Stamp {
                echoed_ns: clock.now_ns(),
                ..stamp
            })
            .to_owned();
        if ws.send(Message::text(reply)).await.is_err() {
            run.broken = true;
            break;
        }
        *replies += 1;
    }
    let _ = ws.close(None).await;
    run
}

/// The stamp of an answer frame `wanted` accepts.
fn answer(text: &str, wanted: impl Fn(&Incoming) -> bool) -> Option<Stamp> {
    let f: Incoming = serde_json::from_str(text).ok()?;
    if f.kind != "message" || !wanted(&f) {
        return None;
    }
    f.text.and_then(Stamp::read)
}

/// `at` on the run's clock, in ns (0 if before the clock started).
pub fn ns_at(clock: Clock, at: Instant) -> u64 {
    u64::try_from(
        at.into_std()
            .saturating_duration_since(clock.origin())
            .as_nanos(),
    )
    .unwrap_or(u64::MAX)
}
