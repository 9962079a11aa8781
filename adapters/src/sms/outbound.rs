//! The node's SMS sender: the channel's side of [`crate::sender`] (which claims, orders, retries
//! with backoff and records). The routing scripts already keep SMS sparing (one acknowledgement
//! with the position, then only `assigned` and `ended`); here the welcome gets the line that
//! explains how to choose a language and how to end.
//!
//! Twilio takes at most 1600 characters a message; a longer counsellor reply goes as several
//! parts, split between words. The parts already accepted are remembered (in memory), so a retry
//! after a failure continues with the next part instead of sending the first ones again.

use std::collections::HashMap;

use helpline_router::outbox::{Body, Outgoing};
use helpline_router::Router;
use tokio_util::sync::CancellationToken;

use super::{segments, Provider, Sms, CHANNEL};
use crate::sender::{self, Deliver, Delivery};

impl Sms {
    pub(super) async fn send_outbox(&self, shutdown: CancellationToken) {
        let delivery = SmsDelivery {
            sms: self.clone(),
            parts_sent: HashMap::new(),
        };
        sender::run(delivery, shutdown).await;
    }
}

/// The most characters one provider message may hold (Twilio's limit).
const MAX_CHARS: usize = 1600;

struct SmsDelivery {
    sms: Sms,
    /// Outbox entry → parts of it the provider already accepted (long texts only).
    parts_sent: HashMap<String, usize>,
}

impl Deliver for SmsDelivery {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    fn router(&self) -> &Router {
        &self.sms.inner.router
    }

    async fn deliver(&mut self, out: &Outgoing) -> Delivery {
        let text = self.render(out);
        let size = segments::count(&text);
        tracing::debug!(
            conversation = %out.conv,
            chars = size.chars,
            segments = size.segments,
            "sending an SMS"
        );
        let parts = split(&text, MAX_CHARS);
        let mut done = self.parts_sent.remove(&out.entry).unwrap_or(0);
        for part in parts.iter().skip(done) {
            match self.sms.inner.provider.send(&out.address, part).await {
                Delivery::Accepted => done += 1,
                other => {
                    if done > 0 && self.parts_sent.len() < 10_000 {
                        self.parts_sent.insert(out.entry.clone(), done);
                    }
                    return other;
                }
            }
        }
        Delivery::Accepted
    }
}

impl SmsDelivery {
    fn render(&self, out: &Outgoing) -> String {
        match &out.body {
            Body::Message { text, .. } => text.clone(),
            Body::Notice { code, text } if code == "welcome" => {
                let help = self.router().notices().text(&out.lang, "sms_help", &[]);
                format!("{text} {help}")
            }
            Body::Notice { text, .. } => text.clone(),
        }
    }
}

/// Splits `text` into parts of at most `max` characters, between words where it can.
fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > max {
        let cut = rest[..max]
            .iter()
            .rposition(|c| c.is_whitespace())
            .filter(|&i| i > max / 2)
            .unwrap_or(max);
        let part: String = rest[..cut].iter().collect();
        parts.push(part.trim_end().to_owned());
        rest = rest[cut..].to_vec();
        while rest.first().is_some_and(|c| c.is_whitespace()) {
            rest.remove(0);
        }
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.into_iter().collect());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_split_between_words_within_the_limit() {
        assert_eq!(split("scurt", 1600), ["scurt"]);
        assert_eq!(split("", 1600), [""]);
        let long = "cuvânt ".repeat(500);
        let parts = split(long.trim_end(), 1600);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 1600));
        assert!(parts
            .iter()
            .all(|p| p.starts_with("cuvânt") && p.ends_with("cuvânt")));
        assert_eq!(parts.join(" "), long.trim_end());
        let unbroken = "a".repeat(3300);
        assert_eq!(split(&unbroken, 1600).len(), 3);
    }
}
