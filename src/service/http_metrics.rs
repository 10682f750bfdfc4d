//! HTTP request metrics: count by route template and status class, latency by route.
//!
//! Handles for every route are registered when the router is built, so a
//! request costs one map lookup by the matched route template (no
//! allocation) and two atomic updates.

use std::collections::HashMap;
use std::sync::Arc;

use ::metrics::{Counter, Histogram, counter, histogram};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
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

/// The handles of every route.
pub(crate) struct HttpMetrics {
    routes: HashMap<&'static str, RouteMetrics>,
    unmatched: RouteMetrics,
    other: RouteMetrics,
}

impl HttpMetrics {
    pub(crate) fn register() -> Arc<Self> {
        Arc::new(Self {
            routes: ROUTES
                .iter()
                .map(|route| (*route, RouteMetrics::register(route)))
                .collect(),
            unmatched: RouteMetrics::register("unmatched"),
            other: RouteMetrics::register("other"),
        })
    }

    fn route(&self, matched: Option<&MatchedPath>) -> &RouteMetrics {
        match matched {
            None => &self.unmatched,
            Some(path) => self.routes.get(path.as_str()).unwrap_or(&self.other),
        }
    }
}

/// The middleware: times the request and counts its status class.
pub(crate) async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = metrics.route(request.extensions().get::<MatchedPath>());
    let started = Instant::now();
    let response = next.run(request).await;
    route.record(response.status(), started.elapsed());
    response
}
