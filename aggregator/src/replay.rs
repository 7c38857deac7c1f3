//! `oracle-aggregator replay`: checks recorded reports against the raw data.
//! For every report on `ORACLE_REPORTS` in a time range, the observations it
//! names (used and rejected) are looked up in `ORACLE_OBS` by their stream
//! sequence and must be there, unchanged and on their own subject; the
//! aggregation rules (the very function the nodes verify with) are run again
//! on exactly them and must give the recorded outliers, median, confidence
//! and scaled price; and the on-chain round must hold that price (while it is
//! in the hub's 64-round history).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use oracle_common::Pair;
use oracle_common::chain::OracleHub;
use oracle_common::config::Config;
use oracle_common::wire::{
    OBS_STREAM, Observation, REPORTS_STREAM, REPORTS_SUBJECTS, ReportMessage, WireMessage,
    obs_subject,
};
use serde::Serialize;

use crate::window::{Entry, Rules, aggregate_of};

/// The verdict on one report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReplayLine {
    /// The feed.
    pub pair: Pair,
    /// The chain it was submitted to (empty in records of a single-chain
    /// version: the first chain).
    pub chain: String,
    /// The round.
    pub round: u32,
    /// When the report was computed, Unix ms.
    pub computed_at_ms: u64,
    /// The recorded scaled price.
    pub recorded: String,
    /// The scaled price recomputed from `ORACLE_OBS`, if it could be.
    pub recomputed: Option<String>,
    /// What the hub holds for that round: `Some(price)`, or `None` when the
    /// round is out of the hub's history or unreadable.
    pub on_chain: Option<String>,
    /// Whether recorded, recomputed (and on-chain, when readable) agree.
    pub ok: bool,
    /// What disagreed.
    pub problems: Vec<String>,
}

/// Replay failed to read its inputs.
#[derive(Debug, thiserror::Error)]
#[error("replay: {0}")]
pub struct ReplayError(pub String);

/// One stored message: sequence, subject, body.
type Stored = (u64, String, Vec<u8>);

async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    from_ms: u64,
) -> Result<Vec<Stored>, ReplayError> {
    let err = |e: String| ReplayError(format!("{stream}: {e}"));
    let s = js
        .get_stream(stream)
        .await
        .map_err(|e| err(e.to_string()))?;
    let start = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(from_ms) * 1_000_000)
        .map_err(|e| err(e.to_string()))?;
    let consumer: consumer::PullConsumer = s
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: start },
            filter_subject: filter.to_owned(),
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| err(e.to_string()))?;
    let messages = oracle_common::streams::drain(&consumer)
        .await
        .map_err(err)?;
    Ok(messages
        .into_iter()
        .map(|msg| {
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
            (seq, msg.subject.to_string(), msg.payload.to_vec())
        })
        .collect())
}

/// Replays the reports computed between `from_ms` and `to_ms`.
pub async fn replay(
    config: &Config,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<ReplayLine>, ReplayError> {
    let nats = oracle_common::bus::connect(
        &config.nats,
        "oracle-aggregator replay",
        oracle_common::bus::Initial::Required,
    )
    .await
    .map_err(|e| ReplayError(e.to_string()))?;
    let js = jetstream::new(nats);
    let lookback = config
        .feeds
        .iter()
        .map(|f| f.max_age.as_millis() as u64)
        .max()
        .unwrap_or(60_000);
    let mut by_seq: HashMap<u64, (String, Observation)> = HashMap::new();
    let obs_from = from_ms.saturating_sub(lookback + 60_000);
    for (seq, subject, body) in read_stream(&js, OBS_STREAM, ">", obs_from).await? {
        if let Ok(o) = Observation::decode(&body) {
            by_seq.insert(seq, (subject, o));
        }
    }
    let reports: Vec<ReportMessage> = read_stream(&js, REPORTS_STREAM, REPORTS_SUBJECTS, from_ms)
        .await?
        .into_iter()
        .filter_map(|(_, _, body)| ReportMessage::decode(&body).ok())
        .filter(|r| r.computed_at_ms >= from_ms && r.computed_at_ms <= to_ms)
        .collect();

    // Each chain's hub, by chain id; records that name none are the first chain's.
    let hubs: HashMap<u64, OracleHub::OracleHubInstance<alloy::providers::DynProvider>> = config
        .chains
        .iter()
        .filter_map(|c| {
            let url = c.rpc_urls.first()?.parse().ok()?;
            Some((
                c.chain_id,
                OracleHub::new(c.hub_address?, crate::submitter::http_provider(url)),
            ))
        })
        .collect();
    let first_chain = config.chains.first().map_or(0, |c| c.chain_id);
    let rules = Rules::from_config(&config.aggregator);
    let mut lines = Vec::with_capacity(reports.len());
    for r in reports {
        let mut problems = Vec::new();
        let cited = r
            .used
            .iter()
            .map(|u| (u.seq, &u.observation))
            .chain(r.rejected.iter().map(|x| (x.seq, &x.observation)));
        let mut inputs = Vec::new();
        for (seq, o) in cited {
            match by_seq.get(&seq) {
                Some((subject, stored))
                    if stored == o && *subject == obs_subject(&o.pair, &o.source) =>
                {
                    inputs.push(Entry {
                        seq,
                        obs: stored.clone(),
                    });
                }
                Some(_) => problems.push(format!(
                    "#{seq} in ORACLE_OBS differs from the report's {}",
                    o.msg_id()
                )),
                None => problems.push(format!("#{seq} ({}) is not in ORACLE_OBS", o.msg_id())),
            }
        }
        let recomputed = match config.feed(&r.pair) {
            None => {
                problems.push(format!("{} is not a configured feed", r.pair));
                None
            }
            Some(feed) => match aggregate_of(feed, inputs, r.computed_at_ms, &rules, vec![]) {
                Err(e) => {
                    problems.push(format!("no aggregate from the inputs: {e}"));
                    None
                }
                Ok(agg) => {
                    let rejected: BTreeSet<u64> = agg.rejected.iter().map(|(e, _)| e.seq).collect();
                    let recorded: BTreeSet<u64> = r.rejected.iter().map(|x| x.seq).collect();
                    if rejected != recorded {
                        problems.push(format!(
                            "outliers recomputed {rejected:?}, recorded {recorded:?}"
                        ));
                    }
                    if agg.confidence != r.confidence {
                        problems.push(format!(
                            "confidence recomputed {}, recorded {}",
                            agg.confidence, r.confidence
                        ));
                    }
                    oracle_common::price::to_scaled(agg.price, u32::from(r.decimals))
                        .ok()
                        .map(|v| v.to_string())
                }
            },
        };
        if recomputed.as_deref() != Some(r.price_scaled.as_str()) {
            problems.push(format!(
                "recomputed {recomputed:?}, recorded {}",
                r.price_scaled
            ));
        }
        let chain_id = if r.chain_id == 0 {
            first_chain
        } else {
            r.chain_id
        };
        let on_chain = match hubs.get(&chain_id) {
            Some(hub) => hub
                .getRoundData(r.pair.feed_id(), r.round)
                .call()
                .await
                .ok()
                .map(|d| d.price.to_string()),
            None => None,
        };
        if let Some(chain) = &on_chain
            && chain != &r.price_scaled
        {
            problems.push(format!("the chain holds {chain} for round {}", r.round));
        }
        lines.push(ReplayLine {
            chain: r.chain,
            pair: r.pair,
            round: r.round,
            computed_at_ms: r.computed_at_ms,
            recorded: r.price_scaled,
            recomputed,
            on_chain,
            ok: problems.is_empty(),
            problems,
        });
    }
    lines.sort_by_key(|l| l.computed_at_ms);
    Ok(lines)
}
