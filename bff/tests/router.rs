//! Router tests: every endpoint and error path that needs no chain, and the
//! chain-failure path against an RPC address where nothing listens.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::Address;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use oracle_bff::chain::ChainReader;
use oracle_bff::{AppState, metrics::Metrics, router};
use oracle_common::config::FeedConfig;
use prometheus::Registry;
use serde_json::Value;
use tower::ServiceExt;

fn state(registry: &Registry) -> AppState {
    let feed = FeedConfig {
        pair: "BTC/USD".parse().unwrap(),
        decimals: 8,
        min_price: 1.into(),
        max_price: 1_000_000.into(),
        sources: vec!["kraken".parse().unwrap()],
        fallbacks: vec![],
        min_sources: 1,
        max_age: std::time::Duration::from_secs(10),
        deviation_bps: 50,
        heartbeat: std::time::Duration::from_secs(60),
    };
    // Port 9 (discard) on loopback: nothing answers JSON-RPC there.
    let dead_rpc = "http://127.0.0.1:9".parse().unwrap();
    AppState {
        reader: ChainReader::new(dead_rpc, Address::ZERO, 31337),
        feeds: Arc::new(BTreeMap::from([(feed.pair.clone(), feed)])),
        metrics: Metrics::register(registry).unwrap(),
    }
}

async fn get(path: &str, registry: &Registry) -> (StatusCode, Value) {
    let response = router(state(registry))
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn healthz_is_ok() {
    let (status, body) = get("/healthz", &Registry::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn malformed_pair_is_400_with_stable_code() {
    for path in [
        "/v1/prices/btc-usd",
        "/v1/prices/BTC",
        "/v1/prices/BTC-USD-EUR",
        "/v1/prices/%F0%9F%92%A9",
    ] {
        let (status, body) = get(path, &Registry::new()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["code"], "invalid_pair", "{path}");
        assert!(body["message"].as_str().unwrap().contains("invalid pair"));
    }
}

#[tokio::test]
async fn unknown_pair_is_404_with_stable_code() {
    let (status, body) = get("/v1/prices/DOGE-USD", &Registry::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "unknown_pair");
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let (status, body) = get("/v2/anything", &Registry::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn chain_failure_is_502_not_500() {
    let (status, body) = get("/v1/prices/BTC-USD", &Registry::new()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["code"], "chain_unavailable");
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_not_raw_path() {
    let registry = Registry::new();
    let _ = get("/v1/prices/DOGE-USD", &registry).await;
    let text = oracle_common::telemetry::render(&registry);
    assert!(
        text.contains(r#"oracle_bff_requests_total{route="/v1/prices/{pair}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("DOGE"),
        "raw paths must not become labels: {text}"
    );
}
