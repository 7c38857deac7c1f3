//! `GET /v1/stream?pairs=BTC-USD,ETH-USD&throttle_ms=500` (Server-Sent
//! Events): the current value of each pair, then each new on-chain round.
//! Per client, at most one `price` event per pair per `throttle_ms`,
//! coalescing to the newest round; keep-alive comments every 15 s; a `lag`
//! event (then the current values) when the client fell behind, and an
//! `error` event before the server closes the stream.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use oracle_common::Pair;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::prices::to_response;
use crate::AppState;
use crate::cache::Update;
use crate::error::ApiError;
use crate::params::Params;

/// Default and largest throttle.
const DEFAULT_THROTTLE_MS: u64 = 500;
const MAX_THROTTLE_MS: u64 = 60_000;
/// Events buffered per client before it counts as slow.
const CLIENT_BUFFER: usize = 64;

fn price_event(state: &AppState, u: &Update) -> Event {
    let heartbeat = state
        .feeds
        .get(&u.pair)
        .map_or(0, |f| f.heartbeat.as_secs());
    let body = to_response(&u.pair, &u.read, heartbeat, state);
    Event::default()
        .event("price")
        .id(format!("{}:{}", u.pair, u.read.round))
        .json_data(body)
        .unwrap_or_else(|_| Event::default().event("price"))
}

/// `GET /v1/stream`.
pub async fn stream(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = Params::parse(query.as_deref(), &["pairs", "throttle_ms"])?;
    let throttle_ms = p.u64("throttle_ms")?.unwrap_or(DEFAULT_THROTTLE_MS);
    if throttle_ms > MAX_THROTTLE_MS {
        return Err(ApiError::InvalidParameter(format!(
            "`throttle_ms` must be at most {MAX_THROTTLE_MS}"
        )));
    }
    let pairs: Vec<Pair> = match p.str("pairs") {
        None => state.feeds.keys().cloned().collect(),
        Some(list) => {
            let mut out = Vec::new();
            for raw in list.split(',') {
                let pair: Pair = raw.parse()?;
                if !state.feeds.contains_key(&pair) {
                    return Err(ApiError::UnknownPair(pair.to_string()));
                }
                if !out.contains(&pair) {
                    out.push(pair);
                }
            }
            out
        }
    };
    let (tx, mut rx) = mpsc::channel::<Event>(CLIENT_BUFFER);
    let updates = state.cache.subscribe();
    tokio::spawn(feed_client(
        state.clone(),
        pairs,
        Duration::from_millis(throttle_ms),
        updates,
        tx,
    ));
    let events = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Counts a connected stream client for as long as it lives.
struct ClientGauge(prometheus::IntGauge);

impl ClientGauge {
    fn new(g: prometheus::IntGauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for ClientGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn feed_client(
    state: AppState,
    pairs: Vec<Pair>,
    throttle: Duration,
    mut updates: broadcast::Receiver<Update>,
    tx: mpsc::Sender<Event>,
) {
    let _gauge = ClientGauge::new(state.metrics.sse_clients.clone());
    let shutdown = state.cache.shutdown.clone();
    let mut pending: BTreeMap<Pair, Update> = state
        .cache
        .current(&pairs)
        .into_iter()
        .map(|u| (u.pair.clone(), u))
        .collect();
    let mut next_send = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let event = Event::default()
                    .event("error")
                    .json_data(json!({"code": "shutting_down", "message": "the server is stopping; reconnect"}))
                    .unwrap_or_default();
                let _ = tx.send(event).await;
                return;
            }
            _ = tx.closed() => return,
            received = updates.recv() => match received {
                Ok(u) => {
                    if pairs.contains(&u.pair) {
                        pending.insert(u.pair.clone(), u);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    let event = Event::default()
                        .event("lag")
                        .json_data(json!({"skipped": skipped, "message": "updates were dropped; current values follow"}))
                        .unwrap_or_default();
                    if tx.send(event).await.is_err() {
                        return;
                    }
                    for u in state.cache.current(&pairs) {
                        pending.insert(u.pair.clone(), u);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep_until(next_send), if !pending.is_empty() => {
                for (_, u) in std::mem::take(&mut pending) {
                    state.metrics.sse_events.inc();
                    if tx.send(price_event(&state, &u)).await.is_err() {
                        return;
                    }
                }
                next_send = Instant::now() + throttle;
            }
        }
    }
}
