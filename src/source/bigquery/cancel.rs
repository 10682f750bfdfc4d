//! Cancels the BigQuery jobs a caller abandons, so they stop running and
//! billing.
//!
//! A fetch is abandoned by dropping its future: the refresher does it when
//! its timeout fires, `try_join!` when a sibling query fails, shutdown when
//! it stops the refresher. Nothing runs in a dropped future, so cancelling
//! is done by a [`CancelOnDrop`] guard (armed while the job is known to be
//! running) that spawns one `jobs.cancel` call, bounded by
//! `BQ_HTTP_TIMEOUT_MS`. A job whose `jobs.query` answer has not arrived
//! yet is covered too: that call runs in its own task, which cancels the
//! job if nobody is left to take the answer (see `jobs.rs`).
//!
//! Each cancellation is counted in `warmcache_bigquery_jobs_cancelled_total`
//! before the call is sent, and logged: `info` when BigQuery accepted it,
//! `warn` when it did not (the job then runs to its end, still under the
//! cost cap). Cancelling is best effort at process exit: a cancel spawned
//! while the runtime shuts down may never be sent.

use std::sync::Arc;
use std::time::Duration;

use gcp_bigquery_client::Client;
use metrics::Counter;

/// A started job: its id and location, as BigQuery named them.
#[derive(Debug, Clone)]
pub(crate) struct JobRef {
    pub(crate) id: String,
    pub(crate) location: Option<String>,
}

/// What a cancel call needs; cheap to clone (the client is reference-counted).
#[derive(Clone)]
pub(crate) struct Canceller {
    pub(crate) client: Client,
    pub(crate) project_id: Arc<str>,
    pub(crate) bound: Duration,
    pub(crate) section: &'static str,
    pub(crate) cancelled: Counter,
}

impl Canceller {
    /// Sends `jobs.cancel` for `job` (within the bound) and logs the outcome.
    pub(crate) async fn cancel(self, job: JobRef) {
        let section = self.section;
        self.cancelled.increment(1);
        let call = self
            .client
            .job()
            .cancel_job(&self.project_id, &job.id, job.location.as_deref());
        match tokio::time::timeout(self.bound, call).await {
            Ok(Ok(_)) => tracing::info!(
                section,
                job_id = %job.id,
                "abandoned bigquery job cancelled"
            ),
            Ok(Err(e)) => tracing::warn!(
                section,
                job_id = %job.id,
                error = %e,
                "could not cancel an abandoned bigquery job; it runs to its end"
            ),
            Err(_) => tracing::warn!(
                section,
                job_id = %job.id,
                timeout_ms = self.bound.as_millis() as u64,
                "jobs.cancel did not answer in time; the abandoned bigquery job may run to its end"
            ),
        }
    }

    /// Runs [`Self::cancel`] in a task of its own, as a dropped future cannot.
    pub(crate) fn spawn_cancel(self, job: JobRef) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.cancel(job));
            }
            Err(_) => tracing::warn!(
                section = self.section,
                job_id = %job.id,
                "no runtime left to cancel an abandoned bigquery job; it runs to its end"
            ),
        }
    }
}

/// Cancels its job when dropped while armed: armed from the moment the job
/// is known to be running until its last state says it is complete.
pub(crate) struct CancelOnDrop {
    armed: Option<(Canceller, JobRef)>,
}

impl CancelOnDrop {
    /// A guard for `job`, armed only when `running`.
    pub(crate) fn new(canceller: Canceller, job: Option<JobRef>, running: bool) -> Self {
        Self {
            armed: job.filter(|_| running).map(|job| (canceller, job)),
        }
    }

    /// The job is complete (done, failed or cancelled): nothing to cancel.
    pub(crate) fn disarm(&mut self) {
        self.armed = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some((canceller, job)) = self.armed.take() {
            canceller.spawn_cancel(job);
        }
    }
}
