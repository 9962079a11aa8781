//! Key rotation against a real redis-server: the count of data keys per master key version, the
//! batched re-wrap (every key moves, none is lost, each still opens its conversation's messages),
//! and the compare-and-set that never clobbers a key changed or erased meanwhile.

// A test's helpers may panic: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use helpline_router::rotation::Rotation;
use helpline_router::store::Store;
use helpline_router::vault::{MasterKeys, Purpose, Vault};
use redis::AsyncCommands;
use support::{settings, RedisServer};

const P: &str = "t:";

fn both_versions() -> Vault {
    let mut keys = MasterKeys::new(1, [1; 32]);
    keys.add(2, [2; 32]).unwrap();
    keys.set_active(2).unwrap();
    Vault::new(keys)
}

#[tokio::test]
async fn rotation_rewraps_every_data_key_and_never_clobbers() {
    let redis = RedisServer::start().unwrap();
    let store = Store::connect(&redis.url(), P, &settings()).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    let v1 = Vault::new(MasterKeys::new(1, [1; 32]));
    let mut sealed = Vec::new();
    for i in 0..250 {
        let conv = format!("conv{i:03}");
        let (dek, wrapped) = v1.new_data_key(&conv).unwrap();
        let text = format!("message of {conv}");
        sealed.push((
            conv.clone(),
            text.clone(),
            dek.seal(&conv, Purpose::Message, 1, text.as_bytes())
                .unwrap(),
        ));
        let _: () = conn
            .hset(format!("{P}conv:{conv}"), "dek", B64.encode(wrapped))
            .await
            .unwrap();
        let _: () = conn.sadd(format!("{P}conversations"), &conv).await.unwrap();
    }
    // Listed but erased: the re-wrap must not bring its hash back.
    let _: () = conn
        .sadd(format!("{P}conversations"), "erased")
        .await
        .unwrap();

    let rotation = Rotation::new(store.clone(), both_versions());
    let counts = rotation.counts(7).await.unwrap();
    assert_eq!(
        counts.per_version.into_iter().collect::<Vec<_>>(),
        [(1, 250)]
    );

    let mut reports = 0;
    let done = rotation
        .rewrap_all(7, Duration::ZERO, |_| reports += 1)
        .await
        .unwrap();
    // COUNT is only a hint to SSCAN, so batches hold roughly 7; still, many reports per pass.
    assert!(
        reports > 2 * 250 / 20,
        "progress after every batch: {reports}"
    );
    assert_eq!(
        (done.pass, done.rewrapped, done.current, done.gone),
        (2, 0, 250, 1)
    );
    let counts = rotation.counts(50).await.unwrap();
    assert_eq!(
        counts.per_version.into_iter().collect::<Vec<_>>(),
        [(2, 250)]
    );
    let erased: bool = conn.exists(format!("{P}conv:erased")).await.unwrap();
    assert!(!erased);
    let announced: u32 = conn.get(format!("{P}keys:active")).await.unwrap();
    assert_eq!(announced, 2);

    // With version 1 gone, every re-wrapped key still opens its conversation's message.
    let only_v2 = Vault::new(MasterKeys::new(2, [2; 32]));
    for (conv, text, sealed) in &sealed {
        let wrapped: String = conn.hget(format!("{P}conv:{conv}"), "dek").await.unwrap();
        let dek = only_v2
            .unwrap_key(conv, &B64.decode(wrapped).unwrap())
            .unwrap();
        assert_eq!(
            dek.open(conv, Purpose::Message, 1, sealed).unwrap(),
            text.as_bytes()
        );
    }

    // Compare-and-set: a key that is no longer the one read stays as it is.
    let current: String = conn.hget(format!("{P}conv:conv000"), "dek").await.unwrap();
    assert!(!store.replace_dek("conv000", "stale", "new").await.unwrap());
    let still: String = conn.hget(format!("{P}conv:conv000"), "dek").await.unwrap();
    assert_eq!(still, current);
    assert!(!store.replace_dek("erased", "", "new").await.unwrap());
    let erased: bool = conn.exists(format!("{P}conv:erased")).await.unwrap();
    assert!(!erased);
}
