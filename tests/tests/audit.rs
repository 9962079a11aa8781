//! The audit log end to end (issue 8, test 4): every transcript read, monitor, whisper and
//! transfer appears in it with who, what, when and why; `GET /api/audit` filters by time, action,
//! actor and conversation, newest first; `helpline audit export` writes JSON lines oldest first,
//! pages through a long log and is itself audited; and no entry anywhere holds message text.

use std::time::Duration;

use anyhow::Result;
use helpline_tests::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

/// The entries `GET /api/audit?QUERY` answers with.
async fn audit(gw: &Gateway, cookie: &str, query: &str) -> Result<Vec<Value>> {
    let (status, body) = get(gw, &format!("/api/audit?{query}"), cookie).await?;
    anyhow::ensure!(
        status == 200,
        "GET /api/audit?{query} gave {status}: {body}"
    );
    Ok(body.as_array().cloned().unwrap_or_default())
}

fn has(entries: &[Value], actor: &str, action: &str, conv: &str) -> bool {
    entries
        .iter()
        .any(|e| e["actor"] == actor && e["action"] == action && e["conversation"] == conv)
}

/// The export's lines, parsed; fails on a line that is not JSON.
fn export_lines(gw: &Gateway, args: &[&str]) -> Result<Vec<Value>> {
    let mut all = vec!["audit", "export"];
    all.extend_from_slice(args);
    let out = gw.command(&all, None)?;
    anyhow::ensure!(
        out.status.success(),
        "audit export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

#[tokio::test]
async fn transcript_reads_monitors_whispers_and_transfers_are_audited_without_text() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;
    gw.add_user("sofia", "supervisor", "ro", 2)?;
    gw.add_user("audra", "auditor", "", 1)?;
    let started_ms = now_ms();

    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let mut contact = Contact::start(&gw, "ro").await?;
    let conv = contact.conversation.clone();
    let canaries = [
        format!("CANARY-CONTACT-{}", uuid()),
        format!("CANARY-COUNSELLOR-{}", uuid()),
        format!("CANARY-WHISPER-{}", uuid()),
    ];
    contact.say(&canaries[0]).await?;
    ana.take_offer(T).await?;
    ana.say(&conv, &canaries[1]).await?;

    let mut sofia = Staff::connect(&gw, "sofia").await?;
    sofia
        .client
        .send(json!({"type": "monitor", "conversation": conv}))
        .await?;
    sofia.client.expect("monitoring", T).await?;
    let id = uuid();
    sofia
        .client
        .send(json!({"type": "whisper", "conversation": conv, "text": canaries[2], "client_msg_id": id}))
        .await?;
    sofia
        .client
        .expect_where("ack", T, |f| f["client_msg_id"] == id.as_str())
        .await?;

    let path = format!("/api/conversations/{conv}/transcript?reason=follow-up%20call");
    let (status, _) = get(&gw, &path, &ana.cookie).await?;
    assert_eq!(status, 200);
    let (status, _) = get(&gw, &path, &sofia.cookie).await?;
    assert_eq!(status, 200);
    sofia
        .client
        .send(json!({"type": "transfer", "conversation": conv, "skills": ["ro"]}))
        .await?;
    ana.client.expect("ended", T).await?;

    // Only auditors and admins read the log.
    let (status, _) = get(&gw, "/api/audit", &ana.cookie).await?;
    assert_eq!(status, 403);
    let audra = login(&gw, "audra").await?;
    let all = audit(&gw, &audra, "").await?;
    for (actor, action) in [
        ("ana", "transcript.read"),
        ("sofia", "transcript.read"),
        ("sofia", "conversation.monitor"),
        ("sofia", "conversation.whisper"),
        ("sofia", "conversation.transfer"),
    ] {
        assert!(
            has(&all, actor, action, &conv),
            "no {action} by {actor}: {all:#?}"
        );
    }
    assert!(has(&all, "ana", "session.login", ""), "{all:#?}");
    assert!(has(&all, "cli", "user.add", ""), "{all:#?}");
    let read = all
        .iter()
        .find(|e| e["actor"] == "ana" && e["action"] == "transcript.read")
        .cloned()
        .unwrap_or_default();
    assert_eq!(read["reason"], "follow-up call");
    // Newest first.
    let ids: Vec<&str> = all.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|id| std::cmp::Reverse(stream_id(id)));
    assert_eq!(ids, sorted);

    // Filters.
    let reads = audit(&gw, &audra, "action=transcript.read").await?;
    assert_eq!(reads.len(), 2, "{reads:#?}");
    let by_sofia = audit(&gw, &audra, "actor=sofia").await?;
    assert!(by_sofia.iter().all(|e| e["actor"] == "sofia"));
    assert!(by_sofia.len() >= 5, "{by_sofia:#?}");
    let on_conv = audit(&gw, &audra, &format!("conversation={conv}")).await?;
    assert_eq!(on_conv.len(), 5, "{on_conv:#?}");
    let limited = audit(&gw, &audra, &format!("conversation={conv}&limit=2")).await?;
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0]["action"], "conversation.transfer");
    let future = audit(&gw, &audra, &format!("since={}", now_ms() + 60_000)).await?;
    assert!(future.is_empty(), "{future:#?}");
    let before = audit(&gw, &audra, &format!("until={}", started_ms - 1)).await?;
    assert!(before
        .iter()
        .all(|e| e["ts_ms"].as_i64() < Some(started_ms)));
    assert!(!before.iter().any(|e| e["action"] == "transcript.read"));
    let window = audit(
        &gw,
        &audra,
        &format!(
            "since={started_ms}&until={}&action=conversation.monitor",
            now_ms()
        ),
    )
    .await?;
    assert_eq!(window.len(), 1);
    let (status, body) = get(&gw, "/api/audit?action=erase-everything", &audra).await?;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("transcript.read")));
    let (status, _) = get(&gw, "/api/audit?since=yesterday", &audra).await?;
    assert_eq!(status, 400);

    // The export: oldest first, the same entries, and itself on record.
    let lines = export_lines(&gw, &[])?;
    let exported: Vec<&str> = lines.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut ascending = exported.clone();
    ascending.sort_by_key(|id| stream_id(id));
    assert_eq!(exported, ascending);
    for id in &ids {
        assert!(exported.contains(id), "{id} missing from the export");
    }
    // Recorded before the first line is written, so it is the last line of an open-ended export.
    assert_eq!(
        lines.last().map(|e| e["action"].clone()),
        Some(json!("audit.export"))
    );
    let file = std::env::temp_dir().join(format!("helpline-audit-export-{}.jsonl", uuid()));
    let file_arg = file.display().to_string();
    let out = gw.command(
        &[
            "audit",
            "export",
            "--since",
            "2020-01-01T00:00:00Z",
            "--out",
            &file_arg,
        ],
        None,
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&file)?;
    let _ = std::fs::remove_file(&file);
    assert!(written.lines().count() >= exported.len());
    let none = export_lines(&gw, &["--since", &(now_ms() + 60_000).to_string()])?;
    assert!(none.is_empty());
    let bad = gw.command(&["audit", "export", "--since", "last tuesday"], None)?;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
    let exports = audit(&gw, &audra, "action=audit.export").await?;
    assert!(exports.len() >= 3, "{exports:#?}");
    assert!(exports.iter().all(|e| e["actor"] == "cli"));

    // No entry, in the API, the export or Redis itself, holds a word of the conversation.
    let everything = [
        serde_json::to_string(&audit(&gw, &audra, "limit=1000").await?)?,
        serde_json::to_string(&export_lines(&gw, &[])?)?,
        written,
        redis.cli(&["xrange", "helpline:audit", "-", "+"])?,
    ];
    for text in &everything {
        for canary in &canaries {
            assert!(!text.contains(canary.as_str()), "{canary} in the audit log");
        }
    }
    Ok(())
}

/// A stream id's (ms, seq), for ordering.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[tokio::test]
async fn the_export_pages_through_a_long_log_in_order() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    // More entries than one export page (1000) and one API page (500), written as the gateway
    // writes them.
    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut pipe = redis::pipe();
    for n in 0..2500 {
        pipe.cmd("XADD")
            .arg("helpline:audit")
            .arg("*")
            .arg(&[
                ("actor", "sofia"),
                ("action", "transcript.read"),
                ("conv", &format!("{n:032x}")),
                ("reason", "viewed"),
            ])
            .ignore();
    }
    pipe.query_async::<()>(&mut conn).await?;
    let lines = export_lines(&gw, &[])?;
    assert_eq!(lines.len(), 2501, "2500 entries and the export's own");
    let convs: Vec<String> = lines[..2500]
        .iter()
        .map(|e| e["conversation"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..2500).map(|n| format!("{n:032x}")).collect();
    assert_eq!(convs, expected);
    assert_eq!(lines[2500]["action"], "audit.export");

    gw.add_user("audra", "auditor", "", 1)?;
    let audra = login(&gw, "audra").await?;
    let last = audit(&gw, &audra, &format!("conversation={:032x}", 3)).await?;
    assert_eq!(
        last.len(),
        1,
        "found across pages of the newest-first reader"
    );
    let newest = audit(&gw, &audra, "action=transcript.read&limit=1000").await?;
    assert_eq!(newest.len(), 1000);
    assert_eq!(newest[0]["conversation"], format!("{:032x}", 2499));
    Ok(())
}
