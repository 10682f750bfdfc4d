//! Content negotiation of the data routes (RFC 9110 §12.5.3): the coding
//! chosen by `Accept-Encoding` with q-values, `*` and `identity;q=0`; the
//! compressed bodies decompressed and compared byte for byte with the
//! identity body; an ETag per coding, 304 per coding, and `Vary` always.

mod support;

use std::io::Read;

use axum::http::{HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use support::app::{
    DATA_ROUTES, body_bytes, expect_api_error, header_str, load, section_of, send, service,
};

/// The coding the response declares (`identity` when it declares none).
fn content_encoding(response: &axum::http::Response<axum::body::Body>) -> String {
    response
        .headers()
        .get(header::CONTENT_ENCODING)
        .map_or("identity", |v| v.to_str().expect("ASCII"))
        .to_owned()
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "identity" => out.extend_from_slice(body),
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        other => panic!("unexpected coding {other}"),
    }
    out
}

/// The identity ETag with the coding's suffix before the closing quote.
fn etag_for(identity: &HeaderValue, coding: &str) -> String {
    let tag = identity.to_str().expect("ASCII");
    let suffix = match coding {
        "identity" => "",
        "gzip" => "-gz",
        "br" => "-br",
        other => panic!("unexpected coding {other}"),
    };
    format!("{}{suffix}\"", tag.trim_end_matches('"'))
}

/// Sends `accept_encoding` (none if `None`) to every data route and checks
/// the answer is `expected`, decodes to the identity body and carries the
/// coding's ETag, `Vary` and a `Content-Length` of the bytes sent.
async fn expect_coding(accept_encoding: Option<&str>, expected: &str) {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    for route in DATA_ROUTES {
        let (identity_etag, identity_body) = section_of(&sections, route);
        let headers: Vec<_> = accept_encoding
            .map(|value| (header::ACCEPT_ENCODING, value))
            .into_iter()
            .collect();
        let response = send(&router, Method::GET, route, &headers).await;
        let context = format!("{route} with Accept-Encoding {accept_encoding:?}");
        assert_eq!(response.status(), StatusCode::OK, "{context}");
        assert_eq!(content_encoding(&response), expected, "{context}");
        assert_eq!(
            header_str(&response, &header::VARY),
            "accept-encoding",
            "{context}"
        );
        assert_eq!(
            header_str(&response, &header::CONTENT_TYPE),
            "application/json"
        );
        assert_eq!(
            header_str(&response, &header::ETAG),
            etag_for(identity_etag, expected),
            "{context}"
        );
        let length: usize = header_str(&response, &header::CONTENT_LENGTH)
            .parse()
            .expect("a number");
        let sent = body_bytes(response).await;
        assert_eq!(length, sent.len(), "{context}");
        if expected != "identity" {
            assert!(
                sent.len() < identity_body.len() / 3,
                "{context}: {} bytes",
                sent.len()
            );
        }
        assert!(
            decode(expected, &sent) == identity_body.as_ref(),
            "{context}: the decoded body differs from the identity body"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn gzip_alone_gets_gzip() {
    expect_coding(Some("gzip"), "gzip").await;
    expect_coding(Some("x-gzip, deflate"), "gzip").await;
}

#[tokio::test(start_paused = true)]
async fn br_alone_gets_br() {
    expect_coding(Some("br"), "br").await;
}

#[tokio::test(start_paused = true)]
async fn both_choose_by_q_value_and_prefer_br_on_a_tie() {
    expect_coding(Some("gzip, deflate, br"), "br").await;
    expect_coding(Some("gzip;q=1.0, br;q=0.5"), "gzip").await;
    expect_coding(Some("gzip;q=0.5, br;q=0.9"), "br").await;
    expect_coding(Some("br;q=0.8, gzip;q=0.8, identity;q=0.8"), "br").await;
    expect_coding(Some("br;q=0, gzip;q=0.1"), "gzip").await;
}

#[tokio::test(start_paused = true)]
async fn identity_only_gets_the_plain_body() {
    expect_coding(Some("identity"), "identity").await;
    expect_coding(Some("gzip;q=0.5, identity"), "identity").await;
    expect_coding(Some("br;q=0, gzip;q=0"), "identity").await;
    expect_coding(Some(""), "identity").await;
}

#[tokio::test(start_paused = true)]
async fn star_accepts_every_coding_and_gets_br() {
    expect_coding(Some("*"), "br").await;
    expect_coding(Some("br;q=0, *"), "gzip").await;
}

#[tokio::test(start_paused = true)]
async fn no_accept_encoding_gets_the_plain_body() {
    expect_coding(None, "identity").await;
}

#[tokio::test(start_paused = true)]
async fn refusing_identity_with_nothing_else_acceptable_gets_406() {
    let (cache, router) = service();
    load(&cache, 1);
    for value in [
        "identity;q=0",
        "deflate, identity;q=0",
        "*;q=0",
        "br;q=0, gzip;q=0, *;q=0",
    ] {
        for route in DATA_ROUTES {
            let response = send(
                &router,
                Method::GET,
                route,
                &[(header::ACCEPT_ENCODING, value)],
            )
            .await;
            assert_eq!(
                header_str(&response, &header::VARY),
                "accept-encoding",
                "{route} {value}"
            );
            assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
            expect_api_error(response, StatusCode::NOT_ACCEPTABLE, "not_acceptable").await;
        }
    }
    // Refusing identity is fine while a compressed coding is acceptable.
    expect_coding(Some("identity;q=0, gzip"), "gzip").await;
    expect_coding(Some("*;q=0, br"), "br").await;
}

#[tokio::test(start_paused = true)]
async fn if_none_match_gets_304_per_coding() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    for route in DATA_ROUTES {
        let (identity_etag, _) = section_of(&sections, route);
        for coding in ["br", "gzip", "identity"] {
            let own = etag_for(identity_etag, coding);
            let headers = [
                (header::ACCEPT_ENCODING, coding),
                (header::IF_NONE_MATCH, own.as_str()),
            ];
            let response = send(&router, Method::GET, route, &headers).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{route} {coding}"
            );
            assert_eq!(header_str(&response, &header::ETAG), own);
            assert_eq!(header_str(&response, &header::VARY), "accept-encoding");
            assert!(body_bytes(response).await.is_empty());

            // Another coding's tag does not validate this coding's bytes.
            for other in ["br", "gzip", "identity"]
                .into_iter()
                .filter(|o| *o != coding)
            {
                let theirs = etag_for(identity_etag, other);
                let headers = [
                    (header::ACCEPT_ENCODING, coding),
                    (header::IF_NONE_MATCH, theirs.as_str()),
                ];
                let response = send(&router, Method::GET, route, &headers).await;
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "{route} {coding} vs {other}"
                );
                assert_eq!(content_encoding(&response), coding);
                assert_eq!(header_str(&response, &header::ETAG), own);
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn compressed_bodies_are_the_same_bytes_on_every_request() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    let accept = [(header::ACCEPT_ENCODING, "br")];
    let first = body_bytes(send(&router, Method::GET, "/dashboard", &accept).await).await;
    let second = body_bytes(send(&router, Method::GET, "/dashboard", &accept).await).await;
    assert_eq!(first, second);
    let stored: Bytes = sections
        .dashboard
        .encoded()
        .get(warmcache::Coding::Br)
        .expect("the dashboard shrinks")
        .bytes()
        .clone();
    assert_eq!(first, stored, "served as compressed at refresh time");
}
