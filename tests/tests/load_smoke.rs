//! The load generator's smoke run for CI: a few seconds at a low rate over a handful of
//! conversations through the real gateway, and the same against the floor. It checks correctness
//! only (every message arrives once and in order); speed is measured by `helpline-load`, never here.

use helpline_tests::load::relay::{self, RelayParams};
use helpline_tests::load::rig::{self, Floor};
use helpline_tests::Redis;

const SMOKE: RelayParams = RelayParams {
    conversations: 12,
    rate: 200.0,
    secs: 3.0,
    warmup_secs: 0.5,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_relays_every_message_once_and_in_order_under_load() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let gw = rig::gateway(&redis)?;
    let result = relay::gateway(&gw, gw.pid(), SMOKE).await?;
    assert!(result.delivery.clean(), "{result:#?}");
    assert_eq!(result.broken_sockets, 0, "{result:#?}");
    // Both directions: every contact message and every counsellor answer.
    assert!(result.delivery.sent >= 600, "{result:#?}");
    assert!(
        result.one_leg.count > 0 && result.back_leg.count > 0,
        "{result:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_echoes_every_message_once_and_in_order() -> anyhow::Result<()> {
    let redis = Redis::start()?;
    let floor = Floor::start(&redis, None)?;
    let result = relay::floor(floor.port, floor.pid(), SMOKE).await?;
    assert!(result.delivery.clean(), "{result:#?}");
    assert!(result.delivery.sent >= 600, "{result:#?}");
    Ok(())
}
