//! Clients that outlive the node they talk to, as the pages do: when their socket breaks they open
//! one on another node, resume (a contact with its token and the newest message id it received, a
//! counsellor through `hello`), resend every message not yet acknowledged under the same
//! `client_msg_id`, and keep what they received once per message id. At the end each returns its
//! log, so a fault test can check that every acknowledged message reached the other side, once, in
//! order.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::load::conn::{open, Ws};
use crate::uuid;

/// What the clients are asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Send messages now and then.
    Talk,
    /// Send nothing new; keep connected, resend what is unacknowledged, take offers.
    Quiet,
    /// Return the log.
    Stop,
}

/// The messages one side received in one conversation: each id once, in the order first received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// (id, from, text) in the order first received.
    pub messages: Vec<(String, String, String)>,
    ids: HashSet<String>,
    /// Frames of a message already received (replays the client de-duplicated).
    pub repeats: u64,
}

impl Received {
    fn add(&mut self, id: &str, from: &str, text: &str) {
        if self.ids.insert(id.to_owned()) {
            self.messages
                .push((id.to_owned(), from.to_owned(), text.to_owned()));
        } else {
            self.repeats += 1;
        }
    }

    /// The newest id received, the resume point.
    fn newest(&self) -> Option<&str> {
        self.messages
            .iter()
            .map(|(id, _, _)| id.as_str())
            .max_by(|a, b| stream_order(a).cmp(&stream_order(b)))
    }
}

/// A message this client sent: the stored id once acknowledged.
#[derive(Debug, Clone)]
pub struct Sent {
    pub conversation: String,
    pub client_msg_id: String,
    pub text: String,
    pub id: Option<String>,
}

/// A stream id (`<ms>-<seq>`) as numbers, for ordering.
pub fn stream_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Opens `path` on the first node that answers, starting at `nodes[*next]` and moving on; gives up
/// after `patience`.
async fn connect(
    nodes: &[u16],
    next: &mut usize,
    path: &str,
    cookie: Option<&str>,
    patience: Duration,
) -> Result<(Ws, u16)> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let port = nodes[*next % nodes.len()];
        *next += 1;
        if let Ok(Ok(ws)) =
            tokio::time::timeout(Duration::from_secs(2), open(port, path, cookie)).await
        {
            return Ok((ws, port));
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no node of {nodes:?} accepted {path} within {patience:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(ws: &mut Ws, frame: Value) -> Result<()> {
    ws.send(WsMessage::Text(frame.to_string().into())).await?;
    Ok(())
}

/// The next JSON frame; `None` when the socket broke or closed.
async fn next_frame(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(WsMessage::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(WsMessage::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Waits for a frame of `kind` within `wait`, dropping others (only used while opening).
async fn expect(ws: &mut Ws, kind: &str, wait: Duration) -> Result<Value> {
    tokio::time::timeout(wait, async {
        while let Some(f) = next_frame(ws).await {
            if f["type"] == kind {
                return Ok(f);
            }
            if f["type"] == "error" {
                bail!("error instead of {kind}: {f}");
            }
        }
        bail!("socket closed before {kind}")
    })
    .await
    .map_err(|_| anyhow!("no {kind} within {wait:?}"))?
}

/// Records an `ack` against the message it acknowledges; a second ack must carry the same id.
fn acknowledge(sent: &mut [Sent], frame: &Value, problems: &mut Vec<String>) {
    let cmid = frame["client_msg_id"].as_str().unwrap_or_default();
    let id = frame["id"].as_str().unwrap_or_default();
    match sent.iter_mut().find(|s| s.client_msg_id == cmid) {
        Some(s) => match &s.id {
            None => s.id = Some(id.to_owned()),
            Some(known) if known != id => problems.push(format!(
                "{cmid} was acknowledged as {known} and then as {id}"
            )),
            Some(_) => {}
        },
        None => problems.push(format!("ack of a message never sent: {frame}")),
    }
}

/// A little randomness for pacing, without a dependency.
fn jitter(seed: &mut u64, max_ms: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(*seed % max_ms.max(1))
}

/// What a contact did and saw.
#[derive(Debug, Clone)]
pub struct ContactLog {
    pub conversation: String,
    pub token: String,
    pub received: Received,
    pub sent: Vec<Sent>,
    /// Error frames and broken promises (an ack changing its id, an `ended` nobody asked for).
    pub problems: Vec<String>,
    /// Sockets opened after the first (resumes).
    pub resumes: u32,
}

impl ContactLog {
    /// Starts a conversation in `lang` on `nodes[first]` (or the next node that answers).
    pub async fn start(nodes: &[u16], first: usize, lang: &str) -> Result<(ContactLog, Ws)> {
        let mut next = first;
        let (mut ws, _) =
            connect(nodes, &mut next, "/ws/chat", None, Duration::from_secs(10)).await?;
        send(&mut ws, json!({"type": "start", "lang": lang})).await?;
        let started = expect(&mut ws, "started", Duration::from_secs(10)).await?;
        let field = |k: &str| started[k].as_str().unwrap_or_default().to_owned();
        let log = ContactLog {
            conversation: field("conversation"),
            token: field("token"),
            received: Received::default(),
            sent: Vec::new(),
            problems: Vec::new(),
            resumes: 0,
        };
        Ok((log, ws))
    }

    /// Runs the contact until `Phase::Stop`: writes every `every` (plus jitter) while talking, and
    /// resumes on another node whenever its socket breaks.
    pub async fn run(
        mut self,
        nodes: Vec<u16>,
        mut next: usize,
        mut ws: Ws,
        every: Duration,
        mut phase: watch::Receiver<Phase>,
    ) -> Result<ContactLog> {
        let mut seed = (u64::from(std::process::id())
            ^ (next as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            | 1;
        let mut written = 0u32;
        loop {
            let mut tick = tokio::time::interval(every + jitter(&mut seed, 500));
            tick.tick().await;
            loop {
                tokio::select! {
                    frame = next_frame(&mut ws) => match frame {
                        Some(f) => self.on_frame(&f),
                        None => break,
                    },
                    _ = tick.tick() => {
                        if *phase.borrow() == Phase::Talk {
                            written += 1;
                            let text = format!("{} contact {written}", &self.conversation[..8]);
                            let cmid = uuid();
                            self.sent.push(Sent { conversation: self.conversation.clone(), client_msg_id: cmid.clone(), text: text.clone(), id: None });
                            if send(&mut ws, json!({"type": "message", "text": text, "client_msg_id": cmid})).await.is_err() {
                                break;
                            }
                        }
                    },
                    changed = phase.changed() => {
                        if changed.is_err() || *phase.borrow() == Phase::Stop {
                            let _ = ws.close(None).await;
                            return Ok(self);
                        }
                    },
                }
            }
            // The node is gone (or closed the socket): resume on the next one.
            ws = self.resume(&nodes, &mut next).await?;
        }
    }

    /// Resumes on the next node that takes the token; a node may die mid-way, so it tries again,
    /// a bounded number of times (a refused token fails every time).
    async fn resume(&mut self, nodes: &[u16], next: &mut usize) -> Result<Ws> {
        let mut attempts = 0;
        loop {
            let (mut ws, _) =
                connect(nodes, next, "/ws/chat", None, Duration::from_secs(20)).await?;
            self.resumes += 1;
            attempts += 1;
            let mut frame = json!({"type": "resume", "token": self.token});
            if let Some(last) = self.received.newest() {
                frame["last_seen"] = json!(last);
            }
            let resumed = match send(&mut ws, frame).await {
                Ok(()) => expect(&mut ws, "resumed", Duration::from_secs(5)).await,
                Err(e) => Err(e),
            };
            match resumed {
                Ok(_) => {}
                Err(e) if attempts >= 10 => return Err(e.context("cannot resume")),
                Err(_) => continue,
            }
            let unacked: Vec<Sent> = self
                .sent
                .iter()
                .filter(|s| s.id.is_none())
                .cloned()
                .collect();
            for s in unacked {
                let frame =
                    json!({"type": "message", "text": s.text, "client_msg_id": s.client_msg_id});
                if send(&mut ws, frame).await.is_err() {
                    break;
                }
            }
            return Ok(ws);
        }
    }

    fn on_frame(&mut self, f: &Value) {
        let text = |k: &str| f[k].as_str().unwrap_or_default();
        match text("type") {
            "message" => self.received.add(text("id"), text("from"), text("text")),
            "ack" => acknowledge(&mut self.sent, f, &mut self.problems),
            "error" | "ended" => self.problems.push(f.to_string()),
            _ => {}
        }
    }
}

/// What a counsellor did and saw.
#[derive(Debug, Clone, Default)]
pub struct CounsellorLog {
    pub username: String,
    /// Conversations held when the log was returned.
    pub holds: HashSet<String>,
    /// Messages received per conversation (from `hello`, `assigned` and live frames).
    pub received: HashMap<String, Received>,
    pub sent: Vec<Sent>,
    pub problems: Vec<String>,
    pub reconnects: u32,
    /// Conversations handed back to the queue with `transfer`.
    pub transfers: u32,
}

/// How a counsellor client behaves.
#[derive(Debug, Clone, Copy)]
pub struct Manner {
    /// How often a message goes to one of the held conversations (in turn) while talking.
    pub write_every: Duration,
    /// Every this many messages written, the conversation written to is handed back to the queue
    /// instead (0: never), so offers keep happening.
    pub transfer_every: u32,
}

impl CounsellorLog {
    /// Runs counsellor `username` (session `cookie`) until `Phase::Stop`: available, accepts every
    /// offer, writes while talking, and reconnects to another node whenever its socket breaks.
    pub async fn run(
        username: String,
        cookie: String,
        nodes: Vec<u16>,
        mut next: usize,
        manner: Manner,
        mut phase: watch::Receiver<Phase>,
    ) -> Result<CounsellorLog> {
        let mut me = CounsellorLog {
            username,
            ..CounsellorLog::default()
        };
        let mut written = 0u32;
        let mut turn = 0usize;
        loop {
            let mut ws = me.open(&nodes, &mut next, &cookie).await?;
            let mut tick = tokio::time::interval(manner.write_every);
            tick.tick().await;
            loop {
                tokio::select! {
                    frame = next_frame(&mut ws) => match frame {
                        Some(f) => {
                            if me.on_frame(&mut ws, &f).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick() => {
                        if *phase.borrow() != Phase::Talk || me.holds.is_empty() {
                            continue;
                        }
                        let mut held: Vec<&String> = me.holds.iter().collect();
                        held.sort();
                        turn += 1;
                        let conv = held[turn % held.len()].clone();
                        written += 1;
                        let frame = if manner.transfer_every > 0 && written.is_multiple_of(manner.transfer_every) {
                            me.transfers += 1;
                            me.holds.remove(&conv);
                            json!({"type": "transfer", "conversation": conv, "skills": ["ro"]})
                        } else {
                            let text = format!("{} {} {written}", me.username, &conv[..8]);
                            let cmid = uuid();
                            me.sent.push(Sent { conversation: conv.clone(), client_msg_id: cmid.clone(), text: text.clone(), id: None });
                            json!({"type": "message", "conversation": conv, "text": text, "client_msg_id": cmid})
                        };
                        if send(&mut ws, frame).await.is_err() {
                            break;
                        }
                    },
                    changed = phase.changed() => {
                        if changed.is_err() || *phase.borrow() == Phase::Stop {
                            let _ = ws.close(None).await;
                            return Ok(me);
                        }
                    },
                }
            }
            me.reconnects += 1;
        }
    }

    /// Opens `/ws/agent` on a node, takes in `hello`, becomes available, resends the unacknowledged.
    async fn open(&mut self, nodes: &[u16], next: &mut usize, cookie: &str) -> Result<Ws> {
        loop {
            let (mut ws, _) = connect(
                nodes,
                next,
                "/ws/agent",
                Some(cookie),
                Duration::from_secs(20),
            )
            .await?;
            let Ok(hello) = expect(&mut ws, "hello", Duration::from_secs(5)).await else {
                continue;
            };
            self.holds.clear();
            for c in hello["conversations"].as_array().into_iter().flatten() {
                self.take(c);
            }
            if send(&mut ws, json!({"type": "status", "status": "available"}))
                .await
                .is_err()
            {
                continue;
            }
            let unacked: Vec<Sent> = self
                .sent
                .iter()
                .filter(|s| s.id.is_none())
                .cloned()
                .collect();
            for s in unacked
                .iter()
                .filter(|s| self.holds.contains(&s.conversation))
            {
                let frame = json!({"type": "message", "conversation": s.conversation, "text": s.text, "client_msg_id": s.client_msg_id});
                if send(&mut ws, frame).await.is_err() {
                    break;
                }
            }
            return Ok(ws);
        }
    }

    /// Holds a conversation from `hello` or `assigned`, with its history.
    fn take(&mut self, c: &Value) {
        let conv = c["conversation"].as_str().unwrap_or_default().to_owned();
        let received = self.received.entry(conv.clone()).or_default();
        for m in c["history"].as_array().into_iter().flatten() {
            let text = |k: &str| m[k].as_str().unwrap_or_default();
            received.add(text("id"), text("from"), text("text"));
        }
        self.holds.insert(conv);
    }

    async fn on_frame(&mut self, ws: &mut Ws, f: &Value) -> Result<()> {
        let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
        match text("type").as_str() {
            "offer" => {
                send(
                    ws,
                    json!({"type": "accept", "conversation": text("conversation")}),
                )
                .await?;
            }
            "assigned" => self.take(f),
            "message" => self.received.entry(text("conversation")).or_default().add(
                &text("id"),
                &text("from"),
                &text("text"),
            ),
            "ack" => acknowledge(&mut self.sent, f, &mut self.problems),
            "ended" => {
                let conv = text("conversation");
                self.holds.remove(&conv);
                if text("reason") != "transferred" {
                    self.problems.push(f.to_string());
                }
            }
            // Lapsed offers (a node died while one stood) set a counsellor away; they come back.
            "status" if text("status") == "away" => {
                send(ws, json!({"type": "status", "status": "available"})).await?;
            }
            // An offer taken by the time it was accepted, or gone with a node, is not a fault.
            "error" if text("code") == "not_offered" => {}
            "error" => self.problems.push(f.to_string()),
            _ => {}
        }
        Ok(())
    }
}
