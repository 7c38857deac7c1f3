//! The handler state the router tests share: one served feed (BTC/USD), a
//! chain RPC where nothing listens (port 9), no NATS, admin token `t0ken`.

#![allow(clippy::unwrap_used, dead_code)] // test helpers: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::Address;
use oracle_bff::chain::ChainReader;
use oracle_bff::chains::{ChainView, Chains};
use oracle_bff::{AppState, metrics::Metrics};
use oracle_common::config::FeedConfig;
use prometheus::Registry;

pub fn state(registry: &Registry) -> AppState {
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
        max_report_age: std::time::Duration::from_secs(120),
        adapter: None,
    };
    // Port 9 (discard) on loopback: nothing answers JSON-RPC there.
    AppState::new(oracle_bff::Shared {
        chains: chains(vec![view("local", 31337, "http://127.0.0.1:9", feed)]),
        metrics: Metrics::register(registry).unwrap(),
        nats: None,
        nats_ready: None,
        refresh_wait: std::time::Duration::from_secs(1),
        submissions: oracle_bff::submissions::Submissions::new(100),
        admin_token: Some("t0ken".into()),
        api_keys: oracle_bff::guard::ApiKeys::default(),
        limiter: None,
        admin_limiter: oracle_bff::guard::Limiter::new(oracle_common::config::RateLimit {
            requests: 1000,
            per: std::time::Duration::from_secs(1),
        }),
        trusted_proxies: oracle_bff::guard::TrustedProxies::default(),
        streams: oracle_bff::guard::StreamSlots::new(100, 10),
        chain_timeout: std::time::Duration::from_millis(800),
        readiness_grace: std::time::Duration::from_secs(60),
        status: oracle_bff::routes::status::StatusCache::default(),
        cors_origins: Arc::new(vec![]),
        max_body_bytes: 1024,
        request_timeout: std::time::Duration::from_secs(5),
    })
}

/// A chain named `name` (id `chain_id`) read at `rpc`, serving `feed`.
pub fn view(name: &str, chain_id: u64, rpc: &str, feed: FeedConfig) -> ChainView {
    ChainView {
        name: name.into(),
        reader: ChainReader::new(rpc.parse().unwrap(), Address::ZERO, chain_id),
        cache: oracle_bff::cache::PriceCache::new(
            std::time::Duration::from_millis(100),
            tokio_util::sync::CancellationToken::new(),
        ),
        reports: oracle_bff::reports::Reports::default(),
        bodies: oracle_bff::routes::prices::Bodies::default(),
        history: oracle_bff::routes::history::HistoryCache::default(),
        feeds: Arc::new(BTreeMap::from([(feed.pair.clone(), feed)])),
        block_time: std::time::Duration::from_secs(1),
        confirmations: 0,
        ws_url: None,
    }
}

/// The served chains.
pub fn chains(views: Vec<ChainView>) -> Chains {
    Chains::new(views)
}
