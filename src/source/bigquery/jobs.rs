//! Runs one query job to the end: `jobs.query`, then `getQueryResults` while
//! the job is not complete and for every further page.
//!
//! Every request carries `maximumBytesBilled` and labels. An `errors` array
//! fails the query even on HTTP 200 (the emulator reports SQL errors that
//! way). Every HTTP call (its token fetch included) is bounded by
//! `BQ_HTTP_TIMEOUT_MS` and fails with [`SourceError::Timeout`]; the
//! refresher also drops the whole fetch when its own timeout fires. A job
//! the caller abandons before it is complete is cancelled (`cancel.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gcp_bigquery_client::Client;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::error_proto::ErrorProto;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::get_query_results_response::GetQueryResultsResponse;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::query_response::QueryResponse;
use gcp_bigquery_client::model::table_row::TableRow;
use gcp_bigquery_client::model::table_schema::TableSchema;
use metrics::Counter;
use serde_json::Value;
use tokio::sync::oneshot;

use super::cancel::{CancelOnDrop, Canceller, JobRef};
use super::cells::{Column, ResultTable};
use super::sql::Query;
use crate::source::SourceError;

/// How long one `jobs.query` or `getQueryResults` call may wait on the
/// server for the job to finish before answering "not complete yet"; at
/// most half the HTTP bound, so a long wait is never taken for a hang.
const SERVER_WAIT_MS: u128 = 10_000;
/// Pause between polls when the server answers "not complete" at once.
const POLL_START: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_secs(1);

/// Sends the queries of one source.
pub(crate) struct JobRunner {
    pub(crate) client: Client,
    pub(crate) project_id: Arc<str>,
    pub(crate) maximum_bytes_billed: u64,
    /// `maxResults` of every page; `None` lets the server choose (about 10 MB).
    pub(crate) page_size: Option<u32>,
    /// Where queries go, for error messages.
    pub(crate) endpoint: String,
    /// Bound of every HTTP call (`BQ_HTTP_TIMEOUT_MS`).
    pub(crate) http_timeout: Duration,
}

/// A finished query: all rows, and what BigQuery reported about its cost.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) table: ResultTable,
    pub(crate) bytes_processed: Option<u64>,
    pub(crate) pages: u32,
}

/// The fields `jobs.query` and `getQueryResults` answers share.
struct Page {
    errors: Option<Vec<ErrorProto>>,
    job_complete: bool,
    job_id: Option<String>,
    location: Option<String>,
    page_token: Option<String>,
    rows: Option<Vec<TableRow>>,
    schema: Option<TableSchema>,
    total_bytes_processed: Option<String>,
    total_rows: Option<String>,
}

impl From<QueryResponse> for Page {
    fn from(r: QueryResponse) -> Self {
        let (job_id, location) = r
            .job_reference
            .map_or((None, None), |j| (j.job_id, j.location));
        Self {
            errors: r.errors,
            job_complete: r.job_complete.unwrap_or(false),
            job_id,
            location,
            page_token: r.page_token,
            rows: r.rows,
            schema: r.schema,
            total_bytes_processed: r.total_bytes_processed,
            total_rows: r.total_rows,
        }
    }
}

impl From<GetQueryResultsResponse> for Page {
    fn from(r: GetQueryResultsResponse) -> Self {
        QueryResponse::from(r).into()
    }
}

impl JobRunner {
    /// Runs `query` with `parameters` and reads every page.
    ///
    /// # Errors
    /// [`SourceError::Unavailable`] when BigQuery cannot be reached or
    /// answers 5xx, [`SourceError::Query`] when it refuses or fails the
    /// query (including over the cost cap), [`SourceError::BadResult`] when
    /// rows go missing between pages.
    pub(crate) async fn run(
        &self,
        query: &Query,
        parameters: Vec<QueryParameter>,
        cancelled: Counter,
    ) -> Result<Finished, SourceError> {
        let section = query.section;
        let mut request = QueryRequest::new(query.sql.clone());
        request.parameter_mode = Some("NAMED".to_owned());
        request.query_parameters = (!parameters.is_empty()).then_some(parameters);
        request.maximum_bytes_billed = Some(self.maximum_bytes_billed.to_string());
        request.labels = Some(HashMap::from([
            ("app".to_owned(), "warmcache".to_owned()),
            ("section".to_owned(), section.to_owned()),
        ]));
        request.max_results = self.page_size.map(page_size_i32);
        request.timeout_ms = Some(self.server_wait_ms());

        let canceller = Canceller {
            client: self.client.clone(),
            project_id: Arc::clone(&self.project_id),
            bound: self.http_timeout,
            section,
            cancelled,
        };
        // From here until the job is complete, dropping this future (or
        // failing) cancels the job.
        let (mut page, mut running) = self.start(section, request, canceller).await?;
        check_errors(section, &page)?;
        let job_id = page.job_id.clone();
        let location = page.location.clone();
        let next = |page_token: Option<String>| GetQueryResultsParameters {
            page_token,
            max_results: self.page_size.map(page_size_i32),
            location: location.clone(),
            timeout_ms: Some(self.server_wait_ms()),
            ..Default::default()
        };

        let mut pause = POLL_START;
        while !page.job_complete {
            let job_id = job_id.as_deref().ok_or_else(|| no_job(section))?;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
            page = self.get_unchecked(section, job_id, next(None)).await?;
            if page.job_complete {
                // Done, failed or cancelled elsewhere: nothing to cancel.
                running.disarm();
            }
            check_errors(section, &page)?;
        }
        running.disarm();

        let columns: Vec<Column> = page
            .schema
            .as_ref()
            .and_then(|s| s.fields.as_ref())
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| Column {
                        name: f.name.clone(),
                        kind: serde_json::to_value(&f.r#type)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_else(|| format!("{:?}", f.r#type)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let bytes_processed = page
            .total_bytes_processed
            .as_deref()
            .and_then(|b| b.parse().ok());
        let total_rows: Option<usize> = page.total_rows.as_deref().and_then(|n| n.parse().ok());
        let mut rows = Vec::new();
        let mut pages = 1;
        append(&mut rows, page.rows.take());
        while let Some(token) = page.page_token.take() {
            let job_id = job_id.as_deref().ok_or_else(|| no_job(section))?;
            page = self.get(section, job_id, next(Some(token))).await?;
            append(&mut rows, page.rows.take());
            pages += 1;
        }
        if let Some(total) = total_rows.filter(|total| *total != rows.len()) {
            return Err(SourceError::BadResult {
                section,
                problem: format!(
                    "BigQuery reported {total} rows but {} were read in {pages} pages",
                    rows.len()
                ),
            });
        }
        Ok(Finished {
            table: ResultTable {
                section,
                columns,
                rows,
            },
            bytes_processed,
            pages,
        })
    }

    /// Sends `jobs.query` in a task of its own, so that a caller who gives
    /// up before taking the answer still leaves nothing running: an answer
    /// nobody takes has its job cancelled, whether it arrives after the
    /// caller left (the task sees the closed channel) or just before (the
    /// caller's [`PendingStart`] finds it on drop). Returns the first page
    /// and a guard armed while the job runs.
    async fn start(
        &self,
        section: &'static str,
        request: QueryRequest,
        canceller: Canceller,
    ) -> Result<(Page, CancelOnDrop), SourceError> {
        let (answer_tx, answer_rx) = oneshot::channel();
        let client = self.client.clone();
        let project_id = Arc::clone(&self.project_id);
        let bound = self.http_timeout;
        let orphan_canceller = canceller.clone();
        tokio::spawn(async move {
            let answer =
                tokio::time::timeout(bound, client.job().query(&project_id, request)).await;
            if let Err(unclaimed) = answer_tx.send(answer) {
                cancel_unclaimed(orphan_canceller, unclaimed);
            }
        });
        let mut pending = PendingStart {
            answer: answer_rx,
            canceller: Some(canceller.clone()),
        };
        let answer = (&mut pending.answer).await.map_err(|_| {
            SourceError::Unavailable(format!("{section} query: the request task ended early"))
        })?;
        let response = answer
            .map_err(|_| self.timed_out(section, "jobs.query"))?
            .map_err(|e| self.error(section, e))?;
        // No `.await` between taking the answer and arming the guard.
        let page = Page::from(response);
        let job = page.job_id.clone().map(|id| JobRef {
            id,
            location: page.location.clone(),
        });
        let running = CancelOnDrop::new(canceller, job, !page.job_complete);
        Ok((page, running))
    }

    /// One `getQueryResults` page; an `errors` array fails it.
    async fn get(
        &self,
        section: &'static str,
        job_id: &str,
        parameters: GetQueryResultsParameters,
    ) -> Result<Page, SourceError> {
        let page = self.get_unchecked(section, job_id, parameters).await?;
        check_errors(section, &page)?;
        Ok(page)
    }

    /// One `getQueryResults` page, its `errors` array not looked at yet.
    async fn get_unchecked(
        &self,
        section: &'static str,
        job_id: &str,
        parameters: GetQueryResultsParameters,
    ) -> Result<Page, SourceError> {
        let call = self
            .client
            .job()
            .get_query_results(&self.project_id, job_id, parameters);
        let page: Page = self
            .bounded(section, "getQueryResults", call)
            .await?
            .map_err(|e| self.error(section, e))?
            .into();
        Ok(page)
    }

    /// `call` within the HTTP bound, or [`SourceError::Timeout`].
    async fn bounded<T>(
        &self,
        section: &'static str,
        call_name: &'static str,
        call: impl Future<Output = T>,
    ) -> Result<T, SourceError> {
        tokio::time::timeout(self.http_timeout, call)
            .await
            .map_err(|_| self.timed_out(section, call_name))
    }

    fn timed_out(&self, section: &'static str, call: &'static str) -> SourceError {
        SourceError::Timeout {
            section,
            call,
            after: self.http_timeout,
        }
    }

    /// The server-side wait of one call: 10 s, or half the HTTP bound.
    fn server_wait_ms(&self) -> i32 {
        let ms = SERVER_WAIT_MS.min(self.http_timeout.as_millis() / 2).max(1);
        i32::try_from(ms).unwrap_or(i32::MAX)
    }

    /// One line saying what went wrong; never a token or a key.
    fn error(&self, section: &'static str, error: BQError) -> SourceError {
        match error {
            BQError::ResponseError { error } => {
                let e = error.error;
                let reasons: Vec<&str> = e
                    .errors
                    .iter()
                    .filter_map(|detail| detail.get("reason").map(String::as_str))
                    .collect();
                if reasons.contains(&"bytesBilledLimitExceeded") {
                    SourceError::Query {
                        section,
                        message: format!(
                            "over the cost cap of {} bytes (BQ_MAXIMUM_BYTES_BILLED): {}",
                            self.maximum_bytes_billed, e.message
                        ),
                    }
                } else if e.code >= 500 || e.code == 429 {
                    SourceError::Unavailable(format!(
                        "{section} query: {} answered HTTP {}: {}",
                        self.endpoint, e.code, e.message
                    ))
                } else {
                    SourceError::Query {
                        section,
                        message: format!("HTTP {} ({}): {}", e.code, reasons.join(", "), e.message),
                    }
                }
            }
            BQError::RequestError(e) if e.is_decode() => SourceError::Unavailable(format!(
                "{section} query: unreadable answer from {}: {}",
                self.endpoint,
                chain(&e)
            )),
            BQError::RequestError(e) => SourceError::Unavailable(format!(
                "{section} query: cannot reach {}: {}",
                self.endpoint,
                chain(&e)
            )),
            BQError::AuthError(_) | BQError::YupAuthError(_) | BQError::NoToken => {
                SourceError::Unavailable(format!(
                    "{section} query: cannot get an access token: {error}"
                ))
            }
            other => SourceError::Unavailable(format!(
                "{section} query: unexpected answer from {}: {other}",
                self.endpoint
            )),
        }
    }
}

/// What the `jobs.query` task hands over: the answer, or the bound passed.
type StartAnswer = Result<Result<QueryResponse, BQError>, tokio::time::error::Elapsed>;

/// The caller's end of a `jobs.query` call. Dropped before the answer was
/// taken, it closes the channel (so a later answer stays with the task)
/// and cancels the job of an answer that had already arrived.
struct PendingStart {
    answer: oneshot::Receiver<StartAnswer>,
    canceller: Option<Canceller>,
}

impl Drop for PendingStart {
    fn drop(&mut self) {
        self.answer.close();
        if let (Ok(answer), Some(canceller)) = (self.answer.try_recv(), self.canceller.take()) {
            cancel_unclaimed(canceller, answer);
        }
    }
}

/// Cancels the job of an answer nobody took, if that job is still running.
fn cancel_unclaimed(canceller: Canceller, answer: StartAnswer) {
    let Ok(Ok(response)) = answer else {
        return;
    };
    let page = Page::from(response);
    if let (false, Some(id)) = (page.job_complete, page.job_id) {
        tracing::debug!(section = canceller.section, job_id = %id, "query abandoned before its first answer was read");
        canceller.spawn_cancel(JobRef {
            id,
            location: page.location,
        });
    }
}

/// The `errors` array fails the query, even on HTTP 200.
fn check_errors(section: &'static str, page: &Page) -> Result<(), SourceError> {
    match page.errors.as_deref() {
        None | Some([]) => Ok(()),
        Some(errors) => {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| {
                    let reason = e.reason.as_deref().unwrap_or("error");
                    let message = e.message.as_deref().unwrap_or("no message");
                    format!("{reason}: {}", message.lines().next().unwrap_or(message))
                })
                .collect();
            Err(SourceError::Query {
                section,
                message: messages.join("; "),
            })
        }
    }
}

fn no_job(section: &'static str) -> SourceError {
    SourceError::BadResult {
        section,
        problem: "the answer has no job reference to read the rest of the result with".to_owned(),
    }
}

fn append(rows: &mut Vec<Vec<Value>>, page: Option<Vec<TableRow>>) {
    rows.extend(page.unwrap_or_default().into_iter().map(|row| {
        row.columns
            .unwrap_or_default()
            .into_iter()
            .map(|cell| cell.value.unwrap_or(Value::Null))
            .collect()
    }));
}

fn page_size_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An error and its causes on one line ("error sending request: connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
