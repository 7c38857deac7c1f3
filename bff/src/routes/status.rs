//! `GET /v1/status`: whether the parts behind the prices are up, for the web
//! page and for clients that want to say why a value is not moving: the
//! aggregator nodes (a leader holds the lease in the `oracle_leader` KV bucket,
//! whose entries expire when not renewed), each chain's node (the price cache
//! is in step with it) and the message bus. Cached for [`CACHE_FOR`] so that a
//! crowd of pages costs one bus read per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use oracle_common::now_ms;
use oracle_common::wire::{LEASE_BUCKET, LEASE_KEY};
use serde::Serialize;

use crate::AppState;

/// How long one answer is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(1);
/// Longest wait for the bus.
const BUS_TIMEOUT: Duration = Duration::from_millis(500);

/// The aggregator nodes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AggregatorStatus {
    /// `up` while a node holds the lease, `down` when none does, `unknown`
    /// when the bus cannot be read.
    pub state: &'static str,
    /// The node holding it.
    pub leader: Option<String>,
    /// Since the lease was last renewed, ms.
    pub lease_age_ms: Option<u64>,
}

/// The chain node.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainStatus {
    /// `up` while the price cache is in step with it, else `down`.
    pub state: &'static str,
    /// The last head verified.
    pub head: Option<u64>,
}

/// The message bus.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BusStatus {
    /// `up` or `down`.
    pub state: &'static str,
}

/// One served chain's node.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NamedChainStatus {
    /// The chain's name (`?chain=`).
    pub name: String,
    /// `up` while the price cache is in step with its node, else `down`.
    pub state: &'static str,
    /// The last head verified.
    pub head: Option<u64>,
}

/// The answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// The aggregator nodes.
    pub aggregator: AggregatorStatus,
    /// The default chain's node.
    pub chain: ChainStatus,
    /// Every served chain's node, the default first.
    pub chains: Vec<NamedChainStatus>,
    /// The bus.
    pub bus: BusStatus,
}

/// The last answer and when it was made.
#[derive(Debug, Clone, Default)]
pub struct StatusCache(Arc<Mutex<Option<(Instant, Status)>>>);

async fn aggregator(state: &AppState) -> AggregatorStatus {
    let unknown = AggregatorStatus {
        state: "unknown",
        leader: None,
        lease_age_ms: None,
    };
    let Ok(nats) = state.bus() else {
        return unknown;
    };
    let js = async_nats::jetstream::new(nats.clone());
    let read = async {
        let store = js.get_key_value(LEASE_BUCKET).await.ok()?;
        store.entry(LEASE_KEY).await.ok()
    };
    match tokio::time::timeout(BUS_TIMEOUT, read).await {
        Ok(Some(Some(entry))) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
            let created_ms =
                u64::try_from(entry.created.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            AggregatorStatus {
                state: "up",
                leader: Some(String::from_utf8_lossy(&entry.value).into_owned()),
                lease_age_ms: Some(now_ms().saturating_sub(created_ms)),
            }
        }
        // The bucket exists and holds no live lease: no node leads.
        Ok(Some(_)) => AggregatorStatus {
            state: "down",
            leader: None,
            lease_age_ms: None,
        },
        Ok(None) | Err(_) => unknown,
    }
}

/// `GET /v1/status`.
pub async fn status(State(state): State<AppState>) -> Json<Status> {
    if let Ok(cached) = state.status.0.lock()
        && let Some((at, status)) = cached.as_ref()
        && at.elapsed() < CACHE_FOR
    {
        return Json(status.clone());
    }
    let chains: Vec<NamedChainStatus> = state
        .chains
        .iter()
        .map(|c| {
            let head = c.cache.head().map(|h| h.number);
            let in_step = head.is_some() && c.cache.behind_for().is_none();
            NamedChainStatus {
                name: c.name.to_string(),
                state: if in_step { "up" } else { "down" },
                head,
            }
        })
        .collect();
    let status = Status {
        aggregator: aggregator(&state).await,
        chain: ChainStatus {
            state: chains[0].state,
            head: chains[0].head,
        },
        chains,
        bus: BusStatus {
            state: if state.nats_answers() { "up" } else { "down" },
        },
    };
    if let Ok(mut cached) = state.status.0.lock() {
        *cached = Some((Instant::now(), status.clone()));
    }
    Json(status)
}
