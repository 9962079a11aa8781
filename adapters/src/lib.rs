//! Channel adapters: each turns one channel's input into router calls and delivers the router's
//! outbound messages to that channel. They never touch Redis keys; the router is their only door.
//!
//! The seam with the transport is [`FrameSocket`]: the gateway owns HTTP and WebSocket upgrades and
//! hands an adapter a socket of text frames, so an adapter's protocol logic can be read (and tested)
//! without any HTTP in sight.

pub mod nesting;
pub mod sender;
pub mod sms;
pub mod telegram;
pub mod throttle;
pub mod webchat;

/// What arrives on a socket.
#[derive(Debug)]
pub enum Inbound {
    Text(String),
    /// A binary frame: refused (no media, ever).
    Binary,
    /// The frame broke the transport's limits (too large, bad UTF-8): the socket is closing.
    Broken(String),
}

/// A close code and reason (RFC 6455 section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    /// The server is going away for a restart: clients should resume elsewhere.
    pub const RESTART: Close = Close {
        code: 1012,
        reason: "restarting; resume",
    };
    /// Normal end.
    pub const NORMAL: Close = Close {
        code: 1000,
        reason: "ended",
    };
    /// The client kept sending frames it was told are refused.
    pub const POLICY: Close = Close {
        code: 1008,
        reason: "too many refused frames",
    };
    /// The client could not keep up, or the node lost its event feed: resume to catch up.
    pub const TRY_AGAIN: Close = Close {
        code: 1013,
        reason: "try again; resume",
    };
}

/// At most how many deliveries already waiting a session handles after the one that woke it,
/// before it writes out and reads its socket again: under load, frames that are ready together
/// leave in one write, and the socket is still read between batches.
pub const TURN_DELIVERIES: usize = 16;

/// A socket of text frames, implemented by the gateway over its WebSocket.
#[allow(async_fn_in_trait)]
pub trait FrameSocket {
    /// The next frame, or `None` when the peer is gone.
    async fn recv(&mut self) -> Option<Inbound>;
    /// Queues one text frame: it leaves with the next [`flush`](FrameSocket::flush), or sooner
    /// when the socket's write buffer fills. A session queues what one turn produces and flushes
    /// once, so frames ready together share one system call. An error means the peer is gone.
    async fn feed(&mut self, text: String) -> Result<(), ()>;
    /// Writes out every queued frame; an error means the peer is gone.
    async fn flush(&mut self) -> Result<(), ()>;
    /// Sends one text frame now.
    async fn send(&mut self, text: String) -> Result<(), ()> {
        self.feed(text).await?;
        self.flush().await
    }
    /// Closes with a code; the peer may already be gone.
    async fn close(&mut self, close: Close);
}
