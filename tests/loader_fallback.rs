//! The loader as fallback: when Redis can be read neither before nor after
//! a load, the loaded value is served but not kept in L1, since Redis may
//! hold a newer value whose push reached this instance before the fill
//! began. (Found by the chaos soak: an instance kept serving a loaded
//! profile from L1 while Redis held a newer one.)

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use support::RedisServer;
use warmcache::records::CUSTOMER_PROFILE;
use warmcache::{InvalidationMode, InvalidationOptions, RedisHandle, Tier, TieredCache};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
}

/// Kills this test's warmcache data connections: every client but the
/// tracking one (`flags` with `t`) and the caller itself.
async fn kill_data_connections(admin: &mut redis::aio::MultiplexedConnection) -> usize {
    let me: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(admin)
        .await
        .expect("id");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .expect("list");
    let mut killed = 0;
    for line in list.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or_default()
                .to_owned()
        };
        let (id, flags) = (field("id="), field("flags="));
        if id != me.to_string() && !flags.contains('t') {
            let _: () = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(&id)
                .query_async(admin)
                .await
                .expect("kill");
            killed += 1;
        }
    }
    killed
}

#[tokio::test]
async fn a_value_loaded_while_redis_could_not_be_read_is_not_kept_in_l1() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
    let profiles: TieredCache<Profile> = TieredCache::builder(CUSTOMER_PROFILE)
        .redis(redis.clone())
        .build()
        .expect("cache");
    let listener = redis.start_invalidation(InvalidationOptions {
        grace: Duration::from_secs(5),
        ..InvalidationOptions::default()
    });
    for _ in 0..500 {
        if listener.mode() == InvalidationMode::Tracking {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(listener.mode(), InvalidationMode::Tracking);

    // Another writer's newer value is in Redis; this instance has not read it.
    let mut admin = server.foreign().await;
    let newer = serde_json::to_string(&Profile {
        name: "newer".to_owned(),
    })
    .expect("json");
    let _: () = admin
        .set_ex("customer_profile:c1", newer, 300)
        .await
        .expect("set");
    // A data connection exists (made by this read), then dies; and Redis
    // refuses every write, so the loader's write-back fails too.
    assert!(profiles.get("warm-up").await.expect("read").is_none());
    assert!(kill_data_connections(&mut admin).await > 0);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query_async(&mut admin)
        .await
        .expect("config");

    let loaded = profiles
        .get_or_load("c1", |_| async {
            Ok::<_, std::io::Error>(Profile {
                name: "source".to_owned(),
            })
        })
        .await
        .expect("the loader answers while redis cannot be read");
    assert_eq!(
        loaded.tier(),
        Tier::Loader,
        "the read failed: the loader answered"
    );
    assert_eq!(loaded.value().name, "source");

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query_async(&mut admin)
        .await
        .expect("config");
    let again = profiles
        .get_or_load("c1", |_| async {
            Ok::<_, std::io::Error>(Profile {
                name: "source".to_owned(),
            })
        })
        .await
        .expect("read");
    assert_eq!(
        (again.tier(), again.value().name.as_str()),
        (Tier::L2, "newer"),
        "the next read asks Redis, which holds the newer value, instead of serving the loaded one from L1"
    );
}
