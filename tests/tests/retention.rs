//! Issue 8, test 1: retention. With periods of a few seconds, a closed conversation's transcript
//! is crypto-shredded (its data key first: a copy of its ciphertext restored from a "backup" can no
//! longer be opened), its keys and entries go, its metadata goes later, old audit entries are
//! trimmed, and the daily aggregates still count it, without any id.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use helpline_tests::canary::keys_mentioning;
use helpline_tests::*;
use serde_json::{json, Value};

const CANARY: &str = "CANARY-RETAIN-4e1d";
const T: Duration = Duration::from_secs(10);

/// Polls `check` every 200 ms until it holds, for at most `within`.
async fn eventually(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if check()? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what} did not happen within {within:?}")
}

fn exists(redis: &Redis, key: &str) -> Result<bool> {
    Ok(redis.cli(&["exists", key])?.trim() == "1")
}

/// Every field of the day aggregates (`stats:daily:*`), summed over the days found.
fn daily(redis: &Redis) -> Result<std::collections::BTreeMap<String, i64>> {
    let mut out = std::collections::BTreeMap::new();
    for key in redis
        .cli(&["--scan", "--pattern", "helpline:stats:daily:*"])?
        .lines()
    {
        let flat = redis.cli(&["hgetall", key])?;
        let lines: Vec<&str> = flat.lines().collect();
        for pair in lines.chunks(2) {
            if let [field, value] = pair {
                *out.entry((*field).to_owned()).or_default() += value.parse::<i64>().unwrap_or(0);
            }
        }
    }
    Ok(out)
}

#[tokio::test]
async fn expired_conversations_are_shredded_and_still_counted() -> Result<()> {
    let redis = Redis::start()?;
    // A conversation closed a minute ago by a release without retention, before this one
    // started: only in the index.
    let legacy = "0123456789abcdef0123456789abcdef";
    let closed_at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        - 60_000)
        .to_string();
    let legacy_conv = format!("helpline:conv:{legacy}");
    redis.cli(&[
        "hset",
        &legacy_conv,
        "state",
        "closed",
        "closed_at",
        &closed_at,
        "dek",
        "AAAA",
        "channel",
        "webchat",
    ])?;
    redis.cli(&[
        "xadd",
        &format!("helpline:msgs:{legacy}"),
        "*",
        "f",
        "contact",
        "c",
        "AAAA",
    ])?;
    redis.cli(&["sadd", "helpline:conversations", legacy])?;

    let gw = Gateway::start(
        &redis,
        &[
            ("HELPLINE_RETENTION__TRANSCRIPTS_S", "2"),
            ("HELPLINE_RETENTION__METADATA_S", "5"),
            ("HELPLINE_RETENTION__AUDIT_S", "5"),
            ("HELPLINE_RETENTION__SWEEP_EVERY_S", "1"),
        ],
    )?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    gw.add_user("sofia", "supervisor", "ro", 2)?;

    // One conversation answered and closed by its counsellor.
    let mut contact = Contact::start(&gw, "ro").await?;
    let conv = contact.conversation.clone();
    contact.say(&format!("Bună, {CANARY}")).await?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    ana.take_offer(T).await?;
    ana.say(&conv, "Sunt aici.").await?;
    // Reading the transcript writes an audit entry and leaves the data key in the node's memory.
    let path = format!("/api/conversations/{conv}/transcript");
    let (status, transcript) = get(&gw, &path, &ana.cookie).await?;
    assert_eq!(status, 200, "{transcript}");
    assert!(transcript.to_string().contains(CANARY), "{transcript}");
    ana.client
        .send(json!({"type": "close", "conversation": conv, "outcome": "listened", "tags": []}))
        .await?;
    ana.client
        .expect_where("ended", T, |f| f["conversation"] == conv.as_str())
        .await?;
    contact.client.expect("ended", T).await?;

    // One abandoned: the contact leaves before anyone answers.
    ana.client
        .send(json!({"type": "status", "status": "away"}))
        .await?;
    ana.client.expect("status", T).await?;
    let mut gone = Contact::start(&gw, "ro").await?;
    let abandoned = gone.conversation.clone();
    gone.client.send(json!({"type": "end"})).await?;
    gone.client.expect("ended", T).await?;

    // What a backup taken now would hold of the transcript: its ciphertext.
    let msgs = format!("helpline:msgs:{conv}");
    let conv_key = format!("helpline:conv:{conv}");
    let mut con = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    let backup: Vec<u8> = redis::cmd("DUMP").arg(&msgs).query_async(&mut con).await?;
    assert!(!backup.is_empty());
    assert!(!redis.cli(&["hget", &conv_key, "dek"])?.trim().is_empty());

    // The transcript period passes: the data key goes, then every per-conversation key.
    let started = Instant::now();
    eventually(T, "shredding the transcript", || {
        Ok(redis.cli(&["hget", &conv_key, "dek"])?.trim().is_empty())
    })
    .await?;
    let shredded_after = started.elapsed();
    for key in [
        msgs.clone(),
        format!("helpline:cmid:{conv}"),
        format!("helpline:passed:{conv}"),
    ] {
        assert!(
            !exists(&redis, &key)?,
            "{key} survived the transcript period"
        );
    }
    let resumed = {
        let mut c = Client::contact(&gw).await?;
        c.send(json!({"type": "resume", "token": contact.token}))
            .await?;
        c.expect("error", T).await?
    };
    assert_eq!(resumed["code"], "unknown_token", "{resumed}");
    // Metadata is kept longer: the state and the outcome, no data key.
    assert_eq!(
        redis.cli(&["hget", &conv_key, "outcome"])?.trim(),
        "listened"
    );

    // The ciphertext restored from the backup cannot be opened: the key is gone everywhere,
    // this node's memory included.
    let _: () = redis::cmd("RESTORE")
        .arg(&msgs)
        .arg(0)
        .arg(backup)
        .query_async(&mut con)
        .await?;
    let (status, after) = get(&gw, &path, &ana.cookie).await?;
    assert_ne!(status, 200, "{after}");
    assert!(!after.to_string().contains(CANARY), "{after}");
    let _: i64 = redis::cmd("DEL").arg(&msgs).query_async(&mut con).await?;

    // The metadata period passes: nothing of either conversation is left, but the audit log's
    // entries, which age on their own period.
    for id in [conv.as_str(), abandoned.as_str(), legacy] {
        eventually(T, "deleting the metadata", || {
            Ok(keys_mentioning(&redis, id, &["helpline:audit"])?.is_empty())
        })
        .await?;
    }
    eventually(T, "trimming the audit log", || {
        Ok(redis.cli(&["xlen", "helpline:audit"])?.trim() == "0")
    })
    .await?;

    // The daily aggregates still count both, with the wait of the answered one; no id anywhere.
    // They are filed under today's UTC date (as `date -u` has it; a test across midnight may see
    // yesterday's too).
    let today = std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()?;
    let today = String::from_utf8_lossy(&today.stdout).trim().to_owned();
    let filed = redis.cli(&["--scan", "--pattern", "helpline:stats:daily:*"])?;
    assert!(
        filed.contains(&format!("helpline:stats:daily:{today}")),
        "{filed}"
    );
    let days = daily(&redis)?;
    assert_eq!(
        days.get("webchat:normal:listened:count"),
        Some(&1),
        "{days:?}"
    );
    assert_eq!(
        days.get("webchat:normal:listened:answered"),
        Some(&1),
        "{days:?}"
    );
    assert!(
        days.contains_key("webchat:normal:listened:wait_ms"),
        "{days:?}"
    );
    assert_eq!(
        days.get("webchat:normal:abandoned:count"),
        Some(&1),
        "{days:?}"
    );
    let sofia = login(&gw, "sofia").await?;
    let (status, stats) = get(&gw, "/api/stats", &sofia).await?;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["answered"], 1, "{stats}");
    assert_eq!(stats["abandoned"], 1, "{stats}");

    // Counted by kind.
    let metrics = reqwest::get(format!("{}/metrics", gw.base()))
        .await?
        .text()
        .await?;
    for kind in ["transcript", "metadata", "audit"] {
        let line = format!("helpline_retention_erased_total{{kind=\"{kind}\"}}");
        let n: f64 = metrics
            .lines()
            .find(|l| l.starts_with(&line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(n >= 1.0, "{line} is {n}");
    }

    // Nothing is past its period now.
    let out = gw.command(&["privacy", "report", "--json"], None)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert!(out.status.success(), "{report}");
    assert_eq!(report["overdue"], json!([]), "{report}");
    assert!(
        shredded_after < Duration::from_secs(6),
        "the transcript went after {shredded_after:?}"
    );
    assert!(!gw.log_text().contains(CANARY));
    Ok(())
}
