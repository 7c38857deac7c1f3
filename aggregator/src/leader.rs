//! Leader election for redundant aggregators: a lease in the NATS KV bucket
//! `oracle_leader` (history 1). `lease_ttl` is the bound on a takeover: entries
//! live half of it, the holder renews every eighth with a compare-and-set on
//! its revision, and a standby tries every eighth to create the key, which
//! succeeds once the dead leader's entry has expired: at most about 5/8 of the
//! TTL after the leader's last renewal. Only the leader submits; the
//! contract's round check remains the final guard should two ever overlap.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use tracing::{info, warn};

/// The KV bucket of the lease.
pub const BUCKET: &str = "oracle_leader";
/// The key holding the leader's id.
pub const KEY: &str = "aggregator";

/// This process's view of the lease.
#[derive(Debug)]
pub struct Lease {
    store: kv::Store,
    id: String,
    revision: Option<u64>,
}

impl Lease {
    /// How often holder and standbys act on the lease.
    pub fn period(ttl: Duration) -> Duration {
        ttl / 8
    }

    /// Opens (or creates) the bucket, entries living half of `ttl`.
    pub async fn open(js: &jetstream::Context, id: String, ttl: Duration) -> Result<Self, String> {
        let store = match js.get_key_value(BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_owned(),
                    history: 1,
                    max_age: ttl / 2,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("creating KV bucket {BUCKET}: {e}"))?,
        };
        Ok(Self {
            store,
            id,
            revision: None,
        })
    }

    /// Whether this process held the lease at its last renewal.
    pub fn is_leader(&self) -> bool {
        self.revision.is_some()
    }

    /// Renews the lease if held, or tries to take it if free. Returns whether
    /// this process is the leader now.
    pub async fn tick(&mut self) -> bool {
        match self.revision {
            Some(rev) => match self.store.update(KEY, self.id.clone().into(), rev).await {
                Ok(next) => self.revision = Some(next),
                Err(e) => {
                    warn!(error = %e, "leader lease lost");
                    self.revision = None;
                }
            },
            // Held by another process: its entry expires (bucket max_age)
            // unless renewed, and then `create` succeeds here.
            None => {
                if let Ok(rev) = self.store.create(KEY, self.id.clone().into()).await {
                    info!(id = %self.id, "leader lease taken");
                    self.revision = Some(rev);
                }
            }
        }
        self.is_leader()
    }

    /// Gives the lease up (clean shutdown) so a standby takes over at once.
    pub async fn release(&mut self) {
        if let Some(rev) = self.revision.take() {
            let _ = self.store.delete_expect_revision(KEY, Some(rev)).await;
        }
    }
}
