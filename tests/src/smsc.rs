//! An SMSC written by someone else: the npm `smpp` package run as a server by
//! `tests/smsc/smsc.js` (its own package.json and committed package-lock.json; `npm ci` runs
//! here when `node_modules` is missing). It prints every event as a JSON line, which this handle
//! collects, and takes commands (send a `deliver_sm`, drop the link) as JSON lines on stdin. The
//! process is killed by its id when the handle drops.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::free_port;

/// The account the test SMSC accepts.
pub const SYSTEM_ID: &str = "helpline";
pub const PASSWORD: &str = "s3cret";
/// The helpline's short code.
pub const SHORT_CODE: &str = "116111";

/// A running test SMSC.
pub struct Smsc {
    child: Child,
    stdin: ChildStdin,
    pub port: u16,
    events: Arc<Mutex<Vec<Value>>>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smsc")
}

/// Installs the SMSC's packages from the lock file, once per test process.
fn npm_ci() -> Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().map_err(|_| anyhow!("npm ci lock poisoned"))?;
    if *done || dir().join("node_modules/smpp").is_dir() {
        *done = true;
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir())
        .stdout(Stdio::null())
        .status()
        .context("cannot run npm (is Node.js installed?)")?;
    if !status.success() {
        bail!("npm ci in tests/smsc failed: {status}");
    }
    *done = true;
    Ok(())
}

impl Smsc {
    pub fn start() -> Result<Smsc> {
        npm_ci()?;
        let port = free_port();
        let mut child = Command::new("node")
            .arg("smsc.js")
            .arg(port.to_string())
            .args([SYSTEM_ID, PASSWORD])
            .current_dir(dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start node tests/smsc/smsc.js")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if let Ok(mut events) = sink.lock() {
                        events.push(event);
                    }
                }
            }
        });
        let smsc = Smsc {
            child,
            stdin,
            port,
            events,
        };
        smsc.wait_sync(Duration::from_secs(10), |e| e["event"] == "listening")?;
        Ok(smsc)
    }

    /// The gateway's settings to bind to this SMSC.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HELPLINE_CHANNELS__SMS__PROVIDER", "smpp".to_owned()),
            ("HELPLINE_CHANNELS__SMS__SMPP_HOST", "127.0.0.1".to_owned()),
            ("HELPLINE_CHANNELS__SMS__SMPP_PORT", self.port.to_string()),
            (
                "HELPLINE_CHANNELS__SMS__SMPP_SYSTEM_ID",
                SYSTEM_ID.to_owned(),
            ),
            ("HELPLINE_CHANNELS__SMS__SMPP_PASSWORD", PASSWORD.to_owned()),
            ("HELPLINE_CHANNELS__SMS__FROM", SHORT_CODE.to_owned()),
            (
                "HELPLINE_CHANNELS__SMS__SMPP_ENQUIRE_LINK_S",
                "5".to_owned(),
            ),
        ]
    }

    /// Sends the SMSC script a command (see `tests/smsc/smsc.js`).
    pub fn command(&mut self, command: &Value) -> Result<()> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Every event of one kind so far.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    fn wait_sync(&self, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().into_iter().find(&wanted) {
                return Ok(e);
            }
            if Instant::now() > until {
                bail!("the SMSC saw no such event; it saw: {:?}", self.events());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `count` events of `kind` have happened.
    pub async fn wait_count(&self, kind: &str, count: usize, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        while self.events_of(kind).len() < count {
            if Instant::now() > until {
                bail!(
                    "the SMSC saw {} `{kind}`, not {count}; it saw: {:?}",
                    self.events_of(kind).len(),
                    self.events()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The texts submitted to `to` (digits, as SMPP writes them), concatenated parts joined in
    /// order; each with the `submit_sm` events it came in.
    pub fn texts_to(&self, to: &str) -> Vec<(String, Vec<Value>)> {
        let mut whole: Vec<(String, Vec<Value>)> = Vec::new();
        let mut partial: std::collections::HashMap<String, Vec<Value>> = Default::default();
        for e in self.events_of("submit_sm") {
            if e["destination_addr"] != to {
                continue;
            }
            let concat = e["udh"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .find(|h| h.starts_with("0003"))
                })
                .map(str::to_owned);
            let Some(udh) = concat else {
                whole.push((e["text"].as_str().unwrap_or_default().to_owned(), vec![e]));
                continue;
            };
            let (reference, total) = (udh[4..6].to_owned(), udh[6..8].to_owned());
            let total = usize::from_str_radix(&total, 16).unwrap_or(0);
            let parts = partial.entry(reference.clone()).or_default();
            parts.push(e);
            if parts.len() == total {
                let mut parts = partial.remove(&reference).unwrap_or_default();
                parts.sort_by_key(|p| p["udh"][0].as_str().unwrap_or_default().to_owned());
                let text = parts
                    .iter()
                    .map(|p| p["text"].as_str().unwrap_or_default())
                    .collect();
                whole.push((text, parts));
            }
        }
        whole
    }

    /// Waits for a whole text to `to` that contains `fragment`.
    pub async fn wait_text(
        &self,
        to: &str,
        fragment: &str,
        timeout: Duration,
    ) -> Result<(String, Vec<Value>)> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .texts_to(to)
                .into_iter()
                .find(|(t, _)| t.contains(fragment))
            {
                return Ok(found);
            }
            if Instant::now() > until {
                bail!(
                    "no text with {fragment:?} reached the SMSC for {to}; it saw: {:?}",
                    self.events()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        // Child::kill signals this child's process id, never a process by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
