//! Helpers of the Prometheus tests (tests/prometheus_e2e.rs,
//! tests/prometheus_files.rs): the child processes (the service, Prometheus)
//! in [`process`], HTTP/1.1 on a fresh loopback connection in [`http`], and
//! the expressions of `dashboards/` in [`expressions`].

#![allow(dead_code, unreachable_pub)]

pub mod expressions;
pub mod http;
pub mod process;

use std::time::Duration;

/// The longest any single wait may take.
pub const BOUND: Duration = Duration::from_secs(30);
