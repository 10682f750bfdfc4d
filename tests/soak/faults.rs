//! The soak's fault schedule: which faults it draws from, and the task that
//! injects one after another (seeded) into the fleet until told to stop,
//! recording each in the history and counting them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::support::RedisServer;
use super::support::history::Action;
use super::support::proxy::Fault as ProxyFault;
use super::{Instance, LOADER_FAST, LOADER_SLOW, Recorder};

/// The faults the schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fault {
    Blackhole,
    Reset,
    Latency,
    RedisRestart,
    ClientPause,
    KillTracking,
    SlowLoader,
}

const FAULTS: [Fault; 7] = [
    Fault::Blackhole,
    Fault::Reset,
    Fault::Latency,
    Fault::RedisRestart,
    Fault::ClientPause,
    Fault::KillTracking,
    Fault::SlowLoader,
];

/// Injects one fault after another until `stop`; returns the counts.
pub(super) async fn inject_faults(
    seed: u64,
    server: Arc<Mutex<RedisServer>>,
    instances: Vec<Arc<Instance>>,
    loader_ms: Arc<AtomicU64>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) -> BTreeMap<Fault, u64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut counts = BTreeMap::new();
    let port = server.lock().unwrap_or_else(PoisonError::into_inner).port();
    let admin = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.u64(500..1_500))).await;
        let fault = FAULTS[rng.usize(0..FAULTS.len())];
        let target = &instances[rng.usize(0..instances.len())];
        let hold = Duration::from_millis(rng.u64(300..1_500));
        *counts.entry(fault).or_insert(0) += 1;
        let start = recorder.now();
        match fault {
            Fault::Blackhole => {
                target.proxy.set(ProxyFault::Blackhole);
                tokio::time::sleep(hold).await;
                target.proxy.set(ProxyFault::Pass);
            }
            Fault::Reset => target.proxy.reset_all(),
            Fault::Latency => {
                let delay = Duration::from_millis(rng.u64(20..150));
                target.proxy.set(ProxyFault::Latency(delay));
                tokio::time::sleep(hold).await;
                target.proxy.set(ProxyFault::Pass);
            }
            Fault::RedisRestart => {
                let server = Arc::clone(&server);
                tokio::task::spawn_blocking(move || {
                    server
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .restart();
                })
                .await
                .expect("restart redis");
                recorder.record(start, "fault", "", Action::DataLoss);
            }
            Fault::ClientPause => {
                let pause = rng.u64(100..600);
                if let Ok(mut c) = admin.get_multiplexed_async_connection().await {
                    let _: Result<(), _> = redis::cmd("CLIENT")
                        .arg("PAUSE")
                        .arg(pause)
                        .query_async(&mut c)
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Fault::KillTracking => {
                if let Ok(mut c) = admin.get_multiplexed_async_connection().await {
                    let list: String = redis::cmd("CLIENT")
                        .arg("LIST")
                        .query_async(&mut c)
                        .await
                        .unwrap_or_default();
                    for id in tracking_client_ids(&list) {
                        let _: Result<(), _> = redis::cmd("CLIENT")
                            .arg("KILL")
                            .arg("ID")
                            .arg(id)
                            .query_async(&mut c)
                            .await;
                    }
                }
            }
            Fault::SlowLoader => {
                loader_ms.store(LOADER_SLOW.as_millis() as u64, Ordering::Relaxed);
                tokio::time::sleep(hold).await;
                loader_ms.store(LOADER_FAST.as_millis() as u64, Ordering::Relaxed);
            }
        }
        let what = format!("{fault:?} {}", target.name);
        recorder.record(start, "fault", "", Action::Fault(what));
    }
    counts
}

/// Ids of the connections with client tracking on (`flags` holds `t`).
fn tracking_client_ids(client_list: &str) -> Vec<String> {
    client_list
        .lines()
        .filter(|line| {
            line.split(' ').any(|field| {
                field
                    .strip_prefix("flags=")
                    .is_some_and(|f| f.contains('t'))
            })
        })
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}
