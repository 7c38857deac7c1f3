//! Follows the chain beside the ingest loop: the feeds other writers (a
//! previous leader, a relayer) updated, found from the hub's `PriceUpdated`
//! logs of each new block; the hub's signer set; and the sender's balance.
//! One watcher per chain; whether its RPC answers is the node's readiness
//! check `chain:{name}` and `oracle_aggregator_chain_up{chain}`. When the
//! endpoint in use stops answering, the lane moves to the chain's next
//! configured RPC URL that does.

use std::collections::BTreeMap;
use std::time::Duration;

use oracle_common::Pair;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use oracle_common::telemetry::Readiness;

use crate::metrics::Metrics;
use crate::policy::OnChain;
use crate::proposal::{SharedSignerSet, SignerSet};
use crate::submitter::Submitter;

/// How often the head is checked.
const POLL: Duration = Duration::from_secs(1);
/// How often the signer set and the balance are read.
const SLOW: Duration = Duration::from_secs(30);
/// The most blocks one log query spans (RPC providers limit ranges); a
/// watcher further behind skips ahead: what it skips is re-read at takeover.
const MAX_SPAN: u64 = 1_000;

/// Failed head reads in a row before the `chain` check turns unready.
const CHAIN_FAILURES: u32 = 3;

/// A feed updated on chain `lane` (its position in `[[chains]]`).
#[derive(Debug, Clone)]
pub struct ChainUpdate {
    /// The chain's position in the configuration.
    pub lane: usize,
    /// The feed.
    pub pair: Pair,
    /// What the chain holds now.
    pub state: OnChain,
}

/// The readiness check of chain `name`.
pub fn readiness_check(name: &str) -> String {
    format!("chain:{name}")
}

/// Sends a [`ChainUpdate`] for every feed updated on chain `lane`, until
/// `shutdown`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    (lane, chain): (usize, String),
    submitter: Submitter,
    by_index: BTreeMap<u16, Pair>,
    updates: mpsc::Sender<ChainUpdate>,
    signer_set: SharedSignerSet,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let check = readiness_check(&chain);
    let c = [chain.as_str()];
    let mut failures = 0u32;
    // The head seen last; unknown until the node answers once.
    let mut last: Option<u64> = submitter.block_number().await.ok();
    readiness.set(&check, last.is_some());
    metrics
        .chain_up
        .with_label_values(&c)
        .set(i64::from(last.is_some()));
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slow = tokio::time::interval(SLOW);
    slow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = slow.tick() => {
                if let Ok(balance) = submitter.balance().await {
                    let balance = f64::from(balance);
                    metrics.sender_balance.with_label_values(&c).set(balance);
                    let floor = metrics.min_sender_balance.with_label_values(&c).get();
                    if balance < floor {
                        warn!(sender = %submitter.sender(), balance_wei = balance, floor_wei = floor,
                              "the sender's balance is below the configured minimum: top it up");
                    }
                }
                match submitter.signer_set().await {
                    Ok((signers, threshold)) => {
                        metrics.threshold.with_label_values(&c).set(threshold as i64);
                        if let Ok(mut set) = signer_set.write() {
                            *set = SignerSet { signers, threshold };
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot read the hub's signer set"),
                }
            }
            _ = poll.tick() => {
                let head = submitter.block_number().await;
                failures = if head.is_ok() { 0 } else { failures + 1 };
                // One failed read is not an outage: unready after a few in a row.
                if head.is_ok() || failures >= CHAIN_FAILURES {
                    readiness.set(&check, head.is_ok());
                    metrics.chain_up.with_label_values(&c).set(i64::from(head.is_ok()));
                }
                if failures >= CHAIN_FAILURES && submitter.fail_over().await {
                    // Every task of the lane shares the endpoint in use, which
                    // just answered.
                    failures = 0;
                    readiness.set(&check, true);
                    metrics.chain_up.with_label_values(&c).set(1);
                    continue;
                }
                let Ok(head) = head else { continue };
                metrics.chain_head.with_label_values(&c).set(i64::try_from(head).unwrap_or(i64::MAX));
                let from = match last {
                    None => {
                        last = Some(head);
                        continue;
                    }
                    Some(seen) if head <= seen => continue,
                    Some(seen) => (seen + 1).max(head.saturating_sub(MAX_SPAN - 1)),
                };
                match submitter.updated_between(from, head).await {
                    Ok(indexes) => {
                        for index in indexes {
                            let Some(pair) = by_index.get(&index) else { continue };
                            match submitter.read_index(index).await {
                                Ok(state) => {
                                    debug!(pair = %pair, round = state.round, "feed updated on chain");
                                    let update = ChainUpdate { lane, pair: pair.clone(), state };
                                    if updates.send(update).await.is_err() {
                                        return;
                                    }
                                }
                                Err(e) => warn!(pair = %pair, error = %e, "cannot read an updated feed"),
                            }
                        }
                        last = Some(head);
                    }
                    Err(e) => warn!(error = %e, "cannot read the hub's logs"),
                }
            }
        }
    }
}
