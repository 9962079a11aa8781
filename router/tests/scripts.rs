//! The scripts are in Redis's script cache as soon as a node connects, and again when it reloads
//! them after Redis restarted or failed over: a burst of first calls never finds a script missing
//! (each would have Redis compile it again).

// A test's helpers may panic: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use helpline_router::store::Store;
use support::{settings, RedisServer};

async fn cached_scripts(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn every_script_is_cached_on_connect_and_after_a_reload() {
    let redis = RedisServer::start().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(cached_scripts(&mut conn).await, 0);

    let store = Store::connect(&redis.url(), "t:", &settings())
        .await
        .unwrap();
    let all = cached_scripts(&mut conn).await;
    assert_eq!(all, 21);

    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cached_scripts(&mut conn).await, 0);
    store.load_scripts().await.unwrap();
    assert_eq!(cached_scripts(&mut conn).await, all);
}
