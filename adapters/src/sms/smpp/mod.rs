//! SMPP 3.4 straight to a carrier's SMSC (issue 5, second provider): the gateway is an ESME bound
//! as a transceiver, so texts come in as `deliver_sm` on the same link the replies go out on as
//! `submit_sm`.
//!
//! - `pdu.rs`: the PDUs as bytes; `codec.rs`: text as GSM-7 / UCS-2 user data, split behind a
//!   concatenation UDH; `session.rs`: the link (bind, keep-alive, window, reconnect);
//!   `deliver.rs`: inbound texts (reassembly, receipts) into the channel's common path.
//! - Outbound goes through the same outbox sender as Twilio: [`Smpp::send`] returns `Accepted` only
//!   when the SMSC answered every part's `submit_sm` with status 0; while the link is down it says
//!   `Transient`, so the entry waits in the outbox and goes out after the next bind.
//!
//! Never logged: numbers, texts, the password.

mod codec;
mod deliver;
mod pdu;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use helpline_config::{Secret, Sms as SmsConfig};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::pdu::{status, Address, Body, ShortMessage};
use self::session::Link;
use super::Sms;
use crate::sender::Delivery;

/// How long a send waits for the link to be bound before the entry goes back to the outbox.
const LINK_WAIT: Duration = Duration::from_secs(5);
/// How long the SMSC may take to answer a `submit_sm`.
const RESPONSE_WAIT: Duration = Duration::from_secs(30);

/// The SMPP account and link settings, read once from `channels.sms`.
struct Settings {
    host: String,
    port: u16,
    system_id: String,
    password: Secret,
    system_type: String,
    /// Our short code (or number) with its TON/NPI: the source of every `submit_sm`.
    source: Address,
    enquire_every: Duration,
    window: usize,
}

/// An SMPP account: the settings and the current link (if bound). One per node.
pub struct Smpp {
    settings: Settings,
    /// The bound link, or `None` while connecting; senders wait on it.
    link: watch::Sender<Option<Link>>,
    /// The next sequence number (1..=0x7FFF_FFFF, section 3.2).
    sequence: AtomicU32,
    /// The next concatenation reference for a long text.
    reference: AtomicU8,
    /// Parts of long inbound texts waiting for the rest.
    partial: Mutex<deliver::Reassembly>,
    /// Long outbound texts the SMSC took only in part, by number and text (memory only): their
    /// reference and which parts it took.
    progress: Mutex<HashMap<String, Progress>>,
}

/// How far a long text got.
struct Progress {
    reference: u8,
    accepted: Vec<bool>,
}

/// Partly sent texts remembered at most; past it, a partly sent text goes whole again.
const MAX_PROGRESS: usize = 10_000;

impl Smpp {
    pub fn new(config: &SmsConfig) -> Result<Smpp, String> {
        let need = |v: Option<&String>, key: &str| {
            v.filter(|s| !s.trim().is_empty())
                .cloned()
                .ok_or_else(|| format!("channels.sms.{key} is required with the smpp provider"))
        };
        let password = config
            .smpp_password
            .clone()
            .ok_or("channels.sms.smpp_password is required with the smpp provider")?;
        Ok(Smpp {
            settings: Settings {
                host: need(config.smpp_host.as_ref(), "smpp_host")?,
                port: config.smpp_port,
                system_id: need(config.smpp_system_id.as_ref(), "smpp_system_id")?,
                password,
                system_type: config.smpp_system_type.clone(),
                source: Address {
                    ton: config.smpp_source_ton,
                    npi: config.smpp_source_npi,
                    addr: need(config.from.as_ref(), "from")?,
                },
                enquire_every: Duration::from_secs(config.smpp_enquire_link_s.max(1)),
                window: usize::try_from(config.smpp_window.max(1)).unwrap_or(1),
            },
            link: watch::Sender::new(None),
            sequence: AtomicU32::new(1),
            reference: AtomicU8::new(rand::random()),
            partial: Mutex::new(deliver::Reassembly::default()),
            progress: Mutex::default(),
        })
    }

    /// Keeps the link bound until `shutdown` (then unbinds), handing inbound texts to `sms`.
    pub(super) async fn run(&self, sms: &Sms, shutdown: CancellationToken) {
        session::run(sms, self, &shutdown).await;
    }

    fn next_sequence(&self) -> u32 {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) & 0x7FFF_FFFF;
        n.max(1)
    }

    /// Sends one text as one or more `submit_sm`, all within the window before any answer is
    /// awaited; `Accepted` only when the SMSC took every part. When only some parts were taken,
    /// the retry (same number, same text) sends only the others, under the same reference, so
    /// the phone still joins them and shows nothing twice.
    pub async fn send(&self, to: &str, text: &str) -> Delivery {
        let Some(link) = self.bound_link().await else {
            return Delivery::Transient("the SMPP link is not bound");
        };
        let key = format!("{to}\n{text}");
        let mut progress = self
            .lock_progress()
            .remove(&key)
            .unwrap_or_else(|| Progress {
                reference: self.reference.fetch_add(1, Ordering::Relaxed),
                accepted: Vec::new(),
            });
        let encoded = codec::encode(text, progress.reference);
        progress.accepted.resize(encoded.parts.len(), false);
        let outcome = self.submit_parts(&link, to, encoded, &mut progress).await;
        let retried = matches!(outcome, Delivery::Transient(_) | Delivery::RetryAfter(..));
        if retried && progress.accepted.contains(&true) {
            let mut kept = self.lock_progress();
            if kept.len() < MAX_PROGRESS {
                kept.insert(key, progress);
            }
        }
        outcome
    }

    /// Submits the parts not yet accepted, then awaits every answer (so `progress` knows which
    /// were taken even when one fails).
    async fn submit_parts(
        &self,
        link: &Link,
        to: &str,
        encoded: codec::Encoded,
        progress: &mut Progress,
    ) -> Delivery {
        let esm_class = if encoded.parts.len() > 1 {
            codec::UDHI
        } else {
            0
        };
        let mut answers = Vec::with_capacity(encoded.parts.len());
        for (index, part) in encoded.parts.into_iter().enumerate() {
            if progress.accepted[index] {
                continue;
            }
            let sm = ShortMessage {
                source: self.settings.source.clone(),
                destination: destination(to),
                esm_class,
                data_coding: encoded.data_coding,
                short_message: part,
                ..ShortMessage::default()
            };
            let sequence = self.next_sequence();
            // A full window that never empties (an SMSC that stopped answering) must not stall
            // the sender: give up after the answer wait, and free what this send holds.
            let submitted =
                tokio::time::timeout(RESPONSE_WAIT, link.submit(sequence, Body::SubmitSm(sm)));
            let failed = match submitted.await {
                Ok(Some(answer)) => {
                    answers.push((index, sequence, answer));
                    continue;
                }
                Ok(None) => "the SMPP link dropped",
                Err(_) => "the SMSC's window stayed full",
            };
            for (_, sequence, _) in &answers {
                link.forget(*sequence);
            }
            return Delivery::Transient(failed);
        }
        let mut outcome = Delivery::Accepted;
        for (index, sequence, answer) in answers {
            let failed = match tokio::time::timeout(RESPONSE_WAIT, answer).await {
                Ok(Ok(status::OK)) => {
                    progress.accepted[index] = true;
                    continue;
                }
                Ok(Ok(refused)) => refusal(refused),
                Ok(Err(_)) => Delivery::Transient("the SMPP link dropped"),
                Err(_) => Delivery::Transient("the SMSC did not answer a submit_sm"),
            };
            link.forget(sequence);
            if outcome == Delivery::Accepted {
                outcome = failed;
            }
        }
        outcome
    }

    fn lock_progress(&self) -> std::sync::MutexGuard<'_, HashMap<String, Progress>> {
        // Plain inserts and removes: a panic elsewhere cannot leave the map half-changed.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bound link, waiting a little for a bind in progress.
    async fn bound_link(&self) -> Option<Link> {
        let mut watching = self.link.subscribe();
        let bound = tokio::time::timeout(LINK_WAIT, watching.wait_for(Option::is_some)).await;
        match bound {
            Ok(Ok(link)) => link.clone(),
            _ => None,
        }
    }
}

/// A contact's number as a destination: international when written `+…`.
fn destination(to: &str) -> Address {
    match to.strip_prefix('+') {
        Some(digits) => Address {
            ton: 1,
            npi: 1,
            addr: digits.to_owned(),
        },
        None => Address {
            ton: 0,
            npi: 1,
            addr: to.to_owned(),
        },
    }
}

/// What a non-zero `submit_sm_resp` status means for the outbox entry.
fn refusal(code: u32) -> Delivery {
    match code {
        status::THROTTLED => Delivery::RetryAfter(Duration::from_secs(1), "the SMSC throttled"),
        status::SYSTEM_ERROR
        | status::MESSAGE_QUEUE_FULL
        | status::SUBMIT_FAILED
        | status::TEMPORARY_APP_ERROR => Delivery::Transient("the SMSC failed the submit_sm"),
        _ => Delivery::Refused("the SMSC refused the submit_sm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_addresses_and_statuses_deliveries() {
        let a = destination("+37369100001");
        assert_eq!((a.ton, a.npi, a.addr.as_str()), (1, 1, "37369100001"));
        assert_eq!(destination("069100001").ton, 0);
        assert!(matches!(
            refusal(status::THROTTLED),
            Delivery::RetryAfter(..)
        ));
        assert!(matches!(
            refusal(status::MESSAGE_QUEUE_FULL),
            Delivery::Transient(_)
        ));
        assert!(matches!(refusal(0x0B), Delivery::Refused(_)));
    }
}
