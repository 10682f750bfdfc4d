//! What leaves the service when Redis or a loader fails: HTTP error bodies
//! carry the stable code and a fixed message (never Redis's text: hosts,
//! ports, ACL users and commands), and log lines at `warn` and above name
//! the keyspace and a hash of the id, never the id.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{Method, StatusCode};
use redis::AsyncCommands;
use support::RedisServer;
use support::keyed::{Answer, keyed_router, send};
use tracing_subscriber::fmt::MakeWriter;
use warmcache::records::CUSTOMER_PROFILE;
use warmcache::redact::id_hash;
use warmcache::{CacheError, RedisHandle, Secret, TieredCache};

const REDIS_DOWN_BODY: &str =
    r#"{"error":{"code":"redis_unavailable","message":"redis is unavailable; retry shortly"}}"#;

fn assert_generic_503(answer: &Answer, leaks: &[&str]) {
    let body = String::from_utf8_lossy(&answer.body);
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, REDIS_DOWN_BODY);
    for leak in leaks {
        assert!(!body.contains(leak), "`{leak}` in {body}");
    }
}

#[tokio::test]
async fn redis_failures_answer_with_the_code_and_a_fixed_message_only() {
    // An ACL user that may not read: Redis refuses with its NOPERM text.
    let mut server = RedisServer::start();
    let mut admin = server.foreign().await;
    redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "reader-denied",
            "on",
            ">acl-Pw-31c7",
            "~*",
            "&*",
            "+@all",
            "-get",
        ])
        .query_async::<()>(&mut admin)
        .await
        .expect("ACL SETUSER");
    let mut config = server.config();
    config.username = Some("reader-denied".to_owned());
    config.password = Some(Secret::new("acl-Pw-31c7"));
    let denied = keyed_router(&config, false);
    let answer = send(&denied, Method::GET, "/age-verification/c1", None).await;
    let port = server.port().to_string();
    assert_generic_503(
        &answer,
        &["NOPERM", "reader-denied", "get", "127.0.0.1", &port],
    );

    // A server that is gone: the connection error names host and port.
    let router = keyed_router(&server.config(), false);
    server.kill();
    let answer = send(&router, Method::GET, "/jobs/j1", None).await;
    assert_generic_503(&answer, &["127.0.0.1", &port, "refused", "connection"]);
}

/// Everything written through it, for the one test that installs it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[tokio::test]
async fn warn_logs_name_the_keyspace_and_a_hash_never_the_id() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    // This thread only: the test runtime runs every task on it.
    let _installed = tracing::subscriber::set_default(subscriber);

    let server = RedisServer::start();
    let corrupt_id = "cust-corrupt-8842";
    let () = server
        .foreign()
        .await
        .set_ex(
            format!("age_verification:{corrupt_id}"),
            "{\"customerId\":",
            60,
        )
        .await
        .expect("setex");
    let router = keyed_router(&server.config(), false);
    let answer = send(
        &router,
        Method::GET,
        &format!("/age-verification/{corrupt_id}"),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);

    // A loader whose error quotes the id, as loaders do.
    let failing_id = "cust-loader-5531";
    let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
    let profiles: TieredCache<serde_json::Value> = TieredCache::builder(CUSTOMER_PROFILE)
        .redis(redis)
        .build()
        .expect("valid cache");
    let loaded = profiles
        .get_or_load(failing_id, |id| async move {
            Err::<serde_json::Value, _>(std::io::Error::other(format!(
                "the profile service has no customer {id}"
            )))
        })
        .await;
    assert!(loaded.is_err());

    let logs = captured.text();
    for (id, keyspace, what) in [
        (corrupt_id, "age_verification", "corrupt value"),
        (failing_id, "customer_profile", "loader failed"),
    ] {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(what)).collect();
        assert!(!lines.is_empty(), "no `{what}` line in:\n{logs}");
        for line in lines {
            assert!(line.contains(keyspace), "{line}");
            assert!(line.contains(&id_hash(id).to_string()), "{line}");
        }
        assert!(!logs.contains(id), "`{id}` logged:\n{logs}");
    }
    assert!(
        logs.contains("the profile service has no customer #"),
        "{logs}"
    );

    // The error itself may reach someone's log: its message hides the id too.
    let corrupt = CacheError::Corrupt {
        key: format!("age_verification:{corrupt_id}"),
        reason: "Eof error".to_owned(),
    };
    let message = corrupt.to_string();
    assert!(!message.contains(corrupt_id), "{message}");
    assert!(message.contains(&format!("age_verification:#{}", id_hash(corrupt_id))));
}
