//! Operations (issue 6): a live `/metrics` passes `promtool check metrics` and names no one; the logs
//! hold no message text, address, IP or secret, and key each session by a short random log id; every
//! shipped configuration (example file, compose, Kubernetes, systemd) passes `helpline config
//! check`; the gateway runs on the shipped Redis configuration and ACL user; a node runs the worker
//! threads its configuration gives (`server.threads`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use helpline_tests::*;
use serde_json::{json, Value};

/// The contract's metrics (CONTRACT.md section 7).
const CONTRACT_METRICS: [&str; 11] = [
    "helpline_queue_waiting",
    "helpline_queue_wait_seconds",
    "helpline_conversations_total",
    "helpline_first_response_seconds",
    "helpline_counsellors",
    "helpline_messages_total",
    "helpline_relay_seconds",
    "helpline_offers_total",
    "helpline_media_withheld_total",
    "helpline_webhook_rejected_total",
    "helpline_redis_errors_total",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One answered conversation (message each way, closed by the counsellor) and one abandoned in
/// the queue. Returns what must never be a metric label: the two conversation ids, then what must
/// never be logged either: both resume tokens and the alias.
async fn some_traffic(
    gw: &Gateway,
    contact_headers: &[(&'static str, &str)],
) -> Result<Vec<String>> {
    gw.add_user("ana", "counsellor", "ro", 2)?;
    let mut ana = Staff::connect(gw, "ana").await?;
    ana.available().await?;

    let mut client = Client::open_with_headers(gw, "/ws/chat", contact_headers).await?;
    client.send(json!({"type": "start", "lang": "ro"})).await?;
    let started = client.expect("started", SECS_5).await?;
    let conv = started["conversation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let token = started["token"].as_str().unwrap_or_default().to_owned();
    let mut contact = Contact {
        client,
        conversation: conv.clone(),
        token: token.clone(),
    };
    contact
        .say("CANARY-CONTACT-4f1d I live at 12 Strada Canarului, call me on +37369000111")
        .await?;
    let assigned = ana.take_offer(SECS_5).await?;
    let alias = assigned["alias"].as_str().unwrap_or_default().to_owned();
    ana.say(&conv, "CANARY-COUNSELLOR-9a2b you are safe here")
        .await?;
    contact.client.expect("message", SECS_5).await?;
    // Refused frames must not log what they held either.
    contact
        .client
        .send_raw(tokio_tungstenite::tungstenite::Message::Text(
            "CANARY-BADFRAME-77c0 not json".into(),
        ))
        .await?;
    contact.client.expect("error", SECS_5).await?;
    contact
        .client
        .send(json!({"type": "message", "text": "CANARY-TOOLONG-31e5 ".repeat(400), "client_msg_id": uuid()}))
        .await?;
    contact.client.expect("error", SECS_5).await?;
    ana.client
        .send(json!({"type": "close", "conversation": conv, "outcome": "listened", "tags": []}))
        .await?;
    contact.client.expect("ended", SECS_5).await?;

    let mut gone = Contact::start(gw, "ro").await?;
    gone.say("CANARY-ABANDONED-5d3c").await?;
    gone.client.send(json!({"type": "end"})).await?;
    gone.client.expect("ended", SECS_5).await?;
    Ok(vec![conv, gone.conversation, token, alias, gone.token])
}

/// `promtool check metrics` on `text`; `Ok(false)` when promtool is not installed outside CI.
fn promtool_check_metrics(text: &str) -> Result<bool> {
    use std::io::Write;
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(_) if std::env::var_os("CI").is_none() => return Ok(false),
        Err(e) => bail!("promtool is needed in CI (scripts/check-deploy installs it): {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !said.trim().is_empty() {
        bail!("promtool check metrics found problems:\n{said}");
    }
    Ok(true)
}

/// The value of the one sample named exactly `series` (name and labels as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn live_metrics_pass_promtool_and_name_no_one() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    let url = format!("{}/metrics", gw.base());

    // Before any traffic, every contract metric is already exposed, but for webhook rejections:
    // web chat has no webhook, and their series exist once Telegram or SMS is on.
    let before = reqwest::get(&url).await?.text().await?;
    for name in CONTRACT_METRICS
        .into_iter()
        .filter(|n| *n != "helpline_webhook_rejected_total")
    {
        assert!(
            before.contains(&format!("# TYPE {name} ")),
            "{name} is missing before the first event:\n{before}"
        );
    }

    let secrets = some_traffic(&gw, &[]).await?;
    let res = reqwest::get(&url).await?;
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = res.text().await?;

    let answered = r#"helpline_conversations_total{channel="webchat",outcome="answered"}"#;
    assert_eq!(sample(&text, answered), Some(1.0), "{text}");
    let abandoned = r#"helpline_conversations_total{channel="webchat",outcome="abandoned"}"#;
    assert_eq!(sample(&text, abandoned), Some(1.0), "{text}");
    let inbound = r#"helpline_messages_total{channel="webchat",direction="in"}"#;
    assert!(sample(&text, inbound) >= Some(2.0), "{text}");
    // The counsellor answered once: one message out, and one first response timed.
    let outbound = r#"helpline_messages_total{channel="webchat",direction="out"}"#;
    assert_eq!(sample(&text, outbound), Some(1.0), "{text}");
    let first = r#"helpline_first_response_seconds_count{channel="webchat"}"#;
    assert_eq!(sample(&text, first), Some(1.0), "{text}");
    let waits = r#"helpline_queue_wait_seconds_count{channel="webchat",urgency="normal"}"#;
    assert_eq!(sample(&text, waits), Some(1.0), "{text}");
    let relayed = r#"helpline_relay_seconds_count{direction="out"}"#;
    assert!(sample(&text, relayed) >= Some(1.0), "{text}");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "/metrics holds {secret}");
    }
    assert!(!text.contains("CANARY"), "/metrics holds message text");

    if !promtool_check_metrics(&text)? {
        eprintln!("promtool is not installed: skipped `promtool check metrics` (CI runs it)");
    }
    Ok(())
}

/// The queue gauges are refreshed every 5 s from the sets kept beside the queue (one per urgency
/// and channel), never by reading the queue; they count who waits and how long the oldest has.
#[tokio::test]
async fn the_queue_gauges_count_who_waits() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    let _first = Contact::start(&gw, "ro").await?;
    let _second = Contact::start(&gw, "ru").await?;
    let waiting = r#"helpline_queue_waiting{channel="webchat",urgency="normal"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while metric(&gw, waiting).await? != Some(2.0) {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{waiting} is not 2 within 15 s: {:?}",
                metric(&gw, waiting).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let high = r#"helpline_queue_waiting{channel="webchat",urgency="high"}"#;
    assert_eq!(metric(&gw, high).await?, Some(0.0));
    // Refreshed at least a second after the first start: the oldest has waited a while.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let longest = r#"helpline_queue_longest_wait_seconds{urgency="normal"}"#;
    let waited = metric(&gw, longest).await?.unwrap_or(0.0);
    assert!(waited >= 1.0, "{longest} is {waited}");
    Ok(())
}

#[tokio::test]
async fn logs_hold_no_text_address_ip_or_secret_and_key_sessions_by_log_id() -> Result<()> {
    const REDIS_PASSWORD: &str = "CANARY-REDISPW-0e9f";
    const FORWARDED_IP: &str = "203.0.113.77";
    let redis = Redis::start_with(&["--requirepass", REDIS_PASSWORD])?;
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", redis.port);
    let mut gw = Gateway::start_url(
        &url,
        &[
            ("HELPLINE_LOG_FORMAT", "json"),
            // As talkative as production gets: our crates at debug, the libraries at info.
            (
                "HELPLINE_LOG",
                "info,helpline_gateway=debug,helpline_router=debug,helpline_adapters=debug",
            ),
        ],
    )?;
    let forwarded = [
        ("X-Forwarded-For", FORWARDED_IP),
        ("X-Real-IP", FORWARDED_IP),
    ];
    // Conversation ids are random and may be logged (they name no one); resume tokens and aliases
    // may not.
    let mut secrets: Vec<String> = some_traffic(&gw, &forwarded)
        .await?
        .into_iter()
        .skip(2)
        .collect();
    let (status, _) = try_login(&gw, "ana", "CANARY-WRONGPW-66aa").await?;
    assert_eq!(status, 401);
    gw.terminate()?;
    let log = gw.log_text();

    secrets.extend(
        [
            "CANARY",
            "Strada",
            "+37369000111",
            FORWARDED_IP,
            REDIS_PASSWORD,
            MASTER_KEY,
            PASSWORD,
        ]
        .map(String::from),
    );
    for secret in &secrets {
        if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
            bail!("the log holds {secret:?}: {line}");
        }
    }
    for line in log.lines() {
        // The loopback is the client's address in this test; only the listen address may show.
        if line.contains("127.0.0.1") && !line.contains("helpline gateway ready") {
            bail!("the log holds a client address: {line}");
        }
    }

    let lines: Vec<Value> = log
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("HELPLINE_LOG_FORMAT=json must give one JSON object a line")?;
    let log_id = |message: &str| -> Result<String> {
        let line = lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .with_context(|| format!("no {message:?} line in:\n{log}"))?;
        let id = line["span"]["log_id"].as_str().unwrap_or_default();
        if id.len() != 8 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("{message:?} has no 8-hex-digit log id: {line}");
        }
        Ok(id.to_owned())
    };
    let contact_session = log_id("conversation queued")?;
    let staff_session = log_id("assigned")?;
    let login = log_id("staff login")?;
    assert_ne!(contact_session, staff_session);
    assert_ne!(staff_session, login);
    Ok(())
}

/// `KEY=VALUE` lines, without comments and blank lines.
fn env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// Compose's interpolation: `${VAR:-default}` gives the default, `${VAR:?error}` and `${VAR}` a
/// test value (the operator's deploy/.env sets them).
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        match inner.split_once(":-") {
            Some((_, default)) => out.push_str(default),
            None => out.push_str("test-value"),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

fn yaml(path: &Path) -> Result<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text)?;
    value.apply_merge()?;
    Ok(value)
}

/// `(name, value)` of a YAML mapping of strings (compose `environment`, ConfigMap `data`).
fn string_map(value: &serde_yaml::Value) -> Vec<(String, String)> {
    value
        .as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `helpline config check` with exactly `env` (nothing of the test's own environment).
fn config_check(what: &str, config: Option<&Path>, env: &[(String, String)]) -> Result<()> {
    let mut cmd = Command::new(binary());
    if let Some(path) = config {
        cmd.arg("--config").arg(path);
    }
    let out = cmd
        .args(["config", "check"])
        .env_clear()
        .envs(env.iter().cloned())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{what}: `helpline config check` failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        stdout.contains("configuration is valid"),
        "{what}: {stdout}"
    );
    assert!(
        !stdout.contains("test-value"),
        "{what} printed a secret: {stdout}"
    );
    Ok(())
}

#[test]
fn every_shipped_config_passes_config_check() -> Result<()> {
    let deploy = repo().join("deploy");

    let example = repo().join("config/helpline.example.toml");
    config_check("config/helpline.example.toml", Some(&example), &[])?;

    // compose.yaml: helpline.env plus each gateway service's own environment.
    let compose = yaml(&deploy.join("compose.yaml"))?;
    for node in ["gateway-1", "gateway-2"] {
        let service = &compose["services"][node];
        assert_eq!(service["env_file"].as_str(), Some("helpline.env"), "{node}");
        let mut env = env_file(&deploy.join("helpline.env"))?;
        env.extend(
            string_map(&service["environment"])
                .into_iter()
                .map(|(k, v)| (k, interpolate(&v))),
        );
        assert!(
            env.iter().any(|(k, _)| k == "HELPLINE_REDIS__URL"),
            "{node}"
        );
        config_check(&format!("compose.yaml {node}"), None, &env)?;
    }

    // Kubernetes: the ConfigMap, plus the Redis URL from the Secret (its shape).
    let mut env = string_map(&yaml(&deploy.join("k8s/configmap.yaml"))?["data"]);
    let secret = yaml(&deploy.join("k8s/secret.example.yaml"))?;
    let redis_url = secret["stringData"]["redis-url"]
        .as_str()
        .context("redis-url in the Secret")?
        .replace("REPLACE-ME", "test-value");
    env.push(("HELPLINE_REDIS__URL".into(), redis_url));
    config_check("k8s/configmap.yaml", None, &env)?;

    // systemd: the environment file, and the credential path the unit sets.
    let mut env = env_file(&deploy.join("systemd/helpline.env.example"))?
        .into_iter()
        .map(|(k, v)| (k, v.replace("CHANGE-ME", "test-value")))
        .collect::<Vec<_>>();
    let unit = std::fs::read_to_string(deploy.join("systemd/helpline.service"))?;
    let key_file = unit
        .lines()
        .find_map(|l| l.strip_prefix("Environment=HELPLINE_SECURITY__MASTER_KEY_FILE="))
        .context("the unit sets HELPLINE_SECURITY__MASTER_KEY_FILE")?;
    env.push((
        "HELPLINE_SECURITY__MASTER_KEY_FILE".into(),
        key_file.replace("%d", "/run/credentials/helpline.service"),
    ));
    config_check("systemd/helpline.env.example", None, &env)?;
    Ok(())
}

/// redis-server with deploy/redis/redis.conf and the ACL users of users.acl.in (passwords given in
/// clear instead of hashed, which Redis treats alike), on a free port.
struct ShippedRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ShippedRedis {
    fn start(gateway_password: &str) -> Result<ShippedRedis> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("helpline-shipped-redis-{port}"));
        std::fs::create_dir_all(&dir)?;
        let deploy = repo().join("deploy/redis");
        let acl: String = std::fs::read_to_string(deploy.join("users.acl.in"))?
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.replace("#@HELPLINE_SHA256@", &format!(">{gateway_password}"))
                    .replace("#@ADMIN_SHA256@", ">admin-test-password")
                    + "\n"
            })
            .collect();
        std::fs::write(dir.join("users.acl"), acl)?;
        // `dir /data` fails outside a container before any override applies: drop the two paths
        // and give them as arguments.
        let conf: String = std::fs::read_to_string(deploy.join("redis.conf"))?
            .lines()
            .filter(|l| !l.starts_with("dir ") && !l.starts_with("aclfile "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.join("redis.conf"), conf)?;
        let child = Command::new("redis-server")
            .arg(dir.join("redis.conf"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .arg("--aclfile")
            .arg(dir.join("users.acl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server is not installed")?;
        let redis = ShippedRedis { child, port, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                bail!("redis-server with deploy/redis/redis.conf did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    fn cli(&self, user: &str, password: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--no-auth-warning"])
            .args(["--user", user, "--pass", password])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for ShippedRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn the_gateway_runs_on_the_shipped_redis_config_and_acl() -> Result<()> {
    let password = "gateway-test-password";
    let redis = ShippedRedis::start(password)?;
    assert_eq!(
        redis.cli(
            "admin",
            "admin-test-password",
            &["config", "get", "appendfsync"]
        )?,
        "appendfsync\neverysec"
    );
    assert_eq!(
        redis.cli(
            "admin",
            "admin-test-password",
            &["config", "get", "appendonly"]
        )?,
        "appendonly\nyes"
    );
    let anonymous = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "ping"])
        .output()?;
    let said = String::from_utf8_lossy(&anonymous.stdout);
    assert!(said.contains("NOAUTH"), "the default user answered: {said}");
    for refused in [
        vec!["flushall"],
        vec!["keys", "*"],
        vec!["config", "get", "*"],
    ] {
        let said = redis.cli("helpline", password, &refused)?;
        assert!(said.contains("NOPERM"), "{refused:?} gave {said}");
    }
    assert!(redis
        .cli("helpline", password, &["set", "not-helpline:x", "1"])?
        .contains("NOPERM"));

    let url = format!("redis://helpline:{password}@127.0.0.1:{}", redis.port);
    let mut gw = Gateway::start_url(&url, &[])?;
    let health = gw.command(&["health"], None)?;
    assert!(health.status.success(), "{health:?}");
    some_traffic(&gw, &[]).await?;
    let metrics = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    for line in metrics.lines() {
        if line.starts_with("helpline_redis_errors_total") {
            assert!(line.ends_with(" 0"), "a Redis command was refused: {line}");
        }
    }
    assert!(!gw.log_text().contains("NOPERM"), "{}", gw.log_text());

    gw.terminate()?;
    let health = gw.command(&["health"], None)?;
    assert_eq!(health.status.code(), Some(1), "{health:?}");
    assert!(String::from_utf8_lossy(&health.stderr).contains("unhealthy"));
    Ok(())
}

/// `server.threads` sizes the node's runtime (0, the default, one worker per core), the ready line
/// says how many workers it runs, and a one-worker node relays a whole conversation.
#[tokio::test]
async fn a_node_runs_the_worker_threads_it_is_given() -> Result<()> {
    let workers = |gw: &Gateway| -> Option<u64> {
        gw.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "helpline gateway ready")?["fields"]["workers"]
            .as_u64()
    };
    let json = ("HELPLINE_LOG_FORMAT", "json");
    let redis = Redis::start()?;
    let one = Gateway::start(&redis, &[json, ("HELPLINE_SERVER__THREADS", "1")])?;
    assert_eq!(workers(&one), Some(1), "{}", one.log_text());
    some_traffic(&one, &[]).await?;
    drop(one);

    let cores = std::thread::available_parallelism()?.get() as u64;
    let redis = Redis::start()?;
    let default = Gateway::start(&redis, &[json])?;
    assert_eq!(workers(&default), Some(cores), "{}", default.log_text());
    Ok(())
}
