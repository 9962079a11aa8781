//! `helpline-load`: drives the real gateway and the floor with the same schedule and prints a
//! markdown summary (and JSON with `--json FILE`). See docs/benchmarks.md for the method.
//!
//! ```text
//! helpline-load relay [--conversations 1000] [--rates 1000,5000,10000] [--secs 10] [--warmup 2]
//!                     [--server-cpus 0] [--targets gateway,floor] [--json FILE]
//! helpline-load idle  [--contacts 10000] [--server-cpus 0] [--targets gateway,floor] [--json FILE]
//! helpline-load routing [--queued 10000] [--counsellors 500]
//!                       [--enqueue-rate 50] [--enqueue-secs 5] [--enqueue-counsellors 10]
//!                       [--queue-sizes 1000,10000,100000] [--samples 300]
//!                       [--server-cpus 0] [--json FILE]
//! helpline-load summary RUN.json …   (the `--json` files of several runs of one scenario)
//! ```
//! `routing` runs against the gateway only (`--targets` does not apply).
//! `--generator-threads N` (default 1) sizes the generator's runtime. Run the generator itself
//! under `taskset -c 1` to keep it (and the redis-server it starts) off the server's core.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use helpline_tests::load::relay::{self, RelayParams};
use helpline_tests::load::rig::{self, Floor};
use helpline_tests::load::routing::{self, RoutingResult};
use helpline_tests::load::summary::{self, RunFile};
use helpline_tests::load::{idle, idle_markdown, relay_markdown, routing_markdown};
use helpline_tests::Redis;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_default();
    if scenario == "summary" {
        return summary(&args.collect::<Vec<_>>());
    }
    let mut opts = HashMap::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        opts.insert(flag.trim_start_matches("--").to_owned(), value);
    }
    let cpus = opts.get("server-cpus").cloned();
    // The harness starts `HELPLINE_BIN`: the gateway the caller names there (another build, to
    // compare), else the one built beside this binary; pinned if asked, whichever it is (a named
    // build once ran unpinned, beside Redis and the generator). Set before any thread exists.
    let gateway = std::env::var_os("HELPLINE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| rig::sibling("helpline"));
    std::env::set_var("HELPLINE_BIN", rig::pinned(&gateway, cpus.as_deref())?);
    // Read before any socket opens (it starts a process; see `rig::clock_ticks`).
    rig::clock_ticks();
    let threads: usize = num(&opts, "generator-threads", 1.0)? as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    let targets: Vec<String> = opts
        .get("targets")
        .map_or("gateway,floor", String::as_str)
        .split(',')
        .map(str::to_owned)
        .collect();
    let (markdown, json) = match scenario.as_str() {
        "relay" => runtime.block_on(relay_runs(&opts, &targets, cpus.as_deref()))?,
        "idle" => runtime.block_on(idle_runs(&opts, &targets, cpus.as_deref()))?,
        "routing" => runtime.block_on(routing_run(&opts))?,
        _ => bail!(
            "usage: helpline-load relay|idle|routing [--option value …], or helpline-load \
             summary RUN.json … (see docs/benchmarks.md)"
        ),
    };
    if let Some(path) = opts.get("json") {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("cannot write {path}"))?;
    }
    print!("{markdown}");
    Ok(())
}

/// Prints the medians and ranges of several runs of one scenario, read from their `--json` files.
fn summary(files: &[String]) -> Result<()> {
    if files.is_empty() {
        bail!(
            "usage: helpline-load summary RUN.json … (the --json files of several runs of one scenario)"
        );
    }
    let runs = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?;
            serde_json::from_str::<RunFile>(&text).with_context(|| {
                format!(
                    "{f} is not the --json output of `helpline-load relay`, `idle` or `routing`"
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    print!("{}", summary::summary(runs)?);
    Ok(())
}

async fn relay_runs(
    opts: &HashMap<String, String>,
    targets: &[String],
    cpus: Option<&str>,
) -> Result<(String, serde_json::Value)> {
    let conversations = num(opts, "conversations", 1000.0)? as usize;
    let rates: Vec<f64> = opts
        .get("rates")
        .map_or("1000,5000,10000", String::as_str)
        .split(',')
        .map(|r| r.parse().with_context(|| format!("{r} is not a rate")))
        .collect::<Result<_>>()?;
    let mut results = Vec::new();
    for rate in rates {
        let p = RelayParams {
            conversations,
            rate,
            secs: num(opts, "secs", 10.0)?,
            warmup_secs: num(opts, "warmup", 2.0)?,
        };
        for target in targets {
            let redis = Redis::start()?;
            let result = if target == "floor" {
                let floor = Floor::start(&redis, cpus)?;
                relay::floor(floor.port, floor.pid(), p).await?
            } else {
                let gw = rig::gateway(&redis)?;
                relay::gateway(&gw, gw.pid(), p).await?
            };
            eprintln!("{}", serde_json::to_string(&result)?);
            results.push(result);
        }
    }
    Ok((relay_markdown(&results), serde_json::to_value(&results)?))
}

async fn idle_runs(
    opts: &HashMap<String, String>,
    targets: &[String],
    cpus: Option<&str>,
) -> Result<(String, serde_json::Value)> {
    let n = num(opts, "contacts", 10_000.0)? as usize;
    let mut results = Vec::new();
    for target in targets {
        let redis = Redis::start()?;
        let (result, socks) = if target == "floor" {
            let floor = Floor::start(&redis, cpus)?;
            idle::run("floor", floor.port, floor.pid(), n).await?
        } else {
            let gw = rig::gateway(&redis)?;
            idle::run("gateway", gw.port, gw.pid(), n).await?
        };
        drop(socks);
        eprintln!("{}", serde_json::to_string(&result)?);
        results.push(result);
    }
    Ok((idle_markdown(&results), serde_json::to_value(&results)?))
}

async fn routing_run(opts: &HashMap<String, String>) -> Result<(String, serde_json::Value)> {
    let queue_sizes: Vec<usize> = opts
        .get("queue-sizes")
        .map_or("1000,10000,100000", String::as_str)
        .split(',')
        .map(|n| {
            n.parse()
                .with_context(|| format!("{n} is not a queue size"))
        })
        .collect::<Result<_>>()?;
    let burst = routing::burst(
        num(opts, "queued", 10_000.0)? as usize,
        num(opts, "counsellors", 500.0)? as usize,
    )
    .await?;
    eprintln!("{}", serde_json::to_string(&burst)?);
    let enqueue = routing::enqueue(
        num(opts, "enqueue-rate", 50.0)?,
        num(opts, "enqueue-secs", 5.0)?,
        num(opts, "enqueue-counsellors", 10.0)? as usize,
    )
    .await?;
    eprintln!("{}", serde_json::to_string(&enqueue)?);
    let samples = num(opts, "samples", 300.0)? as usize;
    let mut decision = Vec::new();
    for queued in queue_sizes {
        let result = routing::decision(queued, samples).await?;
        eprintln!("{}", serde_json::to_string(&result)?);
        decision.push(result);
    }
    let result = RoutingResult {
        growth: routing::growth(&decision),
        burst,
        enqueue,
        decision,
    };
    Ok((routing_markdown(&result), serde_json::to_value(&result)?))
}

fn num(opts: &HashMap<String, String>, key: &str, default: f64) -> Result<f64> {
    opts.get(key).map_or(Ok(default), |v| {
        v.parse()
            .with_context(|| format!("--{key} {v} is not a number"))
    })
}
