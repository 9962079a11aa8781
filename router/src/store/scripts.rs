//! The routing scripts: each is the part of `lua/common.lua` it uses followed by its own body,
//! loaded once and run with EVALSHA (redis-rs falls back to EVAL when a restarted Redis has
//! forgotten it).
//!
//! Redis runs a script's whole text on every call, so every definition of the shared prelude costs
//! each call the time to create it (about half of a message's time in Redis with all of them). A
//! script therefore gets only the prelude's top-level definitions its body names, directly or
//! through other definitions, in the prelude's order.

use std::collections::BTreeSet;

use redis::Script;

const COMMON: &str = include_str!("lua/common.lua");
/// The erasure steps, shared by on-request erasure and the retention sweep (after the prelude).
const ERASURE: &str = include_str!("lua/erasure.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{}\n{body}", prelude_for(body)))
}

fn erasing(body: &str) -> Script {
    let body = format!("{ERASURE}\n{body}");
    Script::new(&format!("{}\n{body}", prelude_for(&body)))
}

/// One top-level definition of the prelude (`local function f` or `local a, b = …`), with the
/// comment lines above it and the blank lines after it.
struct Definition<'a> {
    names: Vec<&'a str>,
    text: String,
    /// The identifiers its code (not its comments) names.
    uses: BTreeSet<&'a str>,
}

/// The definitions of `prelude` that `body` needs, in the prelude's order.
fn prelude_for(body: &str) -> String {
    let defs = definitions(COMMON);
    let mut needed = identifiers(body);
    let mut taken = vec![false; defs.len()];
    // Walking backwards finds each definition's own needs among those before it.
    loop {
        let mut grew = false;
        for (i, def) in defs.iter().enumerate().rev() {
            if !taken[i] && def.names.iter().any(|n| needed.contains(n)) {
                taken[i] = true;
                needed.extend(def.uses.iter().copied());
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    defs.iter()
        .zip(taken)
        .filter(|(_, t)| *t)
        .map(|(d, _)| d.text.as_str())
        .collect()
}

/// Splits a prelude into its top-level definitions: each starts at a line beginning with `local`
/// (code inside functions and tables is indented; `end` and `}` close them at column 0).
fn definitions(prelude: &str) -> Vec<Definition<'_>> {
    let mut defs: Vec<Definition<'_>> = Vec::new();
    let mut comments = String::new();
    for line in prelude.lines() {
        if line.starts_with("--") {
            comments.push_str(line);
            comments.push('\n');
            continue;
        }
        if let Some(rest) = line.strip_prefix("local ") {
            let head = rest.strip_prefix("function ").unwrap_or(rest);
            let names = head
                .split(['(', '='])
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
            defs.push(Definition {
                names,
                text: std::mem::take(&mut comments),
                uses: BTreeSet::new(),
            });
        }
        if let Some(def) = defs.last_mut() {
            def.text.push_str(&comments);
            comments.clear();
            def.text.push_str(line);
            def.text.push('\n');
            def.uses.extend(identifiers(line));
        }
    }
    defs
}

/// The identifiers a piece of Lua names outside its comments.
fn identifiers(code: &str) -> BTreeSet<&str> {
    code.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .collect()
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
    /// Not routing: keeps a channel message id of a conversation not erased (no prelude).
    pub chanmsg: Script,
}

impl Scripts {
    /// Every script, to put them all in Redis's script cache at once.
    pub fn all(&self) -> [&Script; 21] {
        [
            &self.create,
            &self.accept,
            &self.decline,
            &self.status,
            &self.register,
            &self.close,
            &self.end,
            &self.transfer,
            &self.urgency,
            &self.message,
            &self.sweep,
            &self.positions,
            &self.heartbeat,
            &self.erase,
            &self.retention,
            &self.outbox_beat,
            &self.lease,
            &self.rewrap,
            &self.login,
            &self.break_glass,
            &self.chanmsg,
        ]
    }

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
            chanmsg: Script::new(include_str!("lua/chanmsg.lua")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODIES: [&str; 14] = [
        include_str!("lua/create.lua"),
        include_str!("lua/accept.lua"),
        include_str!("lua/decline.lua"),
        include_str!("lua/status.lua"),
        include_str!("lua/register.lua"),
        include_str!("lua/close.lua"),
        include_str!("lua/end.lua"),
        include_str!("lua/transfer.lua"),
        include_str!("lua/urgency.lua"),
        include_str!("lua/message.lua"),
        include_str!("lua/sweep.lua"),
        include_str!("lua/positions.lua"),
        include_str!("lua/heartbeat.lua"),
        concat!(
            include_str!("lua/erasure.lua"),
            include_str!("lua/retention.lua")
        ),
    ];

    fn defined(prelude: &str) -> BTreeSet<&str> {
        definitions(prelude)
            .into_iter()
            .flat_map(|d| d.names)
            .collect()
    }

    #[test]
    fn every_top_level_definition_of_the_prelude_is_found_with_its_names() {
        let defs = definitions(COMMON);
        let locals = COMMON.lines().filter(|l| l.starts_with("local ")).count();
        assert_eq!(defs.len(), locals);
        for d in &defs {
            assert!(!d.names.is_empty() && d.names.iter().all(|n| identifiers(n).len() == 1));
        }
        let all: String = defs.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(identifiers(&all), identifiers(COMMON), "no code is lost");
    }

    #[test]
    fn a_script_gets_every_definition_it_names_and_no_other() {
        let names = defined(COMMON);
        for body in BODIES {
            let prelude = prelude_for(body);
            let included = defined(&prelude);
            let text = format!("{prelude}\n{body}");
            let named: BTreeSet<&str> = identifiers(&text).intersection(&names).copied().collect();
            assert_eq!(
                named,
                included,
                "a script whose body begins {:?}",
                &body[..60]
            );
        }
    }

    #[test]
    fn the_message_script_leaves_the_routing_decisions_out() {
        let message = prelude_for(include_str!("lua/message.lua"));
        let message = defined(&message);
        for name in ["P", "NOW", "EVENTS", "emit", "outbox", "notify"] {
            assert!(message.contains(name), "{name}");
        }
        for name in ["dispatch", "enqueue", "offer", "finish_conversation"] {
            assert!(!message.contains(name), "{name}");
        }
        let status = prelude_for(include_str!("lua/status.lua"));
        let status = defined(&status);
        for name in [
            "set_status",
            "dispatch",
            "heads_of",
            "refresh_free",
            "offer",
            "unqueue",
        ] {
            assert!(status.contains(name), "{name}");
        }
    }
}
