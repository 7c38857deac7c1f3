//! `GET /healthz` (the process is alive), `GET /readyz` (NATS answers probes,
//! chain reachable, and the freshest feed inside its heartbeat plus
//! `bff.readiness_grace`: the service can answer with a value worth
//! serving). `/metrics` is served on `bff.metrics_addr` only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oracle_common::now_ms;
use serde::Serialize;
use serde_json::{Value, json};

use super::prices::read;
use crate::AppState;
use crate::chains::ChainView;

/// Liveness: always 200 while the server runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

impl Check {
    fn new(ok: bool, detail: impl Into<String>) -> Self {
        Self {
            ok,
            detail: detail.into(),
        }
    }
}

/// Readiness: 200 `{"status":"ready","checks":…}` or 503
/// `{"code":"not_ready","message":…,"checks":…}`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let nats = match &state.nats {
        None => Check::new(false, "not configured"),
        Some(c) => {
            let server = c.server_info().server_name;
            if state.nats_answers() {
                Check::new(true, format!("server {server} answers"))
            } else {
                Check::new(
                    false,
                    format!(
                        "no answer from NATS (last server {server}, {:?})",
                        c.connection_state()
                    ),
                )
            }
        }
    };
    // The default chain gates readiness (`chain`, `feeds`); every other
    // chain is reported under `chains` without gating: one chain's node
    // being down must not take the others off the load balancer.
    let mut views = state.chains.iter();
    let (chain, feeds) = match views.next() {
        Some(default) => chain_view_checks(&state, default).await,
        None => (
            Check::new(false, "no chain served"),
            Check::new(false, "chain not read"),
        ),
    };
    let mut others = serde_json::Map::new();
    for view in views {
        let (c, f) = chain_view_checks(&state, view).await;
        others.insert(view.name.to_string(), json!({ "chain": c, "feeds": f }));
    }
    let checks = json!({ "nats": nats, "chain": chain, "feeds": feeds, "chains": others });
    let failed: Vec<String> = [("nats", &nats), ("chain", &chain), ("feeds", &feeds)]
        .into_iter()
        .filter(|(_, c)| !c.ok)
        .map(|(name, c)| format!("{name}: {}", c.detail))
        .collect();
    if failed.is_empty() {
        Json(json!({ "status": "ready", "checks": checks })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "code": "not_ready", "message": failed.join("; "), "checks": checks })),
        )
            .into_response()
    }
}

/// One chain's checks: whether its node answers (known from the cache's
/// follower at once when it stopped; otherwise read, bounded like client
/// reads), and its freshest feed.
async fn chain_view_checks(state: &AppState, view: &ChainView) -> (Check, Check) {
    if let Some(behind) = view.cache.behind_for() {
        return (
            Check::new(
                false,
                format!(
                    "the chain node has not answered for {:.1}s",
                    behind.as_secs_f64()
                ),
            ),
            Check::new(false, "chain not read"),
        );
    }
    match tokio::time::timeout(state.chain_timeout, chain_checks(state, view)).await {
        Ok(checks) => checks,
        Err(_) => (
            Check::new(false, format!("no answer within {:?}", state.chain_timeout)),
            Check::new(false, "chain not read"),
        ),
    }
}

/// The chain check, and the freshest-feed check read at the same block.
async fn chain_checks(state: &AppState, view: &ChainView) -> (Check, Check) {
    let block = match view.reader.pin(None).await {
        Ok(b) => b,
        Err(e) => {
            return (
                Check::new(false, e.to_string()),
                Check::new(false, "chain not read"),
            );
        }
    };
    let chain = Check::new(true, format!("block {}", block.number));
    let now_s = now_ms() / 1000;
    let mut freshest: Option<(String, u64, u64)> = None; // pair, age, heartbeat
    for (pair, feed) in view.feeds.iter() {
        let Ok(Some(r)) = read(state, view, pair, block).await else {
            continue;
        };
        let age = now_s.saturating_sub(r.updated_at);
        let heartbeat = feed.heartbeat.as_secs();
        // Freshest relative to its own heartbeat.
        let better = freshest.as_ref().is_none_or(|(_, a, h)| {
            u128::from(age) * u128::from(*h) < u128::from(*a) * u128::from(heartbeat)
        });
        if better {
            freshest = Some((pair.to_string(), age, heartbeat));
        }
    }
    (chain, freshness(freshest, state.readiness_grace))
}

/// The feeds check: the freshest feed (pair, age, heartbeat in seconds) is
/// no older than its heartbeat plus `grace`.
fn freshness(freshest: Option<(String, u64, u64)>, grace: std::time::Duration) -> Check {
    match freshest {
        None => Check::new(false, "no feed has an on-chain value"),
        Some((pair, age, heartbeat)) => Check::new(
            age <= heartbeat.saturating_add(grace.as_secs()),
            format!(
                "freshest {pair}: {age}s old, heartbeat {heartbeat}s (+{}s grace)",
                grace.as_secs()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(age: u64, heartbeat: u64, grace: u64) -> bool {
        freshness(
            Some(("BTC/USD".into(), age, heartbeat)),
            Duration::from_secs(grace),
        )
        .ok
    }

    #[test]
    fn a_heartbeat_update_still_landing_keeps_the_service_ready() {
        // The update fires when the value is 30 s old and lands a round and a
        // block later: 31 s old is an oracle at work, not one that stopped.
        assert!(check(31, 30, 60));
        assert!(check(90, 30, 60));
        assert!(!check(91, 30, 60));
        // Without grace the heartbeat itself is the limit.
        assert!(check(30, 30, 0));
        assert!(!check(31, 30, 0));
        assert!(!freshness(None, Duration::from_secs(60)).ok);
    }
}
