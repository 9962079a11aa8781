//! The SMS channel over SMPP 3.4 end to end (issue 5, test 4): the real binary bound as a
//! transceiver to an SMSC written by someone else (the npm `smpp` package, `tests/smsc/`), and a
//! real redis-server. A Cyrillic text in two concatenated parts reaches the counsellor as one
//! message; a long Romanian reply goes out as UCS-2 parts behind a concatenation UDH (a part the
//! SMSC refuses for now goes again alone); a delivery
//! receipt is never shown; a deliver_sm sent again is stored once; the link drops and binds again, and a reply written while it was down
//! arrives after the new bind, once; stopping the node unbinds.

use std::time::Duration;

use anyhow::{anyhow, Result};
use helpline_tests::smsc::{Smsc, SHORT_CODE};
use helpline_tests::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);
/// The child's number: international, as the SMSC sends it (TON 1, digits only).
const CHILD: &str = "37369100007";

fn gateway(redis: &Redis, smsc: &Smsc) -> Result<Gateway> {
    let settings = smsc.settings();
    let mut all: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Debug logging, so the scan for the number covers every line the gateway can write.
    all.push(("HELPLINE_LOG", "debug"));
    Gateway::start(redis, &all)
}

/// The SMSC delivers a text from the child; `udh` is `[reference, total, index]`.
fn deliver(smsc: &mut Smsc, text: &str, udh: Option<[u8; 3]>) -> Result<()> {
    let ucs2 = !text.is_ascii();
    smsc.command(&json!({"deliver": {
        "from": CHILD, "to": SHORT_CODE, "text": text, "ucs2": ucs2, "udh": udh
    }}))
}

fn conversation_of(assigned: &Value) -> Result<String> {
    assert_eq!(assigned["channel"], "sms");
    Ok(assigned["conversation"]
        .as_str()
        .ok_or_else(|| anyhow!("no conversation in {assigned}"))?
        .to_owned())
}

#[tokio::test]
async fn an_smsc_binds_reassembles_splits_and_survives_a_dropped_link() -> Result<()> {
    let mut smsc = Smsc::start()?;
    let redis = Redis::start()?;
    let gw = gateway(&redis, &smsc)?;
    gw.add_user("ion", "counsellor", "ro,ru", 2)?;
    let mut ion = Staff::connect(&gw, "ion").await?;
    ion.available().await?;

    // Bound as a transceiver with the configured account.
    smsc.wait_count("bind", 1, T).await?;
    let bind = &smsc.events_of("bind")[0];
    assert_eq!(bind["ok"], true, "{bind}");

    // A Cyrillic text in two parts (UCS-2, concatenation UDH) is one message for the counsellor.
    let first = "RU Мне страшно, мама опять кричит на меня и ";
    let second = "я не знаю, что делать. Можно с кем-нибудь поговорить?";
    deliver(&mut smsc, first, Some([0x42, 2, 1]))?;
    deliver(&mut smsc, second, Some([0x42, 2, 2]))?;
    smsc.wait_count("deliver_sm_resp", 2, T).await?;
    let assigned = ion.take_offer(T).await?;
    let conv = conversation_of(&assigned)?;
    assert!(assigned["skills"].to_string().contains("ru"), "{assigned}");
    let history = assigned["history"].to_string();
    let whole = format!("{}{second}", first.trim_start_matches("RU "));
    assert!(history.contains(&whole), "{history}");
    assert!(
        smsc.events_of("deliver_sm_resp")
            .iter()
            .all(|r| r["command_status"] == 0),
        "{:?}",
        smsc.events()
    );

    // The acknowledgement goes out from the short code, in Russian (UCS-2).
    let (ack, parts) = smsc.wait_text(CHILD, "Привет!", T).await?;
    assert!(ack.contains("Твоё место в очереди: 1"), "{ack}");
    assert_eq!(parts[0]["source_addr"], SHORT_CODE);
    assert_eq!(parts[0]["data_coding"], 8);

    // A long Romanian reply (diacritics force UCS-2) goes out split behind a UDH, in order.
    let reply = "Te aud și sunt aici pentru tine. Ce s-a întâmplat astăzi acasă? \
                 Poți să-mi scrii în ritmul tău, fără grabă. Ești în siguranță acum? \
                 Dacă ești în pericol, sună la 112.";
    ion.say(&conv, reply).await?;
    let (sent, parts) = smsc.wait_text(CHILD, "Te aud", T).await?;
    assert_eq!(sent, reply);
    let units = reply.encode_utf16().count();
    assert_eq!(parts.len(), units.div_ceil(67), "{parts:?}");
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["data_coding"], 8, "{part}");
        assert_eq!(
            part["esm_class"].as_u64().unwrap_or(0) & 0x40,
            0x40,
            "{part}"
        );
        let udh = part["udh"][0].as_str().unwrap_or_default();
        assert!(udh.starts_with("0003"), "{part}");
        assert!(
            udh.ends_with(&format!("{:02x}{:02x}", parts.len(), i + 1)),
            "{part}"
        );
        assert_eq!(part["destination_addr"], CHILD);
        assert_eq!(part["source_addr"], SHORT_CODE);
        assert_eq!(part["source_addr_ton"], 3);
    }

    // The SMSC refuses one part of a long reply for now: only that part goes again (same
    // reference), so the phone joins the parts and shows none twice.
    smsc.command(&json!({"fail_part": {"index": 2, "status": 0x14}}))?;
    let again = "Poți să-mi spui mai multe despre ce s-a întâmplat? Nu trebuie să te grăbești, \
                 sunt aici și te ascult. Ești singur(ă) acasă acum?";
    ion.say(&conv, again).await?;
    let (sent, parts) = smsc.wait_text(CHILD, "Nu trebuie", T).await?;
    assert_eq!(sent, again);
    assert_eq!(smsc.events_of("submit_sm_refused").len(), 1);
    let resent = &smsc.events_of("submit_sm_refused")[0];
    assert_eq!(resent["udh"], parts[1]["udh"], "{resent} {parts:?}");
    for (i, part) in parts.iter().enumerate() {
        let times = smsc
            .events_of("submit_sm")
            .iter()
            .filter(|e| e["udh"] == part["udh"])
            .count();
        assert_eq!(times, 1, "part {} went {times} times", i + 1);
    }

    // A delivery receipt is recorded, answered, and never shown as a message.
    smsc.command(&json!({"receipt": {"from": CHILD, "to": SHORT_CODE,
        "text": "id:1 sub:001 dlvrd:001 submit date:2611281800 done date:2611281801 stat:DELIVRD err:000 text:Te aud"}}))?;
    smsc.wait_count("deliver_sm_resp", 3, T).await?;
    while let Ok(Some(frame)) = ion.client.next(Duration::from_millis(800)).await {
        let from_contact = frame["type"] == "message" && frame["from"] == "contact";
        assert!(!from_contact, "a receipt was shown: {frame}");
    }

    // The SMSC sends the same deliver_sm again (same sequence number on the same link, as when
    // its answer got lost): stored and shown once.
    for _ in 0..2 {
        let seen = smsc.events_of("deliver_sm_resp").len();
        smsc.command(&json!({"deliver": {"from": CHILD, "to": SHORT_CODE,
            "text": "Inca ceva", "ucs2": false, "sequence": 9000}}))?;
        smsc.wait_count("deliver_sm_resp", seen + 1, T).await?;
    }
    let heard = ion
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "Inca ceva");
    while let Ok(Some(frame)) = ion.client.next(Duration::from_millis(800)).await {
        let from_contact = frame["type"] == "message" && frame["from"] == "contact";
        assert!(
            !from_contact,
            "a repeated deliver_sm was shown twice: {frame}"
        );
    }

    // The link drops (no unbind) and the SMSC is away for a moment; a reply written meanwhile
    // waits in the outbox and arrives after the new bind, once.
    smsc.command(&json!({"drop": true, "down_ms": 1500}))?;
    smsc.wait_count("closed", 1, T).await?;
    let later = "Sunt tot aici. Scrie-mi când poți.";
    ion.say(&conv, later).await?;
    assert_eq!(smsc.events_of("bind").len(), 1, "bound again too soon");
    smsc.wait_count("bind", 2, Duration::from_secs(20)).await?;
    smsc.wait_text(CHILD, later, Duration::from_secs(20))
        .await?;
    // Texts come in again on the new link.
    deliver(&mut smsc, "Multumesc", None)?;
    let heard = ion
        .client
        .expect_where("message", T, |f| f["from"] == "contact")
        .await?;
    assert_eq!(heard["text"], "Multumesc");
    assert_eq!(heard["conversation"], conv.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = smsc.texts_to(CHILD);
    assert_eq!(
        sends.iter().filter(|(t, _)| t == later).count(),
        1,
        "{sends:?}"
    );
    assert_eq!(sends.iter().filter(|(t, _)| t == reply).count(), 1);
    assert_eq!(sends.iter().filter(|(t, _)| t == again).count(), 1);

    // No number in clear in Redis or in the gateway's log.
    let dump = redis.dump_everything()?;
    assert!(!dump.contains(CHILD), "the number is in Redis in clear");
    assert!(!gw.log_text().contains(CHILD), "the number is in the log");

    // Stopping the node unbinds politely.
    let mut gw = gw;
    gw.terminate()?;
    smsc.wait_count("unbind", 1, T).await?;
    Ok(())
}
