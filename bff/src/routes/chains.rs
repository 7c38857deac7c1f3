//! `GET /v1/chains`: every chain this service serves (the default first),
//! with its id, hub, timing, and how its node stands: the last head the price
//! cache verified, whether it is in step, and whether new heads come over a
//! websocket subscription or by polling.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::params::Params;

/// One served chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainInfo {
    /// Its name in this API (`?chain=`).
    pub name: String,
    /// Whether requests without `?chain=` are served from it.
    pub default: bool,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The OracleHub contract.
    pub contract: String,
    /// The chain's expected block time, ms.
    pub block_time_ms: u64,
    /// Blocks on top of the including one before a submission is final.
    pub confirmations: u64,
    /// `up` while the price cache is in step with the node, else `down`.
    pub state: &'static str,
    /// The last head verified (`null` before the first).
    pub head: Option<Head>,
    /// `websocket` while new heads come over a subscription, else `polling`.
    pub heads_via: &'static str,
}

/// A block.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Head {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: String,
}

/// The answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainsResponse {
    /// The served chains, the default first.
    pub chains: Vec<ChainInfo>,
}

/// `GET /v1/chains`.
pub async fn list_chains(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ChainsResponse>, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let chains = state
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let head = c.cache.head();
            let in_step = head.is_some() && c.cache.behind_for().is_none();
            let subscribed = state
                .metrics
                .head_subscription
                .with_label_values(&[&c.name])
                .get()
                == 1;
            ChainInfo {
                name: c.name.to_string(),
                default: i == 0,
                chain_id: c.reader.chain_id(),
                contract: c.reader.hub_checksum().to_owned(),
                block_time_ms: u64::try_from(c.block_time.as_millis()).unwrap_or(u64::MAX),
                confirmations: c.confirmations,
                state: if in_step { "up" } else { "down" },
                head: head.map(|h| Head {
                    number: h.number,
                    hash: h.hash.to_string(),
                }),
                heads_via: if subscribed { "websocket" } else { "polling" },
            }
        })
        .collect();
    Ok(Json(ChainsResponse { chains }))
}
