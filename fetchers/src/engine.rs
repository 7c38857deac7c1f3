//! The polling engine. Each feed runs cycles on wall-clock slots (every
//! `poll_interval`, aligned so that redundant fetchers poll the same slot):
//! its primary sources are polled concurrently and each answer is published
//! at once; when fewer than `min_sources` primaries have answered by
//! `fallback_after`, the feed's fallbacks are polled in priority order within
//! the same cycle until the quorum is reached or the list ends. A request on
//! `oracle.fetch.{PAIR}` runs a cycle at once; concurrent requests for the same
//! pair (and the same exclusions) share one cycle. A request may name sources
//! to exclude (an aggregator's outliers or silent primaries): those are not
//! polled nor counted, and the fallbacks are polled until `min_sources` of the
//! others answered, so that fallbacks stand in for sources that lie, not only
//! for those that are down.
//!
//! Coalescing: the legs of one wave (a slot's primaries, its n-th fallbacks,
//! an on-demand cycle) ask their source under one [`BatchKey`], and each
//! source answers the wave with as few requests as its venue allows (see
//! [`crate::source`]). A scheduled wave of primaries goes out as soon as every
//! feed polling that source has asked.
//!
//! Observation time: the source's own data time when it gives one, otherwise
//! the cycle's slot (or the request's `requested_at_ms`), so that every
//! fetcher process polling the same slot publishes the same `Nats-Msg-Id` and
//! the stream keeps one copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Subject;
use futures::StreamExt;
use oracle_common::config::{FeedConfig, FetchersConfig};
use oracle_common::wire::{FetchReply, FetchRequest, Observation, SCHEMA_VERSION, WireMessage};
use oracle_common::{Pair, SourceId, now_ms};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::metrics::Metrics;
use crate::source::{BatchKey, FetchContext, Source};
use crate::sources::Market;

/// One source's market for one feed.
#[derive(Debug, Clone)]
pub struct Leg {
    /// The source.
    pub source: Arc<Source>,
    /// The source's symbol.
    pub symbol: String,
    /// The market's quote currency.
    pub quote: String,
    /// Set when the market is quoted in another currency than the pair.
    pub proxy_quote: Option<String>,
    /// 0 for primaries, n for the n-th fallback.
    pub rank: u32,
}

/// What a feed polls.
#[derive(Debug, Clone)]
pub struct FeedPlan {
    /// The feed's configuration.
    pub config: FeedConfig,
    /// Primary sources.
    pub primaries: Vec<Leg>,
    /// Fallbacks in priority order.
    pub fallbacks: Vec<Leg>,
}

/// The result of one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Sources that answered (primaries and fallbacks).
    pub sources: Vec<SourceId>,
    /// Whether `min_sources` answered.
    pub quorum: bool,
}

/// A running on-demand cycle: the pair and the sources it excludes.
type TriggerKey = (Pair, Vec<SourceId>);

/// Shared state of the polling tasks.
#[derive(Debug)]
pub struct Engine {
    ctx: Arc<FetchContext>,
    config: FetchersConfig,
    feeds: BTreeMap<Pair, FeedPlan>,
    tx: mpsc::Sender<Observation>,
    metrics: Metrics,
    pending_triggers: Mutex<HashMap<TriggerKey, Vec<Option<Subject>>>>,
    /// How many feeds poll each source as a primary: the asks a scheduled
    /// wave of primaries waits for before it goes out.
    primary_feeds: HashMap<SourceId, usize>,
}

impl Engine {
    /// An engine over the planned feeds, handing observations to `tx`.
    pub fn new(
        client: reqwest::Client,
        config: FetchersConfig,
        feeds: BTreeMap<Pair, FeedPlan>,
        tx: mpsc::Sender<Observation>,
        metrics: Metrics,
    ) -> Self {
        let mut primary_feeds: HashMap<SourceId, usize> = HashMap::new();
        for plan in feeds.values() {
            for leg in &plan.primaries {
                *primary_feeds.entry(leg.source.id.clone()).or_default() += 1;
            }
        }
        Self {
            ctx: Arc::new(FetchContext {
                client,
                config: config.clone(),
                metrics: metrics.clone(),
            }),
            config,
            feeds,
            tx,
            metrics,
            pending_triggers: Mutex::new(HashMap::new()),
            primary_feeds,
        }
    }

    /// The feeds polled.
    pub fn pairs(&self) -> impl Iterator<Item = &Pair> {
        self.feeds.keys()
    }

    fn fallback_after(&self) -> Duration {
        self.config
            .fallback_after
            .unwrap_or(self.config.poll_interval / 2)
    }

    /// How many asks the wave `key` of `source` should gather before it goes
    /// out: every feed polling it as a primary for a scheduled slot, one for an
    /// on-demand cycle (one feed), unknown (0) for fallbacks.
    fn expected_asks(&self, key: &BatchKey, source: &SourceId) -> usize {
        match (key.on_demand, key.wave) {
            (true, _) => 1,
            (false, 0) => self.primary_feeds.get(source).copied().unwrap_or(0),
            (false, _) => 0,
        }
    }

    /// Polls one leg (as part of its wave's batch); publishes on success.
    /// Returns whether it answered.
    async fn poll_leg(
        self: Arc<Self>,
        pair: Pair,
        leg: Leg,
        slot_ms: u64,
        trigger: Option<&'static str>,
        deadline: Instant,
    ) -> bool {
        let key = BatchKey {
            slot_ms,
            wave: leg.rank,
            on_demand: trigger.is_some(),
        };
        let expect = self.expected_asks(&key, &leg.source.id);
        let Some(_in_flight) = leg.source.begin(&leg.symbol) else {
            debug!(source = %leg.source.id, "previous request still running; not polled this cycle");
            leg.source.decline(&self.ctx, key, expect, deadline);
            return false;
        };
        let market = Market {
            symbol: &leg.symbol,
            quote: &leg.quote,
        };
        match leg
            .source
            .quote(&self.ctx, key, &market, expect, deadline)
            .await
        {
            Ok(quote) => {
                let fetched_at_ms = now_ms();
                let obs = Observation {
                    v: SCHEMA_VERSION,
                    pair: pair.clone(),
                    source: leg.source.id.clone(),
                    price: quote.price,
                    bid: quote.bid,
                    ask: quote.ask,
                    observed_at_ms: quote.observed_at_ms.unwrap_or(slot_ms),
                    fetched_at_ms,
                    fetcher: self.config.id.clone(),
                    fallback_rank: leg.rank,
                    trigger: trigger.map(str::to_owned),
                    market_quote: leg.proxy_quote.clone(),
                };
                if leg.rank > 0 {
                    self.metrics
                        .fallback_polls
                        .with_label_values(&[&pair.to_string(), leg.source.id.as_str()])
                        .inc();
                }
                debug!(price = %obs.price, rank = leg.rank, "observed");
                crate::publisher::enqueue(&self.tx, obs, &self.metrics);
                true
            }
            Err(e @ (crate::FetchError::Throttled(_) | crate::FetchError::CircuitOpen)) => {
                debug!(error = %e, "not polled");
                false
            }
            Err(e) => {
                warn!(error = %e, kind = e.kind(), "fetch failed");
                false
            }
        }
    }

    /// Spawns the polls of `legs`; they keep running (and publish) after the
    /// cycle moves on, guarded against overlapping with the next cycle.
    fn spawn_legs(
        self: &Arc<Self>,
        set: &mut JoinSet<(SourceId, bool)>,
        pair: &Pair,
        legs: &[Leg],
        slot_ms: u64,
        trigger: Option<&'static str>,
        deadline: Instant,
    ) {
        for leg in legs {
            let engine = Arc::clone(self);
            let span =
                info_span!("poll", pair = %pair, source = %leg.source.id, symbol = %leg.symbol);
            let (pair, leg) = (pair.clone(), leg.clone());
            set.spawn(
                async move {
                    let id = leg.source.id.clone();
                    (
                        id,
                        engine.poll_leg(pair, leg, slot_ms, trigger, deadline).await,
                    )
                }
                .instrument(span),
            );
        }
    }

    /// Runs one cycle for `pair` (see the module docs), not polling `exclude`.
    pub async fn cycle(
        self: &Arc<Self>,
        pair: &Pair,
        slot_ms: u64,
        trigger: Option<&'static str>,
        exclude: &[SourceId],
    ) -> CycleReport {
        let Some(plan) = self.feeds.get(pair) else {
            return CycleReport::default();
        };
        let started = Instant::now();
        let deadline = started + self.config.poll_interval;
        let decide_at = started + self.fallback_after();
        let min = plan.config.min_sources;
        let mut answered = Vec::new();
        let wanted = |leg: &&Leg| !exclude.contains(&leg.source.id);
        let primaries: Vec<Leg> = plan.primaries.iter().filter(wanted).cloned().collect();
        let fallbacks: Vec<Leg> = plan.fallbacks.iter().filter(wanted).cloned().collect();

        let mut set = JoinSet::new();
        self.spawn_legs(&mut set, pair, &primaries, slot_ms, trigger, deadline);
        // Stop waiting once the quorum answered: slower primaries still publish.
        collect(&mut set, &mut answered, decide_at, min).await;

        let mut next = 0;
        while answered.len() < min && next < fallbacks.len() && Instant::now() < deadline {
            let take = (min - answered.len()).min(fallbacks.len() - next);
            let batch = &fallbacks[next..next + take];
            next += take;
            debug!(pair = %pair, have = answered.len(), need = min, fallbacks = take, "polling fallbacks");
            let mut fallback_set = JoinSet::new();
            self.spawn_legs(&mut fallback_set, pair, batch, slot_ms, trigger, deadline);
            collect(&mut fallback_set, &mut answered, deadline, min).await;
        }
        // Late primaries that answered while fallbacks ran still count.
        collect(&mut set, &mut answered, Instant::now(), usize::MAX).await;
        set.detach_all();

        let quorum = answered.len() >= min;
        self.metrics
            .cycles
            .with_label_values(&[
                pair.to_string().as_str(),
                if quorum { "quorum" } else { "no_quorum" },
            ])
            .inc();
        CycleReport {
            sources: answered,
            quorum,
        }
    }

    /// Runs scheduled cycles for `pair` on wall-clock slots until `shutdown`.
    pub async fn run_schedule(self: Arc<Self>, pair: Pair, shutdown: CancellationToken) {
        let interval_ms = self.config.poll_interval.as_millis().max(1) as u64;
        loop {
            let now = now_ms();
            let slot = (now / interval_ms + 1) * interval_ms;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(slot - now)) => {}
            }
            let report = self.cycle(&pair, slot, None, &[]).await;
            if !report.quorum {
                debug!(pair = %pair, answered = report.sources.len(), "cycle without quorum");
            }
        }
    }

    /// Serves `oracle.fetch.*` until `shutdown`.
    pub async fn run_triggers(
        self: Arc<Self>,
        nats: async_nats::Client,
        shutdown: CancellationToken,
    ) -> Result<(), async_nats::SubscribeError> {
        let mut sub = nats.subscribe("oracle.fetch.*").await?;
        info!("listening for on-demand fetch requests on oracle.fetch.*");
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                msg = sub.next() => match msg { Some(m) => m, None => return Ok(()) },
            };
            let token = msg.subject.as_str().rsplit('.').next().unwrap_or_default();
            let pair = match Pair::from_subject_token(token) {
                Ok(p) if self.feeds.contains_key(&p) => p,
                other => {
                    let error = match other {
                        Ok(p) => format!("pair {p} is not configured here"),
                        Err(e) => e.to_string(),
                    };
                    if let Some(reply) = msg.reply {
                        let body = FetchReply {
                            v: SCHEMA_VERSION,
                            pair: token.to_owned(),
                            sources: vec![],
                            quorum: false,
                            error: Some(error),
                        };
                        let _ = nats
                            .publish(reply, serde_json::to_vec(&body).unwrap_or_default().into())
                            .await;
                    }
                    continue;
                }
            };
            self.metrics
                .triggers
                .with_label_values(&[&pair.to_string()])
                .inc();
            // An empty body is a plain trigger asked for now.
            let request =
                FetchRequest::decode(&msg.payload).unwrap_or_else(|_| FetchRequest::new(now_ms()));
            let requested_at_ms = request.requested_at_ms;
            let mut exclude = request.exclude;
            exclude.sort();
            exclude.dedup();
            let key = (pair.clone(), exclude.clone());
            {
                let mut pending = self
                    .pending_triggers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if let Some(waiting) = pending.get_mut(&key) {
                    // The same cycle is running: share its result.
                    waiting.push(msg.reply);
                    continue;
                }
                pending.insert(key.clone(), vec![msg.reply]);
            }
            if !exclude.is_empty() {
                debug!(pair = %pair, exclude = ?exclude, "polling other sources than the excluded ones");
            }
            let engine = Arc::clone(&self);
            let nats = nats.clone();
            tokio::spawn(async move {
                let report = engine
                    .cycle(&pair, requested_at_ms, Some("on-demand"), &exclude)
                    .await;
                let replies = engine
                    .pending_triggers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key)
                    .unwrap_or_default();
                let body = FetchReply {
                    v: SCHEMA_VERSION,
                    pair: pair.subject_token(),
                    sources: report.sources,
                    quorum: report.quorum,
                    error: None,
                };
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                for reply in replies.into_iter().flatten() {
                    let _ = nats.publish(reply, bytes.clone().into()).await;
                }
            });
        }
    }
}

/// Collects finished polls until all are done, `until`, or `enough` answered.
async fn collect(
    set: &mut JoinSet<(SourceId, bool)>,
    answered: &mut Vec<SourceId>,
    until: Instant,
    enough: usize,
) {
    while answered.len() < enough {
        match tokio::time::timeout_at(until, set.join_next()).await {
            Ok(Some(Ok((id, true)))) => answered.push(id),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use oracle_common::config::Config;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Requests a fake venue received (path and query), in order.
    type Log = Arc<Mutex<Vec<String>>>;

    /// A bare HTTP/1.1 server on loopback answering Binance's and CoinGecko's
    /// many-markets requests in their real formats for the `known` symbols:
    /// Binance refuses a list naming an unknown symbol (HTTP 400, -1121) and
    /// answers every symbol without a parameter; CoinGecko leaves unknown ids
    /// out. Returns its address and the request log.
    async fn venue_server(known: BTreeSet<String>) -> (String, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log: Log = Arc::default();
        let known = Arc::new(known);
        let seen = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (seen, known) = (Arc::clone(&seen), Arc::clone(&known));
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            let mut chunk = [0u8; 4096];
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        seen.lock().unwrap().push(target.clone());
                        let (status, body) = answer(&target, &known);
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, log)
    }

    fn answer(target: &str, known: &BTreeSet<String>) -> (u16, String) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        let binance = |symbols: Vec<&String>| {
            let items: Vec<String> = symbols
                .iter()
                .map(|s| format!(r#"{{"symbol":"{s}","price":"1.50000000"}}"#))
                .collect();
            (200, format!("[{}]", items.join(",")))
        };
        match path {
            "/binance/api/v3/ticker/price" if query.is_empty() => binance(known.iter().collect()),
            "/binance/api/v3/ticker/price" => {
                let list = param("symbols").replace("%5B", "").replace("%5D", "");
                let asked: Vec<String> = list.split(',').map(|s| s.replace("%22", "")).collect();
                if asked.iter().all(|s| known.contains(s)) {
                    binance(asked.iter().collect())
                } else {
                    (400, r#"{"code":-1121,"msg":"Invalid symbol."}"#.into())
                }
            }
            "/coingecko/api/v3/simple/price" => {
                let items: Vec<String> = param("ids")
                    .split(',')
                    .filter(|id| known.contains(*id))
                    .map(|id| format!(r#""{id}":{{"usd":2.5,"last_updated_at":1763700000}}"#))
                    .collect();
                (200, format!("{{{}}}", items.join(",")))
            }
            _ => (404, "{}".into()),
        }
    }

    /// An engine over `n` feeds `T000/USD`…, each polling binance and
    /// coingecko as primaries (`min_sources` 2), against the server at `addr`.
    fn engine(addr: &str, n: usize) -> (Arc<Engine>, mpsc::Receiver<Observation>, Metrics) {
        let bases: Vec<String> = (0..n).map(|i| format!("T{i:03}")).collect();
        let mut toml = String::new();
        for venue in ["binance", "coingecko"] {
            toml.push_str(&format!(
                "[sources.{venue}]\nbase_url = \"http://{addr}/{venue}\"\ntimeout = \"2s\"\nrate_limit = {{ requests = 1000, per = \"1s\" }}\n[sources.{venue}.symbols]\n"
            ));
            for b in &bases {
                let symbol = if venue == "binance" {
                    format!("{b}USDT")
                } else {
                    b.to_ascii_lowercase()
                };
                toml.push_str(&format!("\"{b}/USD\" = \"{symbol}\"\n"));
            }
        }
        for b in &bases {
            toml.push_str(&format!(
                "[[feeds]]\npair = \"{b}/USD\"\nmin_price = \"0.0001\"\nmax_price = \"1000\"\nsources = [\"binance\", \"coingecko\"]\nmin_sources = 2\n"
            ));
        }
        let config =
            Config::from_toml_with_env(&toml, std::path::Path::new("test.toml"), Vec::new())
                .unwrap();
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let (tx, rx) = mpsc::channel(100_000);
        let engine = Engine::new(
            reqwest::Client::new(),
            config.fetchers.clone(),
            crate::plan(&config).unwrap(),
            tx,
            metrics.clone(),
        );
        (Arc::new(engine), rx, metrics)
    }

    /// Runs one scheduled cycle of every feed for `slot`, as the per-feed
    /// schedules do (concurrently).
    async fn slot(engine: &Arc<Engine>, slot: u64) -> BTreeMap<Pair, CycleReport> {
        let pairs: Vec<Pair> = engine.pairs().cloned().collect();
        let reports =
            futures::future::join_all(pairs.iter().map(|p| engine.cycle(p, slot, None, &[]))).await;
        pairs.into_iter().zip(reports).collect()
    }

    fn requests(log: &Log, prefix: &str) -> Vec<String> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|t| t.starts_with(prefix))
            .cloned()
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slot_of_many_feeds_sends_one_request_per_source_per_chunk() {
        // 150 feeds; the venues know every market but T007's.
        let known: BTreeSet<String> = (0..150)
            .filter(|i| *i != 7)
            .flat_map(|i| [format!("T{i:03}USDT"), format!("t{i:03}")])
            .collect();
        let (addr, log) = venue_server(known).await;
        let (engine, mut rx, metrics) = engine(&addr, 150);
        let reports = slot(&engine, 1_763_700_000_000).await;

        // Binance: 150 symbols exceed its list cap of 100, so one every-symbol
        // request; CoinGecko has no such request: two lists, 100 + 50 ids.
        let binance = requests(&log, "/binance/");
        assert_eq!(binance, vec!["/binance/api/v3/ticker/price"]);
        let coingecko = requests(&log, "/coingecko/");
        assert_eq!(coingecko.len(), 2, "{coingecko:?}");
        let ids: usize = coingecko
            .iter()
            .map(|t| {
                t.split("ids=")
                    .nth(1)
                    .unwrap()
                    .split('&')
                    .next()
                    .unwrap()
                    .split(',')
                    .count()
            })
            .sum();
        assert_eq!(ids, 150);
        // Each leg got its own answer: every feed but T007 from both sources.
        for (pair, report) in &reports {
            if pair.base() == "T007" {
                assert!(report.sources.is_empty() && !report.quorum, "{report:?}");
            } else {
                assert!(
                    report.quorum && report.sources.len() == 2,
                    "{pair}: {report:?}"
                );
            }
        }
        let mut observed = Vec::new();
        while let Ok(o) = rx.try_recv() {
            observed.push(o);
        }
        assert_eq!(observed.len(), 2 * 149);
        // Binance's ticker has no time: the slot's; CoinGecko's is its own.
        assert!(observed.iter().all(|o| match o.source.as_str() {
            "binance" =>
                o.observed_at_ms == 1_763_700_000_000 && o.price.to_string() == "1.50000000",
            _ => o.observed_at_ms == 1_763_700_000_000 && o.price.to_string() == "2.5",
        }));
        // HTTP requests are what the metrics count; the missing market too.
        let count = |source: &str, outcome: &str| {
            metrics.requests.with_label_values(&[source, outcome]).get()
        };
        assert_eq!((count("binance", "ok"), count("coingecko", "ok")), (1, 2));
        assert_eq!(
            metrics
                .missing_symbols
                .with_label_values(&["coingecko"])
                .get(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_list_refused_for_one_unknown_symbol_is_asked_as_every_symbol_from_then_on() {
        let known: BTreeSet<String> = (0..5)
            .filter(|i| *i != 3)
            .flat_map(|i| [format!("T{i:03}USDT"), format!("t{i:03}")])
            .collect();
        let (addr, log) = venue_server(known).await;
        let (engine, _rx, _metrics) = engine(&addr, 5);
        let first = slot(&engine, 1_000).await;
        // The named list was refused (T003USDT unknown), then every symbol asked.
        let binance = requests(&log, "/binance/");
        assert_eq!(binance.len(), 2, "{binance:?}");
        // The legs join the batch in any order: the list names every market.
        assert!(
            binance[0].starts_with("/binance/api/v3/ticker/price?symbols=%5B")
                && (0..5).all(|i| binance[0].contains(&format!("%22T{i:03}USDT%22"))),
            "{binance:?}"
        );
        assert_eq!(binance[1], "/binance/api/v3/ticker/price");
        let answered = |reports: &BTreeMap<Pair, CycleReport>, base: &str| {
            reports
                .iter()
                .find(|(p, _)| p.base() == base)
                .unwrap()
                .1
                .sources
                .len()
        };
        assert_eq!(answered(&first, "T000"), 2);
        assert_eq!(answered(&first, "T003"), 0);
        // The next slot goes straight to the every-symbol request.
        let second = slot(&engine, 2_000).await;
        assert_eq!(requests(&log, "/binance/").len(), 3);
        assert_eq!(
            requests(&log, "/binance/")[2],
            "/binance/api/v3/ticker/price"
        );
        assert_eq!(answered(&second, "T004"), 2);
        // CoinGecko: one list per slot.
        assert_eq!(requests(&log, "/coingecko/").len(), 2);
    }
}
