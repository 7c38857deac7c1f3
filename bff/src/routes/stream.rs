//! `GET /v1/stream?pairs=BTC-USD,ETH-USD&throttle_ms=500&chain=NAME`
//! (Server-Sent Events): the current value of each pair on the chain (the
//! default one when not named), then each new on-chain round there.
//! Per client, at most one `price` event per pair per `throttle_ms`,
//! coalescing to the newest round; keep-alive comments every 15 s; a `lag`
//! event (then the current values) when the client fell behind, and an
//! `error` event before the server closes the stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use oracle_common::Pair;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::prices::to_response;
use crate::AppState;
use crate::cache::{Broadcast, Update};
use crate::chains::ChainView;
use crate::error::ApiError;
use crate::guard::{ClientId, StreamSlot};
use crate::params::Params;

/// Default and largest throttle.
const DEFAULT_THROTTLE_MS: u64 = 500;
const MAX_THROTTLE_MS: u64 = 60_000;

/// The `price` event of an update, as the bytes sent: built once per update
/// and shared by every client (thousands of streams, one serialization, no
/// copy per client). A comment line says when this service saw the block,
/// Unix ms, so a client can measure delivery; clients ignore comments.
fn price_frame(chain: &ChainView, u: &Update) -> Bytes {
    u.body
        .get_or_init(|| {
            let heartbeat = chain
                .feeds
                .get(&u.pair)
                .map_or(0, |f| f.heartbeat.as_secs());
            let data = serde_json::to_string(&to_response(&u.pair, &u.read, heartbeat, chain))
                .unwrap_or_default();
            Bytes::from(format!(
                "event: price\nid: {}:{}\n: seen_at_ms={}\ndata: {data}\n\n",
                u.pair, u.read.round, u.seen_at_ms
            ))
        })
        .clone()
}

/// A named event with a JSON body.
fn frame(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// Sent when nothing else was for [`KEEP_ALIVE`].
const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";
/// Idle time before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/stream`.
pub async fn stream(
    State(state): State<AppState>,
    who: Option<axum::Extension<ClientId>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(query.as_deref(), &["pairs", "throttle_ms", "chain"])?;
    let chain = state.chains.get(p.str("chain"))?.clone();
    let throttle_ms = p.u64("throttle_ms")?.unwrap_or(DEFAULT_THROTTLE_MS);
    if throttle_ms > MAX_THROTTLE_MS {
        return Err(ApiError::InvalidParameter(format!(
            "`throttle_ms` must be at most {MAX_THROTTLE_MS}"
        )));
    }
    let pairs: Vec<Pair> = match p.str("pairs") {
        None => chain.feeds.keys().cloned().collect(),
        Some(list) => {
            let mut out = Vec::new();
            for raw in list.split(',') {
                let pair: Pair = raw.parse().map_err(|e: oracle_common::pair::PairError| {
                    ApiError::InvalidParameter(format!("`pairs`: {e}"))
                })?;
                if !chain.feeds.contains_key(&pair) {
                    return Err(ApiError::UnknownPair(pair.to_string()));
                }
                if !out.contains(&pair) {
                    out.push(pair);
                }
            }
            out
        }
    };
    let who = who.map_or_else(|| ClientId("ip:unknown".into()), |axum::Extension(w)| w);
    let slot = state.streams.acquire(&who).inspect_err(|e| {
        state
            .metrics
            .sse_refused
            .with_label_values(&[e.code()])
            .inc();
    })?;
    let mut feed = Feed {
        updates: chain.cache.subscribe(),
        chain,
        _gauge: ClientGauge::new(state.metrics.sse_clients.clone()),
        _slot: slot,
        state,
        pending: vec![None; pairs.len()],
        pairs,
        throttle: Duration::from_millis(throttle_ms),
        ready: VecDeque::new(),
        next_send: Instant::now(),
        throttle_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        last_sent: Instant::now(),
        keep_alive: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
        done: false,
    };
    // First the current values.
    feed.hold_current();
    // The stream is polled by the connection's own task: no task or channel
    // per client between the broadcast and the socket.
    let frames = futures::stream::unfold(feed, |mut feed| async move {
        let frame = feed.next().await?;
        Some((Ok::<_, Infallible>(frame), feed))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response())
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

/// One client's stream: what it asked for, what is waiting to be sent, and
/// the slot and gauge it holds until it is dropped (the client went away).
struct Feed {
    state: AppState,
    /// The chain streamed.
    chain: ChainView,
    _slot: StreamSlot,
    _gauge: ClientGauge,
    pairs: Vec<Pair>,
    throttle: Duration,
    /// New rounds, and the service stopping (one channel: a wake-up polls
    /// nothing shared by every client but the broadcast itself).
    updates: broadcast::Receiver<Broadcast>,
    /// The newest update per pair (by position in `pairs`) not sent yet,
    /// coalesced by the throttle.
    pending: Vec<Option<Arc<Update>>>,
    /// Frames ready to go.
    ready: VecDeque<Bytes>,
    next_send: Instant,
    throttle_timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    last_sent: Instant,
    keep_alive: std::pin::Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl Feed {
    /// Keeps `u` to send, replacing an older update of its pair not sent yet;
    /// pairs this client did not ask for are dropped.
    fn hold(&mut self, u: Arc<Update>) {
        if let Some(i) = self.pairs.iter().position(|p| *p == u.pair) {
            self.pending[i] = Some(u);
        }
    }

    /// Holds the current value of every pair of this client.
    fn hold_current(&mut self) {
        for u in self.chain.cache.current(&self.pairs) {
            self.hold(u);
        }
    }

    /// The next frame to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                // Not a timer reset per frame (thousands of clients share the
                // timer wheel): the keep-alive checks this when it fires.
                self.last_sent = Instant::now();
                return Some(frame);
            }
            if self.done {
                return None;
            }
            let has_pending = self.pending.iter().any(Option::is_some);
            if has_pending && Instant::now() >= self.next_send {
                for u in self.pending.iter_mut().filter_map(Option::take) {
                    self.state.metrics.sse_events.inc();
                    self.ready.push_back(price_frame(&self.chain, &u));
                }
                self.next_send = Instant::now() + self.throttle;
                continue;
            }
            // Pending but not due yet (throttled): arm the one timer this
            // stream keeps, instead of making a new one at every wake-up.
            if has_pending {
                self.throttle_timer.as_mut().reset(self.next_send);
            }
            tokio::select! {
                received = self.updates.recv() => match received {
                    Ok(Broadcast::Round(u)) => self.hold(u),
                    Ok(Broadcast::Closing) => {
                        self.done = true;
                        self.ready.push_back(frame(
                            "error",
                            &json!({"code": "shutting_down", "message": "the server is stopping; reconnect"}),
                        ));
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        self.ready.push_back(frame(
                            "lag",
                            &json!({"skipped": skipped, "message": "updates were dropped; current values follow"}),
                        ));
                        self.hold_current();
                    }
                    Err(broadcast::error::RecvError::Closed) => self.done = true,
                },
                _ = self.throttle_timer.as_mut(), if has_pending => {}
                _ = self.keep_alive.as_mut() => {
                    let idle_until = self.last_sent + KEEP_ALIVE;
                    if Instant::now() >= idle_until {
                        self.ready.push_back(Bytes::from_static(KEEP_ALIVE_FRAME));
                        self.keep_alive.as_mut().reset(Instant::now() + KEEP_ALIVE);
                    } else {
                        self.keep_alive.as_mut().reset(idle_until);
                    }
                }
            }
        }
    }
}
