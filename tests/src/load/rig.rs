//! The processes under test: redis-server, the gateway or the floor, each optionally pinned to CPUs
//! with `taskset` from the moment it starts (so a runtime sizes its thread pool to its cores).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, Context, Result};

use crate::{free_port, Gateway, Redis};

/// The gateway settings of every measured run: automatic assignment, counsellors at the validated
/// maximum capacity, and contact rate limits, frame budgets and socket caps far above anything the
/// generator does.
pub const GATEWAY_SETTINGS: &[(&str, &str)] = &[
    ("HELPLINE_ROUTING__ASSIGNMENT", "auto"),
    ("HELPLINE_ROUTING__MAX_CAPACITY", "10"),
    ("HELPLINE_WEBCHAT__MESSAGES_PER_MINUTE", "100000000"),
    // One counsellor's socket carries ten conversations: no frame budget may pace it.
    ("HELPLINE_LIMITS__FRAMES_PER_SECOND", "1000000"),
    ("HELPLINE_LIMITS__FRAME_BURST", "1000000"),
    // Every generator socket comes from 127.0.0.1, one source (50 sockets by default).
    ("HELPLINE_LIMITS__SOCKETS_PER_SOURCE", "1000000"),
    ("HELPLINE_LIMITS__MAX_SOCKETS", "1000000"),
    ("HELPLINE_LOG", "warn"),
];

/// Conversations one counsellor takes (the validated maximum of `routing.max_capacity`).
pub const CAPACITY: usize = 10;

/// A binary next to this one (`helpline`, `helpline-floor`), from the same cargo profile; a test
/// binary lives one level down, in `deps/`.
pub fn sibling(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    match dir.file_name() {
        Some(d) if d == "deps" => dir.parent().map(Path::to_path_buf).unwrap_or(dir),
        _ => dir,
    }
    .join(name)
}

/// `bin`, or a script that runs it under `taskset -c cpus`.
pub fn pinned(bin: &Path, cpus: Option<&str>) -> Result<PathBuf> {
    let Some(cpus) = cpus else {
        return Ok(bin.to_owned());
    };
    let script = std::env::temp_dir().join(format!(
        "helpline-load-{}-{}-{}",
        bin.file_name().and_then(|n| n.to_str()).unwrap_or("bin"),
        cpus.replace(',', "_"),
        std::process::id()
    ));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec taskset -c {cpus} {} \"$@\"\n",
            bin.display()
        ),
    )?;
    Command::new("chmod").arg("+x").arg(&script).status()?;
    Ok(script)
}

/// Starts the gateway (`HELPLINE_BIN`, set by the caller) against `redis` with [`GATEWAY_SETTINGS`].
pub fn gateway(redis: &Redis) -> Result<Gateway> {
    Gateway::start(redis, GATEWAY_SETTINGS)
}

/// Starts the gateway with [`GATEWAY_SETTINGS`] and then `extra`, which wins where both set a key.
pub fn gateway_with(redis: &Redis, extra: &[(&str, &str)]) -> Result<Gateway> {
    let settings: Vec<(&str, &str)> = GATEWAY_SETTINGS
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .chain(extra)
        .copied()
        .collect();
    Gateway::start(redis, &settings)
}

/// The username of the generator's counsellor `i`.
pub fn counsellor_name(i: usize) -> String {
    format!("load{i}")
}

/// Creates counsellors `0..n` ([`counsellor_name`]) with `capacity` and the comma-separated
/// `skills(i)`, eight CLI processes at a time.
pub fn add_counsellors(
    gw: &Gateway,
    n: usize,
    capacity: usize,
    skills: impl Fn(usize) -> String + Sync,
) -> Result<()> {
    let skills = &skills;
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    s.spawn(move || {
                        gw.add_user(
                            &counsellor_name(i),
                            "counsellor",
                            &skills(i),
                            capacity as u32,
                        )
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| anyhow!("user add panicked"))??;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A running floor process, killed on drop.
pub struct Floor {
    child: Child,
    pub port: u16,
}

impl Floor {
    pub fn start(redis: &Redis, cpus: Option<&str>) -> Result<Floor> {
        let port = free_port();
        let bin = pinned(&sibling("helpline-floor"), cpus)?;
        let child = Command::new(&bin)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--redis",
                &redis.url(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let floor = Floor { child, port };
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(floor);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        anyhow::bail!("the floor did not listen on port {port} within 10 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` in /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no VmRSS line in /proc/<pid>/status")
}

/// CPU time (user + system) process `pid` used so far, in seconds (/proc/<pid>/stat). Call
/// [`clock_ticks`] once before the clock runs: it starts a process, which must not happen mid-run.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ticks / clock_ticks())
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`), read once: starting a process
/// forks the generator, whose page tables (hundreds of MB of histograms) took ~100 ms to copy,
/// and the first measurements stalled every sender for that long.
pub fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(100.0)
    })
}
