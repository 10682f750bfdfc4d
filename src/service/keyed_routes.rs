//! The keyed-cache routes: age verification and customer profiles (the
//! job routes are in `job_routes`).
//!
//! Each answer sends the JSON bytes as stored in Redis (an L1 hit copies
//! nothing and serializes nothing), with `x-warmcache-tier` saying which
//! tier answered. Ids are checked before anything reaches Redis.

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::profile::{CustomerProfile, mock_profile};
use super::{ApiError, AppState, KeyedCaches};
use crate::records::AgeVerification;
use crate::tier::{Cached, Tier, TieredCache};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/age-verification/{customer_id}",
            get(get_age).put(put_age).delete(delete_age),
        )
        .route(
            "/customers/{customer_id}/profile",
            get(get_profile).put(put_profile),
        )
}

pub(super) fn keyed(state: &AppState) -> Result<&KeyedCaches, ApiError> {
    state.keyed.as_ref().ok_or(ApiError::KeyedCachesOff)
}

/// The stored JSON, as it is.
pub(super) fn json_response<V>(cached: &Cached<V>) -> Response {
    let mut response = Response::new(Body::from(cached.json.clone()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let tier = match cached.tier {
        Tier::L1 => "l1",
        Tier::L2 => "l2",
        Tier::Loader => "loader",
    };
    headers.insert("x-warmcache-tier", HeaderValue::from_static(tier));
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
    record: Result<Json<AgeVerification>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let record = body(record)?;
    same_id(&id, &record.customer_id)?;
    Ok(json_response(
        &keyed(&state)?.ages.insert(&id, record).await?,
    ))
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
    let cached = keyed
        .profiles
        .get_or_load(&id, |id| async move {
            Ok::<_, std::convert::Infallible>(mock_profile(&id))
        })
        .await?;
    Ok(json_response(&cached))
}

/// A profile update event: written through to Redis and this L1.
async fn put_profile(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    profile: Result<Json<CustomerProfile>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let profile = body(profile)?;
    same_id(&id, &profile.customer_id)?;
    Ok(json_response(
        &keyed(&state)?.profiles.insert(&id, profile).await?,
    ))
}
