//! The examples in `examples/` run and do what their docs say: each is
//! started as its own process (the binaries `cargo test` builds), without
//! Redis and, where it can use one, against a redis-server of its own.
//! Plain `cargo test` builds the examples before running this.

use std::path::PathBuf;
use std::process::Command;

use warmcache::testing::RedisServer;

/// `target/<profile>/examples/<name>`, next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("test binary path");
    let profile_dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

/// Runs the example to its end; its stdout, after checking it succeeded.
fn run(name: &str, redis_port: Option<u16>) -> String {
    let mut command = Command::new(example(name));
    command.env_remove("REDIS_PORT");
    if let Some(port) = redis_port {
        command.env("REDIS_PORT", port.to_string());
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "{name}: cannot start {:?}: {e}; plain `cargo test` builds the examples \
                 (with `--test examples` alone, run `cargo build --examples` first)",
            example(name)
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_worker_serves_repeat_customers_from_l1_with_and_without_redis() {
    let alone = run("worker", None);
    assert!(
        alone.contains("180 orders accepted, 20 refused; database read 20 times; cache: 180 L1 hits, 0 L2 hits, 20 loads"),
        "{alone}"
    );
    let server = RedisServer::start();
    run("worker", Some(server.port()));
    // A second worker finds every record in Redis: the database is not read.
    let second = run("worker", Some(server.port()));
    assert!(second.contains("database read 0 times"), "{second}");
}

#[test]
fn the_embedded_router_serves_host_and_warmcache_routes() {
    let alone = run("embed_router", None);
    assert!(alone.contains("GET /hello -> 200 OK"), "{alone}");
    assert!(
        alone.contains("GET /cache/dashboard -> 200 OK") && alone.contains(" br\n"),
        "{alone}"
    );
    assert!(
        alone.contains("GET /cache/age-verification/cust-1 -> 503"),
        "without Redis the keyed routes answer 503: {alone}"
    );
    let server = RedisServer::start();
    let with_redis = run("embed_router", Some(server.port()));
    assert!(
        with_redis.contains("GET /cache/age-verification/cust-1 -> 404 Not Found"),
        "with Redis (holding no record) the keyed route answers: {with_redis}"
    );
}

#[test]
fn the_custom_snapshot_example_refreshes_and_serves_its_route() {
    let out = run("custom_snapshot", None);
    assert!(out.contains("generation 1: 20 orders"), "{out}");
    assert!(out.contains("GET /orders -> HTTP/1.1 200 OK"), "{out}");
}
