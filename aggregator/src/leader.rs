//! Leader election among the nodes: a lease in the NATS KV bucket
//! `oracle_leader` (history 1). `lease_ttl` is the bound on a takeover: entries
//! live half of it, the holder renews every eighth with a compare-and-set on
//! its revision, and a standby tries every eighth to create the key, which
//! succeeds once the dead leader's entry has expired: at most about 5/8 of the
//! TTL after the leader's last renewal.
//!
//! The lease runs in its own task ([`run`]), never behind a transaction or an
//! evaluation, so a leader waiting for a block keeps its lease. The task
//! publishes [`LeaseState`] on a watch channel; [`LeaseView`] lets the
//! verifier check that a proposal comes from the holder. Only the leader
//! proposes and submits; the hub's consecutive-round check remains the final
//! guard should two ever overlap.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::Metrics;

/// The KV bucket of the lease.
pub const BUCKET: &str = oracle_common::wire::LEASE_BUCKET;
/// The key holding the leader's id.
pub const KEY: &str = oracle_common::wire::LEASE_KEY;

/// What a node knows about the lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseState {
    /// Whether this node holds it.
    pub leader: bool,
    /// The revision this node holds it at (0 when it does not).
    pub revision: u64,
    /// Who holds it, as last seen.
    pub holder: Option<String>,
}

/// This process's side of the lease.
#[derive(Debug)]
pub struct Lease {
    store: kv::Store,
    id: String,
    revision: Option<u64>,
    holder: Option<String>,
}

impl Lease {
    /// How often holder and standbys act on the lease.
    pub fn period(ttl: Duration) -> Duration {
        ttl / 8
    }

    /// Opens (or creates) the bucket, entries living half of `ttl`.
    pub async fn open(
        js: &jetstream::Context,
        id: String,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, String> {
        use oracle_common::streams::{create_is_transient, retrying};
        let store = match js.get_key_value(BUCKET).await {
            Ok(store) => store,
            Err(_) => retrying(
                BUCKET,
                || {
                    js.create_key_value(kv::Config {
                        bucket: BUCKET.to_owned(),
                        history: 1,
                        max_age: ttl / 2,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                },
                |e| {
                    matches!(
                        e.kind(),
                        jetstream::context::CreateKeyValueErrorKind::TimedOut
                            | jetstream::context::CreateKeyValueErrorKind::BucketCreate
                    )
                },
            )
            .await
            .map_err(|e| format!("creating KV bucket {BUCKET}: {e}"))?,
        };
        // The bucket's stream at the configured replicas: a lease kept on one
        // server would be lost with it.
        let stream_name = format!("KV_{BUCKET}");
        let mut stream = js
            .get_stream(&stream_name)
            .await
            .map_err(|e| format!("KV bucket {BUCKET}: {e}"))?;
        let info = stream
            .info()
            .await
            .map_err(|e| format!("KV bucket {BUCKET}: {e}"))?;
        if info.config.num_replicas != replicas {
            warn!(
                from = info.config.num_replicas,
                to = replicas,
                "changing the lease bucket's replicas"
            );
            let mut updated = info.config.clone();
            updated.num_replicas = replicas;
            retrying(
                &stream_name,
                || js.update_stream(updated.clone()),
                create_is_transient,
            )
            .await
            .map_err(|e| {
                format!(
                    "KV bucket {BUCKET} at {replicas} replica(s): {e} (nats.replicas must not \
                         exceed the number of JetStream servers)"
                )
            })?;
        }
        Ok(Self {
            store,
            id,
            revision: None,
            holder: None,
        })
    }

    /// The KV store (for [`LeaseView`]).
    pub fn store(&self) -> kv::Store {
        self.store.clone()
    }

    /// Renews the lease if held, or tries to take it if free; learns the
    /// holder otherwise.
    pub async fn tick(&mut self) -> LeaseState {
        match self.revision {
            Some(rev) => match self.store.update(KEY, self.id.clone().into(), rev).await {
                Ok(next) => self.revision = Some(next),
                Err(e) => {
                    warn!(error = %e, "leader lease lost");
                    self.revision = None;
                }
            },
            // Held by another node: its entry expires (bucket max_age) unless
            // renewed, and then `create` succeeds here.
            None => {
                if let Ok(rev) = self.store.create(KEY, self.id.clone().into()).await {
                    info!(id = %self.id, "leader lease taken");
                    self.revision = Some(rev);
                }
            }
        }
        self.holder = match self.revision {
            Some(_) => Some(self.id.clone()),
            None => self
                .store
                .get(KEY)
                .await
                .ok()
                .flatten()
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
        };
        LeaseState {
            leader: self.revision.is_some(),
            revision: self.revision.unwrap_or(0),
            holder: self.holder.clone(),
        }
    }

    /// Gives the lease up (clean shutdown) so a standby takes over at once.
    pub async fn release(&mut self) {
        if let Some(rev) = self.revision.take() {
            let _ = self.store.delete_expect_revision(KEY, Some(rev)).await;
        }
    }
}

/// Keeps the lease every `period` until `shutdown`, publishing the state on
/// `tx`; releases it on the way out.
pub async fn run(
    mut lease: Lease,
    period: Duration,
    tx: watch::Sender<LeaseState>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let state = lease.tick().await;
        metrics.leader.set(i64::from(state.leader));
        tx.send_if_modified(|current| {
            if state.leader && !current.leader {
                metrics.leader_changes.inc();
            }
            let changed = *current != state;
            *current = state;
            changed
        });
    }
    lease.release().await;
}

/// A node's view of who leads, for checking proposers.
#[derive(Debug, Clone)]
pub struct LeaseView {
    rx: watch::Receiver<LeaseState>,
    store: kv::Store,
}

impl LeaseView {
    /// A view over the lease task's state and the bucket.
    pub fn new(rx: watch::Receiver<LeaseState>, store: kv::Store) -> Self {
        Self { rx, store }
    }

    /// Whether `id` holds the lease: as last seen, or else as the bucket says
    /// now (a takeover this node's lease task has not seen yet).
    pub async fn is_holder(&self, id: &str) -> bool {
        if self.rx.borrow().holder.as_deref() == Some(id) {
            return true;
        }
        matches!(self.store.get(KEY).await, Ok(Some(v)) if v.as_ref() == id.as_bytes())
    }
}
