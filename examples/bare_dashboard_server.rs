//! The baseline of `benches/http_dashboard_encoding.sh`: a bare axum server
//! that answers `GET /dashboard` with a fixed body read from a file at
//! start (the bytes warmcache sent for one coding), with the same
//! `Content-Type`, `Content-Encoding`, `Vary` and `ETag` headers, and
//! nothing else: no snapshot, no negotiation, no metrics.
//!
//! `BARE_BODY=/tmp/dashboard.br BARE_ENCODING=br BARE_ETAG='"x"' BARE_LISTEN=127.0.0.1:0 \
//!  cargo run --release --example bare_dashboard_server`
//!
//! It prints `listening on http://ADDR` on stderr once ready.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::get;
use bytes::Bytes;

/// The body and the headers every answer carries, built once.
#[derive(Clone)]
struct Answer {
    headers: HeaderMap,
    body: Bytes,
}

async fn dashboard(State(answer): State<Answer>) -> (HeaderMap, Bytes) {
    (answer.headers.clone(), answer.body.clone())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let body = Bytes::from(std::fs::read(std::env::var("BARE_BODY")?)?);
    let encoding = std::env::var("BARE_ENCODING").unwrap_or_else(|_| "identity".to_owned());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if encoding != "identity" {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_str(&encoding)?);
    }
    if let Ok(etag) = std::env::var("BARE_ETAG") {
        headers.insert(header::ETAG, HeaderValue::from_str(&etag)?);
    }
    let listen: SocketAddr = std::env::var("BARE_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        eprintln!("serving {} bytes ({encoding})", body.len());
        eprintln!("listening on http://{}", listener.local_addr()?);
        let app = Router::new()
            .route("/dashboard", get(dashboard))
            .with_state(Answer { headers, body });
        axum::serve(listener, app).await?;
        Ok(())
    })
}
