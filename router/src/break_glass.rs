//! Break-glass with dual control: a supervisor who believes a child is in immediate danger asks for
//! the raw address (phone number, Telegram chat id) of a live conversation, with a written reason;
//! a different supervisor approves or denies within `security.break_glass_approve_s`; the
//! requester may then see the address once, within the same time again. Every step is audited and
//! counted in `helpline_break_glass_total{step}`. The address is opened from the conversation's
//! sealed `addr` only at the reveal and goes nowhere but the answer to the requester: never into
//! Redis in clear, a log, a metric or the audit log.

use serde::Serialize;

use crate::accounts::Account;
use crate::audit::AuditAction;
use crate::conversation::now_ms;
use crate::error::RouterError;
use crate::store::BreakGlassRecord;
use crate::Router;

/// The shortest reason a request may give: a sentence, not a click-through.
pub const MIN_REASON_CHARS: usize = 20;
/// The longest reason kept.
pub const MAX_REASON_CHARS: usize = 500;
/// How long a request's record outlives its last step, for the lists (the audit log keeps the
/// history for good).
const KEEP_S: u64 = 24 * 3600;

/// A request as supervisors see it (never the address).
#[derive(Debug, Clone, Serialize)]
pub struct BreakGlassView {
    pub request: String,
    pub conversation: String,
    pub channel: String,
    pub requester: String,
    pub reason: String,
    pub state: String,
    /// Seconds left to approve (pending) or to reveal (approved).
    pub expires_in_s: i64,
}

impl BreakGlassView {
    fn of(r: BreakGlassRecord, now: i64) -> BreakGlassView {
        BreakGlassView {
            request: r.id,
            conversation: r.conversation,
            channel: r.channel,
            requester: r.requester,
            reason: r.reason,
            state: r.state,
            expires_in_s: ((r.deadline_ms - now) / 1000).max(0),
        }
    }
}

/// The answer to a reveal.
#[derive(Debug, Clone, Serialize)]
pub struct Revealed {
    pub conversation: String,
    pub channel: String,
    pub address: String,
}

/// A break-glass request id: 32 lower-case hex digits.
pub fn valid_request_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Router {
    fn approve_window_ms(&self) -> u64 {
        self.config()
            .security
            .break_glass_approve_s
            .saturating_mul(1000)
    }

    /// A supervisor asks for the address of live conversation `conv`, giving `reason`.
    pub async fn break_glass_request(
        &self,
        conv: &str,
        account: &Account,
        reason: &str,
    ) -> Result<BreakGlassView, RouterError> {
        let reason: String = reason.trim().chars().filter(|c| !c.is_control()).collect();
        if reason.chars().count() < MIN_REASON_CHARS || reason.chars().count() > MAX_REASON_CHARS {
            return Err(RouterError::refused(
                "bad_reason",
                format!(
                    "write why the child is in immediate danger, in {MIN_REASON_CHARS} to \
                     {MAX_REASON_CHARS} characters"
                ),
            ));
        }
        let rec = self.conversation_record(conv).await?;
        if !rec.is_live() {
            return Err(RouterError::Ended);
        }
        let channel = rec.get("channel").unwrap_or_default().to_owned();
        if rec.get("addr").is_none_or(str::is_empty) {
            return Err(RouterError::refused(
                "no_address",
                format!(
                    "a {channel} conversation has no phone number or chat id to reveal; the \
                     contact can only be reached in the chat itself"
                ),
            ));
        }
        let now = now_ms();
        let window = i64::try_from(self.approve_window_ms()).unwrap_or(i64::MAX);
        let record = BreakGlassRecord {
            id: random_id(),
            conversation: conv.to_owned(),
            channel,
            requester: account.username.clone(),
            reason: reason.clone(),
            state: "pending".into(),
            approver: String::new(),
            created_ms: now,
            deadline_ms: now.saturating_add(window),
        };
        self.guarded("break_glass", self.store().put_break_glass(&record, KEEP_S))
            .await?;
        let log = AuditAction::BreakGlassRequest;
        let why = format!("request {}: {reason}", record.id);
        self.record(&account.username, log, conv, &why).await?;
        self.telemetry()
            .break_glass("request", &record.id, conv, &account.username);
        Ok(BreakGlassView::of(record, now))
    }

    /// What `account` can act on: every pending request (to approve or deny; their own too, to
    /// see it wait) and their own approved ones (to reveal).
    pub async fn break_glass_open(
        &self,
        account: &Account,
    ) -> Result<Vec<BreakGlassView>, RouterError> {
        let now = now_ms();
        let open = self
            .guarded("break_glass", self.store().open_break_glass())
            .await?;
        Ok(open
            .into_iter()
            .filter(|r| r.deadline_ms >= now)
            .filter(|r| r.state == "pending" || r.requester == account.username)
            .map(|r| BreakGlassView::of(r, now))
            .collect())
    }

    /// A second supervisor approves (`approve`) or denies request `id`.
    pub async fn break_glass_decide(
        &self,
        id: &str,
        account: &Account,
        approve: bool,
    ) -> Result<(), RouterError> {
        let (step, action) = if approve {
            ("approve", AuditAction::BreakGlassApprove)
        } else {
            ("deny", AuditAction::BreakGlassDeny)
        };
        let conv = self.break_glass_step(id, step, &account.username).await?;
        let why = format!("request {id}");
        self.record(&account.username, action, &conv, &why).await?;
        self.telemetry()
            .break_glass(step, id, &conv, &account.username);
        Ok(())
    }

    /// The requester sees the address of an approved request, once.
    pub async fn break_glass_reveal(
        &self,
        id: &str,
        account: &Account,
    ) -> Result<Revealed, RouterError> {
        let conv = self
            .break_glass_step(id, "reveal", &account.username)
            .await?;
        // The step is spent before the address is opened, so a failure below can not be retried
        // into a second look; the audit entry comes first for the same reason.
        let why = format!("request {id}");
        let log = AuditAction::BreakGlassReveal;
        self.record(&account.username, log, &conv, &why).await?;
        self.telemetry()
            .break_glass("reveal", id, &conv, &account.username);
        let channel = self
            .conversation_record(&conv)
            .await?
            .get("channel")
            .unwrap_or_default()
            .to_owned();
        let address = self.contact_address(&conv).await?.ok_or_else(|| {
            RouterError::refused(
                "no_address",
                "the conversation's address is gone (it ended or was erased meanwhile)",
            )
        })?;
        Ok(Revealed {
            conversation: conv,
            channel,
            address,
        })
    }

    /// Expires the open requests whose time ran out (every node, every tick; the script lets
    /// only one node expire each).
    pub(crate) async fn expire_break_glass(&self) {
        let now = now_ms();
        let due = match self
            .guarded("break_glass", self.store().break_glass_due(now))
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e, "break-glass sweep failed");
                return;
            }
        };
        for id in due {
            if let Err(e) = self.break_glass_step(&id, "expire", "").await {
                if !matches!(e, RouterError::Refused(..)) {
                    tracing::debug!(error = %e, "break-glass expiry failed");
                }
            }
        }
    }

    /// Runs one step; returns the request's conversation, or the refusal as an error. A step that
    /// found the request out of time expires it (audited, counted) and is refused as `expired`.
    async fn break_glass_step(
        &self,
        id: &str,
        step: &'static str,
        who: &str,
    ) -> Result<String, RouterError> {
        let window = self.approve_window_ms();
        let call = self
            .store()
            .break_glass_step(id, step, who, now_ms(), window, KEEP_S);
        let done = self.guarded("break_glass", call).await?;
        let expired = || {
            RouterError::refused(
                "expired",
                "this break-glass request ran out of time; ask again if the danger remains",
            )
        };
        match done.status.as_str() {
            "ok" => Ok(done.conversation),
            "expired" => {
                let why = format!("request {id}: not approved or not revealed in time");
                let log = AuditAction::BreakGlassExpire;
                self.record(&done.requester, log, &done.conversation, &why)
                    .await?;
                self.telemetry()
                    .break_glass("expire", id, &done.conversation, &done.requester);
                Err(expired())
            }
            "was_expired" => Err(expired()),
            "no" => Err(RouterError::refused("not_due", "not out of time yet")),
            "unknown" => Err(RouterError::refused(
                "unknown_request",
                "no such break-glass request (or it was decided over a day ago)",
            )),
            "not_pending" => Err(RouterError::refused(
                "not_pending",
                "this request was already approved or denied",
            )),
            "same_supervisor" => Err(RouterError::refused(
                "same_supervisor",
                "a second supervisor must approve; you can not approve or deny your own request",
            )),
            "not_requester" => Err(RouterError::refused(
                "forbidden",
                "only the supervisor who asked may see the address",
            )),
            "not_approved" => Err(RouterError::refused(
                "not_approved",
                "a second supervisor has not approved this request (or denied it)",
            )),
            "already_revealed" => Err(RouterError::refused(
                "already_revealed",
                "the address was already shown once; it is never shown twice",
            )),
            other => Err(RouterError::Setup(format!(
                "break-glass script answered {other:?}"
            ))),
        }
    }
}

/// A fresh request id: 128 random bits in hex.
fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
