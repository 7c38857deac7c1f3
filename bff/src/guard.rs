//! Request guards: API keys and per-client rate limits for the `/v1` client
//! endpoints, a response deadline for every route, and CORS from config.
//! Each refusal is a JSON error with a stable code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::keccak256;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oracle_common::config::RateLimit;

use crate::AppState;
use crate::error::ApiError;

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// Token buckets per client identity.
#[derive(Debug, Clone)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl Limiter {
    /// A limiter allowing `limit.requests` per `limit.per`, bursting to it.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one request from `who`'s bucket, or says how long to wait.
    pub fn check(&self, who: &str, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.limit.requests);
        let rate = capacity / self.limit.per.as_secs_f64();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(who) {
            buckets.retain(|_, (tokens, at)| {
                (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate) < capacity
            });
        }
        let (tokens, at) = buckets.entry(who.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

/// The API keys, hashed so comparisons take the same time.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Arc<Vec<[u8; 32]>>);

impl ApiKeys {
    /// From the configured secrets.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(
            keys.into_iter()
                .map(|k| keccak256(k.as_bytes()).0)
                .collect(),
        ))
    }

    /// No keys: the endpoints are open.
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `given` is one of the keys (every key compared in full).
    pub fn accepts(&self, given: &str) -> bool {
        let g = keccak256(given.as_bytes()).0;
        self.0.iter().fold(false, |found, k| {
            found
                | (k.iter()
                    .zip(g.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0)
        })
    }
}

/// API key and rate limit of the client endpoints.
pub async fn client_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !state.api_keys.is_open() {
        match &key {
            Some(k) if state.api_keys.accepts(k) => {}
            Some(_) => return ApiError::InvalidApiKey.into_response(),
            None => return ApiError::MissingApiKey.into_response(),
        }
    }
    if let Some(limiter) = &state.limiter {
        let who = match (&key, request.extensions().get::<ConnectInfo<SocketAddr>>()) {
            (Some(k), _) => format!("key:{}", alloy::hex::encode(&keccak256(k.as_bytes())[..8])),
            (None, Some(ConnectInfo(addr))) => format!("ip:{}", addr.ip()),
            (None, None) => "ip:unknown".to_owned(),
        };
        if let Err(wait) = limiter.check(&who, Instant::now()) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::RateLimited(secs).into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    }
    next.run(request).await
}

/// Answers 503 `timeout` when a handler takes longer than the deadline.
pub async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// The CORS layer for `origins` (`*` = any); `None` when none are configured.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                "x-api-key".parse().unwrap_or(header::ACCEPT),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_configured_rate_per_client() {
        let limiter = Limiter::new(RateLimit {
            requests: 2,
            per: Duration::from_secs(1),
        });
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert!(limiter.check("a", t0).is_ok());
        let wait = limiter.check("a", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(
            limiter.check("b", t0).is_ok(),
            "another client has its own bucket"
        );
        assert!(limiter.check("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn api_keys_match_exactly() {
        let keys = ApiKeys::new(["k1", "k2"]);
        assert!(keys.accepts("k1") && keys.accepts("k2"));
        assert!(!keys.accepts("k") && !keys.accepts("k12") && !keys.accepts(""));
        assert!(ApiKeys::new([]).is_open());
    }
}
