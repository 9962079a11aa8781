//! The load generator behind `helpline-load` (and the CI smoke test): it drives the real gateway,
//! or the floor program, over real WebSockets as many contacts and counsellors, and reports
//! latencies (HdrHistogram), delivery (nothing lost, doubled or reordered), memory and CPU.
//!
//! It must stay cheaper than what it measures: frames are laid out once and stamped in place
//! ([`frames`]), sockets use small buffers ([`conn`]), every task keeps its own histograms, and the
//! rate is open-loop, with sends that fall behind schedule counted rather than hidden ([`stats`]).

pub mod conn;
pub mod drive;
pub mod floor;
pub mod frames;
pub mod idle;
pub mod relay;
pub mod rig;
pub mod stats;

use std::fmt::Write;

use idle::IdleResult;
use relay::RelayResult;

/// A markdown table of relay results, gateway and floor side by side as they were run.
pub fn relay_markdown(results: &[RelayResult]) -> String {
    let mut s = String::from(
        "| target | convs | rate/s | achieved/s | leg p50 µs | leg p99 µs | back p50 µs | back p99 µs | round trip p50 µs | round trip p99 µs | CPU µs/msg | lost | doubled | reordered | behind schedule |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {} |",
            r.target,
            r.params.conversations,
            r.params.rate,
            r.achieved_rate,
            r.one_leg.p50_us,
            r.one_leg.p99_us,
            r.back_leg.p50_us,
            r.back_leg.p99_us,
            r.round_trip.p50_us,
            r.round_trip.p99_us,
            r.cpu_us_per_msg,
            r.delivery.lost,
            r.delivery.doubled,
            r.delivery.reordered,
            if r.schedule.fell_behind {
                format!("yes ({} late, max {:.0} µs)", r.schedule.late_sends, r.schedule.lag_max_us)
            } else {
                "no".into()
            },
        );
    }
    s
}

/// A markdown table of idle results.
pub fn idle_markdown(results: &[IdleResult]) -> String {
    let mut s = String::from(
        "| target | contacts | RSS before KiB | RSS after KiB | KiB per contact | connect s |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.1} |",
            r.target,
            r.contacts,
            r.rss_before_kib,
            r.rss_after_kib,
            r.kib_per_contact,
            r.connect_secs
        );
    }
    s
}
