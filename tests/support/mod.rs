//! Test support: what is warmcache's own on top of the public test kit
//! `warmcache::testing` (cargo feature `test-util`), whose owned
//! [`RedisServer`], fault proxy, scripted source and waiting helpers are
//! re-exported here (one copy of each). In [`bigquery`], BigQuery emulator
//! processes and fakes; in [`app`], the reference router in mock mode; in
//! [`cluster`] and [`sentinel`], sets of servers.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod app;
pub mod bigquery;
pub mod bullmq;
pub mod cluster;
pub mod faults;
pub mod history;
pub mod instance;
pub mod keyed;
pub mod latency;
pub mod node;
pub mod proxy;
pub mod scripted;
pub mod sentinel;
#[cfg(feature = "bigquery")]
pub mod shop;

use warmcache::records::{AgeVerification, OtherFields, RecordTime, TimeFormat};
pub use warmcache::testing::{
    RedisServer, TlsFiles, advance_until, eventually, eventually_within, free_port,
    loopback_config, settle, temp_dir,
};

/// An age-verification record whose `method` tells versions apart.
pub fn age_record(customer: &str, method: &str) -> AgeVerification {
    AgeVerification {
        customer_id: customer.to_owned(),
        verified: true,
        method: Some(method.to_owned()),
        verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
        date_of_birth: None,
        age_over: Some(18),
        other: OtherFields::new(),
    }
}
