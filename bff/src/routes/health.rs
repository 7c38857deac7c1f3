//! `GET /healthz` (the process is alive), `GET /readyz` (NATS answers probes,
//! chain reachable, and the freshest feed inside its heartbeat: the service
//! can answer with a value worth serving) and `GET /metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oracle_common::now_ms;
use serde::Serialize;
use serde_json::{Value, json};

use super::prices::read;
use crate::AppState;

/// How long the chain may take to answer a readiness probe.
const CHAIN_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /metrics`: the Prometheus text format (also on `bff.metrics_addr`).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        oracle_common::telemetry::render(&state.metrics.registry),
    )
}

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
    let (chain, feeds) = match tokio::time::timeout(CHAIN_PROBE_TIMEOUT, chain_checks(&state)).await
    {
        Ok(checks) => checks,
        Err(_) => (
            Check::new(false, format!("no answer within {CHAIN_PROBE_TIMEOUT:?}")),
            Check::new(false, "chain not read"),
        ),
    };
    let checks = json!({ "nats": nats, "chain": chain, "feeds": feeds });
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

/// The chain check, and the freshest-feed check read at the same block.
async fn chain_checks(state: &AppState) -> (Check, Check) {
    let block = match state.reader.pin(None).await {
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
    for (pair, feed) in state.feeds.iter() {
        let Ok(Some(r)) = read(state, pair, block).await else {
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
    let feeds = match freshest {
        None => Check::new(false, "no feed has an on-chain value"),
        Some((pair, age, heartbeat)) => Check::new(
            age <= heartbeat,
            format!("freshest {pair}: {age}s old, heartbeat {heartbeat}s"),
        ),
    };
    (chain, feeds)
}
