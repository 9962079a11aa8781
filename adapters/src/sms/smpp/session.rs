//! The SMPP link: connect, `bind_transceiver`, then serve the PDUs both ways until the link drops
//! or the node stops (then `unbind`), and bind again with a growing backoff.
//!
//! - Keep-alive: an `enquire_link` every `smpp_enquire_link_s`; a link silent through two of them
//!   is dropped (a half-open TCP connection otherwise looks healthy for hours).
//! - Window: at most `smpp_window` `submit_sm` are unanswered at once; each holds a permit until its
//!   `submit_sm_resp` (or `generic_nack`) comes, or the link dies.
//! - A `deliver_sm` is answered only after the text is stored; a storage failure answers
//!   "temporary error" so the SMSC delivers it again.
//!
//! It must never log a number, a text or the password.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use helpline_router::conversation::now_ms;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::pdu::{self, status, Body, Pdu};
use super::Smpp;
use crate::sender::{sleep_or_stop, Backoff};
use crate::sms::Sms;

/// How long connecting and binding may take.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// How long a bind must have lasted for the backoff to start again from one second.
const STABLE: Duration = Duration::from_secs(10);
/// How long an `unbind` waits for its answer when the node stops.
const UNBIND_WAIT: Duration = Duration::from_secs(2);
/// `enquire_link`s left unanswered before the link counts as dead.
const SILENT_LIMIT: u32 = 2;

/// Why a link ended or could not be bound.
#[derive(Debug, Error)]
pub(super) enum SessionError {
    #[error("cannot connect to the SMSC: {0}; check channels.sms.smpp_host and smpp_port")]
    Connect(std::io::Error),
    #[error("the SMSC did not answer within {0:?}")]
    Timeout(Duration),
    #[error(
        "the SMSC refused the bind (status {0:#x}); check channels.sms.smpp_system_id, \
         smpp_password and smpp_system_type"
    )]
    BindRefused(u32),
    #[error("the SMSC broke the protocol: {0}")]
    Protocol(&'static str),
    #[error("the link failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the SMSC closed the link")]
    Closed,
    #[error("the SMSC unbound")]
    Unbound,
    #[error("the SMSC stopped answering enquire_link")]
    Silent,
}

/// A `submit_sm` waiting for its answer.
struct Waiting {
    answer: oneshot::Sender<u32>,
    /// Its place in the window, given back when the answer comes (or the link dies).
    _permit: OwnedSemaphorePermit,
}

/// A bound link as senders see it; cheap to clone.
#[derive(Clone)]
pub(super) struct Link {
    /// PDUs to write, in order, by the link's writer task.
    writer: mpsc::Sender<Vec<u8>>,
    waiting: Arc<Mutex<HashMap<u32, Waiting>>>,
    window: Arc<Semaphore>,
    /// When the link was bound (ms): tells apart an SMSC's sequence numbers of different binds.
    pub(super) bound_ms: i64,
}

impl Link {
    fn new(writer: mpsc::Sender<Vec<u8>>, window: usize) -> Link {
        Link {
            writer,
            waiting: Arc::default(),
            window: Arc::new(Semaphore::new(window)),
            bound_ms: now_ms(),
        }
    }

    /// Sends a request that expects a `submit_sm_resp`; `None` when the link is gone.
    pub(super) async fn submit(&self, sequence: u32, body: Body) -> Option<oneshot::Receiver<u32>> {
        let permit = self.window.clone().acquire_owned().await.ok()?;
        let (answer, answered) = oneshot::channel();
        self.lock().insert(
            sequence,
            Waiting {
                answer,
                _permit: permit,
            },
        );
        if self.write(Pdu::request(sequence, body)).await.is_err() {
            self.forget(sequence);
            return None;
        }
        Some(answered)
    }

    /// Stops waiting for an answer (it timed out), freeing its place in the window.
    pub(super) fn forget(&self, sequence: u32) {
        self.lock().remove(&sequence);
    }

    async fn write(&self, pdu: Pdu) -> Result<(), SessionError> {
        self.writer
            .send(pdu.encode())
            .await
            .map_err(|_| SessionError::Closed)
    }

    fn answer(&self, sequence: u32, code: u32) {
        if let Some(waiting) = self.lock().remove(&sequence) {
            let _ = waiting.answer.send(code);
        }
    }

    /// The link is gone: every waiting send fails now (back to the outbox), no new one starts.
    fn close(&self) {
        self.window.close();
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Waiting>> {
        // A panic while holding the map leaves it consistent (plain inserts and removes).
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds, serves, and binds again until `shutdown`.
pub(super) async fn run(sms: &Sms, smpp: &Smpp, shutdown: &CancellationToken) {
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let bound = tokio::select! {
            _ = shutdown.cancelled() => return,
            bound = bind(smpp) => bound,
        };
        match bound {
            Ok(stream) => {
                tracing::info!("SMPP link bound as a transceiver");
                let ended = serve(sms, smpp, stream, shutdown).await;
                smpp.link.send_replace(None);
                match ended {
                    Ok(()) => {
                        tracing::info!("SMPP link unbound");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "SMPP link lost; binding again"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "SMPP bind failed; retrying"),
        }
        if started.elapsed() >= STABLE {
            backoff.reset();
        }
        if sleep_or_stop(backoff.next(), shutdown).await {
            return;
        }
    }
}

/// Connects and binds as a transceiver.
async fn bind(smpp: &Smpp) -> Result<TcpStream, SessionError> {
    let s = &smpp.settings;
    let connecting = TcpStream::connect((s.host.as_str(), s.port));
    let mut stream = tokio::time::timeout(CONNECT_WAIT, connecting)
        .await
        .map_err(|_| SessionError::Timeout(CONNECT_WAIT))?
        .map_err(SessionError::Connect)?;
    stream.set_nodelay(true)?;
    let sequence = smpp.next_sequence();
    let request = Pdu::request(
        sequence,
        Body::BindTransceiver {
            system_id: s.system_id.clone(),
            password: s.password.expose().to_owned(),
            system_type: s.system_type.clone(),
        },
    );
    stream.write_all(&request.encode()).await?;
    let frame = tokio::time::timeout(CONNECT_WAIT, read_frame(&mut stream))
        .await
        .map_err(|_| SessionError::Timeout(CONNECT_WAIT))??;
    let answer = Pdu::decode(&frame).map_err(|_| SessionError::Protocol("a broken bind answer"))?;
    match answer.body {
        Body::BindTransceiverResp { .. } | Body::GenericNack if answer.status != status::OK => {
            Err(SessionError::BindRefused(answer.status))
        }
        Body::BindTransceiverResp { .. } if answer.sequence == sequence => Ok(stream),
        _ => Err(SessionError::Protocol("no bind_transceiver_resp")),
    }
}

/// Serves a bound link until it drops (an error) or `shutdown` (unbound: `Ok`).
async fn serve(
    sms: &Sms,
    smpp: &Smpp,
    stream: TcpStream,
    shutdown: &CancellationToken,
) -> Result<(), SessionError> {
    let (read_half, mut write_half) = stream.into_split();
    let (frames_in, mut frames) = mpsc::channel(64);
    let reader = tokio::spawn(read_frames(read_half, frames_in));
    let (writer_in, mut to_write) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = to_write.recv().await {
            if write_half.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let link = Link::new(writer_in, smpp.settings.window);
    smpp.link.send_replace(Some(link.clone()));
    let every = smpp.settings.enquire_every;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut silent = 0;
    let ended = loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break unbind(smpp, &link, &mut frames).await,
            _ = tick.tick() => {
                if silent >= SILENT_LIMIT {
                    break Err(SessionError::Silent);
                }
                silent += 1;
                let enquire = Pdu::request(smpp.next_sequence(), Body::EnquireLink);
                if let Err(e) = link.write(enquire).await {
                    break Err(e);
                }
                continue;
            }
            frame = frames.recv() => frame,
        };
        let bytes = match frame {
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => break Err(e),
            None => break Err(SessionError::Closed),
        };
        silent = 0;
        if let Err(e) = on_frame(sms, smpp, &link, &bytes).await {
            break Err(e);
        }
    };
    link.close();
    reader.abort();
    writer.abort();
    ended
}

/// Acts on one PDU from the SMSC.
async fn on_frame(sms: &Sms, smpp: &Smpp, link: &Link, bytes: &[u8]) -> Result<(), SessionError> {
    let got = match Pdu::decode(bytes) {
        Ok(got) => got,
        Err(e) => {
            tracing::warn!(error = %e, "SMPP: a PDU could not be read; answered generic_nack");
            let sequence = bytes
                .get(12..16)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            return link
                .write(reply(status::INVALID_LENGTH, sequence, Body::GenericNack))
                .await;
        }
    };
    let sequence = got.sequence;
    match got.body {
        Body::SubmitSmResp { .. } => link.answer(sequence, got.status),
        // A nack says something failed even when its status is (wrongly) 0.
        Body::GenericNack => link.answer(sequence, got.status.max(status::SYSTEM_ERROR)),
        Body::DeliverSm(sm) => {
            let code = smpp.on_deliver(sms, link.bound_ms, sequence, sm).await;
            link.write(reply(code, sequence, Body::DeliverSmResp))
                .await?;
        }
        Body::EnquireLink => {
            link.write(reply(status::OK, sequence, Body::EnquireLinkResp))
                .await?;
        }
        Body::Unbind => {
            link.write(reply(status::OK, sequence, Body::UnbindResp))
                .await?;
            return Err(SessionError::Unbound);
        }
        Body::EnquireLinkResp
        | Body::UnbindResp
        | Body::DeliverSmResp
        | Body::BindTransceiverResp { .. } => {}
        other => {
            let id = Pdu::request(0, other).command_id();
            if pdu::is_request(id) {
                link.write(reply(status::INVALID_COMMAND, sequence, Body::GenericNack))
                    .await?;
            }
        }
    }
    Ok(())
}

/// Unbinds on shutdown, waiting a little for the SMSC's answer (texts it delivers meanwhile are
/// not answered, so it delivers them again to the next bind).
async fn unbind(
    smpp: &Smpp,
    link: &Link,
    frames: &mut mpsc::Receiver<Result<Vec<u8>, SessionError>>,
) -> Result<(), SessionError> {
    link.write(Pdu::request(smpp.next_sequence(), Body::Unbind))
        .await?;
    let answered = async {
        while let Some(Ok(bytes)) = frames.recv().await {
            if bytes.get(4..8) == Some(&pdu::command::UNBIND_RESP.to_be_bytes()[..]) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(UNBIND_WAIT, answered).await;
    Ok(())
}

fn reply(code: u32, sequence: u32, body: Body) -> Pdu {
    Pdu {
        status: code,
        sequence,
        body,
    }
}

/// Reads whole PDUs off the socket until it fails; the last item is the failure.
async fn read_frames(
    mut read_half: OwnedReadHalf,
    frames: mpsc::Sender<Result<Vec<u8>, SessionError>>,
) {
    loop {
        let frame = read_frame(&mut read_half).await;
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

/// Reads one PDU's bytes (length field included).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, SessionError> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(SessionError::Closed)
        }
        other => other?,
    };
    let len = u32::from_be_bytes(head) as usize;
    if !(pdu::HEADER_LEN..=pdu::MAX_LEN).contains(&len) {
        return Err(SessionError::Protocol("a PDU length out of range"));
    }
    let mut frame = vec![0u8; len];
    frame[..4].copy_from_slice(&head);
    r.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_cut_by_their_length() {
        let mut bytes: &[u8] = &[
            0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 17,
        ];
        let first = read_frame(&mut bytes).await.unwrap();
        assert_eq!(first.len(), 16);
        assert!(matches!(
            read_frame(&mut bytes).await,
            Err(SessionError::Closed | SessionError::Io(_))
        ));
        let mut huge: &[u8] = &[0xff, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut huge).await,
            Err(SessionError::Protocol(_))
        ));
    }
}
