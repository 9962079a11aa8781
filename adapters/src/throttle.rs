//! A socket's frame budget (`limits.frames_per_second`, `limits.frame_burst`): a token bucket that
//! slows a flooding socket down instead of refusing or closing it.
//!
//! Nothing is dropped: a frame past the budget is still handled, but the session then reads nothing
//! more from that socket until the budget has recovered ([`Throttle::paused_until`]). The flood
//! backs up in that socket's own TCP window, while the session goes on delivering to it and every
//! other socket on the node goes on as before. A silent or pranking contact is still a child who
//! may need help: the gateway never bans automatically; supervisors can block a pseudonym for a
//! while (`Router::block`).

use std::time::{Duration, Instant};

use helpline_config::Limits;

/// One socket's bucket. Its tokens may go below zero: that is the debt the socket pays by waiting.
#[derive(Debug)]
pub struct Throttle {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Whether the peer was told to slow down since it last stayed within its budget.
    told: bool,
}

/// What taking one frame cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the budget.
    Free,
    /// Past the budget: reading pauses; `first` when this is the first frame past it since the peer
    /// was last within its budget, i.e. the moment to tell it (once) to slow down.
    Over { first: bool },
}

impl Throttle {
    pub fn new(limits: &Limits) -> Throttle {
        let burst = f64::from(limits.frame_burst.max(1));
        Throttle {
            per_second: f64::from(limits.frames_per_second.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
            told: false,
        }
    }

    /// Takes one frame (just read) from the budget.
    pub fn take(&mut self) -> Admission {
        let now = Instant::now();
        self.tokens = self.tokens_at(now) - 1.0;
        self.last = now;
        if self.tokens >= 0.0 {
            self.told = false;
            return Admission::Free;
        }
        let first = !self.told;
        self.told = true;
        Admission::Over { first }
    }

    /// Until when the session must not read another frame; `None` when it may read now.
    pub fn paused_until(&self) -> Option<tokio::time::Instant> {
        let now = Instant::now();
        let tokens = self.tokens_at(now);
        (tokens < 0.0).then(|| (now + Duration::from_secs_f64(-tokens / self.per_second)).into())
    }

    fn tokens_at(&self, now: Instant) -> f64 {
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        (self.tokens + refill).min(self.burst)
    }
}

/// Waits until `until`, or forever when there is nothing to wait for (a disabled `select!` branch).
pub async fn pause(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_free_then_reading_pauses_until_the_budget_recovers() {
        let limits = Limits {
            frames_per_second: 50,
            frame_burst: 3,
            ..Limits::default()
        };
        let mut t = Throttle::new(&limits);
        for _ in 0..3 {
            assert_eq!(t.paused_until(), None);
            assert_eq!(t.take(), Admission::Free);
        }
        assert_eq!(t.take(), Admission::Over { first: true });
        assert_eq!(t.take(), Admission::Over { first: false });
        // Two frames of debt at 50 a second: about 40 ms before the next read.
        let until = t.paused_until().map(|u| u - tokio::time::Instant::now());
        assert!(
            until.is_some_and(|d| d > Duration::from_millis(30) && d <= Duration::from_millis(40))
        );
        pause(t.paused_until()).await;
        assert_eq!(t.paused_until(), None);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(t.take(), Admission::Free);
    }
}
