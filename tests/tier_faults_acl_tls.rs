//! The two-tier cache as an ACL user limited to the three keyspaces, and
//! over TLS with a private CA, against real `redis-server` processes.
//!
//! Every cache call made while Redis is faulty is wrapped in `bounded`
//! (tests/support/faults.rs): the call must end within the operation
//! timeout plus one second of scheduling slack; that is the required
//! behaviour, not a speed measurement.

mod support;

use std::fmt::Debug;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use support::RedisServer;
use support::faults::{age, bounded, cache, get_raw, hit, json, l2_error, setex};
use warmcache::records::{
    AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE, JobStatus, Keyspace, OtherFields,
    REASONING_JOB, ReasoningJob, RecordTime, TimeFormat,
};
use warmcache::{L2Error, RedisConfig, RedisHandle, RedisSetupError, Secret, Tier, TieredCache};

// ---------------------------------------------------------------------------
// 4. ACL user
// ---------------------------------------------------------------------------

const WARM_PASSWORD: &str = "warm-Pw-7f3a9c";
const WRONG_PASSWORD: &str = "not-it-51e2d8";
const ADMIN_PASSWORD: &str = "admin-Pw-0b44";

/// A server whose default user is off; `admin` may do anything and `warm`
/// may run only the commands the crate sends (`GET`, `PTTL`, `SET`, `SETEX`,
/// `DEL`, `PING`; `AUTH` is always allowed and redis-rs ignores the failure
/// of its `CLIENT SETINFO`) on the three keyspaces. Returns an admin connection.
async fn acl_server() -> (RedisServer, MultiplexedConnection) {
    let server = RedisServer::start_with(&[]);
    let mut conn = server.foreign().await;
    let setuser = |args: &[&str]| {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(args);
        cmd
    };
    for cmd in [
        setuser(&[
            "admin",
            "on",
            &format!(">{ADMIN_PASSWORD}"),
            "~*",
            "&*",
            "+@all",
        ]),
        setuser(&[
            "warm",
            "reset",
            "on",
            &format!(">{WARM_PASSWORD}"),
            "~age_verification:*",
            "~customer_profile:*",
            "~reasoning_job:*",
            "~warmcache:erased:*",
            "+get",
            "+pttl",
            "+set",
            "+setex",
            "+del",
            "+eval",
            "+exists",
            "+ping",
        ]),
        setuser(&["default", "off"]),
    ] {
        cmd.query_async::<()>(&mut conn).await.expect("ACL SETUSER");
    }
    let admin = redis::Client::open(format!(
        "redis://admin:{ADMIN_PASSWORD}@127.0.0.1:{}/",
        server.port()
    ))
    .expect("admin client");
    let admin = admin
        .get_multiplexed_async_connection()
        .await
        .expect("admin connects");
    (server, admin)
}

fn acl_config(server: &RedisServer, password: &str) -> RedisConfig {
    let mut config = server.config();
    config.username = Some("warm".to_owned());
    config.password = Some(Secret::new(password));
    config
}

/// insert, get (L1 and Redis), get_or_load and invalidate on one keyspace,
/// checked through the admin connection.
async fn exercise<V>(
    cache: &TieredCache<V>,
    admin: &mut MultiplexedConnection,
    a: V,
    b: V,
    foreign: V,
) where
    V: serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + Debug
        + PartialEq
        + Send
        + Sync
        + 'static,
{
    let name = cache.keyspace().name;
    let key = |id: &str| format!("{name}:{id}");

    let stored = cache
        .insert("acl-1", a.clone())
        .await
        .expect("insert as warm");
    assert_eq!(
        get_raw(admin, &key("acl-1")).await,
        Some(json(&a)),
        "SETEX as warm"
    );
    assert_eq!(stored.json(), json(&a).as_bytes());
    assert_eq!(hit("get", cache.get("acl-1").await), (a.clone(), Tier::L1));
    let from_redis = cache
        .get_from_l2("acl-1")
        .await
        .expect("GET and PTTL as warm")
        .expect("present");
    assert_eq!((from_redis.value(), from_redis.tier()), (&a, Tier::L2));

    setex(admin, &key("acl-2"), 600, &json(&foreign)).await;
    assert_eq!(
        hit("get foreign", cache.get("acl-2").await),
        (foreign, Tier::L2)
    );

    let loaded = cache
        .get_or_load("acl-3", |_| async { Ok::<V, std::io::Error>(b.clone()) })
        .await
        .expect("get_or_load as warm");
    assert_eq!((loaded.value(), loaded.tier()), (&b, Tier::Loader));
    assert_eq!(
        get_raw(admin, &key("acl-3")).await,
        Some(json(&b)),
        "SET NX EX as warm stored the loaded value"
    );

    cache.invalidate("acl-1").await.expect("DEL as warm");
    assert_eq!(get_raw(admin, &key("acl-1")).await, None);
    assert!(cache.get("acl-1").await.expect("read as warm").is_none());
}

/// An ACL user limited to the three keyspaces can do everything the cache
/// needs; a key outside them is refused without opening the breaker; a wrong
/// password is `L2Error::Auth` and no password is ever printed.
#[tokio::test]
async fn an_acl_user_limited_to_the_three_keyspaces_works_and_secrets_stay_hidden() {
    let (server, mut admin) = acl_server().await;
    let config = acl_config(&server, WARM_PASSWORD);
    let op = config.op_timeout;
    let handle = RedisHandle::connect_lazy(&config).expect("handle");
    assert_eq!(bounded("ping as warm", op, handle.ping()).await, Ok(()));

    let ages = cache::<AgeVerification>(AGE_VERIFICATION, &handle);
    exercise(
        &ages,
        &mut admin,
        age("acl", "a"),
        age("acl", "b"),
        age("acl", "foreign"),
    )
    .await;

    let profiles = cache::<serde_json::Value>(CUSTOMER_PROFILE, &handle);
    let profile =
        |n: u32| serde_json::json!({ "customerId": "acl", "name": format!("Name {n}"), "tier": n });
    exercise(&profiles, &mut admin, profile(1), profile(2), profile(3)).await;

    let jobs = cache::<ReasoningJob>(REASONING_JOB, &handle);
    let job = |status| ReasoningJob {
        job_id: "acl".to_owned(),
        status,
        result: None,
        error: None,
        added_at: RecordTime::from_unix_ms(1_767_225_600_000, TimeFormat::Iso),
        started_at: None,
        finished_at: None,
        other: OtherFields::new(),
    };
    exercise(
        &jobs,
        &mut admin,
        job(JobStatus::Waiting),
        job(JobStatus::Active),
        job(JobStatus::Completed),
    )
    .await;

    // Outside the three patterns: the server refuses (NOPERM). It answered,
    // so that is `Refused`, and refusals do not open the breaker.
    let other = cache::<AgeVerification>(
        Keyspace {
            name: "session",
            ttl: Duration::from_secs(60),
        },
        &handle,
    );
    for n in 0..4 {
        let e = l2_error(
            "insert outside the ACL",
            bounded(
                "insert session",
                op,
                other.insert(&format!("s{n}"), age("s", "x")),
            )
            .await,
        );
        assert!(
            matches!(&e, L2Error::Refused(text) if text.to_ascii_uppercase().contains("NOPERM")),
            "{e:?}"
        );
    }
    assert!(!handle.is_unavailable(), "a server that answers is up");
    assert_eq!(get_raw(&mut admin, "session:s0").await, None);
    ages.insert("still-fine", age("still-fine", "a"))
        .await
        .expect("the handle still works");

    // Debug output of the settings, the handle and the cache holds no password.
    for shown in [
        format!("{config:?}"),
        format!("{handle:?}"),
        format!("{ages:?}"),
    ] {
        assert!(!shown.contains(WARM_PASSWORD), "password in {shown}");
    }
    assert!(format!("{config:?}").contains("***"));

    // A wrong password: `Auth`, bounded, and neither password in the error.
    let wrong = RedisHandle::connect_lazy(&acl_config(&server, WRONG_PASSWORD)).expect("handle");
    let e = bounded("ping with a wrong password", op, wrong.ping())
        .await
        .expect_err("wrong password");
    assert!(matches!(e, L2Error::Auth(_)), "{e:?}");
    let wrong_cache = cache::<AgeVerification>(AGE_VERIFICATION, &wrong);
    let cache_error = bounded("get with a wrong password", op, wrong_cache.get("acl-2"))
        .await
        .expect_err("wrong password");
    for shown in [
        e.to_string(),
        format!("{e:?}"),
        cache_error.to_string(),
        format!("{cache_error:?}"),
        format!("{wrong:?}"),
    ] {
        assert!(
            !shown.contains(WRONG_PASSWORD) && !shown.contains(WARM_PASSWORD),
            "a password is shown: {shown}"
        );
    }

    // No credentials while the default user is off: also `Auth` (NOAUTH).
    let anonymous = RedisHandle::connect_lazy(&server.config()).expect("handle");
    let e = bounded("ping without credentials", op, anonymous.ping())
        .await
        .expect_err("default user is off");
    assert!(matches!(e, L2Error::Auth(_)), "{e:?}");
}

// ---------------------------------------------------------------------------
// 5. TLS
// ---------------------------------------------------------------------------

/// TLS to a server whose certificate a private CA signed for 127.0.0.1: the
/// cache round-trips values, reads what a foreign TLS client wrote, rejects
/// the server without the CA, and a missing CA file is a setup error.
#[tokio::test]
async fn tls_with_a_private_ca_round_trips_and_verifies_the_server() {
    let files = support::TlsFiles::generate();
    let server = RedisServer::start_tls(&files.cert, &files.key, &files.ca);
    let mut config = server.config();
    config.host = "127.0.0.1".to_owned();
    config.use_tls = true;
    config.tls_ca_file = Some(files.ca.clone());
    let op = config.op_timeout;
    let handle = RedisHandle::connect_lazy(&config).expect("handle");
    assert_eq!(bounded("ping over TLS", op, handle.ping()).await, Ok(()));
    let cache = cache::<AgeVerification>(AGE_VERIFICATION, &handle);

    cache
        .insert("tls-1", age("tls-1", "id_document"))
        .await
        .expect("insert over TLS");
    assert_eq!(
        hit("get", cache.get("tls-1").await),
        (age("tls-1", "id_document"), Tier::L1)
    );
    let from_redis = cache
        .get_from_l2("tls-1")
        .await
        .expect("read over TLS")
        .expect("present");
    assert_eq!(
        (from_redis.value(), from_redis.tier()),
        (&age("tls-1", "id_document"), Tier::L2)
    );

    // A foreign client, also over TLS with the same CA.
    let ca_pem = std::fs::read(&files.ca).expect("read CA");
    let foreign = redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{}/", server.port()),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_pem),
        },
    )
    .expect("TLS client");
    let mut foreign = foreign
        .get_multiplexed_async_connection()
        .await
        .expect("foreign TLS connects");
    assert_eq!(
        get_raw(&mut foreign, "age_verification:tls-1").await,
        Some(json(&age("tls-1", "id_document")))
    );
    setex(
        &mut foreign,
        "age_verification:tls-2",
        3600,
        &json(&age("tls-2", "bank_id")),
    )
    .await;
    assert_eq!(
        hit("get foreign", cache.get("tls-2").await),
        (age("tls-2", "bank_id"), Tier::L2)
    );

    // Without the private CA (system roots) the server is not trusted. Loading
    // the system roots and the manager's one retry can take longer than
    // 200 ms in a debug build, so this handle gets a longer timeout in order
    // to see the verification error itself rather than a timeout.
    let mut untrusted = config.clone();
    untrusted.tls_ca_file = None;
    untrusted.op_timeout = Duration::from_secs(5);
    let untrusted = RedisHandle::connect_lazy(&untrusted).expect("handle");
    let e = bounded(
        "ping without the CA",
        Duration::from_secs(5),
        untrusted.ping(),
    )
    .await
    .expect_err("unknown CA is rejected");
    assert!(
        matches!(&e, L2Error::Connection(text) if text.contains("certificate")),
        "{e:?}"
    );

    // A CA file that does not exist fails at setup, naming the file.
    let mut missing = config.clone();
    missing.tls_ca_file = Some(files.dir.join("no-such-ca.pem"));
    match RedisHandle::connect_lazy(&missing) {
        Err(RedisSetupError::CaFile { path, source }) => {
            assert!(path.ends_with("no-such-ca.pem"), "{path}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected RedisSetupError::CaFile, got {other:?}"),
    }
}
