//! A socket's frame budget (`limits.frames_per_second`, `limits.frame_burst`): a token bucket that
//! slows a flooding socket down instead of refusing or closing it.
//!
//! Nothing is dropped: when the budget is spent, the session simply waits before it reads the next
//! frame, so the flood backs up in that socket's own TCP window and every other socket on the node
//! goes on as before. A silent or pranking contact is still a child who may need help: the gateway
//! never bans automatically; supervisors can block a pseudonym for a while (`Router::block`).

use std::time::{Duration, Instant};

use helpline_config::Limits;

/// One socket's bucket.
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
    /// The session waited; `first` when this is the first wait since the peer was last within its
    /// budget, i.e. the moment to tell it (once) to slow down.
    Waited { first: bool },
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

    /// Takes one frame from the budget, waiting until the budget allows it.
    pub async fn admit(&mut self) -> Admission {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.told = false;
            return Admission::Free;
        }
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.per_second);
        tokio::time::sleep(wait).await;
        self.tokens = 0.0;
        self.last = Instant::now();
        let first = !self.told;
        self.told = true;
        Admission::Waited { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_free_then_frames_are_paced() {
        let limits = Limits {
            frames_per_second: 50,
            frame_burst: 3,
            ..Limits::default()
        };
        let mut t = Throttle::new(&limits);
        for _ in 0..3 {
            assert_eq!(t.admit().await, Admission::Free);
        }
        let started = Instant::now();
        assert_eq!(t.admit().await, Admission::Waited { first: true });
        assert_eq!(t.admit().await, Admission::Waited { first: false });
        // Two frames at 50 a second take about 40 ms.
        assert!(started.elapsed() >= Duration::from_millis(35));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(t.admit().await, Admission::Free);
    }
}
