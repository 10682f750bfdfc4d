//! The axum reference service: routes, state, start-up and graceful shutdown.
//!
//! [`app`] builds the router from an [`AppState`] (tests call it without a
//! socket); [`run`] wires a whole service from a [`Config`]: source,
//! refresher, listener, and shutdown on a signal.

mod accept_encoding;
mod baseline;
mod config;
mod error;
mod health;
mod http_metrics;
mod job_routes;
mod keyed_routes;
mod metrics_endpoint;
mod profile;
mod setting_list;
pub mod shutdown;
mod snapshot_routes;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use axum::http::Uri;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::records::CustomerProfile;
pub use config::{Config, LogFormat};
pub use error::ApiError;
pub use keyed_routes::MAX_BODY_BYTES;
pub use setting_list::{SETTINGS, Setting};

use crate::bullmq::{BullmqJobs, FollowerOptions};
use crate::l2::{L2Error, RedisHandle, RedisSetupError};
use crate::metrics::JobReadMetrics;
use crate::records::{
    AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE, Keyspace, REASONING_JOB, ReasoningJob,
    TimeFormat,
};
use crate::refresher::{Refresher, RefresherBuilder};
use crate::settings::{ConfigError, vars};
use crate::snapshot::{Mode, SnapshotCache};
use crate::source::{BigQueryConfig, BigQuerySetupError, MockSource};
use crate::tier::TieredCache;

/// What every handler can reach. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The snapshot readers load from.
    pub snapshots: SnapshotCache,
    /// Refresh period, shown by `/snapshot`.
    pub ttl: Duration,
    /// Data older than this makes `/readyz` answer 503.
    pub max_staleness: Duration,
    /// The keyed caches; `None` answers their routes with 503. Behind one
    /// `Arc`, as every request clones the state.
    pub keyed: Option<Arc<KeyedCaches>>,
}

/// The three keyed caches of the reference service.
#[derive(Debug, Clone)]
pub struct KeyedCaches {
    /// `age_verification:{customerId}`.
    pub ages: TieredCache<AgeVerification>,
    /// `customer_profile:{customerId}`.
    pub profiles: TieredCache<CustomerProfile>,
    /// `reasoning_job:{jobId}`.
    pub jobs: TieredCache<ReasoningJob>,
    /// Mock mode: a missing profile is generated (the loader), so the whole
    /// L1, L2, loader path runs. Otherwise a missing profile is a 404.
    pub mock_profiles: bool,
    /// BullMQ's records, read when `reasoning_job` has no record of a job.
    pub bullmq: Option<BullmqJobs>,
    job_reads: Arc<JobReadMetrics>,
    /// How times warmcache creates are written (`WARMCACHE_RECORD_TIME_FORMAT`):
    /// a stamped `verifiedAt` or `updatedAt` of a new record, a mock profile.
    /// An update of an existing record keeps the form that record uses.
    pub time_format: TimeFormat,
}

/// One of the keyed caches: its reads serve the stored JSON as it is, so
/// L1 keeps the JSON alone.
fn served_as_stored<V>(
    keyspace: Keyspace,
    redis: &RedisHandle,
    l1_max_bytes: u64,
    l1_ttl: Duration,
) -> Result<TieredCache<V>, ConfigError>
where
    V: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    TieredCache::builder(keyspace)
        .l1_keeps_decoded(false)
        .redis(redis.clone())
        .l1_max_bytes(l1_max_bytes)
        .l1_ttl(l1_ttl)
        .build()
}

impl KeyedCaches {
    /// The three caches on one Redis server, with the given L1 limits. Their
    /// reads serve the stored JSON as it is, so L1 keeps the JSON alone
    /// ([`TieredCacheBuilder::l1_keeps_decoded`]).
    ///
    /// [`TieredCacheBuilder::l1_keeps_decoded`]: crate::tier::TieredCacheBuilder::l1_keeps_decoded
    ///
    /// # Errors
    /// Invalid L1 settings.
    pub fn new(
        redis: &RedisHandle,
        l1_max_bytes: u64,
        l1_ttl: Duration,
        mock_profiles: bool,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            ages: served_as_stored(AGE_VERIFICATION, redis, l1_max_bytes, l1_ttl)?,
            profiles: served_as_stored(CUSTOMER_PROFILE, redis, l1_max_bytes, l1_ttl)?,
            jobs: served_as_stored(REASONING_JOB, redis, l1_max_bytes, l1_ttl)?,
            mock_profiles,
            bullmq: None,
            job_reads: Arc::new(JobReadMetrics::register()),
            time_format: TimeFormat::default(),
        })
    }

    /// Answers jobs unknown to `reasoning_job` from BullMQ's records.
    pub fn with_bullmq(mut self, bullmq: BullmqJobs) -> Self {
        self.bullmq = Some(bullmq);
        self
    }
}

/// The router of the reference service.
pub fn app(state: AppState) -> Router {
    // Every handler, fallbacks included, counted and timed.
    let m = http_metrics::HttpMetricsLayer::register();
    let router = m.get(Router::new(), "/dashboard", snapshot_routes::dashboard);
    let router = m.get(router, "/historical", snapshot_routes::historical);
    let router = m.get(router, "/products", snapshot_routes::products);
    let router = m.get(router, "/snapshot", snapshot_routes::status);
    let router = m.get(router, "/healthz", health::healthz);
    let router = m.get(router, "/readyz", health::readyz);
    router
        .merge(keyed_routes::router(&m))
        .merge(job_routes::router(&m))
        .fallback(m.fallback(not_found))
        .method_not_allowed_fallback(m.fallback(method_not_allowed))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// Why the service could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Live mode was selected but this build has no BigQuery source (it
    /// was built without the `bigquery` cargo feature).
    #[error(
        "live mode (BQ_PROJECT_ID is set) needs the BigQuery source, which this build does not include (built without the `bigquery` feature); unset BQ_PROJECT_ID or set WARMCACHE_MODE=mock"
    )]
    LiveModeUnavailable,
    /// The BigQuery source could not be set up (key file, query files, client).
    #[error(transparent)]
    BigQuery(#[from] BigQuerySetupError),
    /// The Redis settings cannot be used.
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
    /// Redis refused the credentials: a wrong password or user must not
    /// start a service that then fails every keyed request.
    #[error("cannot start: {0}")]
    RedisAuth(L2Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(#[from] io::Error),
}

/// Extra routes for measurements; off in normal runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Adds `GET /_bench/constant`: a constant body the size of the
    /// dashboard, the baseline of `benches/http_load.sh`.
    pub bench_baseline: bool,
    /// The installed Prometheus recorder: serves `GET /metrics` on
    /// `config.metrics_listen`. `None`: no metrics endpoint.
    pub metrics: Option<PrometheusHandle>,
}

/// The service's refresher: its type names the source, and the mode picks
/// the source at start-up.
enum ServiceRefresher {
    Mock(Refresher<MockSource>),
    #[cfg(feature = "bigquery")]
    Live(Refresher<crate::source::BigQuerySource>),
}

impl ServiceRefresher {
    async fn shutdown(self) {
        match self {
            Self::Mock(refresher) => refresher.shutdown().await,
            #[cfg(feature = "bigquery")]
            Self::Live(refresher) => refresher.shutdown().await,
        }
    }
}

/// Builds the source of the configured mode and spawns its refresher (the
/// refresher is generic over the source, so each arm spawns its own type).
async fn spawn_refresher(
    config: &Config,
    snapshots: SnapshotCache,
) -> Result<ServiceRefresher, StartupError> {
    let builder = Refresher::builder().config(&config.refresh);
    match (config.mode, &config.bigquery) {
        (Mode::Mock, _) => Ok(ServiceRefresher::Mock(builder.spawn(
            MockSource::new(config.mock_seed).fail_every(config.mock_fail_every),
            snapshots,
        )?)),
        (Mode::Live, Some(bigquery)) => spawn_live(builder, bigquery, snapshots).await,
        (Mode::Live, None) => Err(StartupError::Config(ConfigError::new(
            vars::BQ_DATASET,
            "",
            "live-mode settings (Config::bigquery is None)",
        ))),
    }
}

#[cfg(feature = "bigquery")]
async fn spawn_live(
    builder: RefresherBuilder,
    bigquery: &BigQueryConfig,
    snapshots: SnapshotCache,
) -> Result<ServiceRefresher, StartupError> {
    let source = crate::source::BigQuerySource::from_config(bigquery).await?;
    tracing::info!(
        endpoint = source.endpoint(),
        project = %bigquery.project_id,
        dataset = %bigquery.dataset,
        maximum_bytes_billed = bigquery.maximum_bytes_billed,
        "live mode: querying BigQuery"
    );
    for (section, origin) in source.query_origins() {
        if origin != "built-in" {
            tracing::info!(section, file = origin, "query replaced from BQ_QUERY_DIR");
        }
    }
    Ok(ServiceRefresher::Live(builder.spawn(source, snapshots)?))
}

#[cfg(not(feature = "bigquery"))]
async fn spawn_live(
    _builder: RefresherBuilder,
    _bigquery: &BigQueryConfig,
    _snapshots: SnapshotCache,
) -> Result<ServiceRefresher, StartupError> {
    Err(StartupError::LiveModeUnavailable)
}

/// Runs the service until `shutdown` resolves, then finishes in-flight
/// requests and stops the refresher.
///
/// # Errors
/// A start-up failure, or an I/O error of the server.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let snapshots = SnapshotCache::new(config.mode);
    let snapshots_for_metrics = snapshots.clone();
    let refresher = spawn_refresher(&config, snapshots.clone()).await?;
    let redis = RedisHandle::connect_lazy(&config.redis)?;
    match redis.ping().await {
        Ok(()) => tracing::info!(endpoint = redis.endpoint(), "redis reachable"),
        Err(e @ L2Error::Auth(_)) => return Err(StartupError::RedisAuth(e)),
        Err(e) => tracing::warn!(
            endpoint = redis.endpoint(),
            error = %e,
            "redis unreachable; keyed routes answer from memory and loaders, or 503, until it is back"
        ),
    }
    let mut keyed = KeyedCaches::new(
        &redis,
        config.l1_max_bytes,
        config.l1_ttl,
        config.mode == Mode::Mock,
    )?;
    let mut follower = None;
    if let Some(bullmq) = &config.bullmq {
        let jobs = BullmqJobs::new(&redis, bullmq.clone(), config.l1_ttl);
        follower = Some(jobs.start_follower(FollowerOptions::default()));
        tracing::info!(queue = %bullmq.queue, prefix = %bullmq.prefix, "job status also from BullMQ");
        keyed = keyed.with_bullmq(jobs);
    }
    keyed.time_format = config.record_time_format;
    // After the caches: the listener tracks the keyspaces registered so far.
    let invalidation = redis.start_invalidation(config.invalidation);
    let state = AppState {
        snapshots,
        ttl: config.refresh.ttl,
        max_staleness: config.max_staleness,
        keyed: Some(Arc::new(keyed)),
    };

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let mut router = app(state.clone());
    if options.bench_baseline {
        router = router.merge(baseline::router(state));
    }
    // One signal stops both servers.
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let mut metrics_tasks = Vec::new();
    if let Some(handle) = options.metrics {
        let metrics_listener =
            TcpListener::bind(config.metrics_listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.metrics_listen,
                    source,
                })?;
        let metrics_addr = metrics_listener.local_addr()?;
        let metrics_router = metrics_endpoint::router(
            handle.clone(),
            snapshots_for_metrics,
            config.refresh.ttl,
            config.max_staleness,
        );
        metrics_tasks.push(metrics_endpoint::spawn_upkeep(handle, stop.clone()));
        metrics_tasks.push(tokio::spawn({
            let stop = stop.clone();
            async move {
                if let Err(e) = axum::serve(metrics_listener, metrics_router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!("metrics server failed: {e}");
                }
            }
        }));
        tracing::info!("metrics on http://{metrics_addr}/metrics");
    }
    tracing::info!(mode = %config.mode, ttl_ms = config.refresh.ttl.as_millis() as u64, "listening on http://{addr}");
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .await?;
    stop.cancel();
    for task in metrics_tasks {
        let _ = task.await;
    }
    refresher.shutdown().await;
    invalidation.shutdown().await;
    if let Some(follower) = follower {
        follower.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}
