//! Follows the chain beside the ingest loop: the feeds other writers (a
//! previous leader, a relayer) updated, found from the hub's `PriceUpdated`
//! logs of each new block; the hub's signer set; and the sender's balance.
//! Whether the RPC answers is the node's readiness check `chain`.

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

/// Sends `(pair, state)` for every feed updated on chain, until `shutdown`.
pub async fn run(
    submitter: Submitter,
    by_index: BTreeMap<u16, Pair>,
    updates: mpsc::Sender<(Pair, OnChain)>,
    signer_set: SharedSignerSet,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    // The head seen last; unknown until the node answers once.
    let mut last: Option<u64> = submitter.block_number().await.ok();
    readiness.set("chain", last.is_some());
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slow = tokio::time::interval(SLOW);
    slow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = slow.tick() => {
                if let Ok(balance) = submitter.balance().await {
                    metrics.sender_balance.set(f64::from(balance));
                }
                match submitter.signer_set().await {
                    Ok((signers, threshold)) => {
                        metrics.threshold.set(threshold as i64);
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
                    readiness.set("chain", head.is_ok());
                }
                let Ok(head) = head else { continue };
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
                                    if updates.send((pair.clone(), state)).await.is_err() {
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
