//! `helpline-floor --listen ADDR --redis URL`: the benchmark's floor (see `helpline_tests::load::floor`).

use anyhow::{Context, Result};

#[tokio::main]
async fn main() -> Result<()> {
    let mut listen = "127.0.0.1:9100".to_owned();
    let mut redis = "redis://127.0.0.1:6379".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--redis" => redis = value,
            other => anyhow::bail!("unknown option {other}; use --listen ADDR --redis URL"),
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    helpline_tests::load::floor::serve(listener, &redis).await
}
