//! Every metric of the gateway, defined once (CONTRACT.md section 7), and the one function that turns
//! a routing event into its metric and its log line, so the two can never drift apart.
//!
//! No label value is ever a pseudonym, a conversation id or text from a contact: labels are closed
//! sets (urgency, channel, outcome, direction, result, status, reason, op).

use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::events::Event;

/// The node's metrics and their registry (served at `/metrics`).
pub struct Telemetry {
    pub registry: Registry,
    pub queue_waiting: IntGaugeVec,
    pub queue_wait_seconds: HistogramVec,
    /// Not in the contract's list: the longest wait of anyone still waiting, for the "longest wait
    /// over the target" alert and the dashboard (a histogram only sees waits once they end).
    pub queue_longest_wait_seconds: IntGaugeVec,
    pub conversations_total: IntCounterVec,
    pub first_response_seconds: HistogramVec,
    pub counsellors: IntGaugeVec,
    pub messages_total: IntCounterVec,
    pub relay_seconds: HistogramVec,
    pub offers_total: IntCounterVec,
    pub media_withheld_total: IntCounterVec,
    pub webhook_rejected_total: IntCounterVec,
    pub redis_errors_total: IntCounterVec,
    pub outbox_total: IntCounterVec,
    /// What retention sweeps and erasure on request erased, by kind (`transcript`, `metadata`,
    /// `audit`, `request`).
    pub retention_erased_total: IntCounterVec,
    /// Not in the contract's list: every step of a break-glass request (an alert fires on a
    /// reveal, since it hands a child's phone number or chat id to a person).
    pub break_glass_total: IntCounterVec,
    /// WebSockets this node holds open now (contacts and staff), against `limits.max_sockets`.
    pub sockets_open: IntGaugeVec,
    /// WebSocket upgrades refused before the upgrade, by `reason` (`node_full`, `source_full`).
    pub sockets_refused_total: IntCounterVec,
    /// Frames a socket sent faster than its budget (`limits.frames_per_second`): slowed, not refused.
    pub frames_slowed_total: IntCounterVec,
    /// The channels whose series exist from the start (web chat and the enabled ones).
    channels: Vec<String>,
}

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // Names and labels are constants of this file, so creation cannot fail but for a typo that the
    // unit test below catches; registration fails only on a duplicate name, likewise.
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"));
    reg.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    c
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"));
    reg.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    g
}

fn histogram(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    reg.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    h
}

/// Buckets for human waits, in seconds: fine where service levels are set (under two minutes), up
/// to an hour, which is already a failure.
const WAIT_BUCKETS: [f64; 19] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0,
    1200.0, 1800.0, 2700.0, 3600.0,
];

fn wait_buckets() -> Vec<f64> {
    WAIT_BUCKETS.to_vec()
}

/// Buckets for relaying a message, in seconds: 1 ms to about 8 s (a relay slower than that is an
/// outage, not a latency).
fn relay_buckets() -> Vec<f64> {
    exponential_buckets(0.001, 2.0, 14).unwrap_or_default()
}

/// Label values known before any event, so every series exists (at zero) from the first scrape and
/// `rate()` and `increase()` see the first event.
const URGENCIES: [&str; 4] = ["low", "normal", "high", "critical"];
const OUTCOMES: [&str; 3] = ["answered", "abandoned", "closed"];
const DIRECTIONS: [&str; 2] = ["in", "out"];
const ERASED_KINDS: [&str; 4] = ["transcript", "metadata", "audit", "request"];
/// The steps of a break-glass request, each a `helpline_break_glass_total` series from the start.
pub const BREAK_GLASS_STEPS: [&str; 5] = ["request", "approve", "deny", "expire", "reveal"];

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Telemetry {
        let r = Registry::new();
        let t = Telemetry {
            queue_waiting: gauge(
                &r,
                "helpline_queue_waiting",
                "Conversations waiting now",
                &["urgency", "channel"],
            ),
            queue_wait_seconds: histogram(
                &r,
                "helpline_queue_wait_seconds",
                "Time from queued to assigned",
                &["urgency", "channel"],
                wait_buckets(),
            ),
            queue_longest_wait_seconds: gauge(
                &r,
                "helpline_queue_longest_wait_seconds",
                "How long the longest-waiting conversation still in the queue has waited, by urgency",
                &["urgency"],
            ),
            conversations_total: counter(
                &r,
                "helpline_conversations_total",
                "Conversations by outcome",
                &["channel", "outcome"],
            ),
            first_response_seconds: histogram(
                &r,
                "helpline_first_response_seconds",
                "Time from assigned to the first counsellor message",
                &["channel"],
                wait_buckets(),
            ),
            counsellors: gauge(
                &r,
                "helpline_counsellors",
                "Counsellors by status",
                &["status"],
            ),
            messages_total: counter(
                &r,
                "helpline_messages_total",
                "Messages relayed",
                &["channel", "direction"],
            ),
            relay_seconds: histogram(
                &r,
                "helpline_relay_seconds",
                "Time from a message received to delivered to the other side",
                &["direction"],
                relay_buckets(),
            ),
            offers_total: counter(&r, "helpline_offers_total", "Offers by result", &["result"]),
            media_withheld_total: counter(
                &r,
                "helpline_media_withheld_total",
                "Media refused and not stored",
                &["channel"],
            ),
            webhook_rejected_total: counter(
                &r,
                "helpline_webhook_rejected_total",
                "Webhook calls refused",
                &["channel", "reason"],
            ),
            redis_errors_total: counter(
                &r,
                "helpline_redis_errors_total",
                "Failed Redis operations",
                &["op"],
            ),
            outbox_total: counter(
                &r,
                "helpline_outbox_total",
                "Outbox entries of channels without a socket, by what became of them (sent, retried, \
                 dropped, blocked, already_sent: taken over after the provider accepted it and only \
                 acknowledged, resent: taken over after an unconfirmed send and sent again, maybe twice)",
                &["channel", "result"],
            ),
            retention_erased_total: counter(
                &r,
                "helpline_retention_erased_total",
                "What was erased: transcripts and metadata past their retention period, audit \
                 entries past theirs, conversations erased on request",
                &["kind"],
            ),
            break_glass_total: counter(
                &r,
                "helpline_break_glass_total",
                "Break-glass steps: a supervisor asked for a contact's raw address (request), a second \
                 one approved or denied it, it ran out of time (expire), or it was shown (reveal)",
                &["step"],
            ),
            sockets_open: gauge(
                &r,
                "helpline_sockets_open",
                "WebSockets this node holds open, contacts and staff",
                &[],
            ),
            sockets_refused_total: counter(
                &r,
                "helpline_sockets_refused_total",
                "WebSocket upgrades refused by the socket caps (node_full: limits.max_sockets, \
                 source_full: limits.sockets_per_source)",
                &["reason"],
            ),
            frames_slowed_total: counter(
                &r,
                "helpline_frames_slowed_total",
                "Frames read late because their socket went past limits.frames_per_second",
                &["socket"],
            ),
            registry: r,
            channels: Vec::new(),
        };
        for kind in ERASED_KINDS {
            t.retention_erased_total
                .with_label_values(&[kind])
                .inc_by(0);
        }
        for status in ["available", "away", "offline"] {
            t.counsellors.with_label_values(&[status]).set(0);
        }
        for result in ["accepted", "declined", "timeout"] {
            t.offers_total.with_label_values(&[result]).inc_by(0);
        }
        for direction in DIRECTIONS {
            t.relay_seconds.with_label_values(&[direction]);
        }
        for op in ["message", "sweep", "heartbeat"] {
            t.redis_errors_total.with_label_values(&[op]).inc_by(0);
        }
        for step in BREAK_GLASS_STEPS {
            t.break_glass_total.with_label_values(&[step]).inc_by(0);
        }
        t.sockets_open.with_label_values(&[] as &[&str]).set(0);
        for reason in ["node_full", "source_full"] {
            t.sockets_refused_total
                .with_label_values(&[reason])
                .inc_by(0);
        }
        for socket in ["contact", "staff"] {
            t.frames_slowed_total.with_label_values(&[socket]).inc_by(0);
        }
        t.init_channel("webchat");
        for urgency in URGENCIES {
            t.queue_longest_wait_seconds.with_label_values(&[urgency]);
        }
        t
    }

    /// Metrics for a node whose enabled channels are `channels` (web chat is always on).
    pub fn with_channels(channels: &[&str]) -> Telemetry {
        let mut t = Telemetry::new();
        for channel in channels {
            t.init_channel(channel);
            t.channels.push((*channel).to_owned());
        }
        t
    }

    /// The (urgency, channel) classes of the queue gauges: every urgency of web chat and of each
    /// enabled channel.
    pub fn queue_classes(&self) -> Vec<(&'static str, &str)> {
        std::iter::once("webchat")
            .chain(self.channels.iter().map(String::as_str))
            .flat_map(|channel| URGENCIES.map(|urgency| (urgency, channel)))
            .collect()
    }

    /// Sets the queue gauges from a recount: per class of `queue_classes`, how many wait and how
    /// long (s) the oldest of them has waited.
    pub fn set_queue(&self, classes: &[(&str, &str)], counts: &[(u64, u64)]) {
        for urgency in URGENCIES {
            let longest = counts
                .iter()
                .zip(classes)
                .filter(|(_, (u, _))| *u == urgency)
                .map(|((_, waited_s), _)| *waited_s)
                .max()
                .unwrap_or(0);
            self.queue_longest_wait_seconds
                .with_label_values(&[urgency])
                .set(i64::try_from(longest).unwrap_or(i64::MAX));
        }
        for ((urgency, channel), (waiting, _)) in classes.iter().zip(counts) {
            self.queue_waiting
                .with_label_values(&[urgency, channel])
                .set(i64::try_from(*waiting).unwrap_or(i64::MAX));
        }
    }

    /// Creates, at zero, every series of one channel whose labels are all known in advance.
    fn init_channel(&self, channel: &str) {
        for urgency in URGENCIES {
            self.queue_waiting.with_label_values(&[urgency, channel]);
            self.queue_wait_seconds
                .with_label_values(&[urgency, channel]);
        }
        for outcome in OUTCOMES {
            self.conversations_total
                .with_label_values(&[channel, outcome])
                .inc_by(0);
        }
        for direction in DIRECTIONS {
            self.messages_total
                .with_label_values(&[channel, direction])
                .inc_by(0);
        }
        self.first_response_seconds.with_label_values(&[channel]);
        self.media_withheld_total
            .with_label_values(&[channel])
            .inc_by(0);
        if channel == "telegram" {
            for reason in [
                "missing_secret",
                "bad_secret",
                "overloaded",
                "bad_body",
                "too_large",
                "too_slow",
                "too_deep",
            ] {
                self.webhook_rejected_total
                    .with_label_values(&[channel, reason])
                    .inc_by(0);
            }
        }
        if channel == "sms" {
            for reason in [
                "missing_signature",
                "bad_signature",
                "bad_body",
                "too_large",
                "too_slow",
            ] {
                self.webhook_rejected_total
                    .with_label_values(&[channel, reason])
                    .inc_by(0);
            }
        }
    }

    /// Counts and logs one routing event that this node caused.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::Queued { conv, channel } => {
                tracing::info!(conversation = %conv, %channel, "conversation queued");
            }
            Event::Offer { conv, agent, .. } => {
                tracing::info!(conversation = %conv, counsellor = %agent, "offered");
            }
            Event::Revoked {
                conv,
                agent,
                reason,
            } => {
                if matches!(reason.as_str(), "accepted" | "declined" | "timeout") {
                    self.offers_total.with_label_values(&[reason]).inc();
                }
                tracing::info!(conversation = %conv, counsellor = %agent, %reason, "offer ended");
            }
            Event::Assigned {
                conv,
                agent,
                wait_ms,
                urgency,
                channel,
                first,
                ..
            } => {
                let wait = *wait_ms as f64 / 1000.0;
                if *first {
                    self.conversations_total
                        .with_label_values(&[channel, "answered"])
                        .inc();
                }
                self.queue_wait_seconds
                    .with_label_values(&[urgency.as_str(), channel])
                    .observe(wait);
                tracing::info!(conversation = %conv, counsellor = %agent, wait_s = wait, "assigned");
            }
            Event::Transferred { conv, agent, lost } => {
                tracing::info!(conversation = %conv, counsellor = %agent, lost, "back to the queue");
            }
            Event::Ended {
                conv,
                reason,
                channel,
                answered,
                ..
            } => {
                let outcome = if *answered { "closed" } else { "abandoned" };
                self.conversations_total
                    .with_label_values(&[channel, outcome])
                    .inc();
                tracing::info!(conversation = %conv, %reason, outcome, "conversation ended");
            }
            // Counted by the node that stored it, from the script's reply (`message_stored`).
            Event::Msg { .. } => {}
            Event::Typing { .. } => {}
            // Counted and logged by `Telemetry::erased`, with what erased it.
            Event::Erased { .. } => {}
            Event::Status { agent, status } => {
                tracing::info!(counsellor = %agent, %status, "status");
            }
            Event::Urgency {
                conv,
                urgency,
                category,
                ..
            } => {
                tracing::info!(conversation = %conv, urgency = urgency.as_str(), %category, "urgency changed");
            }
        }
    }

    /// Media from a contact was refused and not stored.
    pub fn media_withheld(&self, channel: &str, conv: &str) {
        self.media_withheld_total
            .with_label_values(&[channel])
            .inc();
        tracing::info!(conversation = %conv, %channel, "media withheld");
    }

    /// A break-glass step (`step`: one of [`BREAK_GLASS_STEPS`]) of request `id` about
    /// conversation `conv`; never the address.
    pub fn break_glass(&self, step: &'static str, id: &str, conv: &str, by: &str) {
        self.break_glass_total.with_label_values(&[step]).inc();
        tracing::warn!(request = %id, conversation = %conv, staff = %by, step, "break-glass");
    }

    /// A webhook call was refused before anything in it was read (`reason`: a closed set).
    pub fn webhook_rejected(&self, channel: &'static str, reason: &'static str) {
        self.webhook_rejected_total
            .with_label_values(&[channel, reason])
            .inc();
        tracing::warn!(%channel, %reason, "webhook call refused");
    }

    /// What became of an outbox entry (`result`: see `helpline_outbox_total`); `why` is a fixed
    /// phrase, never text from anyone.
    pub fn outbox(&self, channel: &str, result: &'static str, conv: &str, why: &str) {
        self.outbox_total
            .with_label_values(&[channel, result])
            .inc();
        match result {
            "sent" | "retried" => {
                tracing::debug!(conversation = %conv, %channel, result, why, "outbox")
            }
            "dropped" | "resent" => {
                tracing::warn!(conversation = %conv, %channel, result, why, "outbox")
            }
            _ => tracing::info!(conversation = %conv, %channel, result, why, "outbox"),
        }
    }

    /// `n` things of `kind` (one of [`ERASED_KINDS`]) were erased; logged only when there were any.
    pub fn erased(&self, kind: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.retention_erased_total
            .with_label_values(&[kind])
            .inc_by(n);
        tracing::info!(kind, n, "erased");
    }

    /// Counts a failed Redis operation without a log line (prefer [`Self::redis_failed`]).
    pub fn redis_error(&self, op: &'static str) {
        self.redis_errors_total.with_label_values(&[op]).inc();
    }

    /// A Redis operation failed: counts it by `op` and logs it, with the error (whose Redis URL is
    /// already redacted, and which never holds a key's value).
    pub fn redis_failed(&self, op: &'static str, error: &dyn std::fmt::Display) {
        self.redis_errors_total.with_label_values(&[op]).inc();
        tracing::warn!(op, %error, "Redis operation failed");
    }

    /// A socket (`contact` or `staff`) went past its frame budget and is being slowed down; logged
    /// once per episode by the caller, never with its address.
    pub fn frames_slowed(&self, socket: &'static str) {
        self.frames_slowed_total.with_label_values(&[socket]).inc();
    }

    /// A message was stored: counted by channel and direction (a whisper is not), and a
    /// counsellor's first answer timed from the assignment.
    pub fn message_stored(
        &self,
        channel: &str,
        from: &str,
        whisper: bool,
        first_response_ms: Option<i64>,
    ) {
        if !whisper {
            let direction = if from == "contact" { "in" } else { "out" };
            self.messages_total
                .with_label_values(&[channel, direction])
                .inc();
        }
        if let Some(ms) = first_response_ms {
            self.first_response_seconds
                .with_label_values(&[channel])
                .observe(ms as f64 / 1000.0);
        }
    }

    /// A message reached the other side `ms` after it was stored.
    pub fn relayed(&self, direction: &'static str, ms: i64) {
        self.relay_seconds
            .with_label_values(&[direction])
            .observe(ms.max(0) as f64 / 1000.0);
        tracing::debug!(direction, ms, "message relayed");
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_exist_before_the_first_event_for_every_enabled_channel() {
        let text = Telemetry::with_channels(&["telegram"]).render();
        for series in [
            r#"helpline_queue_waiting{channel="telegram",urgency="critical"} 0"#,
            r#"helpline_conversations_total{channel="webchat",outcome="abandoned"} 0"#,
            r#"helpline_messages_total{channel="telegram",direction="in"} 0"#,
            r#"helpline_relay_seconds_count{direction="out"} 0"#,
            r#"helpline_media_withheld_total{channel="telegram"} 0"#,
            r#"helpline_webhook_rejected_total{channel="telegram",reason="bad_secret"} 0"#,
            r#"helpline_queue_longest_wait_seconds{urgency="critical"} 0"#,
            r#"helpline_offers_total{result="timeout"} 0"#,
            r#"helpline_counsellors{status="available"} 0"#,
        ] {
            assert!(text.contains(series), "{series} missing in {text}");
        }
    }

    #[test]
    fn buckets_fit_their_quantities() {
        let t = Telemetry::new();
        t.queue_wait_seconds
            .with_label_values(&["normal", "webchat"])
            .observe(3000.0);
        t.relay_seconds.with_label_values(&["in"]).observe(0.002);
        let text = t.render();
        // Waits up to an hour, with the 60 s target as a bucket edge for the service level.
        assert!(text.contains(r#"urgency="normal",le="3600"} 1"#), "{text}");
        assert!(text.contains(r#"urgency="normal",le="60"} 0"#), "{text}");
        // Relays from a millisecond.
        assert!(text.contains(r#"helpline_relay_seconds_bucket{direction="in",le="0.001"} 0"#));
        assert!(text.contains(r#"helpline_relay_seconds_bucket{direction="in",le="0.002"} 1"#));
    }

    #[test]
    fn the_queue_recount_sets_every_class_and_the_longest_wait_per_urgency() {
        let t = Telemetry::with_channels(&["sms"]);
        let classes = t.queue_classes();
        assert_eq!(classes.len(), 8);
        let count = |u: &str, c: &str| match (u, c) {
            ("high", "sms") => (3, 42),
            ("high", "webchat") => (1, 7),
            _ => (0, 0),
        };
        let counts: Vec<_> = classes.iter().map(|(u, c)| count(u, c)).collect();
        t.set_queue(&classes, &counts);
        let text = t.render();
        assert!(text.contains(r#"helpline_queue_waiting{channel="sms",urgency="high"} 3"#));
        assert!(text.contains(r#"helpline_queue_waiting{channel="webchat",urgency="high"} 1"#));
        assert!(text.contains(r#"helpline_queue_longest_wait_seconds{urgency="high"} 42"#));
        // A recount with the queue empty sets every series back to zero.
        t.set_queue(&classes, &vec![(0, 0); classes.len()]);
        let text = t.render();
        assert!(text.contains(r#"helpline_queue_waiting{channel="sms",urgency="high"} 0"#));
        assert!(text.contains(r#"helpline_queue_longest_wait_seconds{urgency="high"} 0"#));
    }

    #[test]
    fn every_contract_metric_is_exposed() {
        let t = Telemetry::new();
        t.queue_waiting
            .with_label_values(&["normal", "webchat"])
            .set(1);
        t.observe(&Event::Assigned {
            conv: "c".into(),
            agent: "a".into(),
            display: "A".into(),
            wait_ms: 1500,
            urgency: crate::Urgency::High,
            channel: "webchat".into(),
            first: true,
        });
        let text = t.render();
        for name in [
            "helpline_queue_waiting",
            "helpline_queue_wait_seconds",
            "helpline_counsellors",
            "helpline_offers_total",
        ] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
    }
}
