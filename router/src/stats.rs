//! Today's figures for the supervisor dashboard (answered, abandoned, average and 90th-percentile
//! wait, share answered within the target wait) and the live conversations it can monitor.
//!
//! The figures are counted from the routing events the node that ran a routing step observes (the
//! same events that feed the metrics, so each is counted once however many nodes run): a first
//! assignment is an answer with its wait, an end before any assignment is an abandon. Only times
//! and durations are kept, by day, for a week; never an id or a text.

use serde::Serialize;

use crate::conversation::{now_ms, ConversationView};
use crate::error::RouterError;
use crate::events::Event;
use crate::store::Store;
use crate::Router;

/// The figures of one period (normally since the dashboard's local midnight).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Start of the period, ms since the epoch.
    pub since_ms: i64,
    /// Conversations a counsellor took for the first time in the period.
    pub answered: u64,
    /// Conversations that ended in the period before anyone took them.
    pub abandoned: u64,
    /// Mean wait of the answered ones, in seconds.
    pub average_wait_s: Option<f64>,
    /// 90th percentile (nearest rank) of their waits, in seconds.
    pub p90_wait_s: Option<f64>,
    /// The target wait (`pages.target_wait_s`).
    pub target_wait_s: u64,
    /// Share (0 to 1) of the answered ones that waited no longer than the target.
    pub within_target: Option<f64>,
}

impl Figures {
    /// Computes the figures from the answers' waits (ms).
    pub fn from_waits(
        since_ms: i64,
        mut waits: Vec<i64>,
        abandoned: u64,
        target_wait_s: u64,
    ) -> Figures {
        waits.sort_unstable();
        let n = waits.len();
        let secs = |ms: i64| ms as f64 / 1000.0;
        let (average, p90, within) = if n == 0 {
            (None, None, None)
        } else {
            let sum: i64 = waits.iter().sum();
            // Nearest rank: the smallest wait at or above 90 % of the answers.
            let rank = (n * 9).div_ceil(10).max(1);
            let target_ms = i64::try_from(target_wait_s.saturating_mul(1000)).unwrap_or(i64::MAX);
            let on_time = waits.iter().filter(|w| **w <= target_ms).count();
            (
                Some(secs(sum) / n as f64),
                waits.get(rank - 1).map(|w| secs(*w)),
                Some(on_time as f64 / n as f64),
            )
        };
        Figures {
            since_ms,
            answered: n as u64,
            abandoned,
            average_wait_s: average,
            p90_wait_s: p90,
            target_wait_s,
            within_target: within,
        }
    }
}

/// Counts the events that make today's figures, without holding up the routing step that caused
/// them: the write happens on its own task, and a failure only costs one count (and a warning).
pub(crate) fn record(store: &Store, event: &Event) {
    let at = now_ms();
    let write = match event {
        Event::Assigned {
            first: true,
            wait_ms,
            ..
        } => Some((true, *wait_ms)),
        Event::Ended {
            answered: false, ..
        } => Some((false, 0)),
        _ => None,
    };
    let Some((answered, wait_ms)) = write else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let store = store.clone();
    runtime.spawn(async move {
        let done = if answered {
            store.record_answer(at, wait_ms).await
        } else {
            store.record_abandon(at).await
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not count a conversation in today's figures");
        }
    });
}

/// The longest period the figures cover: a dashboard asks from its local midnight.
const MAX_PERIOD_MS: i64 = 48 * 3600 * 1000;

impl Router {
    /// The figures since `since_ms` (at most 48 hours back; default: UTC midnight).
    pub async fn figures(&self, since_ms: Option<i64>) -> Result<Figures, RouterError> {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        let now = now_ms();
        let since = since_ms
            .unwrap_or(now - now.rem_euclid(DAY_MS))
            .clamp(now - MAX_PERIOD_MS, now);
        let (waits, abandoned) = self
            .guarded("stats", self.store().figures_since(since, now))
            .await?;
        let target = self.config().pages.target_wait_s;
        Ok(Figures::from_waits(since, waits, abandoned, target))
    }

    /// Every active conversation (no text): what a supervisor may monitor, whisper in or reassign.
    pub async fn live_conversations(&self) -> Result<Vec<ConversationView>, RouterError> {
        let busy: Vec<String> = self
            .counsellors()
            .await?
            .into_iter()
            .filter(|c| c.load > 0)
            .map(|c| c.username)
            .collect();
        let held = self
            .guarded("conversations", self.store().active_of(&busy))
            .await?;
        let ids: Vec<String> = held.into_iter().flatten().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let records = self
            .guarded("conversations", self.store().conversations(&ids))
            .await?;
        let now = now_ms();
        let mut views: Vec<ConversationView> = ids
            .iter()
            .zip(&records)
            .filter(|(_, r)| r.state() == "active")
            .map(|(id, r)| ConversationView::from_record(id, r, now))
            .collect();
        views.sort_by(|a, b| b.urgency.cmp(&a.urgency).then(b.waited_s.cmp(&a.waited_s)));
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_no_answers_are_empty() {
        let f = Figures::from_waits(0, vec![], 3, 60);
        assert_eq!(f.answered, 0);
        assert_eq!(f.abandoned, 3);
        assert_eq!(f.average_wait_s, None);
        assert_eq!(f.within_target, None);
    }

    #[test]
    fn average_p90_and_share_within_target() {
        let waits: Vec<i64> = (1..=10).map(|s| s * 10_000).collect(); // 10 s … 100 s
        let f = Figures::from_waits(0, waits, 0, 60);
        assert_eq!(f.answered, 10);
        assert_eq!(f.average_wait_s, Some(55.0));
        assert_eq!(f.p90_wait_s, Some(90.0));
        assert_eq!(f.within_target, Some(0.6));
        let one = Figures::from_waits(0, vec![2_500], 0, 60);
        assert_eq!(one.p90_wait_s, Some(2.5));
        assert_eq!(one.within_target, Some(1.0));
    }
}
