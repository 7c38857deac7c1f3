//! The transaction records, rebuilt by replaying `ORACLE_SUBMISSIONS` and kept
//! current by following it: each submission's latest event (the whole record
//! so far) plus its status history. Bounded: the oldest records beyond
//! `capacity` are dropped (the stream itself stays the full record).

use oracle_common::Pair;
use oracle_common::wire::{SUBMISSIONS_STREAM, SubmissionEvent, SubmissionStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// One status a submission went through.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// The status.
    pub status: SubmissionStatus,
    /// When it was recorded, Unix ms.
    pub at_ms: u64,
}

/// A submission as served: its latest event and how it got there.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The latest event (the record so far).
    #[serde(flatten)]
    pub latest: SubmissionEvent,
    /// Every status recorded, oldest first.
    pub history: Vec<Step>,
}

/// What a listing selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this current status.
    pub status: Option<SubmissionStatus>,
    /// Only submissions carrying this feed.
    pub pair: Option<Pair>,
    /// Only submissions on this chain: its id, and whether it is the first
    /// configured chain (which owns the records that name none).
    pub chain: Option<(u64, bool)>,
    /// Created at or after, Unix ms.
    pub from_ms: Option<u64>,
    /// Created at or before, Unix ms.
    pub to_ms: Option<u64>,
    /// Only ids strictly older than this one (the previous page's cursor).
    pub before: Option<String>,
}

#[derive(Debug)]
struct Inner {
    records: BTreeMap<String, Record>,
    capacity: usize,
    /// The last stream sequence applied.
    last_seq: u64,
}

/// The shared index.
#[derive(Debug, Clone)]
pub struct Submissions {
    inner: Arc<RwLock<Inner>>,
}

/// The creation time encoded in an id (`{unix_ms}-{hex}`).
fn created_ms(id: &str) -> Option<u64> {
    id.split_once('-')?.0.parse().ok()
}

/// Whether `id` has the form the aggregator gives ids: `{unix_ms}-{8 hex}`.
pub fn valid_id(id: &str) -> bool {
    match id.split_once('-') {
        Some((ms, hex)) => {
            (1..=20).contains(&ms.len())
                && ms.bytes().all(|b| b.is_ascii_digit())
                && hex.len() == 8
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

impl Submissions {
    /// An empty index keeping at most `capacity` submissions.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner {
                records: BTreeMap::new(),
                capacity: capacity.max(1),
                last_seq: 0,
            })),
        }
    }

    /// Applies one event (in stream order).
    pub fn apply(&self, seq: u64, event: SubmissionEvent) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        inner.last_seq = inner.last_seq.max(seq);
        let step = Step {
            status: event.status,
            at_ms: event.at_ms,
        };
        match inner.records.get_mut(&event.id) {
            Some(r) => {
                r.history.push(step);
                r.latest = event;
            }
            None => {
                inner.records.insert(
                    event.id.clone(),
                    Record {
                        latest: event,
                        history: vec![step],
                    },
                );
            }
        }
        while inner.records.len() > inner.capacity {
            inner.records.pop_first();
        }
    }

    /// The submission `id`.
    pub fn get(&self, id: &str) -> Option<Record> {
        self.inner.read().ok()?.records.get(id).cloned()
    }

    /// Newest first, at most `limit`, and whether more match.
    pub fn list(&self, filter: &Filter, limit: usize) -> (Vec<Record>, bool) {
        let Ok(inner) = self.inner.read() else {
            return (vec![], false);
        };
        let mut out = Vec::new();
        let upper = filter.before.clone();
        let range = match &upper {
            Some(b) => inner.records.range::<String, _>(..b.clone()),
            None => inner.records.range::<String, _>(..),
        };
        for (id, r) in range.rev() {
            let created = created_ms(id).unwrap_or(0);
            if filter.from_ms.is_some_and(|f| created < f) {
                break; // older ids only from here on
            }
            if filter.to_ms.is_some_and(|t| created > t)
                || filter.status.is_some_and(|s| r.latest.status != s)
                || filter
                    .chain
                    .is_some_and(|(id, first)| !r.latest.is_on(id, first))
                || filter
                    .pair
                    .as_ref()
                    .is_some_and(|p| !r.latest.reports.iter().any(|x| &x.pair == p))
            {
                continue;
            }
            if out.len() == limit {
                return (out, true);
            }
            out.push(r.clone());
        }
        (out, false)
    }

    /// The newest submission recorded as a retry of `id`.
    pub fn retried_by(&self, id: &str) -> Option<String> {
        let inner = self.inner.read().ok()?;
        inner
            .records
            .iter()
            .rev()
            .find(|(_, r)| r.latest.retry_of.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
    }

    /// Submissions held.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.records.len()).unwrap_or(0)
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn last_seq(&self) -> u64 {
        self.inner.read().map(|i| i.last_seq).unwrap_or(0)
    }

    /// Follows `ORACLE_SUBMISSIONS` from the start (then from where it left
    /// off after any interruption) until `shutdown`.
    pub async fn follow(self, nats: async_nats::Client, shutdown: CancellationToken) {
        let this = self.clone();
        crate::follow::follow(
            nats,
            SUBMISSIONS_STREAM,
            shutdown,
            move || this.last_seq(),
            |seq, payload| match <SubmissionEvent as oracle_common::wire::WireMessage>::decode(
                payload,
            ) {
                Ok(event) => self.apply(seq, event),
                Err(e) => warn!(seq, error = %e, "unreadable submission event skipped"),
            },
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oracle_common::wire::SubmittedReport;

    fn event(id: &str, status: SubmissionStatus, pair: &str) -> SubmissionEvent {
        let report = SubmittedReport {
            pair: pair.parse().unwrap(),
            feed_index: 0,
            round: 1,
            price_scaled: "1".into(),
            observed_at: 1,
        };
        SubmissionEvent {
            status,
            at_ms: created_ms(id).unwrap(),
            ..SubmissionEvent::queued(
                id.into(),
                ("local".into(), 1),
                "a".into(),
                "0x0".into(),
                vec![report],
                None,
            )
        }
    }

    #[test]
    fn latest_event_wins_and_history_is_kept() {
        let s = Submissions::new(10);
        s.apply(
            1,
            event("1000-0000000a", SubmissionStatus::Queued, "BTC/USD"),
        );
        s.apply(
            2,
            event("1000-0000000a", SubmissionStatus::Pending, "BTC/USD"),
        );
        s.apply(
            3,
            event("1000-0000000a", SubmissionStatus::Success, "BTC/USD"),
        );
        let r = s.get("1000-0000000a").unwrap();
        assert_eq!(r.latest.status, SubmissionStatus::Success);
        let steps: Vec<_> = r.history.iter().map(|h| h.status).collect();
        assert_eq!(
            steps,
            [
                SubmissionStatus::Queued,
                SubmissionStatus::Pending,
                SubmissionStatus::Success
            ]
        );
        assert_eq!(s.last_seq(), 3);
    }

    #[test]
    fn listing_filters_pages_newest_first_and_memory_is_bounded() {
        let s = Submissions::new(4);
        for (i, (status, pair)) in [
            (SubmissionStatus::Success, "BTC/USD"),
            (SubmissionStatus::Failed, "ETH/USD"),
            (SubmissionStatus::Success, "ETH/USD"),
            (SubmissionStatus::Failed, "BTC/USD"),
            (SubmissionStatus::Success, "BTC/USD"),
        ]
        .into_iter()
        .enumerate()
        {
            s.apply(
                i as u64 + 1,
                event(&format!("{}-0000000{i}", 1000 + i), status, pair),
            );
        }
        assert_eq!(s.len(), 4, "the oldest was dropped");
        assert!(s.get("1000-00000000").is_none());
        let ids = |f: &Filter, limit| {
            let (r, more) = s.list(f, limit);
            (r.into_iter().map(|r| r.latest.id).collect::<Vec<_>>(), more)
        };
        let all = Filter::default();
        assert_eq!(
            ids(&all, 2),
            (vec!["1004-00000004".into(), "1003-00000003".into()], true)
        );
        let next = Filter {
            before: Some("1003-00000003".into()),
            ..Filter::default()
        };
        assert_eq!(
            ids(&next, 2),
            (vec!["1002-00000002".into(), "1001-00000001".into()], false)
        );
        let failed_btc = Filter {
            status: Some(SubmissionStatus::Failed),
            pair: Some("BTC/USD".parse().unwrap()),
            ..Filter::default()
        };
        assert_eq!(ids(&failed_btc, 10), (vec!["1003-00000003".into()], false));
        let window = Filter {
            from_ms: Some(1002),
            to_ms: Some(1003),
            ..Filter::default()
        };
        assert_eq!(
            ids(&window, 10),
            (vec!["1003-00000003".into(), "1002-00000002".into()], false)
        );
    }

    #[test]
    fn ids_are_validated() {
        assert!(valid_id("1795295970219-0a1b2c3d"));
        for bad in [
            "",
            "x",
            "1795295970219",
            "abc-0a1b2c3d",
            "1-0a1b2c3",
            "1-0a1b2c3g",
            "-0a1b2c3d",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
