//! What a run measured: latency histograms, the sequence check (lost, doubled, reordered) and the
//! summary written as JSON and as a markdown table row.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A new latency histogram in nanoseconds: 1 µs to 60 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's rules (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// Checks one stream of sequence numbers that should arrive as 0, 1, 2, … exactly once each.
#[derive(Default)]
pub struct SeqCheck {
    seen: Vec<bool>,
    highest: Option<u64>,
    pub unique: u64,
    pub doubled: u64,
    pub reordered: u64,
}

impl SeqCheck {
    pub fn saw(&mut self, seq: u64) {
        let i = usize::try_from(seq).unwrap_or(usize::MAX);
        if i >= self.seen.len() {
            self.seen.resize(i + 1, false);
        }
        if self.seen[i] {
            self.doubled += 1;
            return;
        }
        self.seen[i] = true;
        self.unique += 1;
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }
}

/// Delivery counts summed over every stream of a run.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delivery {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub doubled: u64,
    pub reordered: u64,
}

impl Delivery {
    pub fn add(&mut self, sent: u64, check: &SeqCheck) {
        self.sent += sent;
        self.received += check.unique;
        self.lost += sent.saturating_sub(check.unique);
        self.doubled += check.doubled;
        self.reordered += check.reordered;
    }

    pub fn merge(&mut self, other: Delivery) {
        self.sent += other.sent;
        self.received += other.received;
        self.lost += other.lost;
        self.doubled += other.doubled;
        self.reordered += other.reordered;
    }

    /// Every message arrived exactly once and in order.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.doubled == 0 && self.reordered == 0 && self.sent > 0
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1_000.0;
        Latency {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// How far sends fell behind the open-loop schedule.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// Sends that left more than 5 ms after their scheduled instant.
    pub late_sends: u64,
    pub lag_p99_us: f64,
    pub lag_max_us: f64,
    /// More than 1 % of sends were over 5 ms late: the generator (or the machine) could not keep
    /// the rate, and the latencies understate the truth.
    pub fell_behind: bool,
}

impl Schedule {
    pub fn of(lag: &Histogram<u64>, late_sends: u64) -> Schedule {
        Schedule {
            late_sends,
            lag_p99_us: lag.value_at_quantile(0.99) as f64 / 1_000.0,
            lag_max_us: lag.max() as f64 / 1_000.0,
            fell_behind: !lag.is_empty() && late_sends * 100 > lag.len(),
        }
    }
}
