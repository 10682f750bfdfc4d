//! Good manners in a host process: building a [`RedisHandle`] installs no
//! process-wide state the host owns, fails with a typed error (not a
//! panic) outside a tokio runtime, and the tasks it spawns live only as
//! long as the handle the caller holds.

use std::net::TcpListener;
use std::time::Duration;

use warmcache::testing::eventually;
use warmcache::{RedisConfig, RedisHandle, RedisSetupError};

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn building_a_handle_outside_a_runtime_is_an_error_not_a_panic() {
    let port = closed_port();
    for config in [
        RedisConfig::local(port),
        RedisConfig::local_sentinel(&[port], "mymaster"),
        RedisConfig::local_cluster(port),
    ] {
        let built = std::panic::catch_unwind(|| RedisHandle::connect_lazy(&config));
        let mode = config.mode;
        match built {
            Ok(Err(RedisSetupError::NoRuntime)) => {}
            Ok(other) => panic!("{mode:?}: expected NoRuntime, got {other:?}"),
            Err(_) => panic!("{mode:?}: connect_lazy panicked outside a runtime"),
        }
    }
}

#[tokio::test]
async fn a_tls_handle_installs_no_crypto_provider() {
    let mut config = RedisConfig::local(closed_port());
    config.use_tls = true;
    let handle = RedisHandle::connect_lazy(&config).expect("settings");
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "building a handle chose the process's crypto provider"
    );
    drop(handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentinel_tasks_stop_with_the_last_handle() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let port = closed_port();
    let mut config = RedisConfig::local_sentinel(&[port, closed_port()], "mymaster");
    config.connect_timeout = Duration::from_millis(50);
    let handle = RedisHandle::connect_lazy(&config).expect("settings");
    let clone = handle.clone();
    assert!(
        metrics.num_alive_tasks() > before,
        "sentinel mode follows the sentinels in tasks of its own"
    );
    drop(handle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        metrics.num_alive_tasks() > before,
        "a clone still holds the handle: its tasks must still run"
    );
    drop(clone);
    eventually("the sentinel tasks to end", || async {
        metrics.num_alive_tasks() == before
    })
    .await;
}
