//! Property: whatever path, query string, method, headers or body a client
//! sends, the router never answers 500, errors are JSON with a documented
//! stable code, and a 5xx only ever reports an unavailable dependency (this
//! state's chain node and NATS are down on purpose).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use axum::body::Body;
use axum::http::{Method, Request};
use oracle_bff::{AppState, router};
use prometheus::Registry;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

mod common;

fn state() -> AppState {
    common::state(&Registry::new())
}

/// Codes a 5xx may carry: a dependency is down, not the input at fault.
const DEPENDENCY_CODES: &[&str] = &[
    "chain_unavailable",
    "bus_unavailable",
    "no_data",
    "no_aggregator",
    "timeout",
    "not_ready",
];

fn documented_codes() -> Vec<String> {
    let doc: Value = serde_json::from_str(oracle_bff::routes::openapi::OPENAPI).unwrap();
    doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v1".to_owned()),
        Just("prices".to_owned()),
        Just("BTC-USD".to_owned()),
        Just("history".to_owned()),
        Just("refresh".to_owned()),
        Just("submissions".to_owned()),
        Just("admin".to_owned()),
        Just("retry".to_owned()),
        Just("stream".to_owned()),
        Just("feeds".to_owned()),
        Just("1795295970219-0a1b2c3d".to_owned()),
        "[A-Za-z0-9%._~-]{0,12}",
        "\\PC{0,6}".prop_map(|s| s
            .chars()
            .filter(|c| !"/?#".contains(*c))
            .collect::<String>()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("block"),
        Just("from"),
        Just("to"),
        Just("limit"),
        Just("cursor"),
        Just("status"),
        Just("pair"),
        Just("pairs"),
        Just("throttle_ms"),
        Just("x"),
    ];
    let value = prop_oneof![
        "[0-9]{0,25}",
        "-?[0-9]{1,5}",
        "[A-Za-z%=&+-]{0,10}",
        Just("BTC-USD".to_owned()),
        Just("failed".to_owned()),
    ];
    proptest::collection::vec((key, value), 0..4).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_input_yields_a_500(
        segments in proptest::collection::vec(segment(), 0..6),
        q in query(),
        post in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        auth in prop_oneof![Just(None), Just(Some("Bearer t0ken")), Just(Some("Bearer x")), Just(Some("Basic dDp0"))],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let path = format!("/{}", segments.join("/"));
        let uri = if q.is_empty() { path.clone() } else { format!("{path}?{q}") };
        let Ok(uri) = uri.parse::<axum::http::Uri>() else {
            return Ok(()); // not a request a client can send
        };
        let mut request = Request::builder()
            .method(if post { Method::POST } else { Method::GET })
            .uri(uri.clone());
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let request = request.body(Body::from(body)).unwrap();
        let (status, bytes, is_stream) = runtime.block_on(async {
            let response = router(state()).oneshot(request).await.unwrap();
            let status = response.status();
            let is_stream = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if is_stream {
                return (status, Vec::new(), true);
            }
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, bytes.to_vec(), false)
        });
        prop_assert_ne!(status.as_u16(), 500, "{}", uri);
        if status.is_client_error() || status.is_server_error() {
            prop_assert!(!is_stream);
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{uri}: {status} not JSON: {e}")))?;
            let code = body["code"].as_str().unwrap_or_default().to_owned();
            prop_assert!(
                documented_codes().contains(&code),
                "{} -> {} undocumented code {:?}", uri, status, body
            );
            if status.is_server_error() {
                prop_assert!(DEPENDENCY_CODES.contains(&code.as_str()), "{} -> {} {:?}", uri, status, body);
            }
        }
    }
}
