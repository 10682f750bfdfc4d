//! End-to-end tests of the `warmcache` binary's bad configurations: the
//! exit status and the one-line message naming the setting, never a secret.
//!
//! Every wait is bounded (tests/binary_support), so a broken binary fails a
//! test with a message (and the child is killed on drop) instead of hanging it.

mod binary_support;
mod support;

use binary_support::*;

// ---------------------------------------------------------------------------
// Bad configuration
// ---------------------------------------------------------------------------

/// A bad configuration and what its error line must name.
struct BadConfig {
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// The setting the message must name.
    name: &'static str,
    /// The rejected value, quoted in the message.
    value: &'static str,
}

#[tokio::test]
async fn invalid_settings_exit_2_with_one_line_naming_the_setting() {
    let cases = [
        BadConfig {
            env: &[("BQ_CACHE_TTL_MS", "abc")],
            args: &[],
            name: "BQ_CACHE_TTL_MS",
            value: "abc",
        },
        BadConfig {
            env: &[("WARMCACHE_MODE", "bogus")],
            args: &[],
            name: "WARMCACHE_MODE",
            value: "bogus",
        },
        BadConfig {
            env: &[("WARMCACHE_REFRESH_JITTER", "2")],
            args: &[],
            name: "WARMCACHE_REFRESH_JITTER",
            value: "2",
        },
        BadConfig {
            env: &[],
            args: &["--ttl-ms", "0"],
            name: "BQ_CACHE_TTL_MS",
            value: "0",
        },
        BadConfig {
            env: &[],
            args: &["serve", "--ttl-ms", "0"],
            name: "BQ_CACHE_TTL_MS",
            value: "0",
        },
        // The flag wins over a valid environment variable.
        BadConfig {
            env: &[("BQ_CACHE_TTL_MS", "5000")],
            args: &["--ttl-ms", "0"],
            name: "BQ_CACHE_TTL_MS",
            value: "0",
        },
    ];
    for BadConfig {
        env,
        args,
        name,
        value,
    } in cases
    {
        let (status, stdout, stderr) = run_to_exit(env, args).await;
        let case = format!("env {env:?}, args {args:?}");
        assert_eq!(
            status.code(),
            Some(2),
            "{case}: {status}; stderr:\n{stderr}"
        );
        assert_no_panic(&stderr);
        assert!(stdout.is_empty(), "{case}: stdout:\n{stdout}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{case}: exactly one line expected:\n{stderr}"
        );
        assert!(stderr.ends_with('\n'), "{case}: {stderr:?}");
        assert!(stderr.contains(name), "{case}: {stderr}");
        assert!(stderr.contains(&format!("\"{value}\"")), "{case}: {stderr}");
    }
}

#[tokio::test]
async fn live_mode_without_a_dataset_exits_2_naming_it() {
    let (status, _stdout, stderr) = run_to_exit(&[("BQ_PROJECT_ID", "some-project")], &[]).await;
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("BQ_DATASET"), "{stderr}");
    assert!(
        stderr.contains("BQ_PROJECT_ID"),
        "says why it is needed: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_no_panic(&stderr);
}

/// Live mode with a key file that is missing, or present but unusable:
/// start-up fails naming the file, and never shows what is inside it.
#[cfg(feature = "bigquery")]
#[tokio::test]
async fn live_mode_with_a_bad_key_file_fails_start_up_naming_it() {
    let dir = support::temp_dir("key-file");
    let missing = dir.join("missing-key.json");
    let partial = dir.join("partial-key.json");
    std::fs::write(
        &partial,
        r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----TOPSECRET"}"#,
    )
    .expect("write the key file");
    for (key, problem) in [
        (&missing, "the file does not exist"),
        (&partial, "missing field"),
    ] {
        let key_path = key.display().to_string();
        let (status, _stdout, stderr) = run_to_exit(
            &[
                ("BQ_PROJECT_ID", "some-project"),
                ("BQ_DATASET", "shop"),
                ("GOOGLE_APPLICATION_CREDENTIALS", key_path.as_str()),
            ],
            &[],
        )
        .await;
        assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
        assert!(
            stderr.contains("GOOGLE_APPLICATION_CREDENTIALS") && stderr.contains(&key_path),
            "{stderr}"
        );
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!stderr.contains("TOPSECRET"), "{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
        assert_no_panic(&stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Built without the `bigquery` feature, a complete live configuration is
/// refused with a message saying what the build lacks.
#[cfg(not(feature = "bigquery"))]
#[tokio::test]
async fn live_mode_is_refused_cleanly_without_the_bigquery_feature() {
    let (status, _stdout, stderr) = run_to_exit(
        &[("BQ_PROJECT_ID", "some-project"), ("BQ_DATASET", "shop")],
        &[],
    )
    .await;
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("`bigquery` feature"), "{stderr}");
    assert!(stderr.contains("BQ_PROJECT_ID"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_no_panic(&stderr);
}

#[tokio::test]
async fn a_wrong_redis_password_stops_start_up_without_showing_it() {
    let redis = support::RedisServer::start_with(&["--requirepass", "the-right-pass"]);
    let port = redis.port().to_string();
    let (status, _stdout, stderr) = run_to_exit(
        &[
            ("REDIS_PORT", port.as_str()),
            ("REDIS_PASSWORD", "a-wrong-pass-123"),
        ],
        &[],
    )
    .await;
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("redis refused the credentials"), "{stderr}");
    assert!(
        !stderr.contains("a-wrong-pass-123") && !stderr.contains("the-right-pass"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert_no_panic(&stderr);
}
