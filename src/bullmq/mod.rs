//! BullMQ's own records as the source of job status.
//!
//! A BullMQ queue keeps each job in the hash `{prefix}:{queue}:{jobId}` and
//! its state in lists and sorted sets next to it, and appends every
//! transition to the stream `{prefix}:{queue}:events`. [`BullmqJobs`] reads
//! a job the way BullMQ's `Job.fromId` + `getState` do (`state`: one Lua
//! script, so the answer is atomic; `job`: the decoding), keeps answers in
//! a small L1 that the [`EventsFollower`] (`follower`) empties on each of
//! the job's events, records final statuses in `reasoning_job:{jobId}`
//! (24 h, so they outlive `removeOnComplete`), and wakes long polls
//! (`waiters`) the moment a job changes.

mod follower;
mod job;
mod record;
mod state;
mod waiters;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::l2::{L2Error, RedisHandle};
use crate::metrics::BullmqMetrics;
use crate::settings::{ConfigError, vars};
use crate::tier::CacheId;
use crate::tier::stripes::Stripes;

pub use follower::{EventsFollower, FollowerOptions};
pub(crate) use job::Rendered;
pub use job::{JobAnswer, JobState};
pub(crate) use waiters::Waiters;

/// Which queue to read, and what to show of its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BullmqConfig {
    /// The queue name (`new Queue(name)`).
    pub queue: String,
    /// The key prefix (BullMQ's `prefix` option, `bull` by default).
    pub prefix: String,
    /// Whether answers include the job's `data` (the prompt: personal data).
    pub expose_data: bool,
}

impl BullmqConfig {
    /// The queue `queue` under the default prefix `bull`, data hidden.
    ///
    /// # Errors
    /// An empty name, or one with `:`, whitespace or control characters.
    pub fn new(queue: &str) -> Result<Self, ConfigError> {
        check_name(vars::BULLMQ_QUEUE, queue, "a queue name without ':'")?;
        Ok(Self {
            queue: queue.to_owned(),
            prefix: "bull".to_owned(),
            expose_data: false,
        })
    }

    /// Reads the three settings; `None` when no queue is set.
    #[cfg_attr(not(feature = "service"), allow(dead_code))] // service::Config reads it
    pub(crate) fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(queue) = get(vars::BULLMQ_QUEUE) else {
            return Ok(None);
        };
        let mut config = Self::new(queue.trim())?;
        if let Some(prefix) = get(vars::BULLMQ_PREFIX) {
            let prefix = prefix.trim();
            check_name(
                vars::BULLMQ_PREFIX,
                prefix,
                "a key prefix such as bull or {bull}",
            )?;
            config.prefix = prefix.to_owned();
        }
        config.expose_data = match get(vars::BULLMQ_EXPOSE_DATA).as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    vars::BULLMQ_EXPOSE_DATA,
                    other,
                    "true or false",
                ));
            }
        };
        Ok(Some(config))
    }
}

fn check_name(name: &'static str, value: &str, expected: &str) -> Result<(), ConfigError> {
    let bad = value.is_empty()
        || value.len() > 200
        || value.chars().any(|c| {
            c.is_whitespace() || c.is_control() || (c == ':' && name == vars::BULLMQ_QUEUE)
        });
    if bad {
        return Err(ConfigError::new(name, value, expected));
    }
    Ok(())
}

/// The keys of one queue.
#[derive(Debug)]
pub(crate) struct Keys {
    /// `{prefix}:{queue}:`, the start of every key of the queue.
    base: String,
    /// `{prefix}:{queue}:events`.
    pub(crate) events: String,
}

impl Keys {
    fn new(config: &BullmqConfig) -> Self {
        let base = format!("{}:{}:", config.prefix, config.queue);
        Self {
            events: format!("{base}events"),
            base,
        }
    }

    /// `{prefix}:{queue}:{suffix}`.
    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base)
    }
}

/// Why a job could not be read from BullMQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BullmqError {
    /// Redis failed.
    #[error(transparent)]
    L2(#[from] L2Error),
    /// The job's key is not a BullMQ job hash of the shape BullMQ writes.
    #[error("the BullMQ job hash is malformed: {field}: {reason}")]
    Malformed {
        /// The field (or `type` for a key that is not a hash).
        field: &'static str,
        /// What is wrong, without the value.
        reason: String,
    },
}

/// The BullMQ side of the job routes. Cloning is cheap and shares all.
#[derive(Clone)]
pub struct BullmqJobs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BullmqJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BullmqJobs")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: BullmqConfig,
    keys: Keys,
    redis: RedisHandle,
    /// Answers read from BullMQ, dropped on each event of their job.
    l1: moka::sync::Cache<CacheId, Arc<Rendered>>,
    /// Bumped on each event of a job: a read that an event overtakes is
    /// served but not kept.
    stripes: Stripes,
    /// L1 is only served while the follower is connected (events reach it).
    following: AtomicBool,
    waiters: Arc<Waiters>,
    metrics: BullmqMetrics,
}

impl BullmqJobs {
    /// Reads `config`'s queue through `redis`; L1 answers live at most `l1_ttl`.
    pub fn new(redis: &RedisHandle, config: BullmqConfig, l1_ttl: Duration) -> Self {
        let metrics = BullmqMetrics::register();
        Self {
            inner: Arc::new(Inner {
                keys: Keys::new(&config),
                config,
                redis: redis.clone(),
                l1: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(l1_ttl.max(Duration::from_millis(1)))
                    .build(),
                stripes: Stripes::new(),
                following: AtomicBool::new(false),
                waiters: Arc::new(Waiters::new(metrics.waiters.clone())),
                metrics,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &BullmqConfig {
        &self.inner.config
    }

    /// Starts the events follower (one per process). Dropping it stops it.
    pub fn start_follower(&self, options: FollowerOptions) -> EventsFollower {
        EventsFollower::spawn(self.clone(), options, None)
    }

    /// Starts a follower that resumes after `last_id`, as after a reconnect.
    pub fn resume_follower(&self, options: FollowerOptions, last_id: &str) -> EventsFollower {
        EventsFollower::spawn(self.clone(), options, Some(last_id.to_owned()))
    }

    /// The job `id` as BullMQ has it: from L1 while the follower keeps it
    /// fresh, else from Redis. `None` when BullMQ does not know it. A final
    /// status read here is also recorded in `reasoning_job`.
    ///
    /// # Errors
    /// Redis failing, or a malformed job hash.
    #[cfg_attr(not(feature = "service"), allow(dead_code))] // the service's job routes read it
    pub(crate) async fn lookup(&self, id: &CacheId) -> Result<Option<Arc<Rendered>>, BullmqError> {
        let inner = &self.inner;
        if inner.following.load(Ordering::Acquire) {
            if let Some(hit) = inner.l1.get(id) {
                inner.metrics.reads_l1.increment(1);
                return Ok(Some(hit));
            }
        }
        let generation = inner.stripes.generation(id.as_str());
        let Some(rendered) = self.read(id).await? else {
            return Ok(None);
        };
        inner.metrics.reads_l2.increment(1);
        if rendered.is_final {
            record::write_final(self, &rendered).await;
        }
        if inner.following.load(Ordering::Acquire)
            && inner.stripes.generation(id.as_str()) == generation
        {
            inner.l1.insert(id.clone(), Arc::clone(&rendered));
        }
        Ok(Some(rendered))
    }

    /// Reads the job from Redis (one script), neither using nor filling L1.
    async fn read(&self, id: &CacheId) -> Result<Option<Arc<Rendered>>, BullmqError> {
        let inner = &self.inner;
        let raw = state::read(&inner.redis, &inner.keys, id, inner.config.expose_data).await?;
        match raw.and_then_decode(id) {
            Ok(answer) => Ok(answer.map(|a| Arc::new(Rendered::new(a)))),
            Err(e) => {
                inner.metrics.malformed.increment(1);
                tracing::warn!(queue = %inner.config.queue, error = %e, "malformed BullMQ job hash not served");
                Err(e)
            }
        }
    }

    /// Long polls waiting now, over all jobs.
    pub fn waiting(&self) -> usize {
        self.inner.waiters.waiting()
    }

    /// The long-poll registry.
    pub(crate) fn waiters(&self) -> &Arc<Waiters> {
        &self.inner.waiters
    }

    /// Forgets L1's copy of `id` (an event of the job arrived).
    fn forget(&self, id: &CacheId) {
        self.inner.stripes.bump(id.as_str());
        self.inner.l1.invalidate(id);
    }

    /// Forgets every L1 copy (events may have been missed).
    fn forget_all(&self) {
        self.inner.stripes.bump_all();
        self.inner.l1.invalidate_all();
    }

    fn set_following(&self, following: bool) {
        self.inner.following.store(following, Ordering::Release);
        if !following {
            self.forget_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<BullmqConfig>, ConfigError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        BullmqConfig::from_lookup(&get)
    }

    #[test]
    fn settings_parse_with_defaults_and_reject_bad_values_by_name() {
        assert_eq!(parse(&[]).expect("valid"), None, "unset: BullMQ off");
        let config = parse(&[(vars::BULLMQ_QUEUE, "reasoning")])
            .expect("valid")
            .expect("on");
        assert_eq!(config.prefix, "bull");
        assert!(!config.expose_data);
        assert_eq!(Keys::new(&config).events, "bull:reasoning:events");
        let tagged = parse(&[
            (vars::BULLMQ_QUEUE, "reasoning"),
            (vars::BULLMQ_PREFIX, "{bull}"),
            (vars::BULLMQ_EXPOSE_DATA, "true"),
        ])
        .expect("valid")
        .expect("on");
        assert_eq!(Keys::new(&tagged).key("42"), "{bull}:reasoning:42");
        assert!(tagged.expose_data);
        let bad_queue =
            parse(&[(vars::BULLMQ_QUEUE, "a:b")]).expect_err("':' is BullMQ's separator");
        assert_eq!(bad_queue.name, vars::BULLMQ_QUEUE);
        let bad_flag = parse(&[(vars::BULLMQ_QUEUE, "q"), (vars::BULLMQ_EXPOSE_DATA, "yes")])
            .expect_err("true or false");
        assert_eq!(bad_flag.name, vars::BULLMQ_EXPOSE_DATA);
        let bad_prefix = parse(&[(vars::BULLMQ_QUEUE, "q"), (vars::BULLMQ_PREFIX, "a b")])
            .expect_err("no spaces");
        assert_eq!(bad_prefix.name, vars::BULLMQ_PREFIX);
    }
}
