//! HTTP request metrics: count by route template and status class, latency by route.
//!
//! Handles for every route are registered when the router is built, and
//! each route's handler is wrapped knowing its template, so a request costs
//! no lookup, no allocation and two atomic updates (the fallbacks alone look
//! at the request's `MatchedPath`).
//!
//! The metrics wrap each handler ([`HttpMetricsLayer::timed`]) rather than
//! the router (`Router::layer`): a router layer puts one more boxed service
//! between the route and its handler, which axum clones (an allocation and
//! a copy of the state) and whose future it boxes, on every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::metrics::{Counter, Histogram, counter, histogram};
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::Response;
use pin_project_lite::pin_project;
use tokio::time::Instant;

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

    /// The index of a route template: [`ROUTES`] in order, `other` when
    /// it is missing there.
    fn index(template: &str) -> usize {
        ROUTES
            .iter()
            .position(|route| *route == template)
            .unwrap_or(ROUTES.len() + 1)
    }

    /// The index of the request's route, for the fallbacks: `unmatched`
    /// when no route took the request.
    fn route(matched: Option<&MatchedPath>) -> usize {
        match matched {
            None => ROUTES.len(),
            Some(path) => Self::index(path.as_str()),
        }
    }
}

/// The handles, shared by every wrapped handler: each request is timed,
/// and its status class counted under its route template (the one it was
/// wrapped with; for a fallback, `MatchedPath`, which axum sets before it
/// calls the handler). A request costs no allocation here, one clock read
/// at each end and two atomic updates.
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

    /// `handler` of the route `template`, counted and timed under it.
    /// Wrap every handler of the router with this, or, for the fallbacks,
    /// with [`Self::fallback`].
    pub(crate) fn timed<H>(&self, template: &'static str, handler: H) -> Timed<H> {
        Timed {
            handler,
            metrics: Arc::clone(&self.metrics),
            route: Some(HttpMetrics::index(template)),
        }
    }

    /// `router` with `GET path` answered by `handler`, counted and timed
    /// under `path`.
    pub(crate) fn get<H, T, S>(
        &self,
        router: Router<S>,
        path: &'static str,
        handler: H,
    ) -> Router<S>
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        router.route(path, axum::routing::get(self.timed(path, handler)))
    }

    /// A fallback `handler`, counted and timed under the route the request
    /// matched (`MatchedPath`, set for a method no route allows), or
    /// `unmatched`.
    pub(crate) fn fallback<H>(&self, handler: H) -> Timed<H> {
        Timed {
            handler,
            metrics: Arc::clone(&self.metrics),
            route: None,
        }
    }
}

/// A handler whose answers are counted and timed.
#[derive(Clone)]
pub(crate) struct Timed<H> {
    handler: H,
    metrics: Arc<HttpMetrics>,
    /// The route's index, known when it was wrapped; `None` for a fallback.
    route: Option<usize>,
}

impl<H, T, S> Handler<T, S> for Timed<H>
where
    H: Handler<T, S>,
    S: Send + Sync + 'static,
{
    type Future = TimedFuture<H::Future>;

    fn call(self, request: Request, state: S) -> Self::Future {
        // Known when wrapped, so a router nested in a host's (whose
        // `MatchedPath` carries the host's prefix) counts under it too.
        let route = self
            .route
            .unwrap_or_else(|| HttpMetrics::route(request.extensions().get::<MatchedPath>()));
        TimedFuture {
            started: Instant::now(),
            inner: self.handler.call(request, state),
            metrics: self.metrics,
            route,
        }
    }
}

pin_project! {
    /// The handler's future; records the answer when it is ready.
    pub(crate) struct TimedFuture<F> {
        #[pin]
        inner: F,
        metrics: Arc<HttpMetrics>,
        route: usize,
        started: Instant,
    }
}

impl<F> Future for TimedFuture<F>
where
    F: Future<Output = Response>,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx));
        if let Some(route) = this.metrics.routes.get(*this.route) {
            route.record(response.status(), this.started.elapsed());
        }
        Poll::Ready(response)
    }
}
