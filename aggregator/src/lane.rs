//! One chain a node serves (a lane): its connection, its feeds as that hub
//! registered them (with the chain's policy overrides), its signer set, and
//! the tasks that are its own: the leader's pipeline (proposals with this
//! chain's EIP-712 domain, this chain's nonce manager, receipts and fee
//! bumps) and the chain watcher. Lanes share nothing that waits on a chain:
//! a chain that is slow, down or out of gas stalls only its own lane.
//!
//! [`start`] connects in the background, retrying while the RPC does not
//! answer (a chain down at start-up does not keep the node from serving the
//! others), and announces the lane to the ingest loop once it is up. A
//! configuration that the chain contradicts (wrong chain id, a feed the hub
//! does not know, this node's key not a signer) stops the node.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::Address;
use async_nats::jetstream;
use oracle_common::Pair;
use oracle_common::config::{AggregatorConfig, ChainConfig, Config};
use oracle_common::telemetry::Readiness;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::chain_watch::{self, ChainUpdate};
use crate::feeds::{self, FeedSpec, Specs};
use crate::lifecycle::{ChainPolicy, Lifecycle};
use crate::metrics::Metrics;
use crate::pipeline::{Command, Done, Pipeline};
use crate::policy::OnChain;
use crate::proposal::{self, SharedSignerSet, SignerSet};
use crate::signing::ReportSigner;
use crate::submitter::{SubmitError, Submitter};

/// First and longest pause between connection attempts.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// A connected chain: fixed while the node runs.
#[derive(Debug)]
pub struct Chain {
    /// Its position in `[[chains]]` (0: the default chain).
    pub lane: usize,
    /// The configuration.
    pub config: ChainConfig,
    /// EIP-712 domain: the chain id.
    pub chain_id: u64,
    /// EIP-712 domain: the hub.
    pub hub: Address,
    /// The feeds with this chain's policy and this hub's indexes.
    pub specs: Specs,
    /// Chain access.
    pub submitter: Submitter,
    /// The hub's signer set, as last read.
    pub signer_set: SharedSignerSet,
}

impl Chain {
    /// The chain's configured name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// The chains connected so far, by chain id: the verifier finds a
/// proposal's chain here.
#[derive(Debug, Default)]
pub struct Connected(RwLock<BTreeMap<u64, Arc<Chain>>>);

impl Connected {
    /// The chain with id `chain_id`, once connected.
    pub fn get(&self, chain_id: u64) -> Option<Arc<Chain>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&chain_id)
            .cloned()
    }

    fn insert(&self, chain: Arc<Chain>) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chain.chain_id, chain);
    }

    /// The names of the connected chains, for refusals.
    pub fn describe(&self) -> String {
        let chains = self.0.read().unwrap_or_else(|p| p.into_inner());
        chains
            .values()
            .map(|c| format!("{} ({})", c.name(), c.chain_id))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A lane that came up, announced to the ingest loop.
#[derive(Debug)]
pub struct Up {
    /// The chain.
    pub chain: Arc<Chain>,
    /// What the hub held for each feed when it connected.
    pub states: BTreeMap<Pair, OnChain>,
    /// Commands to the chain's pipeline.
    pub commands: mpsc::Sender<Command>,
}

/// What a lane sends the ingest loop.
#[derive(Debug)]
pub enum LaneEvent {
    /// The lane connected.
    Up(Box<Up>),
    /// Its pipeline finished a command.
    Done(usize, Done),
}

/// What every lane shares with the node.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The whole configuration.
    pub config: Arc<Config>,
    /// This node's name.
    pub node: String,
    /// This node's report key.
    pub signer: Arc<dyn ReportSigner>,
    /// Core NATS.
    pub nats: async_nats::Client,
    /// JetStream.
    pub js: jetstream::Context,
    /// Metrics.
    pub metrics: Metrics,
    /// Readiness checks (`chain:{name}`).
    pub readiness: Readiness,
    /// Where connected chains are registered.
    pub connected: Arc<Connected>,
    /// Lane events to the ingest loop.
    pub events: mpsc::Sender<LaneEvent>,
    /// Chain updates to the ingest loop.
    pub updates: mpsc::Sender<ChainUpdate>,
}

/// The chain's effective transaction and retry policy: the aggregator's,
/// with the chain's overrides.
pub fn effective(aggregator: &AggregatorConfig, chain: &ChainConfig) -> AggregatorConfig {
    let mut a = aggregator.clone();
    if let Some(t) = chain.receipt_timeout {
        a.receipt_timeout = t;
    }
    if let Some(p) = chain.fee_bump_percent {
        a.fee_bump_percent = p;
    }
    if let Some(g) = chain.max_fee_per_gas_gwei {
        a.max_fee_per_gas_gwei = g;
    }
    if let Some(r) = chain.retry_limit {
        a.retry_limit = r;
    }
    a
}

/// Runs lane `lane` until `shutdown`: connects (retrying), announces itself,
/// then runs the chain's pipeline and watcher. `Err` only for a
/// configuration the chain contradicts.
pub async fn run(lane: usize, shared: Shared, shutdown: CancellationToken) -> Result<(), String> {
    let chain_config = shared.config.chains[lane].clone();
    let name = chain_config.name.clone();
    let span = info_span!("chain", chain = %name);
    async move {
        let Some((chain, states)) = connect(lane, &chain_config, &shared, &shutdown).await? else {
            return Ok(()); // stopped while connecting
        };
        let chain = Arc::new(chain);
        shared.connected.insert(Arc::clone(&chain));
        let (commands_tx, commands_rx) = mpsc::channel(16);
        let a = effective(&shared.config.aggregator, &chain.config);
        let pipeline = Pipeline {
            chain: name.clone(),
            proposer: proposal::Proposer {
                node: shared.node.clone(),
                signer: Arc::clone(&shared.signer),
                nats: shared.nats.clone(),
                chain: name.clone(),
                chain_id: chain.chain_id,
                hub: chain.hub,
                timeout: a.proposal_timeout,
                signer_set: Arc::clone(&chain.signer_set),
                metrics: shared.metrics.clone(),
            },
            lifecycle: Arc::new(Lifecycle::new(
                shared.js.clone(),
                ChainPolicy {
                    name: name.clone(),
                    first: lane == 0,
                    confirmations: chain.config.confirmations,
                    block_time: chain.config.block_time,
                },
                chain.submitter.clone(),
                shared.node.clone(),
                a,
                shared.metrics.clone(),
                chain
                    .specs
                    .iter()
                    .map(|(p, s)| (p.clone(), s.hub.max_report_age))
                    .collect(),
            )),
            js: shared.js.clone(),
            specs: Arc::clone(&chain.specs),
            metrics: shared.metrics.clone(),
        };
        let up = Up {
            chain: Arc::clone(&chain),
            states,
            commands: commands_tx,
        };
        if shared
            .events
            .send(LaneEvent::Up(Box::new(up)))
            .await
            .is_err()
        {
            return Ok(());
        }
        // The pipeline reports on a channel of its own, forwarded with the lane.
        let (done_tx, mut done_rx) = mpsc::channel(16);
        let events = shared.events.clone();
        let forward = async move {
            while let Some(done) = done_rx.recv().await {
                if events.send(LaneEvent::Done(lane, done)).await.is_err() {
                    return;
                }
            }
        };
        let watch = chain_watch::run(
            (lane, name.clone()),
            chain.submitter.clone(),
            feeds::by_index(&chain.specs),
            shared.updates.clone(),
            Arc::clone(&chain.signer_set),
            shared.metrics.clone(),
            shared.readiness.clone(),
            shutdown.clone(),
        );
        tokio::join!(
            pipeline.run(commands_rx, done_tx, shutdown.clone()),
            forward,
            watch
        );
        Ok(())
    }
    .instrument(span)
    .await
}

/// Connects to the chain and reads its feeds, retrying while the chain does
/// not answer; `None` when stopped first.
async fn connect(
    lane: usize,
    chain: &ChainConfig,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Result<Option<(Chain, BTreeMap<Pair, OnChain>)>, String> {
    let mut pause = RETRY_MIN;
    loop {
        let attempt = async {
            let submitter = Submitter::connect(
                chain,
                &shared.config.aggregator.sender_key,
                shared.signer.address(),
            )
            .await?;
            let (specs, states) =
                load_feeds(&shared.config, chain, &submitter, &shared.metrics).await?;
            let (signers, threshold) = submitter.signer_set().await?;
            Ok::<_, SubmitError>((submitter, specs, states, signers, threshold))
        };
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            o = attempt => o,
        };
        match outcome {
            Ok((submitter, specs, states, signers, threshold)) => {
                shared
                    .metrics
                    .threshold
                    .with_label_values(&[&chain.name])
                    .set(threshold as i64);
                let chain = Chain {
                    lane,
                    config: chain.clone(),
                    chain_id: submitter.chain_id(),
                    hub: submitter.hub_address(),
                    specs: Arc::new(specs),
                    submitter,
                    signer_set: Arc::new(RwLock::new(SignerSet { signers, threshold })),
                };
                return Ok(Some((chain, states)));
            }
            Err(e) if e.is_transient() => {
                warn!(error = %e, retry_in = ?pause, "chain not reachable; the other chains are served meanwhile");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(RETRY_MAX);
            }
            Err(e) => return Err(format!("chain {}: {e}", chain.name)),
        }
    }
}

/// Each configured feed as `chain`'s hub registered it (with the chain's
/// policy), and what the hub holds.
async fn load_feeds(
    config: &Config,
    chain: &ChainConfig,
    submitter: &Submitter,
    metrics: &Metrics,
) -> Result<(BTreeMap<Pair, FeedSpec>, BTreeMap<Pair, OnChain>), SubmitError> {
    let mut specs = BTreeMap::new();
    let mut states = BTreeMap::new();
    for feed in &config.feeds {
        let feed = chain.feed(feed);
        let not_usable = |e: SubmitError| match e {
            SubmitError::Reverted(r) => SubmitError::Config {
                key: "feeds",
                message: format!("feed {} is not usable on the hub: {r}", feed.pair),
            },
            other => other,
        };
        let on_hub = submitter.feed(&feed.pair).await.map_err(not_usable)?;
        if on_hub.decimals != feed.decimals {
            return Err(SubmitError::Config {
                key: "feeds",
                message: format!(
                    "feed {} has {} decimals in the config and {} on the hub",
                    feed.pair, feed.decimals, on_hub.decimals
                ),
            });
        }
        if u64::from(on_hub.max_report_age) != feed.max_report_age.as_secs() {
            warn!(pair = %feed.pair, hub = on_hub.max_report_age, config = feed.max_report_age.as_secs(),
                  "max_report_age differs from the hub's; the hub's applies");
        }
        let state = submitter.read(&feed.pair).await.map_err(not_usable)?;
        info!(pair = %feed.pair, index = on_hub.index, round = state.round, "feed state read from chain");
        metrics.init_chain_feed(&chain.name, &feed);
        states.insert(feed.pair.clone(), state);
        specs.insert(
            feed.pair.clone(),
            FeedSpec {
                config: feed,
                hub: on_hub,
            },
        );
    }
    Ok((specs, states))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_overrides_only_what_it_sets() {
        let a = AggregatorConfig::default();
        let mut c = ChainConfig::new("l2", 10, "http://a:8545");
        let same = effective(&a, &c);
        assert_eq!(
            (
                same.receipt_timeout,
                same.fee_bump_percent,
                same.max_fee_per_gas_gwei,
                same.retry_limit
            ),
            (
                a.receipt_timeout,
                a.fee_bump_percent,
                a.max_fee_per_gas_gwei,
                a.retry_limit
            )
        );
        c.receipt_timeout = Some(Duration::from_secs(7));
        c.fee_bump_percent = Some(12);
        c.max_fee_per_gas_gwei = Some(3);
        c.retry_limit = Some(9);
        let own = effective(&a, &c);
        assert_eq!(
            (
                own.receipt_timeout,
                own.fee_bump_percent,
                own.max_fee_per_gas_gwei,
                own.retry_limit
            ),
            (Duration::from_secs(7), 12, 3, 9)
        );
        // Everything else is the node's.
        assert_eq!(own.proposal_timeout, a.proposal_timeout);
    }
}
