//! End-to-end tests of the `warmcache` binary: start-up on a free port,
//! serving over real HTTP/1.1 and graceful shutdown on SIGTERM (bad
//! configurations: tests/binary_config.rs).
//!
//! Every wait is bounded (tests/binary_support), so a broken binary fails a
//! test with a message (and the child is killed on drop) instead of hanging it.

mod binary_support;
mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep};

use binary_support::*;

// ---------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------

#[tokio::test]
async fn serves_the_dashboard_with_etags_over_http() {
    let mut server = Server::start().await;
    server.wait_ready().await;

    let health = get(server.port, "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{}", health.body_text());

    let dashboard = get(server.port, "/dashboard", &[]).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body_text());
    assert_eq!(dashboard.header("content-type"), Some("application/json"));
    let etag = dashboard
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag in {:?}", dashboard.headers))
        .to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(
        dashboard
            .header("cache-control")
            .is_some_and(|v| v.starts_with("max-age=")),
        "{:?}",
        dashboard.headers
    );
    let json: serde_json::Value =
        serde_json::from_slice(&dashboard.body).expect("the dashboard is JSON");
    assert_eq!(json["currency"], "USD");
    assert!(json["kpis"]["today"]["revenue"].is_number(), "{json}");

    let revalidated = get(server.port, "/dashboard", &[("If-None-Match", &etag)]).await;
    assert_eq!(revalidated.status, 304, "{}", revalidated.body_text());
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));

    let snapshot = get(server.port, "/snapshot", &[]).await;
    let status: serde_json::Value =
        serde_json::from_slice(&snapshot.body).expect("/snapshot is JSON");
    assert_eq!(status["mode"], "mock");
    assert_eq!(status["sections"]["dashboard"]["etag"], etag.as_str());

    let missing = get(server.port, "/missing", &[]).await;
    assert_eq!(missing.status, 404);

    // No Redis on this machine's chosen port: keyed routes say so clearly,
    // while mock profiles still come from their loader.
    let keyed = get(server.port, "/age-verification/c1", &[]).await;
    assert_eq!(keyed.status, 503);
    assert!(String::from_utf8_lossy(&keyed.body).contains("redis_unavailable"));
    let profile = get(server.port, "/customers/c1/profile", &[]).await;
    assert_eq!(profile.status, 200);

    server.sigterm();
    let (status, stderr) = server.wait_exit().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    assert_no_panic(&stderr);
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let mut server = Server::start().await;
    server.wait_ready().await;

    // A request in flight: headers sent but not finished. (A fresh
    // connection: hyper closes connections that are idle between requests.)
    let mut in_flight = bounded("connect", TcpStream::connect(("127.0.0.1", server.port)))
        .await
        .expect("connect");
    bounded(
        "write",
        in_flight.write_all(b"GET /dashboard HTTP/1.1\r\nHost: x\r\n"),
    )
    .await
    .expect("write the first half of the request");
    // The accept loop takes connections in order: once a later connection
    // has been served, the in-flight one has been accepted too.
    assert_eq!(get(server.port, "/healthz", &[]).await.status, 200);

    server.sigterm();
    server.wait_for_line("SIGTERM received").await;

    // New connections are refused once the listener is closed...
    let deadline = Instant::now() + BOUND;
    loop {
        match TcpStream::connect(("127.0.0.1", server.port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            // Reset while the listener was closing; the next try tells.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("unexpected connect error: {e}"),
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "still accepting connections {BOUND:?} after SIGTERM"
        );
        sleep(Duration::from_millis(10)).await;
    }
    // ...but the process waits for the request in flight.
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "exited with a request in flight; stderr:\n{}",
        server.stderr_text()
    );

    bounded("write", in_flight.write_all(b"Connection: close\r\n\r\n"))
        .await
        .expect("write the rest of the request");
    let mut raw = Vec::new();
    bounded("the in-flight response", in_flight.read_to_end(&mut raw))
        .await
        .expect("read the in-flight response");
    let response = parse_response(&raw);
    assert_eq!(response.status, 200, "{}", response.body_text());
    let json: serde_json::Value =
        serde_json::from_slice(&response.body).expect("a complete JSON body");
    assert_eq!(json["currency"], "USD");

    let (status, stderr) = server.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.trim_end().ends_with("stopped")),
        "{stderr}"
    );
    assert_no_panic(&stderr);
}
