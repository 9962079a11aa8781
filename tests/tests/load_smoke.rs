//! The load generator's smoke run for CI: a few seconds at a low rate over a handful of
//! conversations through the real gateway, and the same against the floor; and the routing
//! scenario at a tiny scale. It checks correctness only (every message arrives once and in order,
//! every counsellor and contact gets the offer it should); speed is measured by `helpline-load`,
//! never here.

use helpline_tests::load::relay::{self, RelayParams};
use helpline_tests::load::rig::{self, Floor};
use helpline_tests::load::routing::{self, SIGNATURES};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_counsellor_of_a_burst_is_offered_a_queued_conversation_it_may_take(
) -> anyhow::Result<()> {
    let result = routing::burst(2 * SIGNATURES, 10).await?;
    assert_eq!(result.offered, 10, "{result:#?}");
    assert_eq!(result.mismatched, 0, "{result:#?}");
    assert_eq!(result.doubled, 0, "{result:#?}");
    assert_eq!(result.status_to_offer.count, 10, "{result:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contact_that_starts_is_offered_to_a_free_counsellor() -> anyhow::Result<()> {
    let result = routing::enqueue(20.0, 1.0, 2).await?;
    assert_eq!(result.enqueued, 20, "{result:#?}");
    assert_eq!(result.offered, 20, "{result:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_decisions_are_measured_without_changing_the_queue() -> anyhow::Result<()> {
    let mut results = Vec::new();
    for queued in [50, 100] {
        let result = routing::decision(queued, 10).await?;
        assert_eq!(result.waiting_before, queued as u64, "{result:#?}");
        assert_eq!(result.waiting_after, queued as u64, "{result:#?}");
        assert_eq!(result.signatures, SIGNATURES as u64, "{result:#?}");
        assert_eq!(result.end_to_end.count, 10, "{result:#?}");
        assert_eq!(result.script.count, 10, "{result:#?}");
        results.push(result);
    }
    let growth = routing::growth(&results).expect("two queue sizes");
    assert_eq!((growth.from, growth.to), (50, 100));
    Ok(())
}
