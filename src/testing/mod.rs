//! Test kit for code that uses warmcache (cargo feature `test-util`).
//!
//! What warmcache's own tests use, for a user's tests of their own code:
//! - [`RedisServer`]: a real `redis-server` (or `redis-sentinel`) on a free
//!   loopback port in its own temporary directory; [`kill`] and [`restart`]
//!   on the same port simulate an outage; an ACL user denied some commands
//!   ([`RedisServer::config_denying`]) and a TLS-only server with a private
//!   CA ([`RedisServer::start_tls`], [`TlsFiles`]); killed on drop.
//! - [`FaultProxy`]: a TCP proxy in front of it that can blackhole, delay,
//!   reset or close connections, re-point them, or refuse `HELLO`.
//! - [`Scripted`]: a controllable [`SnapshotSource`](crate::SnapshotSource)
//!   (fail the next refresh, delay it, hang, set the data), wrapping any
//!   source.
//! - Waiting: [`eventually`] (real sockets, real time), and on tokio's
//!   paused clock [`advance_until`] and [`settle`].
//!
//! It needs `redis-server` (and for Sentinel `redis-sentinel`, for TLS the
//! `openssl` CLI) on the `PATH`. Add it to your dev-dependencies only:
//!
//! ```toml
//! [dev-dependencies]
//! warmcache = { version = "0.1", features = ["test-util"] }
//! ```
//!
//! **These helpers panic** when the test set-up fails (`redis-server`
//! missing or not starting, no free port, a condition never met), with a
//! message that says what failed: they are meant for tests, where a panic
//! is a failed test. They never print a password.
//!
//! A user's test: a [`TieredCache`](crate::TieredCache) on an owned Redis
//! keeps serving what it holds in L1 while Redis is down, reports the outage
//! for what it has to read from Redis, and works again after a restart.
//!
//! ```
//! use std::time::Duration;
//! use warmcache::records::{AGE_VERIFICATION, AgeVerification, OtherFields, RecordTime, TimeFormat};
//! use warmcache::testing::{RedisServer, eventually};
//! use warmcache::{CacheError, RedisHandle, Tier, TieredCache};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = RedisServer::start();
//! let redis = RedisHandle::connect_lazy(&server.config())?;
//! let cache = TieredCache::<AgeVerification>::builder(AGE_VERIFICATION)
//!     .redis(redis)
//!     .build()?;
//! let record = AgeVerification {
//!     customer_id: "c-1".to_owned(),
//!     verified: true,
//!     method: Some("id_document".to_owned()),
//!     verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
//!     date_of_birth: None,
//!     age_over: Some(18),
//!     other: OtherFields::new(),
//! };
//! cache.insert("c-1", record.clone()).await?;
//!
//! server.kill();
//! let read = cache.get_from_l2("c-1").await;
//! assert!(matches!(read, Err(CacheError::L2(_))), "{read:?}");
//!
//! server.restart(); // same port, empty: it kept nothing on disk
//! eventually("Redis answers again", || async {
//!     matches!(cache.get_from_l2("c-1").await, Ok(None))
//! })
//! .await;
//! cache.insert("c-1", record.clone()).await?;
//! let hit = cache.get("c-1").await?.expect("just written");
//! assert_eq!((hit.value(), hit.tier()), (&record, Tier::L1));
//! # Ok(())
//! # }
//! ```
//!
//! [`kill`]: RedisServer::kill
//! [`restart`]: RedisServer::restart

mod clock;
mod proxy;
mod server;
mod source;
mod tls;

pub use clock::{advance_until, eventually, eventually_within, settle};
pub use proxy::{Fault, FaultProxy};
pub use server::{RedisServer, free_port, loopback_config, temp_dir};
pub use source::{Scripted, Step};
pub use tls::TlsFiles;
