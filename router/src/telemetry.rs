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
    pub conversations_total: IntCounterVec,
    pub first_response_seconds: HistogramVec,
    pub counsellors: IntGaugeVec,
    pub messages_total: IntCounterVec,
    pub relay_seconds: HistogramVec,
    pub offers_total: IntCounterVec,
    pub media_withheld_total: IntCounterVec,
    pub webhook_rejected_total: IntCounterVec,
    pub redis_errors_total: IntCounterVec,
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

/// Buckets for human waits: 1 s to about 34 min.
fn wait_buckets() -> Vec<f64> {
    exponential_buckets(1.0, 2.0, 12).unwrap_or_default()
}

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
                exponential_buckets(0.001, 2.0, 14).unwrap_or_default(),
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
            registry: r,
        };
        for status in ["available", "away", "offline"] {
            t.counsellors.with_label_values(&[status]).set(0);
        }
        for result in ["accepted", "declined", "timeout"] {
            t.offers_total.with_label_values(&[result]).inc_by(0);
        }
        t
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
            Event::Msg {
                f,
                channel,
                w,
                first_response_ms,
                ..
            } => {
                if !w {
                    let direction = if f == "contact" { "in" } else { "out" };
                    self.messages_total
                        .with_label_values(&[channel, direction])
                        .inc();
                }
                if let Some(ms) = first_response_ms {
                    let secs = *ms as f64 / 1000.0;
                    self.first_response_seconds
                        .with_label_values(&[channel])
                        .observe(secs);
                }
            }
            Event::Typing { .. } => {}
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

    pub fn redis_error(&self, op: &'static str) {
        self.redis_errors_total.with_label_values(&[op]).inc();
    }

    /// A message reached the other side `ms` after it was stored.
    pub fn relayed(&self, direction: &'static str, ms: i64) {
        self.relay_seconds
            .with_label_values(&[direction])
            .observe(ms.max(0) as f64 / 1000.0);
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
