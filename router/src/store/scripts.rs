//! The routing scripts: each is `lua/common.lua` followed by its own body, loaded once and run with
//! EVALSHA (redis-rs falls back to EVAL when a restarted Redis has forgotten it).

use redis::Script;

const COMMON: &str = include_str!("lua/common.lua");
/// The erasure steps, shared by on-request erasure and the retention sweep (after the prelude).
const ERASURE: &str = include_str!("lua/erasure.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

fn erasing(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{ERASURE}\n{body}"))
}

/// One compiled script per routing operation.
pub struct Scripts {
    pub create: Script,
    pub accept: Script,
    pub decline: Script,
    pub status: Script,
    pub register: Script,
    pub close: Script,
    pub end: Script,
    pub transfer: Script,
    pub urgency: Script,
    pub message: Script,
    pub sweep: Script,
    pub positions: Script,
    pub heartbeat: Script,
    /// Erases one conversation at once (the contact asked, or a supervisor).
    pub erase: Script,
    /// One retention sweep: expired transcripts, then expired metadata, then old audit entries.
    pub retention: Script,
    /// Not routing: a sender node's outbox heartbeat and take-over (no prelude).
    pub outbox_beat: Script,
    /// Not routing: a lease one node holds at a time (no prelude).
    pub lease: Script,
    /// Not routing: replaces a wrapped data key only if unchanged, for key rotation (no prelude).
    pub rewrap: Script,
    /// Not routing: a login's failure count, lock-out and TOTP replay guard (no prelude).
    pub login: Script,
    /// Not routing: one step of a break-glass request (no prelude).
    pub break_glass: Script,
}

impl Scripts {
    pub fn load() -> Self {
        Self {
            create: script(include_str!("lua/create.lua")),
            accept: script(include_str!("lua/accept.lua")),
            decline: script(include_str!("lua/decline.lua")),
            status: script(include_str!("lua/status.lua")),
            register: script(include_str!("lua/register.lua")),
            close: script(include_str!("lua/close.lua")),
            end: script(include_str!("lua/end.lua")),
            transfer: script(include_str!("lua/transfer.lua")),
            urgency: script(include_str!("lua/urgency.lua")),
            message: script(include_str!("lua/message.lua")),
            sweep: script(include_str!("lua/sweep.lua")),
            positions: script(include_str!("lua/positions.lua")),
            heartbeat: script(include_str!("lua/heartbeat.lua")),
            erase: erasing(include_str!("lua/erase.lua")),
            retention: erasing(include_str!("lua/retention.lua")),
            outbox_beat: Script::new(include_str!("lua/outbox_beat.lua")),
            lease: Script::new(include_str!("lua/lease.lua")),
            rewrap: Script::new(include_str!("lua/rewrap.lua")),
            login: Script::new(include_str!("lua/login.lua")),
            break_glass: Script::new(include_str!("lua/break_glass.lua")),
        }
    }
}
