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
pub mod pace;
pub mod relay;
pub mod rig;
pub mod routing;
pub mod stats;
pub mod summary;

use std::fmt::Write;

use idle::IdleResult;
use relay::RelayResult;
use routing::RoutingResult;

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

/// Markdown tables of a routing run: the burst, enqueue → offer, and the decision cost per queue
/// size with its growth.
pub fn routing_markdown(r: &RoutingResult) -> String {
    let b = &r.burst;
    let mut s = String::from(
        "| burst: queued | counsellors | offered | mismatched | doubled | status→offer p50 µs | p99 µs | max µs | first send→last offer ms | offers within 100 ms | sends spread ms | Redis scripts | Redis script ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {} | {:.1} | {} | {:.1} |",
        b.queued,
        b.counsellors,
        b.offered,
        b.mismatched,
        b.doubled,
        b.status_to_offer.p50_us,
        b.status_to_offer.p99_us,
        b.status_to_offer.max_us,
        b.first_send_to_last_offer_ms,
        b.offers_within_100ms,
        b.sends_spread_ms,
        b.scripts,
        b.scripts_ms,
    );
    let e = &r.enqueue;
    s.push_str(
        "\n| enqueue: rate/s | secs | counsellors | enqueued | offered | start→offer p50 µs | p99 µs | max µs | behind schedule |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {} |",
        e.rate,
        e.secs,
        e.counsellors,
        e.enqueued,
        e.offered,
        e.start_to_offer.p50_us,
        e.start_to_offer.p99_us,
        e.start_to_offer.max_us,
        if e.schedule.fell_behind {
            format!(
                "yes ({} late, max {:.0} µs)",
                e.schedule.late_sends, e.schedule.lag_max_us
            )
        } else {
            "no".into()
        },
    );
    s.push_str(
        "\n| decision: queued | waiting before/after | signatures | fill /s | samples | end to end p50 µs | p99 µs | max µs | script p50 µs | p99 µs | max µs | script missing |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for d in &r.decision {
        let _ = writeln!(
            s,
            "| {} | {}/{} | {} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            d.queued,
            d.waiting_before,
            d.waiting_after,
            d.signatures,
            d.queued as f64 / d.fill_secs.max(1e-9),
            d.samples,
            d.end_to_end.p50_us,
            d.end_to_end.p99_us,
            d.end_to_end.max_us,
            d.script.p50_us,
            d.script.p99_us,
            d.script.max_us,
            d.script_missing,
        );
    }
    if let Some(g) = &r.growth {
        let _ = writeln!(
            s,
            "\nGrowth of the median from {} to {} queued: end to end ×{:.2}, script ×{:.2}; log({})/log({}) = {:.2}.",
            g.from, g.to, g.end_to_end_p50_ratio, g.script_p50_ratio, g.to, g.from, g.log_ratio,
        );
    }
    s
}
