//! Routing end to end (DESIGN.md "Routing" and "Durability"; CONTRACT.md sections 2, 4, 5): skills
//! and urgency order, capacity, offers that are declined or lapse, a counsellor whose connection is
//! lost, and many nodes racing for the same conversations.
//!
//! Every test starts its own redis-server and gateway(s) with short timings; the gateway sweeps
//! once a second, so waits are bounded by a few seconds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use futures_util::future::join_all;
use helpline_tests::*;
use serde_json::{json, Value};

const SECS_3: Duration = Duration::from_secs(3);
const SECS_8: Duration = Duration::from_secs(8);

/// A string field of a frame ("" when absent).
fn field(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// A supervisor account `sam` and its session cookie on `gw`.
async fn supervisor(gw: &Gateway) -> Result<String> {
    gw.add_user("sam", "supervisor", "", 1)?;
    login(gw, "sam").await
}

/// `GET /api/queue` as a supervisor: the rows and the raw body.
async fn queue(gw: &Gateway, cookie: &str) -> Result<(Vec<Value>, String)> {
    let (status, body) = get(gw, "/api/queue", cookie).await?;
    ensure!(status == 200, "GET /api/queue gave {status}: {body}");
    let rows = body
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("/api/queue is not an array: {body}"))?;
    Ok((rows, body.to_string()))
}

/// `GET /api/counsellors` as a supervisor, by username.
async fn counsellors(gw: &Gateway, cookie: &str) -> Result<HashMap<String, Value>> {
    let (status, body) = get(gw, "/api/counsellors", cookie).await?;
    ensure!(status == 200, "GET /api/counsellors gave {status}: {body}");
    let rows = body
        .as_array()
        .ok_or_else(|| anyhow!("/api/counsellors is not an array: {body}"))?;
    Ok(rows
        .iter()
        .map(|r| (field(r, "username"), r.clone()))
        .collect())
}

/// Polls `/api/queue` until the row of `conv` satisfies `pred`; returns that row.
async fn queue_row_where(
    gw: &Gateway,
    cookie: &str,
    conv: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let (rows, body) = queue(gw, cookie).await?;
        if let Some(row) = rows.iter().find(|r| r["conversation"] == conv && pred(r)) {
            return Ok(row.clone());
        }
        if Instant::now() > deadline {
            bail!("conversation {conv} not in /api/queue as expected within {timeout:?}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the first of several staff members to get a frame of `kind` matching `pred`;
/// returns which one and the frame (the others' frames stay in their backlogs).
async fn first_of(
    staff: &mut [&mut Staff],
    kind: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<(usize, Value)> {
    let deadline = Instant::now() + timeout;
    loop {
        for (i, s) in staff.iter_mut().enumerate() {
            if let Ok(f) = s
                .client
                .expect_where(kind, Duration::from_millis(50), &pred)
                .await
            {
                return Ok((i, f));
            }
        }
        if Instant::now() > deadline {
            bail!("no staff member got a {kind} frame within {timeout:?}");
        }
    }
}

/// Every frame `client` holds or receives within `wait`.
async fn drain(client: &mut Client, wait: Duration) -> Result<Vec<Value>> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        match client.next(left).await {
            Ok(Some(f)) => out.push(f),
            Ok(None) => bail!("a staff socket closed unexpectedly; frames so far: {out:?}"),
            Err(_) => return Ok(out),
        }
    }
}

/// What many counsellors were given, built from their `assigned` and `ended` frames, with the
/// invariants checked on every frame: nobody above capacity, nobody given a conversation they lack
/// the language for, no conversation assigned twice.
struct Board {
    capacity: HashMap<String, usize>,
    skills: HashMap<String, Vec<String>>,
    /// The language of every conversation started.
    lang: HashMap<String, String>,
    /// Conversation -> the counsellor it was assigned to (ever).
    owner: HashMap<String, String>,
    /// Counsellor -> conversations assigned and not yet ended.
    active: HashMap<String, HashSet<String>>,
    /// Conversations a close was sent for.
    closing: HashSet<String>,
    /// Number of `assigned` and `ended` frames seen.
    changes: usize,
}

impl Board {
    fn new(people: &[(&str, &str, u32)]) -> Board {
        Board {
            capacity: people
                .iter()
                .map(|(u, _, c)| ((*u).to_owned(), *c as usize))
                .collect(),
            skills: people
                .iter()
                .map(|(u, s, _)| ((*u).to_owned(), s.split(',').map(str::to_owned).collect()))
                .collect(),
            lang: HashMap::new(),
            owner: HashMap::new(),
            active: people
                .iter()
                .map(|(u, _, _)| ((*u).to_owned(), HashSet::new()))
                .collect(),
            closing: HashSet::new(),
            changes: 0,
        }
    }

    fn observe(&mut self, who: &str, frame: &Value) -> Result<()> {
        let conv = field(frame, "conversation");
        match frame["type"].as_str() {
            Some("assigned") => {
                self.changes += 1;
                if let Some(prev) = self.owner.get(&conv) {
                    bail!("conversation {conv} assigned twice: to {prev} and to {who}");
                }
                let lang = self.lang.get(&conv).cloned().unwrap_or_default();
                ensure!(
                    self.skills[who].contains(&lang),
                    "{who} (skills {:?}) was given {conv} in {lang:?}",
                    self.skills[who]
                );
                self.owner.insert(conv.clone(), who.to_owned());
                let active = self.active.entry(who.to_owned()).or_default();
                active.insert(conv);
                ensure!(
                    active.len() <= self.capacity[who],
                    "{who} holds {} conversations, capacity {}: {active:?}",
                    active.len(),
                    self.capacity[who]
                );
            }
            Some("ended") => {
                self.changes += 1;
                self.active.entry(who.to_owned()).or_default().remove(&conv);
            }
            Some("offer") => bail!("auto mode, yet {who} got an offer: {frame}"),
            _ => {}
        }
        Ok(())
    }

    fn assigned(&self) -> usize {
        self.owner.len()
    }

    /// Drains every counsellor's socket for `wait`, all at once, and checks every frame.
    async fn pump(&mut self, staff: &mut [(String, Staff)], wait: Duration) -> Result<()> {
        let batches = join_all(staff.iter_mut().map(|(_, s)| drain(&mut s.client, wait))).await;
        for ((who, _), frames) in staff.iter().zip(batches) {
            for f in frames? {
                self.observe(who, &f)?;
            }
        }
        Ok(())
    }

    /// Pumps until `done` holds; fails after `timeout`.
    async fn pump_until(
        &mut self,
        staff: &mut [(String, Staff)],
        timeout: Duration,
        what: &str,
        done: impl Fn(&Board) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            if Instant::now() > deadline {
                bail!(
                    "{what}: not reached within {timeout:?}; {} of {} assigned; active {:?}",
                    self.assigned(),
                    self.lang.len(),
                    self.active
                );
            }
            self.pump(staff, Duration::from_millis(200)).await?;
        }
        Ok(())
    }

    /// Pumps until a whole `quiet` period brings no assignment and no end.
    async fn settle(
        &mut self,
        staff: &mut [(String, Staff)],
        quiet: Duration,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let before = self.changes;
            self.pump(staff, quiet).await?;
            if self.changes == before {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("routing did not settle within {timeout:?}");
            }
        }
    }

    /// Nobody with room and the right language may sit idle while a conversation waits.
    fn check_work_conserving(&self) -> Result<()> {
        for (conv, lang) in &self.lang {
            if self.owner.contains_key(conv) {
                continue;
            }
            for (who, active) in &self.active {
                if active.len() < self.capacity[who] && self.skills[who].contains(lang) {
                    bail!(
                        "{conv} ({lang}) waits while {who} (skills {:?}) holds {} of {}",
                        self.skills[who],
                        active.len(),
                        self.capacity[who]
                    );
                }
            }
        }
        Ok(())
    }

    /// Sends a close for up to `per_counsellor` of each counsellor's conversations.
    async fn close_some(
        &mut self,
        staff: &mut [(String, Staff)],
        per_counsellor: usize,
    ) -> Result<usize> {
        let mut sent = 0;
        for (who, s) in staff.iter_mut() {
            let mut mine: Vec<String> = self.active[who.as_str()]
                .iter()
                .filter(|c| !self.closing.contains(*c))
                .cloned()
                .collect();
            mine.sort();
            for conv in mine.into_iter().take(per_counsellor) {
                s.client
                    .send(json!({"type": "close", "conversation": conv, "outcome": "supported", "tags": []}))
                    .await?;
                self.closing.insert(conv);
                sent += 1;
            }
        }
        Ok(sent)
    }
}

/// Connects staff members and makes them available, all at once.
async fn connect_available(gw: &Gateway, names: &[&str]) -> Result<Vec<(String, Staff)>> {
    let staff = join_all(names.iter().map(|n| async move {
        let mut s = Staff::connect(gw, n).await?;
        s.available().await?;
        Ok::<_, anyhow::Error>(((*n).to_owned(), s))
    }))
    .await;
    staff.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// 2. Skills and urgency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn critical_goes_first_then_longest_waiting_and_language_is_required() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(
        &redis,
        &[
            ("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "30"),
            ("HELPLINE_ROUTING__RELAX_TOPIC_S", "600"),
            ("HELPLINE_ROUTING__RELAX_LANGUAGE_S", "600"),
        ],
    )?;
    gw.add_user("ana", "counsellor", "ro", 1)?;
    let sam = supervisor(&gw).await?;

    let normal_text = "Bună, am o întrebare despre școală";
    let crisis_text = "Nu mai pot. Vreau să mor.";
    let ru_text = "Привет, мне нужна помощь с уроками";

    let mut normal = Contact::start(&gw, "ro").await?;
    normal.say(normal_text).await?;
    let mut crisis = Contact::start(&gw, "ro").await?;
    crisis.say(crisis_text).await?;
    // The ack means the message is stored and graded: the queue shows the new level.
    queue_row_where(&gw, &sam, &crisis.conversation, SECS_5, |r| {
        r["urgency"] == "critical"
    })
    .await
    .map_err(|e| anyhow!("a suicide phrase did not raise urgency to critical: {e}"))?;
    let mut ru = Contact::start(&gw, "ru").await?;
    ru.say(ru_text).await?;

    // The supervisor's queue: every waiting conversation with its urgency and skills, never text.
    let (rows, body) = queue(&gw, &sam).await?;
    assert_eq!(rows.len(), 3, "{body}");
    let ru_row = rows
        .iter()
        .find(|r| r["conversation"] == ru.conversation.as_str())
        .ok_or_else(|| anyhow!("the ru conversation is not in /api/queue: {body}"))?;
    assert_eq!(ru_row["urgency"], "normal", "{ru_row}");
    assert_eq!(ru_row["channel"], "webchat", "{ru_row}");
    assert!(
        ru_row["skills"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "ru")),
        "{ru_row}"
    );
    for key in ["alias", "waited_s"] {
        assert!(
            !ru_row[key].is_null(),
            "/api/queue row lacks {key}: {ru_row}"
        );
    }
    for text in [
        normal_text,
        crisis_text,
        ru_text,
        "Vreau",
        "помощь",
        "școală",
    ] {
        assert!(
            !body.contains(text),
            "/api/queue shows message text {text:?}: {body}"
        );
    }

    // A Romanian-only counsellor with room for one: the critical conversation first.
    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let offer = ana.client.expect("offer", SECS_5).await?;
    assert_eq!(
        offer["conversation"],
        crisis.conversation.as_str(),
        "first offer: {offer}"
    );
    assert_eq!(offer["urgency"], "critical", "{offer}");
    // One offer at a time for a capacity of one.
    ana.client
        .expect_none("offer", Duration::from_millis(500))
        .await?;
    ana.client
        .send(json!({"type": "accept", "conversation": crisis.conversation}))
        .await?;
    let assigned = ana
        .client
        .expect_where("assigned", SECS_5, |f| {
            f["conversation"] == crisis.conversation.as_str()
        })
        .await?;
    assert_eq!(assigned["history"][0]["text"], crisis_text);
    crisis.client.expect("assigned", SECS_5).await?;
    ana.client
        .send(json!({"type": "close", "conversation": crisis.conversation, "outcome": "supported"}))
        .await?;
    ana.client
        .expect_where("ended", SECS_5, |f| {
            f["conversation"] == crisis.conversation.as_str()
        })
        .await?;

    // Then the normal Romanian one.
    let offer = ana.client.expect("offer", SECS_5).await?;
    assert_eq!(
        offer["conversation"],
        normal.conversation.as_str(),
        "second offer: {offer}"
    );
    assert_eq!(offer["urgency"], "normal", "{offer}");
    ana.client
        .send(json!({"type": "accept", "conversation": normal.conversation}))
        .await?;
    ana.client
        .expect_where("assigned", SECS_5, |f| {
            f["conversation"] == normal.conversation.as_str()
        })
        .await?;
    normal.client.expect("assigned", SECS_5).await?;
    ana.client
        .send(json!({"type": "close", "conversation": normal.conversation, "outcome": "supported"}))
        .await?;
    ana.client
        .expect_where("ended", SECS_5, |f| {
            f["conversation"] == normal.conversation.as_str()
        })
        .await?;

    // The Russian one is never offered to her while relax_language_s has not passed.
    ana.client.expect_none("offer", SECS_3).await?;
    ru.client
        .expect_none("assigned", Duration::from_millis(100))
        .await?;
    let row = queue_row_where(&gw, &sam, &ru.conversation, SECS_5, |_| true).await?;
    assert_eq!(row["urgency"], "normal", "{row}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Capacity
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_counsellor_gets_no_more_than_capacity() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "30")])?;
    gw.add_user("ana", "counsellor", "ro", 2)?;

    let mut contacts = Vec::new();
    for _ in 0..4 {
        contacts.push(Contact::start(&gw, "ro").await?);
    }
    let convs: Vec<String> = contacts.iter().map(|c| c.conversation.clone()).collect();

    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let mut mine = Vec::new();
    for _ in 0..2 {
        let assigned = ana.take_offer(SECS_5).await?;
        mine.push(field(&assigned, "conversation"));
    }
    // The two longest waiting, in order.
    assert_eq!(mine, convs[..2].to_vec());
    ana.client.expect_none("offer", SECS_3).await?;

    ana.client
        .send(json!({"type": "close", "conversation": mine[0], "outcome": "supported"}))
        .await?;
    ana.client
        .expect_where("ended", SECS_5, |f| f["conversation"] == mine[0].as_str())
        .await?;
    let third = ana.take_offer(SECS_5).await?;
    assert_eq!(third["conversation"], convs[2].as_str(), "{third}");
    ana.client
        .expect_none("offer", Duration::from_millis(1500))
        .await?;
    Ok(())
}

#[tokio::test]
async fn auto_assignment_respects_capacity_and_skills_and_assigns_each_once() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(
        &redis,
        &[
            ("HELPLINE_ROUTING__ASSIGNMENT", "auto"),
            ("HELPLINE_ROUTING__RELAX_LANGUAGE_S", "600"),
        ],
    )?;
    let people: [(&str, &str, u32); 4] = [
        ("ana", "ro", 3),
        ("bob", "ro,ru", 2),
        ("cai", "en,ru", 3),
        ("dan", "en,ro", 2),
    ];
    for (u, skills, cap) in people {
        gw.add_user(u, "counsellor", skills, cap)?;
    }
    let names: Vec<&str> = people.iter().map(|p| p.0).collect();
    let mut staff = connect_available(&gw, &names).await?;
    let mut board = Board::new(&people);

    let langs = ["ro", "ru", "en", "ro", "en", "ru", "ro", "en", "ro", "ru"];
    let mut contacts = Vec::new();
    for i in 0..20 {
        let c = Contact::start(&gw, langs[i % langs.len()]).await?;
        board
            .lang
            .insert(c.conversation.clone(), langs[i % langs.len()].to_owned());
        contacts.push(c);
        // Watch as they come in, so an over-assignment is caught when it happens.
        board.pump(&mut staff, Duration::from_millis(20)).await?;
    }
    let total_capacity: usize = people.iter().map(|p| p.2 as usize).sum();
    board
        .settle(
            &mut staff,
            Duration::from_millis(1000),
            Duration::from_secs(10),
        )
        .await?;
    assert!(board.assigned() <= total_capacity);
    assert!(
        board.assigned() >= 8,
        "only {} of 20 assigned with 10 places",
        board.assigned()
    );
    board.check_work_conserving()?;

    // Closing some lets the rest in, a round at a time.
    let deadline = Instant::now() + Duration::from_secs(25);
    while board.assigned() < contacts.len() {
        ensure!(
            Instant::now() < deadline,
            "not all assigned in time: {} of 20",
            board.assigned()
        );
        let sent = board.close_some(&mut staff, 2).await?;
        ensure!(
            sent > 0,
            "nothing to close, yet {} of 20 assigned",
            board.assigned()
        );
        board
            .settle(
                &mut staff,
                Duration::from_millis(1000),
                Duration::from_secs(10),
            )
            .await?;
        board.check_work_conserving()?;
    }

    for c in &mut contacts {
        let told = c.client.expect("assigned", SECS_5).await?;
        assert_eq!(told["counsellor"], board.owner[&c.conversation].as_str());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Offers that are declined or lapse
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_declined_offer_goes_to_the_other_counsellor() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(&redis, &[("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "30")])?;
    gw.add_user("ana", "counsellor", "ro", 1)?;
    gw.add_user("bob", "counsellor", "ro", 1)?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    let mut bob = Staff::connect(&gw, "bob").await?;
    ana.available().await?;
    bob.available().await?;

    let mut contact = Contact::start(&gw, "ro").await?;
    let conv = contact.conversation.clone();
    let mut both = [&mut ana, &mut bob];
    let (first, offer) = first_of(&mut both, "offer", SECS_5, |f| {
        f["conversation"] == conv.as_str()
    })
    .await?;
    assert!(
        offer["expires_in_s"].as_u64().is_some_and(|s| s <= 30),
        "{offer}"
    );
    let second = 1 - first;
    both[first]
        .client
        .send(json!({"type": "decline", "conversation": conv}))
        .await?;

    let assigned = both[second].take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], conv.as_str());
    let name = field(&both[second].hello, "username");
    let told = contact.client.expect("assigned", SECS_5).await?;
    assert_eq!(told["counsellor"], name.as_str());
    // The decliner gets no offer meanwhile.
    both[first]
        .client
        .expect_none("offer", Duration::from_millis(500))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_lapsed_offer_goes_to_the_next_and_two_lapses_set_away() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(
        &redis,
        &[
            ("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "2"),
            ("HELPLINE_ROUTING__LAPSES_BEFORE_AWAY", "2"),
        ],
    )?;
    gw.add_user("ana", "counsellor", "ro", 1)?;
    gw.add_user("bob", "counsellor", "ro", 1)?;
    let sam = supervisor(&gw).await?;
    let mut ana = Staff::connect(&gw, "ana").await?;
    let mut bob = Staff::connect(&gw, "bob").await?;
    ana.available().await?;
    bob.available().await?;

    let first_contact = Contact::start(&gw, "ro").await?;
    let conv = first_contact.conversation.clone();
    let mut both = [&mut ana, &mut bob];
    let (lapser, offer) = first_of(&mut both, "offer", SECS_5, |f| {
        f["conversation"] == conv.as_str()
    })
    .await?;
    assert!(
        offer["expires_in_s"].as_u64().is_some_and(|s| s <= 2),
        "{offer}"
    );
    let other = 1 - lapser;
    let lapser_name = field(&both[lapser].hello, "username");

    // The offered counsellor does nothing: the offer is withdrawn and goes to the other.
    let revoked = both[lapser]
        .client
        .expect_where("offer_revoked", SECS_8, |f| {
            f["conversation"] == conv.as_str()
        })
        .await?;
    assert_eq!(revoked["reason"], "timeout", "{revoked}");
    let assigned = both[other].take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], conv.as_str());

    // One lapse is not enough to be set away.
    let team = counsellors(&gw, &sam).await?;
    assert_eq!(
        team[&lapser_name]["status"], "available",
        "{:?}",
        team[&lapser_name]
    );

    // A second lapse in a row (the other counsellor is full, so it comes to the same one).
    let second_contact = Contact::start(&gw, "ro").await?;
    let conv2 = second_contact.conversation.clone();
    both[lapser]
        .client
        .expect_where("offer", SECS_5, |f| f["conversation"] == conv2.as_str())
        .await?;
    let revoked = both[lapser]
        .client
        .expect_where("offer_revoked", SECS_8, |f| {
            f["conversation"] == conv2.as_str()
        })
        .await?;
    assert_eq!(revoked["reason"], "timeout", "{revoked}");
    both[lapser]
        .client
        .expect_where("status", SECS_5, |f| f["status"] == "away")
        .await?;
    let team = counsellors(&gw, &sam).await?;
    assert_eq!(
        team[&lapser_name]["status"], "away",
        "{:?}",
        team[&lapser_name]
    );

    // Away means no more offers.
    both[lapser].client.expect_none("offer", SECS_3).await?;
    assert_eq!(first_contact.conversation, conv);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. A counsellor whose connection is lost
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_lost_counsellors_conversation_goes_back_to_the_front_of_the_queue() -> Result<()> {
    let redis = Redis::start()?;
    let gw = Gateway::start(
        &redis,
        &[
            ("HELPLINE_ROUTING__OFFER_TIMEOUT_S", "30"),
            ("HELPLINE_ROUTING__AGENT_GRACE_S", "2"),
        ],
    )?;
    gw.add_user("ana", "counsellor", "ro", 1)?;
    gw.add_user("bea", "counsellor", "ro", 1)?;
    let sam = supervisor(&gw).await?;

    let mut ana = Staff::connect(&gw, "ana").await?;
    ana.available().await?;
    let mut older = Contact::start(&gw, "ro").await?;
    let first_text = "Mă simt singur";
    older.say(first_text).await?;
    let assigned = ana.take_offer(SECS_5).await?;
    assert_eq!(assigned["conversation"], older.conversation.as_str());
    older.client.expect("assigned", SECS_5).await?;
    let reply = ana.say(&older.conversation, "Sunt aici.").await?;
    older
        .client
        .expect_where("message", SECS_5, |f| f["id"] == reply.as_str())
        .await?;

    // A newer conversation of the same class arrives while Ana is busy.
    let mut newer = Contact::start(&gw, "ro").await?;
    newer.client.expect("queued", SECS_5).await?;

    // Ana's connection drops.
    let dropped = Instant::now();
    ana.client.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rows, body) = queue(&gw, &sam).await?;
    assert!(
        !rows
            .iter()
            .any(|r| r["conversation"] == older.conversation.as_str()),
        "re-queued before agent_grace_s passed: {body}"
    );

    // After the grace time the conversation is waiting again and the contact is told.
    let notice = older
        .client
        .expect_where("notice", SECS_8, |f| f["code"] == "transferred")
        .await?;
    // Grace counts from the last heartbeat (one a second), so at least grace minus one tick.
    assert!(
        dropped.elapsed() >= Duration::from_millis(800),
        "transferred after only {:?}",
        dropped.elapsed()
    );
    assert!(
        notice["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && t != "transferred"),
        "the notice should be a text in the contact's language: {notice}"
    );
    queue_row_where(&gw, &sam, &older.conversation, SECS_5, |_| true).await?;

    // Bea comes: she is offered the older conversation before the newer one.
    let mut bea = Staff::connect(&gw, "bea").await?;
    bea.available().await?;
    let offer = bea.client.expect("offer", SECS_5).await?;
    assert_eq!(
        offer["conversation"],
        older.conversation.as_str(),
        "{offer}"
    );
    bea.client
        .send(json!({"type": "accept", "conversation": older.conversation}))
        .await?;
    let assigned = bea
        .client
        .expect_where("assigned", SECS_5, |f| {
            f["conversation"] == older.conversation.as_str()
        })
        .await?;
    let history: Vec<&str> = assigned["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|m| m["from"] != "system")
                .filter_map(|m| m["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(history, [first_text, "Sunt aici."], "{assigned}");
    let told = older.client.expect("assigned", SECS_5).await?;
    assert_eq!(told["counsellor"], "bea");
    newer
        .client
        .expect_none("assigned", Duration::from_millis(200))
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. Two nodes racing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_nodes_never_assign_a_conversation_twice_and_lose_none() -> Result<()> {
    let redis = Redis::start()?;
    let settings = [("HELPLINE_ROUTING__ASSIGNMENT", "auto")];
    let gw1 = Gateway::start(&redis, &settings)?;
    let gw2 = Gateway::start(&redis, &settings)?;
    let people: Vec<(String, &str, u32)> = (0..8).map(|i| (format!("c{i}"), "ro,ru", 2)).collect();
    for (u, skills, cap) in &people {
        gw1.add_user(u, "counsellor", skills, *cap)?;
    }
    let sam = supervisor(&gw1).await?;
    let refs: Vec<(&str, &str, u32)> = people
        .iter()
        .map(|(u, s, c)| (u.as_str(), *s, *c))
        .collect();
    let mut board = Board::new(&refs);

    // Half the counsellors on each node, all at once.
    let connected = join_all(people.iter().enumerate().map(|(i, (u, _, _))| {
        let gw = if i % 2 == 0 { &gw1 } else { &gw2 };
        async move {
            let mut s = Staff::connect(gw, u).await?;
            s.available().await?;
            Ok::<_, anyhow::Error>((u.clone(), s))
        }
    }))
    .await;
    let mut staff: Vec<(String, Staff)> = connected.into_iter().collect::<Result<_>>()?;

    // Thirty contacts on both nodes, all at once.
    let started = join_all((0..30).map(|i| {
        let gw = if i % 2 == 0 { &gw1 } else { &gw2 };
        let lang = if i % 3 == 0 { "ru" } else { "ro" };
        async move { Contact::start(gw, lang).await.map(|c| (c, lang)) }
    }))
    .await;
    let mut contacts = Vec::new();
    for r in started {
        let (c, lang) = r?;
        board.lang.insert(c.conversation.clone(), lang.to_owned());
        contacts.push(c);
    }
    let ids: HashSet<&String> = contacts.iter().map(|c| &c.conversation).collect();
    assert_eq!(ids.len(), 30, "conversation ids are not unique");

    // Sixteen places: sixteen assigned, and no more while everyone is full.
    board
        .pump_until(&mut staff, Duration::from_secs(10), "16 assigned", |b| {
            b.assigned() >= 16
        })
        .await?;
    board
        .settle(
            &mut staff,
            Duration::from_millis(1500),
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(board.assigned(), 16, "with 8 counsellors of capacity 2");
    let team = counsellors(&gw2, &sam).await?;
    for (u, _, cap) in &people {
        let row = &team[u];
        assert_eq!(row["load"], board.active[u].len(), "{u}: {row}");
        assert!(
            row["load"].as_u64().is_some_and(|l| l <= u64::from(*cap)),
            "{u}: {row}"
        );
    }
    let (rows, body) = queue(&gw1, &sam).await?;
    assert_eq!(rows.len(), 14, "{body}");

    // Everyone closes everything: the other fourteen come in.
    board.close_some(&mut staff, 2).await?;
    board
        .pump_until(
            &mut staff,
            Duration::from_secs(10),
            "all 30 assigned",
            |b| b.assigned() >= 30,
        )
        .await?;
    board
        .settle(
            &mut staff,
            Duration::from_millis(1000),
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(board.assigned(), 30);

    // Nothing lost: every contact heard who took them, on whichever node they are.
    for c in &mut contacts {
        let told = c.client.expect("assigned", SECS_5).await?;
        assert_eq!(
            told["counsellor"],
            board.owner[&c.conversation].as_str(),
            "{}",
            c.conversation
        );
    }
    let (rows, body) = queue(&gw2, &sam).await?;
    assert!(rows.is_empty(), "{body}");
    Ok(())
}
