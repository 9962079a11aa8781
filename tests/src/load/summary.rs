//! `helpline-load summary`: the tables of docs/benchmarks.md from the `--json` files of several
//! runs of one scenario. Each figure is the median (min–max) over the runs; counts of what went
//! wrong are summed, and the runs that fell behind their schedule are counted. For the relay, per
//! rate and server, with the gateway's p50 over the floor's run by run, each pair from the same
//! file (seconds apart, on the same machine), which is how the page compares them.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{bail, Result};
use serde::Deserialize;

use super::idle::IdleResult;
use super::relay::RelayResult;
use super::routing::{DecisionResult, RoutingResult};
use super::stats::Delivery;

/// What one `--json` file holds: the results of one `helpline-load` invocation.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RunFile {
    Relay(Vec<RelayResult>),
    Idle(Vec<IdleResult>),
    Routing(Box<RoutingResult>),
}

/// The markdown summary of several runs of one scenario.
pub fn summary(files: Vec<RunFile>) -> Result<String> {
    let (mut relay, mut idle, mut routing) = (Vec::new(), Vec::new(), Vec::new());
    for file in files {
        match file {
            RunFile::Relay(r) => relay.push(r),
            RunFile::Idle(r) => idle.push(r),
            RunFile::Routing(r) => routing.push(*r),
        }
    }
    match (relay.is_empty(), idle.is_empty(), routing.is_empty()) {
        (false, true, true) => Ok(relay_summary(&relay)),
        (true, false, true) => Ok(idle_summary(&idle)),
        (true, true, false) => Ok(routing_summary(&routing)),
        (true, true, true) => bail!("no runs to summarize; give the --json files of some runs"),
        _ => {
            bail!("the files mix relay, idle and routing runs; summarize each scenario on its own")
        }
    }
}

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

/// Memory per idle contact, per server.
pub fn idle_summary(runs: &[Vec<IdleResult>]) -> String {
    let mut rows: BTreeMap<(bool, &str), Vec<&IdleResult>> = BTreeMap::new();
    for r in runs.iter().flatten() {
        rows.entry((r.target != "gateway", r.target.as_str()))
            .or_default()
            .push(r);
    }
    let mut s =
        String::from("| server | contacts | KiB RSS per contact | runs |\n|---|---|---|---|\n");
    for ((_, target), rs) in &rows {
        let _ = writeln!(
            s,
            "| {target} | {} | {} | {} |",
            spread(rs.iter().map(|r| r.contacts as f64), 0),
            spread(rs.iter().map(|r| r.kib_per_contact), 2),
            rs.len()
        );
    }
    s
}

/// The burst, enqueue → offer and decision tables, and the decision cost's growth.
pub fn routing_summary(runs: &[RoutingResult]) -> String {
    let n = runs.len();
    let of = |f: fn(&RoutingResult) -> f64, decimals| spread(runs.iter().map(f), decimals);
    let sum = |f: fn(&RoutingResult) -> usize| runs.iter().map(f).sum::<usize>();
    let all = |f: fn(&RoutingResult) -> bool| runs.iter().filter(|r| f(r)).count();
    let mut s = String::from(
        "| burst: queued | counsellors | offered to all in | mismatched | doubled | status→offer p50 µs | p99 µs | first send→last offer ms | all offers within 100 ms in | Redis script ms in the burst |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} of {n} runs | {} | {} | {} | {} | {} | {} of {n} runs | {} |",
        of(|r| r.burst.queued as f64, 0),
        of(|r| r.burst.counsellors as f64, 0),
        all(|r| r.burst.offered == r.burst.counsellors),
        sum(|r| r.burst.mismatched),
        sum(|r| r.burst.doubled),
        of(|r| r.burst.status_to_offer.p50_us, 0),
        of(|r| r.burst.status_to_offer.p99_us, 0),
        of(|r| r.burst.first_send_to_last_offer_ms, 1),
        all(|r| r.burst.offers_within_100ms == r.burst.counsellors),
        of(|r| r.burst.scripts_ms, 1),
    );
    s.push_str(
        "\n| enqueue: rate/s | secs | free counsellors | enqueued | offered | start→offer p50 µs | p99 µs | max µs | runs behind schedule |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} of {n} |",
        of(|r| r.enqueue.rate, 0),
        of(|r| r.enqueue.secs, 0),
        of(|r| r.enqueue.counsellors as f64, 0),
        of(|r| r.enqueue.enqueued as f64, 0),
        of(|r| r.enqueue.offered as f64, 0),
        of(|r| r.enqueue.start_to_offer.p50_us, 0),
        of(|r| r.enqueue.start_to_offer.p99_us, 0),
        of(|r| r.enqueue.start_to_offer.max_us, 0),
        all(|r| r.enqueue.schedule.fell_behind),
    );
    s.push_str(
        "\n| decision: queued | end to end p50 µs | p99 µs | max µs | status script p50 µs | p99 µs |\n|---|---|---|---|---|---|\n",
    );
    // The runs measured the same queue sizes in the same order.
    let sizes = runs.iter().map(|r| r.decision.len()).min().unwrap_or(0);
    for i in 0..sizes {
        let d = |f: fn(&DecisionResult) -> f64, decimals| {
            spread(runs.iter().map(|r| f(&r.decision[i])), decimals)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            d(|x| x.queued as f64, 0),
            d(|x| x.end_to_end.p50_us, 0),
            d(|x| x.end_to_end.p99_us, 0),
            d(|x| x.end_to_end.max_us, 0),
            d(|x| x.script.p50_us, 0),
            d(|x| x.script.p99_us, 0),
        );
    }
    let growths: Vec<_> = runs.iter().filter_map(|r| r.growth.as_ref()).collect();
    if let Some(g) = growths.first() {
        let _ = writeln!(
            s,
            "\nGrowth of the median decision from {} to {} queued: end to end ×{}, script ×{}; \
             log({})/log({}) = {:.2}.",
            g.from,
            g.to,
            spread(growths.iter().map(|g| g.end_to_end_p50_ratio), 2),
            spread(growths.iter().map(|g| g.script_p50_ratio), 2),
            g.to,
            g.from,
            g.log_ratio,
        );
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

    fn routing_run(last_offer_ms: f64, within: usize) -> RunFile {
        let latency = |p50: f64| {
            serde_json::json!({"count": 10, "p50_us": p50, "p90_us": p50,
            "p99_us": p50 * 2.0, "p999_us": p50 * 2.0, "max_us": p50 * 3.0})
        };
        let decision = |queued: usize, p50: f64| {
            serde_json::json!({"queued": queued,
            "samples": 10, "fill_secs": 1.0, "waiting_before": queued, "waiting_after": queued,
            "signatures": 20, "end_to_end": latency(p50), "script": latency(p50 / 2.0),
            "script_missing": 0})
        };
        let run = serde_json::json!({
            "burst": {"queued": 100, "counsellors": 10, "fill_secs": 1.0, "offered": 10,
                "mismatched": 0, "doubled": 0, "status_to_offer": latency(100.0),
                "sends_spread_ms": 1.0, "first_send_to_last_offer_ms": last_offer_ms,
                "offers_within_100ms": within, "scripts": 10, "scripts_ms": 5.0},
            "enqueue": {"rate": 50.0, "secs": 5.0, "counsellors": 10, "enqueued": 250,
                "offered": 250, "start_to_offer": latency(500.0), "schedule": {"late_sends": 0,
                "lag_p99_us": 1.0, "lag_max_us": 1.0, "fell_behind": false}},
            "decision": [decision(1000, 400.0), decision(10000, 420.0)],
            "growth": {"from": 1000, "to": 10000, "end_to_end_p50_ratio": 1.05,
                "script_p50_ratio": 1.1, "log_ratio": 1.33},
        });
        serde_json::from_value(run).unwrap()
    }

    #[test]
    fn each_scenario_is_told_by_its_shape_and_never_mixed() {
        let relay = serde_json::to_string(&[result("gateway", 1000.0, 300.0, 120.0, false)]);
        let relay: RunFile = serde_json::from_str(&relay.unwrap()).unwrap();
        assert!(matches!(relay, RunFile::Relay(_)));
        let idle = r#"[{"target":"gateway","contacts":100,"rss_before_kib":1000,
            "rss_after_kib":1732,"kib_per_contact":7.32,"connect_secs":0.5}]"#;
        let idle: RunFile = serde_json::from_str(idle).unwrap();
        assert!(matches!(idle, RunFile::Idle(_)));
        let s = summary(vec![idle]).unwrap();
        assert!(
            s.contains("| gateway | 100 (100–100) | 7.32 (7.32–7.32) | 1 |"),
            "{s}"
        );
        assert!(matches!(routing_run(50.0, 10), RunFile::Routing(_)));
        let mixed = summary(vec![relay, routing_run(50.0, 10)]).unwrap_err();
        assert!(mixed
            .to_string()
            .contains("summarize each scenario on its own"));
    }

    #[test]
    fn routing_runs_count_the_bursts_that_offered_all_in_time() {
        let runs = vec![
            routing_run(50.0, 10),
            routing_run(120.0, 7),
            routing_run(60.0, 10),
        ];
        let s = summary(runs).unwrap();
        let burst = s.lines().find(|l| l.starts_with("| 100 ")).unwrap();
        assert!(burst.contains("| 3 of 3 runs | 0 | 0 |"), "{burst}");
        assert!(
            burst.contains("| 60.0 (50.0–120.0) | 2 of 3 runs |"),
            "{burst}"
        );
        assert!(s.contains("| 10000 (10000–10000) | 420 (420–420) |"), "{s}");
        assert!(s.contains("end to end ×1.05 (1.05–1.05)"), "{s}");
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
        assert_eq!(spread([4.0, 1.0].into_iter(), 1), "2.5 (1.0–4.0)");
    }
}
