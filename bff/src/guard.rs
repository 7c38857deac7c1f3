//! Request guards: API keys and per-client rate limits for the `/v1` client
//! endpoints, a response deadline for every route, and CORS from config.
//! Each refusal is a JSON error with a stable code.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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

/// Shards of the limiter and the stream table: a request locks one shard.
const SHARDS: usize = 64;
/// Buckets per shard generation; a shard holds at most twice this.
const BUCKETS_PER_GENERATION: usize = 4096;

/// Who a request counts against: the API key when keys are configured, else
/// the client address (an IPv6 client by its /64, the block one host gets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(pub Arc<str>);

impl ClientId {
    fn shard(&self) -> usize {
        use std::hash::{BuildHasher, Hasher};
        let mut h = SHARD_HASHER.build_hasher();
        h.write(self.0.as_bytes());
        (h.finish() as usize) % SHARDS
    }
}

static SHARD_HASHER: std::sync::LazyLock<std::collections::hash_map::RandomState> =
    std::sync::LazyLock::new(std::collections::hash_map::RandomState::new);

/// Token buckets per client, in [`SHARDS`] shards of two generations each:
/// a bucket not touched for a whole generation is dropped with it, so the
/// table stays bounded with O(1) work per request (no scan of every bucket
/// under a lock). A dropped bucket was idle long enough to be full again
/// whenever a generation outlasts the refill time, which the size makes
/// likely; under a flood of fresh identities, the oldest idle buckets go
/// first.
#[derive(Debug, Clone)]
pub struct Limiter {
    limit: RateLimit,
    shards: Arc<Vec<Mutex<Generations>>>,
}

type Bucket = (f64, Instant);

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<ClientId, Bucket>,
    previous: HashMap<ClientId, Bucket>,
}

impl Limiter {
    /// A limiter allowing `limit.requests` per `limit.per`, bursting to it.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            shards: Arc::new((0..SHARDS).map(|_| Mutex::default()).collect()),
        }
    }

    /// Buckets held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .map(|g| g.current.len() + g.previous.len())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one request from `who`'s bucket, or says how long to wait.
    pub fn check(&self, who: &ClientId, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.limit.requests);
        let rate = capacity / self.limit.per.as_secs_f64();
        let Ok(mut shard) = self.shards[who.shard()].lock() else {
            return Ok(());
        };
        let take = |bucket: &mut Bucket| {
            let (tokens, at) = bucket;
            *tokens =
                (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(capacity);
            *at = now;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                Ok(())
            } else {
                Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
            }
        };
        // The common case: a bucket of the current generation, updated in place.
        if let Some(bucket) = shard.current.get_mut(who) {
            return take(bucket);
        }
        let mut bucket = shard.previous.remove(who).unwrap_or((capacity, now));
        let verdict = take(&mut bucket);
        let mut retired = None;
        if shard.current.len() >= BUCKETS_PER_GENERATION {
            let full = std::mem::take(&mut shard.current);
            retired = Some(std::mem::replace(&mut shard.previous, full));
        }
        shard.current.insert(who.clone(), bucket);
        drop(shard);
        // Freed outside the lock.
        drop(retired);
        verdict
    }
}

/// Concurrent stream slots: a global count and one per client.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    max: usize,
    per_client: usize,
    open: Arc<std::sync::atomic::AtomicUsize>,
    shards: Arc<Vec<Mutex<HashMap<ClientId, usize>>>>,
}

/// One open stream; its slot is given back when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    slots: StreamSlots,
    who: ClientId,
}

impl StreamSlots {
    /// At most `max` streams, `per_client` of them per client.
    pub fn new(max: usize, per_client: usize) -> Self {
        Self {
            max,
            per_client,
            open: Arc::default(),
            shards: Arc::new((0..SHARDS).map(|_| Mutex::default()).collect()),
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A slot for `who`, or why not.
    pub fn acquire(&self, who: &ClientId) -> Result<StreamSlot, ApiError> {
        use std::sync::atomic::Ordering;
        let mut shard = self.shards[who.shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let held = shard.get(who).copied().unwrap_or(0);
        if held >= self.per_client {
            return Err(ApiError::TooManyStreams(self.per_client));
        }
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(ApiError::StreamsFull(self.max));
        }
        shard.insert(who.clone(), held + 1);
        Ok(StreamSlot {
            slots: self.clone(),
            who: who.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut shard = self.slots.shards[self.who.shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = shard.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                shard.remove(&self.who);
            }
        }
        self.slots
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The API keys, hashed so comparisons take the same time, each with the
/// identity its requests count against (computed once, not per request).
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Arc<Vec<([u8; 32], ClientId)>>);

impl ApiKeys {
    /// From the configured secrets.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(
            keys.into_iter()
                .map(|k| {
                    let hash = keccak256(k.as_bytes()).0;
                    let id = ClientId(format!("key:{}", alloy::hex::encode(&hash[..8])).into());
                    (hash, id)
                })
                .collect(),
        ))
    }

    /// No keys: the endpoints are open.
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// The identity of `given` if it is one of the keys (every key compared
    /// in full, whichever matches).
    pub fn find(&self, given: &str) -> Option<ClientId> {
        let g = keccak256(given.as_bytes()).0;
        let mut found = None;
        for (k, id) in self.0.iter() {
            let equal = k
                .iter()
                .zip(g.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if equal {
                found = Some(id.clone());
            }
        }
        found
    }

    /// Whether `given` is one of the keys.
    pub fn accepts(&self, given: &str) -> bool {
        self.find(given).is_some()
    }
}

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<(IpAddr, u8)>>);

impl TrustedProxies {
    /// From `bff.trusted_proxies` (validated with the config).
    pub fn new<'a>(blocks: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Arc::new(
            blocks
                .into_iter()
                .filter_map(|b| oracle_common::config::bff::parse_cidr(b).ok())
                .collect(),
        ))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, len)| in_block(ip, *net, *len))
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy,
    /// the last address in `X-Forwarded-For` that is not a trusted proxy
    /// (earlier entries are whatever the client wrote).
    pub fn client_addr(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for hop in text.rsplit(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) if self.trusts(ip) => client = ip,
                    Ok(ip) => return ip,
                    Err(_) => return client,
                }
            }
        }
        client
    }
}

fn in_block(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// The identity of a client address: IPv4 whole, IPv6 by its /64.
fn addr_id(ip: IpAddr) -> ClientId {
    match ip {
        IpAddr::V4(v4) => ClientId(format!("ip:{v4}").into()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ClientId(format!("ip:{v4}").into()),
            None => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                ClientId(format!("ip:{}/64", std::net::Ipv6Addr::from(prefix)).into())
            }
        },
    }
}

fn peer(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(a)| a.ip())
}

/// API key and rate limit of the client endpoints. With keys configured, a
/// request needs one of them (401 otherwise) and counts against it; without,
/// `X-API-Key` is ignored and requests count against the client address.
/// The identity is left in the request's extensions as a [`ClientId`].
pub async fn client_guard(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match admit(&state, &request) {
        Ok(who) => {
            request.extensions_mut().insert(who);
            next.run(request).await
        }
        Err(refused) => refused,
    }
}

/// The client guard's decision for `request`: who it counts against, or the
/// refusal to send. Shared by [`client_guard`] and the latest-price handler,
/// which runs it inline (no middleware layer on the hottest route).
#[allow(clippy::result_large_err)]
pub fn admit(state: &AppState, request: &Request) -> Result<ClientId, Response> {
    let who = if state.api_keys.is_open() {
        addr_id(
            state
                .trusted_proxies
                .client_addr(peer(request), request.headers()),
        )
    } else {
        let key = request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok());
        match key.map(|k| state.api_keys.find(k)) {
            Some(Some(id)) => id,
            Some(None) => return Err(ApiError::InvalidApiKey.into_response()),
            None => return Err(ApiError::MissingApiKey.into_response()),
        }
    };
    if let Some(limiter) = &state.limiter
        && let Err(wait) = limiter.check(&who, Instant::now())
    {
        return Err(refuse(wait));
    }
    Ok(who)
}

/// The rate limit of the admin endpoints, per client address, checked before
/// the token so that guessing it is slow.
pub async fn admin_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let who = addr_id(
        state
            .trusted_proxies
            .client_addr(peer(&request), request.headers()),
    );
    if let Err(wait) = state.admin_limiter.check(&who, Instant::now()) {
        return refuse(wait);
    }
    next.run(request).await
}

fn refuse(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited(secs.max(1)).into_response()
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
        let (a, b) = (ClientId("a".into()), ClientId("b".into()));
        assert!(limiter.check(&a, t0).is_ok());
        assert!(limiter.check(&a, t0).is_ok());
        let wait = limiter.check(&a, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(
            limiter.check(&b, t0).is_ok(),
            "another client has its own bucket"
        );
        assert!(limiter.check(&a, t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check(&a, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn the_bucket_table_stays_bounded_and_keeps_busy_clients() {
        let limiter = Limiter::new(RateLimit {
            requests: 1,
            per: Duration::from_secs(3600),
        });
        let t0 = Instant::now();
        let busy = ClientId("busy".into());
        assert!(limiter.check(&busy, t0).is_ok());
        for i in 0..(SHARDS * BUCKETS_PER_GENERATION * 3) {
            assert!(
                limiter
                    .check(&ClientId(format!("flood-{i}").into()), t0)
                    .is_ok()
            );
            if i % 1000 == 0 {
                // A client that keeps asking keeps its (empty) bucket.
                assert!(limiter.check(&busy, t0).is_err(), "after {i}");
            }
        }
        assert!(
            limiter.len() <= SHARDS * BUCKETS_PER_GENERATION * 2,
            "{} buckets",
            limiter.len()
        );
    }

    #[test]
    fn stream_slots_are_capped_per_client_and_in_all_and_given_back() {
        let slots = StreamSlots::new(3, 2);
        let (a, b, c) = (
            ClientId("a".into()),
            ClientId("b".into()),
            ClientId("c".into()),
        );
        let a1 = slots.acquire(&a).unwrap();
        let _a2 = slots.acquire(&a).unwrap();
        assert_eq!(slots.acquire(&a).unwrap_err().code(), "too_many_streams");
        let _b1 = slots.acquire(&b).unwrap();
        assert_eq!(slots.acquire(&c).unwrap_err().code(), "streams_full");
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _c1 = slots.acquire(&c).unwrap();
        assert_eq!(slots.acquire(&a).unwrap_err().code(), "streams_full");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        use axum::http::HeaderMap;
        let proxies = TrustedProxies::new(["10.0.0.0/8"]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.1.1.1".parse().unwrap(),
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Through two trusted hops: the first untrusted address from the right.
        assert_eq!(
            proxies.client_addr(ip("10.0.0.2"), &headers),
            ip("203.0.113.7")
        );
        // From an untrusted peer the header is the client's own words.
        assert_eq!(
            proxies.client_addr(ip("198.51.100.1"), &headers),
            ip("198.51.100.1")
        );
        assert_eq!(
            TrustedProxies::default().client_addr(ip("10.0.0.2"), &headers),
            ip("10.0.0.2")
        );
        assert_eq!(
            addr_id(ip("2001:db8:1:2:3:4:5:6")),
            addr_id(ip("2001:db8:1:2:ffff::1")),
            "one /64 is one client"
        );
    }

    #[test]
    fn api_keys_match_exactly() {
        let keys = ApiKeys::new(["k1", "k2"]);
        assert!(keys.accepts("k1") && keys.accepts("k2"));
        assert!(!keys.accepts("k") && !keys.accepts("k12") && !keys.accepts(""));
        assert!(ApiKeys::new([]).is_open());
    }
}
