//! The keyed-cache routes: age verification and customer profiles (the
//! job routes are in `job_routes`).
//!
//! Each answer sends the JSON bytes as stored in Redis (an L1 hit copies
//! nothing and serializes nothing), with `x-warmcache-tier` saying which
//! tier answered. Ids are checked before anything reaches Redis.
//!
//! `PUT` bodies of age verifications and profiles take what a Node client
//! sends: any content type, ISO or epoch times, extra fields (kept, in
//! order), no id (the path's is added) and no time (the write's time is
//! added, in the form the stored record uses, else the configured one). A
//! body that is not JSON, not an object, over [`MAX_BODY_BYTES`], with an id
//! other than the path's, or with a field of the wrong type is a 400 before
//! anything reaches Redis.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::http_metrics::HttpMetricsLayer;
use super::profile::mock_profile;
use super::{ApiError, AppState, KeyedCaches};
use crate::records::{AgeVerification, CustomerProfile, Record, RecordTime, TimeFormat};
use crate::tier::{Cached, Tier, TieredCache};

/// Largest `PUT` body of the keyed routes, in bytes (64 KiB): records are
/// small, and a body over it is refused (400) before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const AGE: &str = "/age-verification/{customer_id}";
const PROFILE: &str = "/customers/{customer_id}/profile";

pub(super) fn router(m: &HttpMetricsLayer) -> Router<AppState> {
    let limit = || DefaultBodyLimit::max(MAX_BODY_BYTES);
    Router::new()
        // The body limit wraps the PUTs alone: a GET, the hot path, runs
        // through no layer of its own.
        .route(
            AGE,
            get(m.timed(AGE, get_age))
                .put(m.timed(AGE, put_age.layer(limit())))
                .delete(m.timed(AGE, delete_age)),
        )
        .route(
            PROFILE,
            get(m.timed(PROFILE, get_profile)).put(m.timed(PROFILE, put_profile.layer(limit()))),
        )
}

pub(super) fn keyed(state: &AppState) -> Result<&KeyedCaches, ApiError> {
    state.keyed.as_deref().ok_or(ApiError::KeyedCachesOff)
}

/// `x-warmcache-tier`, built once rather than parsed on every answer.
pub(super) const TIER_HEADER: HeaderName = HeaderName::from_static("x-warmcache-tier");

/// The stored JSON, as it is.
pub(super) fn json_response<V>(cached: &Cached<V>) -> Response {
    let mut response = Response::new(Body::from(cached.json().clone()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let tier = match cached.tier() {
        Tier::L1 => "l1",
        Tier::L2 => "l2",
        Tier::Loader => "loader",
    };
    headers.insert(TIER_HEADER, HeaderValue::from_static(tier));
    response
}

pub(super) async fn read<V>(
    cache: &TieredCache<V>,
    what: &'static str,
    id: &str,
) -> Result<Response, ApiError>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    match cache.get(id).await? {
        Some(cached) => Ok(json_response(&cached)),
        None => Err(ApiError::NoSuchRecord {
            what,
            id: id.to_owned(),
        }),
    }
}

/// Parses a JSON body into the JSON error shape on failure.
pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value)
        .map_err(|rejection| ApiError::InvalidBody(rejection.body_text()))
}

/// The id segment of the path; a segment axum cannot decode is an invalid id.
pub(super) fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|rejection| ApiError::InvalidBody(rejection.body_text()))
}

pub(super) fn same_id(path: &str, body: &str) -> Result<(), ApiError> {
    if path == body {
        Ok(())
    } else {
        Err(ApiError::IdMismatch {
            path: path.to_owned(),
            body: body.to_owned(),
        })
    }
}

async fn get_age(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    read(&keyed(&state)?.ages, "age verification", &id).await
}

async fn put_age(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let mut record: AgeVerification = record_body(body, &id)?;
    let keyed = keyed(&state)?;
    if record.verified_at.is_none() && record.other.get("verifiedAt").is_none() {
        let stored = stored(&keyed.ages, &id).await;
        let format = stored.as_ref().and_then(|r| r.value().verified_at.as_ref());
        record.verified_at = Some(now_like(format, keyed.time_format));
    }
    Ok(json_response(&keyed.ages.insert(&id, record).await?))
}

/// The GDPR erasure path.
async fn delete_age(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    keyed(&state)?.ages.invalidate(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_profile(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let keyed = keyed(&state)?;
    if !keyed.mock_profiles {
        return read(&keyed.profiles, "customer profile", &id).await;
    }
    let format = keyed.time_format;
    let cached = keyed
        .profiles
        .get_or_load(&id, |id| async move {
            Ok::<_, std::convert::Infallible>(mock_profile(&id, format))
        })
        .await?;
    Ok(json_response(&cached))
}

/// A profile update event: written through to Redis and this L1.
async fn put_profile(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let mut profile: CustomerProfile = record_body(body, &id)?;
    let keyed = keyed(&state)?;
    if profile.updated_at.is_none() && profile.other.get("updatedAt").is_none() {
        let stored = stored(&keyed.profiles, &id).await;
        let format = stored.as_ref().and_then(|p| p.value().updated_at.as_ref());
        profile.updated_at = Some(now_like(format, keyed.time_format));
    }
    Ok(json_response(&keyed.profiles.insert(&id, profile).await?))
}

/// A `PUT` body as a record whose id is `id`: checked whole before any
/// Redis call. A body without the id field gets it (last, as Node's
/// `{ ...body, customerId }` puts it).
fn record_body<R: Record>(body: Result<Bytes, BytesRejection>, id: &str) -> Result<R, ApiError> {
    let bytes = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::InvalidBody(format!("the body is over {MAX_BODY_BYTES} bytes"))
        }
        other => ApiError::InvalidBody(other.body_text()),
    })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::InvalidBody(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::InvalidBody(
            "the body must be a JSON object".to_owned(),
        ));
    };
    match object.get(R::ID.name) {
        None => {
            object.insert(R::ID.name.to_owned(), Value::String(id.to_owned()));
        }
        Some(Value::String(body_id)) => same_id(id, body_id)?,
        Some(_) => {
            return Err(ApiError::InvalidBody(format!(
                "field `{}` is not {}",
                R::ID.name,
                R::ID.expected
            )));
        }
    }
    let record =
        R::deserialize(Value::Object(object)).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    match record.unreadable_field() {
        Some(field) => Err(ApiError::InvalidBody(format!(
            "field `{}` is not {}",
            field.name, field.expected
        ))),
        None => Ok(record),
    }
}

/// The record stored under `id`, if it can be read. Only the form of its
/// time depends on it, so a failed read is no reason to refuse the write
/// (which reports Redis trouble itself).
async fn stored<V>(cache: &TieredCache<V>, id: &str) -> Option<Cached<V>>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    cache.get(id).await.ok().flatten()
}

/// The time of a write, in the form of `existing` if there is one.
fn now_like(existing: Option<&RecordTime>, default: TimeFormat) -> RecordTime {
    RecordTime::now(existing.map_or(default, RecordTime::format))
}
