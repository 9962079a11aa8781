//! `helpline-load summary`: the relay tables of docs/benchmarks.md from the `--json` files of
//! several runs. Per rate and server, each figure is the median (min–max) over the runs; delivery
//! is summed and the runs that fell behind their schedule are counted. Per rate, the gateway's p50
//! over the floor's is given run by run, each pair from the same file (seconds apart, on the same
//! machine), which is how the page compares them.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::relay::RelayResult;
use super::stats::Delivery;

/// The markdown summary of `runs`, one entry per `--json` file.
pub fn relay_summary(runs: &[Vec<RelayResult>]) -> String {
    // (rate, gateway before floor, server) → that server's results at that rate, run by run.
    let mut rows: BTreeMap<(u64, bool, &str), Vec<&RelayResult>> = BTreeMap::new();
    for r in runs.iter().flatten() {
        let key = (rate_of(r), r.target != "gateway", r.target.as_str());
        rows.entry(key).or_default().push(r);
    }
    let mut s = String::from(
        "| rate msgs/s | server | achieved/s | leg p50 | leg p99 | back p50 | back p99 | round trip p99 | CPU µs/msg | delivery (sent / lost / doubled / reordered) | runs behind schedule |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for ((rate, _, target), rs) in &rows {
        let figure =
            |f: fn(&RelayResult) -> f64, decimals| spread(rs.iter().map(|r| f(r)), decimals);
        let (back_p50, back_p99) = if *target == "gateway" {
            (
                figure(|r| r.back_leg.p50_us, 0),
                figure(|r| r.back_leg.p99_us, 0),
            )
        } else {
            ("–".to_owned(), "–".to_owned())
        };
        let mut d = Delivery::default();
        rs.iter().for_each(|r| d.merge(r.delivery));
        let behind = rs.iter().filter(|r| r.schedule.fell_behind).count();
        let _ = writeln!(
            s,
            "| {rate} | {target} | {} | {} | {} | {back_p50} | {back_p99} | {} | {} | {} / {} / {} / {} | {behind} of {} |",
            figure(|r| r.achieved_rate, 0),
            figure(|r| r.one_leg.p50_us, 0),
            figure(|r| r.one_leg.p99_us, 0),
            figure(|r| r.round_trip.p99_us, 0),
            figure(|r| r.cpu_us_per_msg, 1),
            d.sent,
            d.lost,
            d.doubled,
            d.reordered,
            rs.len(),
        );
    }
    let ratios = p50_ratios(runs);
    if !ratios.is_empty() {
        s.push_str("\nThe gateway's p50 over the floor's, run by run:\n");
        for (rate, mut rs) in ratios {
            rs.sort_by(f64::total_cmp);
            let each: Vec<String> = rs.iter().map(|x| format!("{x:.2}")).collect();
            let _ = writeln!(
                s,
                "- {rate}/s: {} (median {:.2})",
                each.join(", "),
                median(&rs)
            );
        }
    }
    s
}

/// Per rate, the gateway's leg p50 over the floor's, for each run that measured both.
fn p50_ratios(runs: &[Vec<RelayResult>]) -> BTreeMap<u64, Vec<f64>> {
    let mut out: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for run in runs {
        let find = |rate, target: &str| {
            run.iter()
                .find(|r| rate_of(r) == rate && r.target == target)
        };
        for g in run.iter().filter(|r| r.target == "gateway") {
            if let Some(f) = find(rate_of(g), "floor").filter(|f| f.one_leg.p50_us > 0.0) {
                out.entry(rate_of(g))
                    .or_default()
                    .push(g.one_leg.p50_us / f.one_leg.p50_us);
            }
        }
    }
    out
}

fn rate_of(r: &RelayResult) -> u64 {
    r.params.rate.round() as u64
}

/// "median (min–max)" with `decimals` places.
fn spread(values: impl Iterator<Item = f64>, decimals: usize) -> String {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let (Some(min), Some(max)) = (v.first(), v.last()) else {
        return "–".into();
    };
    format!(
        "{:.decimals$} ({min:.decimals$}–{max:.decimals$})",
        median(&v)
    )
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::relay::RelayParams;
    use crate::load::stats::{Latency, Schedule};

    fn result(target: &str, rate: f64, p50: f64, cpu: f64, behind: bool) -> RelayResult {
        let leg = Latency {
            count: 10,
            p50_us: p50,
            p99_us: p50 * 10.0,
            ..Latency::default()
        };
        RelayResult {
            target: target.into(),
            params: RelayParams {
                conversations: 10,
                rate,
                secs: 5.0,
                warmup_secs: 1.0,
            },
            one_leg: leg.clone(),
            back_leg: leg.clone(),
            round_trip: leg,
            delivery: Delivery {
                sent: 100,
                received: 100,
                ..Delivery::default()
            },
            schedule: Schedule {
                fell_behind: behind,
                ..Schedule::default()
            },
            cpu_us_per_msg: cpu,
            achieved_rate: rate,
            broken_sockets: 0,
        }
    }

    #[test]
    fn runs_become_medians_ranges_and_ratios_run_by_run() {
        let runs = vec![
            vec![
                result("gateway", 1000.0, 300.0, 120.0, false),
                result("floor", 1000.0, 200.0, 80.0, false),
            ],
            vec![
                result("gateway", 1000.0, 280.0, 130.0, true),
                result("floor", 1000.0, 140.0, 70.0, false),
            ],
            vec![
                result("gateway", 1000.0, 350.0, 125.0, false),
                result("floor", 1000.0, 250.0, 90.0, false),
            ],
        ];
        let s = relay_summary(&runs);
        let gateway = s
            .lines()
            .find(|l| l.starts_with("| 1000 | gateway"))
            .unwrap();
        assert!(
            gateway.contains("| 300 (280–350) | 3000 (2800–3500) |"),
            "{gateway}"
        );
        assert!(gateway.contains("| 125.0 (120.0–130.0) |"), "{gateway}");
        assert!(
            gateway.contains("| 300 / 0 / 0 / 0 | 1 of 3 |"),
            "{gateway}"
        );
        let floor = s.lines().find(|l| l.starts_with("| 1000 | floor")).unwrap();
        assert!(floor.contains("| – | – |"), "{floor}");
        assert!(floor.contains("| 0 of 3 |"), "{floor}");
        // The gateway's row comes first; ratios pair each file's own gateway and floor.
        assert!(s.find("| 1000 | gateway").unwrap() < s.find("| 1000 | floor").unwrap());
        assert!(
            s.contains("- 1000/s: 1.40, 1.50, 2.00 (median 1.50)"),
            "{s}"
        );
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
        assert_eq!(spread([4.0, 1.0].into_iter(), 1), "2.5 (1.0–4.0)");
    }
}
