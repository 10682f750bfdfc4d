//! The job routes: `GET /jobs/{jobId}` and `PUT /jobs/{jobId}`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use super::keyed_routes::{body, json_response, keyed, path_id, read, same_id};
use super::{ApiError, AppState};
use crate::records::ReasoningJob;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/jobs/{job_id}", get(get_job).put(put_job))
}

async fn get_job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    read(&keyed(&state)?.jobs, "job", &id).await
}

async fn put_job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    job: Result<Json<ReasoningJob>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let job = body(job)?;
    same_id(&id, &job.job_id)?;
    Ok(json_response(&keyed(&state)?.jobs.insert(&id, job).await?))
}
