//! HTTP request metrics: count by route template and status class, latency by route.
//!
//! Handles for every route are registered when the router is built, so a
//! request costs a scan of the route templates (no hashing, no
//! allocation) and two atomic updates.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::metrics::{Counter, Histogram, counter, histogram};
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::Response;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::metrics::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL};

/// Every route template of the service (the `route` label values), plus
/// `unmatched` for requests no route takes and `other` for a route missing here.
pub(crate) const ROUTES: &[&str] = &[
    "/dashboard",
    "/historical",
    "/products",
    "/snapshot",
    "/healthz",
    "/readyz",
    "/age-verification/{customer_id}",
    "/customers/{customer_id}/profile",
    "/jobs/{job_id}",
    "/_bench/constant",
];
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

struct RouteMetrics {
    by_class: [Counter; 4],
    duration: Histogram,
}

impl RouteMetrics {
    fn register(route: &'static str) -> Self {
        let by_class = CLASSES.map(|class| {
            let c = counter!(HTTP_REQUESTS_TOTAL, "route" => route, "status_class" => class);
            c.absolute(0);
            c
        });
        Self {
            by_class,
            duration: histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route),
        }
    }

    fn record(&self, status: StatusCode, took: std::time::Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(2, 5) - 2;
        self.by_class[class].increment(1);
        self.duration.record(took);
    }
}

/// The handles of every route, by index: [`ROUTES`] in order, then
/// `unmatched`, then `other`.
pub(crate) struct HttpMetrics {
    routes: Box<[RouteMetrics]>,
}

impl HttpMetrics {
    fn register() -> Self {
        let routes = ROUTES
            .iter()
            .chain(&["unmatched", "other"])
            .map(|route| RouteMetrics::register(route))
            .collect();
        Self { routes }
    }

    /// The index of the request's route: a scan of ten short strings,
    /// cheaper than hashing the template.
    fn route(matched: Option<&MatchedPath>) -> usize {
        match matched {
            None => ROUTES.len(),
            Some(path) => {
                let path = path.as_str();
                ROUTES
                    .iter()
                    .position(|route| *route == path)
                    .unwrap_or(ROUTES.len() + 1)
            }
        }
    }
}

/// The layer: times each request and counts its status class under its
/// route template. Applied with `Router::layer`, it runs after routing
/// (so `MatchedPath` is known); its future is its own type, so a request
/// costs no allocation here, one clock read at each end and two atomic
/// updates.
#[derive(Clone)]
pub(crate) struct HttpMetricsLayer {
    metrics: Arc<HttpMetrics>,
}

impl HttpMetricsLayer {
    /// Registers the handles of every route with the installed recorder.
    pub(crate) fn register() -> Self {
        Self {
            metrics: Arc::new(HttpMetrics::register()),
        }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// A service whose answers are counted and timed.
#[derive(Clone)]
pub(crate) struct Tracked<S> {
    inner: S,
    metrics: Arc<HttpMetrics>,
}

impl<S> Service<Request> for Tracked<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = HttpMetrics::route(request.extensions().get::<MatchedPath>());
        TrackedFuture {
            inner: self.inner.call(request),
            metrics: Arc::clone(&self.metrics),
            route,
            started: Instant::now(),
        }
    }
}

pin_project! {
    /// The inner service's future; records the answer when it is ready.
    pub(crate) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        metrics: Arc<HttpMetrics>,
        route: usize,
        started: Instant,
    }
}

impl<F, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(route)) = (&result, this.metrics.routes.get(*this.route)) {
            route.record(response.status(), this.started.elapsed());
        }
        Poll::Ready(result)
    }
}
