//! The end-to-end harness: real `redis-server` processes on free ports, the real `helpline` binary,
//! and real HTTP and WebSocket clients. Every process is killed when its handle drops. Providers that
//! cannot run here have fakes that follow their documented formats ([`fake_telegram`]).

pub mod canary;
pub mod fake_telegram;
pub mod fake_twilio;
pub mod faults;
pub mod load;
pub mod resilient;
pub mod smsc;
pub mod topology;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Runs redis-cli against the server on `port` and returns its output.
pub fn redis_cli(port: u16, args: &[&str]) -> Result<String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of the first line of the gateway's `/metrics` that starts with `line_start`.
pub async fn metric(gw: &Gateway, line_start: &str) -> Result<Option<f64>> {
    let text = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok()))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The `helpline` binary built by `cargo test` (the gateway's own integration tests make cargo build
/// it), or `HELPLINE_BIN`.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("HELPLINE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/helpline")
}

/// A private redis-server on a free port, with its data in a temporary folder.
pub struct Redis {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Redis {
    pub fn start() -> Result<Redis> {
        Self::start_with(&[])
    }

    /// Starts a redis-server with `extra` arguments on a free port. A port found free can be taken
    /// again before the server binds it (tests run in parallel, and a cluster node's bus port is
    /// picked the same way), so a server that exits at once is started again on another port.
    pub fn start_with(extra: &[&str]) -> Result<Redis> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = free_port();
            let dir = std::env::temp_dir()
                .join(format!("helpline-test-redis-{port}-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&dir)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("redis-server is not installed (apt-get install redis-server)")?;
            let mut redis = Redis { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(redis);
                }
                if redis.child.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if redis.child.try_wait()?.is_none() || attempts >= 5 {
                bail!("redis-server did not listen on port {port} ({attempts} attempts)");
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs redis-cli against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        redis_cli(self.port, args)
    }

    /// Every key with every value (strings, hashes, sets, zsets, lists, streams), as raw text.
    pub fn dump_everything(&self) -> Result<String> {
        let mut out = String::new();
        for key in self.cli(&["--scan"])?.lines() {
            let value = self.value_text(key)?;
            out.push_str(key);
            out.push('\n');
            out.push_str(&value);
        }
        Ok(out)
    }

    /// The whole value of one key, whatever its type, as raw text.
    pub fn value_text(&self, key: &str) -> Result<String> {
        let kind = self.cli(&["type", key])?;
        Ok(match kind.trim() {
            "string" => self.cli(&["get", key])?,
            "hash" => self.cli(&["hgetall", key])?,
            "set" => self.cli(&["smembers", key])?,
            "zset" => self.cli(&["zrange", key, "0", "-1", "withscores"])?,
            "list" => self.cli(&["lrange", key, "0", "-1"])?,
            "stream" => self.cli(&["xrange", key, "-", "+"])?,
            other => format!("<{other}>"),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// A 32-byte key in base64, fixed so several gateways of one test share it.
pub const MASTER_KEY: &str = "qVbQk0hJr9Cq0sPj3sFfXw2m3l0rS3k0bT8e4yH3u1Q=";

/// A running gateway process.
pub struct Gateway {
    child: Child,
    pub port: u16,
    pub redis_url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Gateway {
    /// Starts `helpline serve` on a free port against `redis`, with extra `HELPLINE_…` settings.
    pub fn start(redis: &Redis, settings: &[(&str, &str)]) -> Result<Gateway> {
        Self::start_url(&redis.url(), settings)
    }

    pub fn start_url(redis_url: &str, settings: &[(&str, &str)]) -> Result<Gateway> {
        let port = free_port();
        let mut env: Vec<(String, String)> = vec![("HELPLINE_REDIS__URL".into(), redis_url.into())];
        // A test that gives a key directory gets no single master key beside it (they conflict).
        if !settings
            .iter()
            .any(|(k, _)| *k == "HELPLINE_SECURITY__MASTER_KEYS_DIR")
        {
            env.push(("HELPLINE_SECURITY__MASTER_KEY".into(), MASTER_KEY.into()));
        }
        env.extend([
            (
                "HELPLINE_SERVER__LISTEN".into(),
                format!("127.0.0.1:{port}"),
            ),
            (
                "HELPLINE_SERVER__PUBLIC_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ),
        ]);
        // Tests log staff in without one-time codes unless they ask for TOTP themselves (it is on
        // by default; tests/tests/auth.rs turns it on by leaving this setting to the test).
        if !settings
            .iter()
            .any(|(k, _)| *k == "HELPLINE_SECURITY__TOTP_ROLES")
        {
            env.push(("HELPLINE_SECURITY__TOTP_ROLES".into(), String::new()));
        }
        for (k, v) in settings {
            env.push(((*k).into(), (*v).into()));
        }
        let log = std::env::temp_dir().join(format!("helpline-test-gw-{port}.log"));
        let child = Command::new(binary())
            .arg("serve")
            .envs(env.iter().cloned())
            .env("HELPLINE_LOG", log_filter(settings))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary().display()))?;
        let gw = Gateway {
            child,
            port,
            redis_url: redis_url.into(),
            env,
            log,
        };
        gw.wait_ready()?;
        Ok(gw)
    }

    fn wait_ready(&self) -> Result<()> {
        wait_for_port(self.port).map_err(|e| anyhow!("{e}; gateway log:\n{}", self.log_text()))
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn origin(&self) -> String {
        self.base()
    }

    /// What the gateway wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs a CLI command of the binary with this gateway's settings.
    pub fn command(&self, args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
        run_cli(&self.env, args, stdin)
    }

    /// Creates a staff account.
    pub fn add_user(&self, username: &str, role: &str, skills: &str, capacity: u32) -> Result<()> {
        let cap = capacity.to_string();
        let mut args = vec![
            "user",
            "add",
            "--username",
            username,
            "--role",
            role,
            "--capacity",
            &cap,
        ];
        if !skills.is_empty() {
            args.extend(["--skills", skills]);
        }
        args.extend(["--display-name", username, "--password-stdin"]);
        let out = self.command(&args, Some(PASSWORD))?;
        if !out.status.success() {
            bail!("user add failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The gateway's process id (the load generator reads its memory and CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        Ok(self.child.wait()?)
    }

    /// Kills the process at once (a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The log filter: `info`, unless the test sets `HELPLINE_LOG` itself.
fn log_filter<'a>(settings: &[(&str, &'a str)]) -> &'a str {
    settings
        .iter()
        .rev()
        .find(|(k, _)| *k == "HELPLINE_LOG")
        .map_or("info", |(_, v)| v)
}

/// The password every test account gets.
pub const PASSWORD: &str = "a long test password";

/// Runs `helpline ARGS` with `env`, feeding `stdin`.
pub fn run_cli(
    env: &[(String, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> Result<std::process::Output> {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            input.write_all(text.as_bytes())?;
        }
    }
    Ok(child.wait_with_output()?)
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that speaks JSON frames.
pub struct Client {
    ws: Ws,
    /// Frames received but not yet taken by `expect`.
    backlog: Vec<Value>,
}

impl Client {
    /// Opens `/ws/chat` as a contact.
    pub async fn contact(gw: &Gateway) -> Result<Client> {
        Self::open(gw, "/ws/chat", None).await
    }

    /// Opens `/ws/agent` with a session cookie.
    pub async fn staff(gw: &Gateway, cookie: &str) -> Result<Client> {
        Self::open(gw, "/ws/agent", Some(cookie)).await
    }

    pub async fn open(gw: &Gateway, path: &str, cookie: Option<&str>) -> Result<Client> {
        match cookie {
            Some(c) => Self::open_with_headers(gw, path, &[("Cookie", c)]).await,
            None => Self::open_with_headers(gw, path, &[]).await,
        }
    }

    /// Opens `path` with the gateway's `Origin` and extra request headers.
    pub async fn open_with_headers(
        gw: &Gateway,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Client> {
        let mut req = format!("ws://127.0.0.1:{}{}", gw.port, path).into_client_request()?;
        req.headers_mut().insert("Origin", gw.origin().parse()?);
        for (name, value) in headers {
            req.headers_mut().insert(*name, value.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Client {
            ws,
            backlog: Vec::new(),
        })
    }

    pub async fn send(&mut self, frame: Value) -> Result<()> {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, msg: Message) -> Result<()> {
        self.ws.send(msg).await?;
        Ok(())
    }

    /// The next frame (JSON), or an error after `timeout`; `Ok(None)` when the socket closed.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Value>> {
        if !self.backlog.is_empty() {
            return Ok(Some(self.backlog.remove(0)));
        }
        loop {
            let msg = tokio::time::timeout(timeout, self.ws.next())
                .await
                .map_err(|_| anyhow!("no frame within {timeout:?}"))?;
            match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Waits for the first frame of `kind` (keeping the others for later), within `timeout`.
    pub async fn expect(&mut self, kind: &str, timeout: Duration) -> Result<Value> {
        self.expect_where(kind, timeout, |_| true).await
    }

    /// Waits for the first frame of `kind` that satisfies `pred`.
    pub async fn expect_where(
        &mut self,
        kind: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|f| f["type"] == kind && pred(f))
        {
            return Ok(self.backlog.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no {kind} frame within {timeout:?}; unmatched frames: {:?}",
                    self.backlog
                );
            }
            let msg = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => bail!(
                    "no {kind} frame within {timeout:?}; unmatched frames: {:?}",
                    self.backlog
                ),
                Ok(m) => m,
            };
            match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                    bail!(
                        "socket closed while waiting for {kind}; unmatched frames: {:?}",
                        self.backlog
                    )
                }
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["type"] == kind && pred(&v) {
                        return Ok(v);
                    }
                    self.backlog.push(v);
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Asserts no frame of `kind` arrives within `wait`.
    pub async fn expect_none(&mut self, kind: &str, wait: Duration) -> Result<()> {
        match self.expect(kind, wait).await {
            Ok(f) => bail!("unexpected {kind} frame: {f}"),
            Err(_) => Ok(()),
        }
    }

    /// Waits for the socket to close; returns the close code.
    pub async fn closed(&mut self, timeout: Duration) -> Result<Option<u16>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .map_err(|_| anyhow!("still open"))?;
            match msg {
                None | Some(Err(_)) => return Ok(None),
                Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
                Some(Ok(Message::Text(t))) => self.backlog.push(serde_json::from_str(&t)?),
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Logs a staff member in; returns the `Cookie` header value.
pub async fn login(gw: &Gateway, username: &str) -> Result<String> {
    let res = reqwest::Client::new()
        .post(format!("{}/api/session", gw.base()))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await?;
    if res.status() != 204 {
        bail!("login of {username} gave {}", res.status());
    }
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("no session cookie"))?;
    Ok(cookie.to_owned())
}

/// A GET with a session cookie; returns (status, JSON body or Null).
pub async fn get(gw: &Gateway, path: &str, cookie: &str) -> Result<(u16, Value)> {
    let res = reqwest::Client::new()
        .get(format!("{}{}", gw.base(), path))
        .header("Cookie", cookie)
        .send()
        .await?;
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// A contact who has started a conversation.
pub struct Contact {
    pub client: Client,
    pub conversation: String,
    pub token: String,
}

impl Contact {
    /// Opens a socket and starts a conversation in `lang`.
    pub async fn start(gw: &Gateway, lang: &str) -> Result<Contact> {
        let mut client = Client::contact(gw).await?;
        client.send(json!({"type": "start", "lang": lang})).await?;
        let started = client.expect("started", SECS_5).await?;
        Ok(Contact {
            conversation: started["conversation"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            token: started["token"].as_str().unwrap_or_default().to_owned(),
            client,
        })
    }

    /// Sends a message and waits for its ack; returns the stored id.
    pub async fn say(&mut self, text: &str) -> Result<String> {
        let id = uuid();
        self.client
            .send(json!({"type": "message", "text": text, "client_msg_id": id}))
            .await?;
        let ack = self
            .client
            .expect_where("ack", SECS_5, |f| f["client_msg_id"] == id.as_str())
            .await?;
        Ok(ack["id"].as_str().unwrap_or_default().to_owned())
    }
}

/// A logged-in staff member with an open `/ws/agent`.
pub struct Staff {
    pub client: Client,
    pub cookie: String,
    pub hello: Value,
}

impl Staff {
    pub async fn connect(gw: &Gateway, username: &str) -> Result<Staff> {
        let cookie = login(gw, username).await?;
        let mut client = Client::staff(gw, &cookie).await?;
        let hello = client.expect("hello", SECS_5).await?;
        Ok(Staff {
            client,
            cookie,
            hello,
        })
    }

    pub async fn available(&mut self) -> Result<()> {
        self.client
            .send(json!({"type": "status", "status": "available"}))
            .await?;
        self.client.expect("status", SECS_5).await?;
        Ok(())
    }

    /// Waits for an offer, accepts it, and waits for the assignment; returns the `assigned` frame.
    pub async fn take_offer(&mut self, timeout: Duration) -> Result<Value> {
        let offer = self.client.expect("offer", timeout).await?;
        let conv = offer["conversation"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.client
            .send(json!({"type": "accept", "conversation": conv}))
            .await?;
        self.client
            .expect_where("assigned", SECS_5, |f| f["conversation"] == conv.as_str())
            .await
    }

    /// Sends a message in `conv` and waits for the ack; returns the stored id.
    pub async fn say(&mut self, conv: &str, text: &str) -> Result<String> {
        let id = uuid();
        self.client
            .send(
                json!({"type": "message", "conversation": conv, "text": text, "client_msg_id": id}),
            )
            .await?;
        let ack = self
            .client
            .expect_where("ack", SECS_5, |f| f["client_msg_id"] == id.as_str())
            .await?;
        Ok(ack["id"].as_str().unwrap_or_default().to_owned())
    }
}

pub const SECS_5: Duration = Duration::from_secs(5);

/// A random UUID-shaped id.
pub fn uuid() -> String {
    let n: u128 = (u128::from(std::process::id()) << 96)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
        ^ u128::from(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) << 64;
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tries a WebSocket upgrade of `path` with the given `Origin` and `Cookie` (each optional) and
/// returns the HTTP status: 101 when the upgrade succeeded, else the refusal's status.
pub async fn upgrade_status(
    gw: &Gateway,
    path: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> Result<u16> {
    let mut req = format!("ws://127.0.0.1:{}{}", gw.port, path).into_client_request()?;
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse()?);
    }
    if let Some(c) = cookie {
        req.headers_mut().insert("Cookie", c.parse()?);
    }
    let attempt = tokio::time::timeout(SECS_5, tokio_tungstenite::connect_async(req))
        .await
        .map_err(|_| anyhow!("no answer to the upgrade of {path} within 5 s"))?;
    match attempt {
        Ok((mut ws, res)) => {
            let _ = ws.close(None).await;
            Ok(res.status().as_u16())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Ok(res.status().as_u16()),
        Err(e) => Err(e.into()),
    }
}

/// Enrols `username` for one-time codes with `helpline user totp` and returns the secret it
/// printed (base32-decoded), as an operator would read it off the screen.
pub fn enrol_totp(gw: &Gateway, username: &str) -> Result<Vec<u8>> {
    let out = gw.command(&["user", "totp", "--username", username], None)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("user totp failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let b32 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret (base32): "))
        .ok_or_else(|| anyhow!("no secret in the output of user totp: {text}"))?;
    Ok(data_encoding::BASE32_NOPAD.decode(b32.as_bytes())?)
}

/// The RFC 6238 code of `secret` (HMAC-SHA-1, 6 digits, 30 s) for the time step `step`,
/// computed here independently of the gateway's own code.
pub fn totp_code(secret: &[u8], step: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let at = usize::from(mac[19] & 0x0f);
    let n = u32::from_be_bytes([mac[at] & 0x7f, mac[at + 1], mac[at + 2], mac[at + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// The current TOTP time step.
pub fn totp_step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 30)
        .unwrap_or(0)
}

/// `POST /api/session` with a username, password and one-time code; returns (status, JSON body
/// or Null, the session cookie on success).
pub async fn login_totp(
    gw: &Gateway,
    username: &str,
    password: &str,
    totp: Option<&str>,
) -> Result<(u16, Value, Option<String>)> {
    let mut body = json!({"username": username, "password": password});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    let res = reqwest::Client::new()
        .post(format!("{}/api/session", gw.base()))
        .json(&body)
        .send()
        .await?;
    let status = res.status().as_u16();
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    Ok((status, res.json().await.unwrap_or(Value::Null), cookie))
}

/// A POST with a session cookie and a JSON body; returns (status, JSON body or Null).
pub async fn post(gw: &Gateway, path: &str, cookie: &str, body: Value) -> Result<(u16, Value)> {
    let res = reqwest::Client::new()
        .post(format!("{}{}", gw.base(), path))
        .header("Cookie", cookie)
        .json(&body)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// `POST /api/session` with any username and password; returns (status, JSON body or Null).
pub async fn try_login(gw: &Gateway, username: &str, password: &str) -> Result<(u16, Value)> {
    let res = reqwest::Client::new()
        .post(format!("{}/api/session", gw.base()))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// Like [`run_cli`], but kills the process if it has not exited within `timeout`; returns the
/// output and how long the process ran.
pub fn run_cli_within(
    env: &[(String, String)],
    args: &[&str],
    timeout: Duration,
) -> Result<(std::process::Output, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    loop {
        if child.try_wait()?.is_some() {
            let took = started.elapsed();
            return Ok((child.wait_with_output()?, took));
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "`helpline {}` still ran after {timeout:?}; stderr so far: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
