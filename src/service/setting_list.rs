//! [`SETTINGS`]: every setting of the reference service, its environment
//! variable, its flag and its help, in the order `--help` and the README
//! show them.

use crate::settings::vars;

/// One setting: its environment variable, its command-line flag and its help.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Environment variable, e.g. `BQ_CACHE_TTL_MS`. Also the clap argument id.
    pub env: &'static str,
    /// Long flag without dashes, e.g. `ttl-ms`; `None` for secrets, which
    /// must not appear on a command line (`ps` shows it to everyone).
    pub flag: Option<&'static str>,
    /// Default as shown to people (`None` when unset means "off").
    pub default: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

/// All settings, in the order `--help` and the README show them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: vars::LISTEN,
        flag: Some("listen"),
        default: Some("127.0.0.1:8080"),
        help: "Address the HTTP API listens on (port 0 picks a free port)",
    },
    Setting {
        env: vars::METRICS_LISTEN,
        flag: Some("metrics-listen"),
        default: Some("127.0.0.1:9464"),
        help: "Address GET /metrics listens on, apart from the API (port 0 picks a free port)",
    },
    Setting {
        env: vars::MODE,
        flag: Some("mode"),
        default: Some("auto"),
        help: "Data source: auto (live when BQ_PROJECT_ID is set, else mock), live or mock",
    },
    Setting {
        env: vars::BQ_PROJECT_ID,
        flag: Some("bq-project-id"),
        default: None,
        help: "Google Cloud project to query; setting it selects live mode under --mode auto",
    },
    Setting {
        env: vars::BQ_DATASET,
        flag: Some("bq-dataset"),
        default: None,
        help: "BigQuery dataset of the tables (required in live mode)",
    },
    Setting {
        env: vars::BQ_TRANSACTIONS_TABLE,
        flag: Some("bq-transactions-table"),
        default: Some("transactions"),
        help: "Transactions table: table, dataset.table or project.dataset.table",
    },
    Setting {
        env: vars::BQ_PRODUCTS_TABLE,
        flag: Some("bq-products-table"),
        default: Some("products"),
        help: "Products table: table, dataset.table or project.dataset.table",
    },
    Setting {
        env: vars::BQ_QUERY_DIR,
        flag: Some("bq-query-dir"),
        default: None,
        help: "Directory whose dashboard.sql, historical.sql or products.sql replace the built-in queries",
    },
    Setting {
        env: vars::BQ_MAXIMUM_BYTES_BILLED,
        flag: Some("bq-maximum-bytes-billed"),
        default: Some("1073741824"),
        help: "Cap on the bytes one query may bill (10485760 to 109951162777600); over it the refresh fails",
    },
    Setting {
        env: vars::BQ_CURRENCY,
        flag: Some("bq-currency"),
        default: Some("USD"),
        help: "ISO 4217 code of the amounts in live mode",
    },
    Setting {
        env: vars::BQ_HTTP_TIMEOUT_MS,
        flag: Some("bq-http-timeout-ms"),
        default: Some("15000"),
        help: "Time bound of every HTTP call to BigQuery and its token endpoint, and of building the client, in milliseconds (100 to 600000)",
    },
    Setting {
        env: vars::BIGQUERY_EMULATOR_HOST,
        flag: Some("bigquery-emulator-host"),
        default: None,
        help: "host:port of a BigQuery emulator; set, live mode queries it over HTTP with no credentials",
    },
    Setting {
        env: vars::GOOGLE_APPLICATION_CREDENTIALS,
        flag: None,
        default: None,
        help: "Service-account key file (environment only); unset: application default credentials (metadata server)",
    },
    Setting {
        env: vars::TTL_MS,
        flag: Some("ttl-ms"),
        default: Some("30000"),
        help: "Snapshot refresh period in milliseconds (1000 to 86400000)",
    },
    Setting {
        env: vars::REFRESH_TIMEOUT_MS,
        flag: Some("refresh-timeout-ms"),
        default: Some("10000"),
        help: "Time bound of one refresh in milliseconds (100 to 600000)",
    },
    Setting {
        env: vars::REFRESH_JITTER,
        flag: Some("refresh-jitter"),
        default: Some("0.1"),
        help: "Random spread of each refresh period, as a fraction (0 to 0.5)",
    },
    Setting {
        env: vars::MAX_STALENESS_MS,
        flag: Some("max-staleness-ms"),
        default: Some("4 x BQ_CACHE_TTL_MS"),
        help: "Data age in milliseconds after which /readyz answers 503 (at least the TTL)",
    },
    Setting {
        env: vars::MOCK_SEED,
        flag: Some("mock-seed"),
        default: Some("42"),
        help: "Seed of the generated mock data (any unsigned 64-bit number)",
    },
    Setting {
        env: vars::MOCK_FAIL_EVERY,
        flag: Some("mock-fail-every"),
        default: Some("0"),
        help: "Mock mode only: every Nth refresh fails, to see stale-if-error at work (0: never)",
    },
    Setting {
        env: vars::LOG_FORMAT,
        flag: Some("log-format"),
        default: Some("text"),
        help: "Log format: text or json (filter with RUST_LOG, default info)",
    },
    Setting {
        env: vars::L1_MAX_BYTES,
        flag: Some("l1-max-bytes"),
        default: Some("33554432"),
        help: "In-process (L1) budget of each keyed cache, in bytes (0 to 17179869184)",
    },
    Setting {
        env: vars::L1_TTL_MS,
        flag: Some("l1-ttl-ms"),
        default: Some("60000"),
        help: "Longest life of an L1 entry in milliseconds (also bounded by the key's Redis TTL)",
    },
    Setting {
        env: vars::L1_GRACE_MS,
        flag: Some("l1-grace-ms"),
        default: Some("1000"),
        help: "L1 lease: entries are served until the send time of the last probe (HELLO, or PING over RESP2) a primary answered, plus this (0: never while the listener runs)",
    },
    Setting {
        env: vars::FALLBACK_L1_TTL_MS,
        flag: Some("fallback-l1-ttl-ms"),
        default: Some("5000"),
        help: "Longest L1 life when Redis refuses CLIENT TRACKING and pub/sub invalidation is used",
    },
    Setting {
        env: vars::BULLMQ_QUEUE,
        flag: Some("bullmq-queue"),
        default: None,
        help: "BullMQ queue whose jobs GET /jobs/{jobId} reports and whose events are followed (unset: BullMQ off)",
    },
    Setting {
        env: vars::BULLMQ_PREFIX,
        flag: Some("bullmq-prefix"),
        default: Some("bull"),
        help: "BullMQ key prefix; hash-tagged (e.g. {bull}) in a Redis Cluster",
    },
    Setting {
        env: vars::BULLMQ_EXPOSE_DATA,
        flag: Some("bullmq-expose-data"),
        default: Some("false"),
        help: "Include the job's data (the prompt, maybe personal data) in job answers: true or false",
    },
    Setting {
        env: vars::RECORD_TIME_FORMAT,
        flag: Some("record-time-format"),
        default: Some("iso"),
        help: "How new record times are written: iso (Date#toISOString) or epoch_ms (Date.now()); updates keep a record's form",
    },
    Setting {
        env: "REDIS_HOST",
        flag: Some("redis-host"),
        default: Some("127.0.0.1"),
        help: "Redis host name or IP address",
    },
    Setting {
        env: "REDIS_PORT",
        flag: Some("redis-port"),
        default: Some("6379"),
        help: "Redis port",
    },
    Setting {
        env: "REDIS_USERNAME",
        flag: Some("redis-username"),
        default: None,
        help: "Redis ACL user",
    },
    Setting {
        env: "REDIS_PASSWORD",
        flag: None,
        default: None,
        help: "Redis password (environment only; never logged)",
    },
    Setting {
        env: "REDIS_USE_TLS",
        flag: Some("redis-use-tls"),
        default: Some("false"),
        help: "Connect to Redis with TLS: true or false",
    },
    Setting {
        env: "REDIS_TLS_CA_FILE",
        flag: Some("redis-tls-ca-file"),
        default: None,
        help: "PEM file of the CA of the Redis server certificate (default: the system roots)",
    },
    Setting {
        env: "REDIS_DB",
        flag: Some("redis-db"),
        default: Some("0"),
        help: "Redis database number, 0 to 15",
    },
    Setting {
        env: "REDIS_TIMEOUT_MS",
        flag: Some("redis-timeout-ms"),
        default: Some("250"),
        help: "Time bound of every Redis operation in milliseconds (10 to 60000)",
    },
    Setting {
        env: "REDIS_CONNECT_TIMEOUT_MS",
        flag: Some("redis-connect-timeout-ms"),
        default: Some("1000"),
        help: "Time bound of one Redis connection attempt in milliseconds (10 to 60000)",
    },
    Setting {
        env: "WARMCACHE_TOMBSTONE_TTL_MS",
        flag: Some("tombstone-ttl-ms"),
        default: Some("60000"),
        help: "Life of an erasure's tombstone, which stops loaders on any instance from writing the erased value back (1000 to 86400000 ms)",
    },
    Setting {
        env: "WARMCACHE_ERASURE_REPLICAS",
        flag: Some("erasure-replicas"),
        default: Some("0"),
        help: "Replicas an erasure waits for (WAIT) so that a failover cannot undo it (0 to 64; 0: do not wait)",
    },
    Setting {
        env: "WARMCACHE_ERASURE_WAIT_MS",
        flag: Some("erasure-wait-ms"),
        default: Some("100"),
        help: "How long an erasure waits for those replicas before it reports a shortfall (1 to 60000 ms)",
    },
    Setting {
        env: "REDIS_MODE",
        flag: Some("redis-mode"),
        default: Some("standalone"),
        help: "standalone (one server), cluster (a Redis Cluster; REDIS_HOST:REDIS_PORT is a seed node) or sentinel (the primary the sentinels name)",
    },
    Setting {
        env: "REDIS_CLUSTER_NODES",
        flag: Some("redis-cluster-nodes"),
        default: None,
        help: "More cluster seed nodes, comma-separated host:port (cluster mode)",
    },
    Setting {
        env: "REDIS_SENTINELS",
        flag: Some("redis-sentinels"),
        default: None,
        help: "Sentinels asked for the primary, in order, comma-separated host:port (required in sentinel mode)",
    },
    Setting {
        env: "REDIS_SENTINEL_MASTER",
        flag: Some("redis-sentinel-master"),
        default: Some("mymaster"),
        help: "Name the sentinels monitor the primary under (sentinel mode)",
    },
    Setting {
        env: "REDIS_SENTINEL_USERNAME",
        flag: Some("redis-sentinel-username"),
        default: None,
        help: "ACL user on the sentinels (sentinel mode; the data nodes use REDIS_USERNAME)",
    },
    Setting {
        env: "REDIS_SENTINEL_PASSWORD",
        flag: None,
        default: None,
        help: "Password of the sentinels (environment only; never logged; the data nodes use REDIS_PASSWORD)",
    },
    Setting {
        env: "REDIS_SENTINEL_ROLE_CHECK_MS",
        flag: Some("redis-sentinel-role-check-ms"),
        default: Some("1000"),
        help: "How often the primary is asked ROLE, to catch a missed +switch-master (sentinel mode, 50 to 3600000)",
    },
];
