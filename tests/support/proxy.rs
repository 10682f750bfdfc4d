//! The fault-injecting TCP proxy between warmcache and a `redis-server`:
//! `warmcache::testing`'s, re-exported under the path the tests use.

pub use warmcache::testing::{Fault, FaultProxy};
