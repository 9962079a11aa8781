//! Test 3 of the privacy issue: `helpline keys rotate` during live traffic. No message is lost or
//! unreadable; afterwards no data key uses the old master key version; a gateway started before
//! the rotation keeps working and wraps new conversations under the new version; and once the old
//! key file is deleted, a fresh gateway still reads everything.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use helpline_tests::*;

/// A pseudonym key of its own, so pseudonyms do not depend on v1.key (which the test deletes).
const PSEUDONYM_KEY: &str = "c2V2ZW4gc2VhcyBvZiBwc2V1ZG9ueW1zIGtleSAhIT8=";

/// A fresh directory for master key files, holding `MASTER_KEY` as version 1.
fn key_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "helpline-test-keys-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("v1.key"), format!("{MASTER_KEY}\n"))?;
    Ok(dir)
}

/// `keys status` as (active version, data keys per version).
fn status(gw: &Gateway) -> anyhow::Result<(String, String)> {
    let out = gw.command(&["keys", "status"], None)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "keys status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let active = text
        .lines()
        .find_map(|l| l.strip_prefix("active version: "))
        .unwrap_or_default()
        .to_owned();
    Ok((active, text))
}

/// The texts of a conversation's transcript, or the error status and body.
async fn transcript(gw: &Gateway, cookie: &str, conv: &str) -> anyhow::Result<Vec<String>> {
    let (code, body) = get(gw, &format!("/api/conversations/{conv}/transcript"), cookie).await?;
    anyhow::ensure!(code == 200, "transcript of {conv}: {code} {body}");
    Ok(body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_during_live_traffic_loses_nothing() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let dir = key_dir()?;
    let dir_text = dir.display().to_string();
    let settings = [
        ("HELPLINE_SECURITY__MASTER_KEYS_DIR", dir_text.as_str()),
        ("HELPLINE_SECURITY__PSEUDONYM_KEY", PSEUDONYM_KEY),
        ("HELPLINE_WEBCHAT__MESSAGES_PER_MINUTE", "6000"),
    ];
    let gw = Gateway::start(&redis, &settings)?;
    gw.add_user("ana", "counsellor", "en", 3)?;
    gw.add_user("sam", "supervisor", "", 1)?;

    // Conversations that wait (nobody speaks Romanian), with data keys under version 1.
    let mut waiting = Vec::new();
    for i in 0..5 {
        let mut c = Contact::start(&gw, "ro").await?;
        c.say(&format!("waiting {i}")).await?;
        waiting.push(c);
    }

    // One live conversation between a contact and ana.
    let mut contact = Contact::start(&gw, "en").await?;
    contact.say("hello before the rotation").await?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    ana.take_offer(SECS_5).await?;
    let conv = contact.conversation.clone();
    let (active, before) = status(&gw)?;
    assert_eq!(active, "1", "{before}");
    assert!(before.contains("version 1: 6 data keys"), "{before}");

    // Both sides write continuously while the rotation runs; every acked text is remembered.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        let conv = conv.clone();
        tokio::spawn(async move {
            let mut sent = vec!["hello before the rotation".to_owned()];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let from_contact = format!("contact says {i}");
                contact.say(&from_contact).await?;
                sent.push(from_contact);
                let from_ana = format!("ana answers {i}");
                ana.say(&conv, &from_ana).await?;
                sent.push(from_ana);
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok((sent, contact, ana))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated =
        tokio::task::block_in_place(|| gw.command(&["keys", "rotate", "--batch", "2"], None))?;
    let output = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(
        rotated.status.success(),
        "rotate failed: {output}\n{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (sent, _contact, mut ana) = traffic.await??;
    assert!(output.contains("wrote master key version 2"), "{output}");
    assert!(output.contains("pass 1: "), "{output}");
    assert!(output.contains("done: "), "{output}");
    assert!(
        sent.len() > 20,
        "too little traffic during rotation: {}",
        sent.len()
    );
    let mode = std::fs::metadata(dir.join("v2.key"))?.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    // Every acked message is in the transcript, readable and in order.
    assert_eq!(transcript(&gw, &ana.cookie, &conv).await?, sent);

    // No data key is left under version 1.
    let (active, after) = status(&gw)?;
    assert_eq!(active, "2", "{after}");
    assert!(after.contains("version 1: 0 data keys"), "{after}");
    assert!(after.contains("version 2: 6 data keys"), "{after}");

    // Re-wrapping again finds nothing to do and writes no new version.
    let again = gw.command(&["keys", "rotate", "--rewrap-only"], None)?;
    let again_text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{again_text}");
    assert!(!again_text.contains("wrote"), "{again_text}");
    assert!(
        again_text.contains(", 0 data keys re-wrapped"),
        "{again_text}"
    );
    assert!(!dir.join("v3.key").exists());

    // The gateway started before the rotation wraps a new conversation under version 2 and reads it.
    let mut late = Contact::start(&gw, "en").await?;
    late.say("hello after the rotation").await?;
    let assigned = ana.take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], late.conversation.as_str());
    assert_eq!(assigned["history"][0]["text"], "hello after the rotation");
    let (_, after) = status(&gw)?;
    assert!(after.contains("version 1: 0 data keys"), "{after}");
    assert!(after.contains("version 2: 7 data keys"), "{after}");

    // The operator deletes v1.key; a fresh gateway reads every conversation.
    std::fs::remove_file(dir.join("v1.key"))?;
    let fresh = Gateway::start(&redis, &settings)?;
    let (active, text) = status(&fresh)?;
    assert_eq!(active, "2", "{text}");
    assert!(text.contains("loaded versions: 2\n"), "{text}");
    let cookie = login(&fresh, "sam").await?;
    assert_eq!(transcript(&fresh, &cookie, &conv).await?, sent);
    for (i, c) in waiting.iter().enumerate() {
        assert_eq!(
            transcript(&fresh, &cookie, &c.conversation).await?,
            [format!("waiting {i}")]
        );
    }
    assert_eq!(
        transcript(&fresh, &cookie, &late.conversation).await?,
        ["hello after the rotation"]
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A node meets a data key wrapped under a version it did not load at start (another node started
/// later with a newer key file): it reads the key directory again and opens it.
#[tokio::test]
async fn a_node_loads_a_version_added_after_it_started() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let dir = key_dir()?;
    let dir_text = dir.display().to_string();
    let settings = [
        ("HELPLINE_SECURITY__MASTER_KEYS_DIR", dir_text.as_str()),
        ("HELPLINE_SECURITY__PSEUDONYM_KEY", PSEUDONYM_KEY),
    ];
    let old = Gateway::start(&redis, &settings)?;
    old.add_user("sam", "supervisor", "", 1)?;
    std::fs::write(
        dir.join("v2.key"),
        "bmV3IG1hc3RlciBrZXkgdmVyc2lvbiB0d28gLS0tLS0=\n",
    )?;
    let new = Gateway::start(&redis, &settings)?;
    let mut contact = Contact::start(&new, "en").await?;
    contact.say("written under version 2").await?;
    let (_, text) = status(&new)?;
    assert!(text.contains("version 2: 1 data keys"), "{text}");

    let cookie = login(&old, "sam").await?;
    assert_eq!(
        transcript(&old, &cookie, &contact.conversation).await?,
        ["written under version 2"]
    );
    assert!(
        old.log_text().contains("master keys reloaded"),
        "{}",
        old.log_text()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn rotate_without_a_key_directory_says_what_to_do() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[])?;
    let out = gw.command(&["keys", "rotate"], None)?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.master_keys_dir"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Status works with a single key too: it is version 1.
    let (active, text) = status(&gw)?;
    assert_eq!(active, "1", "{text}");
    Ok(())
}
