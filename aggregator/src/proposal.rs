//! The leader side of the signer quorum: [`Proposer::propose`] publishes a
//! proposal on `oracle.proposal` with one reply inbox, signs it itself (the
//! leader's signature counts), and collects the other nodes' answers within
//! `proposal_timeout`. It returns as soon as it holds `threshold` valid
//! signatures (in any order; later ones are ignored), or says why it could
//! not. Every signature is recovered and checked against the hub's signer
//! set before it counts: a faulty node cannot make the batch revert.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::Address;
use futures::StreamExt;
use oracle_common::chain::{HubSignature, Report, batch_digest};
use oracle_common::now_ms;
use oracle_common::wire::{
    PROPOSAL_SUBJECT, Proposal, ProposalReply, ProposedReport, Refusal, SCHEMA_VERSION, WireMessage,
};
use tracing::{debug, warn};

use crate::metrics::Metrics;
use crate::signing::ReportSigner;

/// The hub's signer set and threshold, as last read from the chain.
#[derive(Debug, Clone, Default)]
pub struct SignerSet {
    /// Authorized signers.
    pub signers: Vec<Address>,
    /// Signatures a batch needs.
    pub threshold: usize,
}

/// A signer set shared by the pipeline and the chain watcher.
pub type SharedSignerSet = Arc<RwLock<SignerSet>>;

/// A proposal with enough signatures to submit.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The proposal.
    pub proposal: Proposal,
    /// `threshold` signatures, ordered by ascending signer address.
    pub signatures: Vec<HubSignature>,
    /// Their signers, ascending.
    pub signers: Vec<Address>,
    /// How long collecting them took.
    pub took: Duration,
}

/// A proposal that did not gather enough signatures.
#[derive(Debug, Clone)]
pub struct Unsigned {
    /// The proposal.
    pub proposal: Proposal,
    /// Valid signatures held (the leader's included).
    pub got: usize,
    /// Signatures needed.
    pub needed: usize,
    /// The refusals received, by node.
    pub refusals: BTreeMap<String, Vec<Refusal>>,
    /// Nodes whose answer was not a valid signature of an authorized signer.
    pub invalid: Vec<String>,
}

impl Unsigned {
    /// One line saying why, for logs and replies.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "{} of {} signatures before the deadline",
            self.got, self.needed
        )];
        for (node, refusals) in &self.refusals {
            let reasons: Vec<String> = refusals
                .iter()
                .map(|r| match &r.pair {
                    Some(p) => format!("{p}: {}", r.code),
                    None => r.code.to_string(),
                })
                .collect();
            parts.push(format!("{node} refused ({})", reasons.join(", ")));
        }
        if !self.invalid.is_empty() {
            parts.push(format!(
                "invalid signatures from {}",
                self.invalid.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// Makes proposals for the leader.
#[derive(Debug)]
pub struct Proposer {
    /// This node's name.
    pub node: String,
    /// This node's report key.
    pub signer: Arc<dyn ReportSigner>,
    /// Core NATS.
    pub nats: async_nats::Client,
    /// The chain's configured name (metrics, logs).
    pub chain: String,
    /// EIP-712 domain: chain.
    pub chain_id: u64,
    /// EIP-712 domain: hub.
    pub hub: Address,
    /// How long to wait for signatures.
    pub timeout: Duration,
    /// The hub's signer set.
    pub signer_set: SharedSignerSet,
    /// Metrics.
    pub metrics: Metrics,
}

/// A fresh id: `{unix_ms}-{random}`.
pub fn new_id() -> String {
    format!("{}-{:08x}", now_ms(), rand::random::<u32>())
}

impl Proposer {
    /// Proposes `reports` (on chain: `planned`, same order), computed at
    /// `computed_at_ms` while holding the lease at `lease_revision`.
    pub async fn propose(
        &self,
        reports: Vec<ProposedReport>,
        planned: &[Report],
        computed_at_ms: u64,
        lease_revision: u64,
    ) -> Result<Signed, Box<Unsigned>> {
        let started = std::time::Instant::now();
        let now = now_ms();
        let proposal = Proposal {
            v: SCHEMA_VERSION,
            id: new_id(),
            leader: self.node.clone(),
            lease_revision,
            chain_id: self.chain_id,
            hub: self.hub,
            computed_at_ms,
            deadline_ms: now + self.timeout.as_millis() as u64,
            reports,
        };
        let SignerSet { signers, threshold } = self
            .signer_set
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let digest = batch_digest(planned, self.chain_id, self.hub);
        let mut held: BTreeMap<Address, HubSignature> = BTreeMap::new();
        let mut unsigned = Unsigned {
            proposal: proposal.clone(),
            got: 0,
            needed: threshold,
            refusals: BTreeMap::new(),
            invalid: Vec::new(),
        };
        match self.signer.sign(digest).await {
            Ok(own) => {
                held.insert(self.signer.address(), own);
            }
            Err(e) => warn!(error = %e, "cannot sign the own proposal"),
        }
        if held.len() < threshold
            && let Err(e) = self
                .collect(
                    &proposal,
                    digest,
                    &signers,
                    threshold,
                    &mut held,
                    &mut unsigned,
                )
                .await
        {
            warn!(proposal = %proposal.id, error = %e, "cannot publish the proposal");
        }
        let took = started.elapsed();
        if held.len() >= threshold && threshold > 0 {
            self.metrics
                .proposals
                .with_label_values(&[&self.chain, "signed"])
                .inc();
            self.metrics
                .proposal_seconds
                .with_label_values(&[&self.chain])
                .observe(took.as_secs_f64());
            let chosen: Vec<(Address, HubSignature)> = held.into_iter().take(threshold).collect();
            return Ok(Signed {
                proposal,
                signers: chosen.iter().map(|(a, _)| *a).collect(),
                signatures: chosen.into_iter().map(|(_, s)| s).collect(),
                took,
            });
        }
        self.metrics
            .proposals
            .with_label_values(&[&self.chain, "no_signer_quorum"])
            .inc();
        unsigned.got = held.len();
        Err(Box::new(unsigned))
    }

    /// Publishes the proposal and gathers answers until `threshold` valid
    /// signatures are held, every other signer answered, or the deadline.
    async fn collect(
        &self,
        proposal: &Proposal,
        digest: alloy::primitives::B256,
        signers: &[Address],
        threshold: usize,
        held: &mut BTreeMap<Address, HubSignature>,
        unsigned: &mut Unsigned,
    ) -> Result<(), String> {
        let inbox = self.nats.new_inbox();
        let mut answers = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| e.to_string())?;
        self.nats
            .publish_with_reply(PROPOSAL_SUBJECT, inbox, proposal.encode().into())
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut answered = 1usize; // this node
        while held.len() < threshold && answered < signers.len() {
            let msg = match tokio::time::timeout_at(deadline, answers.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) | Err(_) => break,
            };
            let reply = match ProposalReply::decode(&msg.payload) {
                Ok(r) if r.proposal == proposal.id => r,
                Ok(_) => continue,
                Err(e) => {
                    warn!(error = %e, "unreadable proposal reply");
                    continue;
                }
            };
            answered += 1;
            match reply
                .signature
                .as_deref()
                .and_then(|b| HubSignature::from_bytes(b))
            {
                Some(sig) => {
                    let recovered = sig.recover(digest);
                    if recovered == Some(reply.signer) && signers.contains(&reply.signer) {
                        self.metrics.replies.with_label_values(&["signed"]).inc();
                        held.insert(reply.signer, sig);
                        debug!(node = %reply.node, signer = %reply.signer, "signature");
                    } else {
                        self.metrics.replies.with_label_values(&["invalid"]).inc();
                        warn!(node = %reply.node, claimed = %reply.signer, recovered = ?recovered,
                              "a signature that is not the claimed authorized signer's: ignored");
                        unsigned.invalid.push(reply.node);
                    }
                }
                None => {
                    self.metrics.replies.with_label_values(&["refused"]).inc();
                    unsigned.refusals.insert(reply.node, reply.refusals);
                }
            }
        }
        Ok(())
    }
}
