//! The chain side: reads each feed's on-chain state and the hub's signer set,
//! and builds, signs (with this node's sender key) and broadcasts the
//! transactions that carry a quorum-signed batch. Report signatures come from
//! the nodes of the quorum (see `proposal` and `verify`), not from here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use oracle_common::Pair;
use oracle_common::chain::{HubSignature, OracleHub, Report, pack_reports, pack_signatures};
use oracle_common::config::{ChainConfig, Secret};
use oracle_common::wire::SkipReason;
use tracing::{debug, info, warn};

use crate::policy::OnChain;

/// A failure talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The configuration does not allow submitting.
    #[error("config key {key}: {message}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The RPC failed or answered with an error.
    #[error("rpc: {0}")]
    Rpc(String),
    /// The contract rejected the call (decoded custom error when possible).
    #[error("contract reverted: {0}")]
    Reverted(String),
    /// The transaction was mined but failed.
    #[error("transaction {0} failed on chain")]
    Failed(B256),
    /// No receipt within the timeout; the outcome is unknown.
    #[error("no receipt for {tx} within {timeout:?}")]
    Timeout {
        /// The transaction.
        tx: B256,
        /// How long we waited.
        timeout: Duration,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] oracle_common::chain::SignError),
}

impl SubmitError {
    /// Whether trying again later may succeed (the node or the network, not
    /// the configuration or the contract).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Rpc(_) | Self::Timeout { .. })
    }
}

/// What the hub says about a feed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedOnHub {
    /// Index used in reports.
    pub index: u16,
    /// Decimals of the scaled price.
    pub decimals: u8,
    /// Scaled lower bound (exclusive).
    pub min_price: i128,
    /// Scaled upper bound (exclusive).
    pub max_price: i128,
    /// Seconds a report's observation time may lie behind its inclusion block.
    pub max_report_age: u32,
}

/// Reads and writes the hub, through one of the chain's RPC endpoints.
#[derive(Debug, Clone)]
pub struct Submitter {
    /// Every configured endpoint, in order: its URL and provider.
    endpoints: Arc<Vec<(String, DynProvider)>>,
    /// The one in use (see [`Submitter::fail_over`]).
    active: Arc<AtomicUsize>,
    wallet: EthereumWallet,
    sender: Address,
    chain_id: u64,
    hub_address: Address,
}

/// A signed transaction, not yet broadcast.
#[derive(Debug, Clone)]
pub struct SignedTx {
    /// Its hash.
    pub hash: B256,
    /// EIP-2718 bytes.
    pub raw: Vec<u8>,
}

/// EIP-1559 fees, wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// Max fee per gas.
    pub max_fee: u128,
    /// Max priority fee per gas.
    pub priority: u128,
}

impl Fees {
    /// Raised by `percent` (a replacement must pay at least 10% more), capped.
    pub fn bumped(self, percent: u32, cap: u128) -> Self {
        let up = |v: u128| (v.saturating_mul(100 + u128::from(percent)) / 100).max(v + 1);
        Self {
            max_fee: up(self.max_fee).min(cap),
            priority: up(self.priority).min(cap),
        }
    }
}

fn contract_error(e: alloy::contract::Error) -> SubmitError {
    if let Some(decoded) = e.as_decoded_interface_error::<OracleHub::OracleHubErrors>() {
        return SubmitError::Reverted(format!("{decoded:?}"));
    }
    match e {
        alloy::contract::Error::TransportError(t) => SubmitError::Rpc(t.to_string()),
        other => SubmitError::Reverted(other.to_string()),
    }
}

/// A feed's on-chain state from the hub's read functions' fields.
fn on_chain(price: i128, round: u32, observed_at: u32, updated_at: u32) -> OnChain {
    OnChain {
        price,
        round,
        observed_at: u64::from(observed_at),
        updated_at: u64::from(updated_at),
    }
}

/// Longest wait for one JSON-RPC call: a node that hangs (paused, overloaded)
/// fails the call instead of stalling the chain's tasks, or the verifications
/// other chains share with it.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider over HTTP whose calls give up after [`RPC_TIMEOUT`].
pub fn http_provider(url: alloy::transports::http::reqwest::Url) -> DynProvider {
    let client = alloy::transports::http::reqwest::Client::builder()
        .timeout(RPC_TIMEOUT)
        .build()
        .unwrap_or_default();
    let http = alloy::transports::http::Http::with_client(client, url);
    ProviderBuilder::new()
        .connect_client(alloy::rpc::client::RpcClient::new(http, false))
        .erased()
}

/// Parses a hex private key from the config, naming `key` when it is not one.
pub fn parse_key(text: &str, key: &'static str) -> Result<PrivateKeySigner, SubmitError> {
    text.trim().parse().map_err(|_| SubmitError::Config {
        key,
        message: "not a hex secp256k1 private key".into(),
    })
}

impl Submitter {
    /// Connects to `chain` (its first RPC URL that answers), checks the chain
    /// id and that `signer` (this node's report key) is an authorized signer
    /// of the hub. `sender_key` sends this node's transactions (the same
    /// account on every chain, with a nonce per chain).
    pub async fn connect(
        chain: &ChainConfig,
        sender_key: &Secret,
        signer: Address,
    ) -> Result<Self, SubmitError> {
        let hub_address = chain.require_hub().map_err(|e| SubmitError::Config {
            key: "chains",
            message: e.to_string(),
        })?;
        if sender_key.is_empty() {
            return Err(SubmitError::Config {
                key: "aggregator.sender_key",
                message: "is required (the account that sends this node's transactions)".into(),
            });
        }
        let sender = parse_key(sender_key.expose(), "aggregator.sender_key")?;
        let sender_address = sender.address();
        let wallet = EthereumWallet::from(sender);
        let mut endpoints = Vec::with_capacity(chain.rpc_urls.len());
        for url in &chain.rpc_urls {
            let parsed = url.trim().parse().map_err(|_| SubmitError::Config {
                key: "chains.rpc_urls",
                message: format!("{url} is not a URL"),
            })?;
            endpoints.push((url.trim().to_owned(), http_provider(parsed)));
        }
        let submitter = Self {
            endpoints: Arc::new(endpoints),
            active: Arc::new(AtomicUsize::new(0)),
            wallet,
            sender: sender_address,
            chain_id: chain.chain_id,
            hub_address,
        };
        // The first endpoint that answers, checked to serve the chain.
        let mut last_error = None;
        let mut found = false;
        for i in 0..submitter.endpoints.len() {
            match submitter.check_endpoint(i).await {
                Ok(()) => {
                    submitter.active.store(i, Ordering::Release);
                    found = true;
                    break;
                }
                Err(e @ SubmitError::Config { .. }) => return Err(e),
                Err(e) => {
                    warn!(chain = %chain.name, url = %submitter.endpoints[i].0, error = %e,
                          "RPC endpoint does not answer; trying the next");
                    last_error = Some(e);
                }
            }
        }
        if !found {
            return Err(last_error.unwrap_or_else(|| SubmitError::Rpc("no RPC URL".into())));
        }
        let (signers, threshold) = submitter.signer_set().await?;
        if !signers.contains(&signer) {
            return Err(SubmitError::Config {
                key: "aggregator.signer_key",
                message: format!(
                    "{signer} is not an authorized signer of hub {hub_address} on chain {}",
                    chain.name
                ),
            });
        }
        info!(chain = %chain.name, %hub_address, chain_id = chain.chain_id, url = %submitter.endpoint(),
              sender = %sender_address, %signer, signers = signers.len(), threshold, "connected to chain");
        Ok(submitter)
    }

    /// Whether endpoint `i` answers and serves this chain (a `Config` error
    /// when it serves another one).
    async fn check_endpoint(&self, i: usize) -> Result<(), SubmitError> {
        let (url, provider) = &self.endpoints[i];
        let id = provider
            .get_chain_id()
            .await
            .map_err(|e| SubmitError::Rpc(format!("eth_chainId at {url}: {e}")))?;
        if id != self.chain_id {
            return Err(SubmitError::Config {
                key: "chains.chain_id",
                message: format!("expected chain {}, {url} serves chain {id}", self.chain_id),
            });
        }
        Ok(())
    }

    /// The endpoint in use: its URL and provider.
    fn active(&self) -> &(String, DynProvider) {
        &self.endpoints[self.active.load(Ordering::Acquire) % self.endpoints.len()]
    }

    /// The provider in use.
    fn provider(&self) -> &DynProvider {
        &self.active().1
    }

    /// The hub, through the provider in use.
    fn hub(&self) -> OracleHub::OracleHubInstance<DynProvider> {
        OracleHub::new(self.hub_address, self.provider().clone())
    }

    /// The URL of the endpoint in use.
    pub fn endpoint(&self) -> &str {
        &self.active().0
    }

    /// Moves to the next configured endpoint that answers and serves this
    /// chain, when the one in use stopped answering; `true` when it moved.
    /// One endpoint, or none other answering: stays.
    pub async fn fail_over(&self) -> bool {
        let n = self.endpoints.len();
        let current = self.active.load(Ordering::Acquire) % n;
        for step in 1..n {
            let i = (current + step) % n;
            match self.check_endpoint(i).await {
                Ok(()) => {
                    self.active.store(i, Ordering::Release);
                    warn!(from = %self.endpoints[current].0, to = %self.endpoints[i].0,
                          "RPC endpoint stopped answering: using the next one");
                    return true;
                }
                Err(e) => {
                    debug!(url = %self.endpoints[i].0, error = %e, "fallback endpoint not usable")
                }
            }
        }
        false
    }

    /// The hub's authorized signers (ascending) and its threshold.
    pub async fn signer_set(&self) -> Result<(Vec<Address>, usize), SubmitError> {
        let signers = self.hub().signers().call().await.map_err(contract_error)?;
        let threshold = self
            .hub()
            .threshold()
            .call()
            .await
            .map_err(contract_error)?;
        Ok((signers, usize::from(threshold)))
    }

    /// The hub's address.
    pub fn hub_address(&self) -> Address {
        self.hub_address
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// What the hub holds for the feed at `index`.
    pub async fn read_index(&self, index: u16) -> Result<OnChain, SubmitError> {
        let r = self
            .hub()
            .latestByIndex(index)
            .call()
            .await
            .map_err(contract_error)?;
        Ok(on_chain(r.price, r.roundId, r.observedAt, r.updatedAt))
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, SubmitError> {
        self.provider()
            .get_block_number()
            .await
            .map_err(|e| SubmitError::Rpc(format!("eth_blockNumber: {e}")))
    }

    /// The feed indexes updated (`PriceUpdated`) in blocks `from..=to`.
    pub async fn updated_between(&self, from: u64, to: u64) -> Result<Vec<u16>, SubmitError> {
        use alloy::sol_types::SolEvent;
        let filter = alloy::rpc::types::Filter::new()
            .address(self.hub_address)
            .event_signature(OracleHub::PriceUpdated::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let logs = self
            .provider()
            .get_logs(&filter)
            .await
            .map_err(|e| SubmitError::Rpc(format!("eth_getLogs: {e}")))?;
        let mut indexes: Vec<u16> = logs
            .iter()
            .filter_map(|l| l.log_decode::<OracleHub::PriceUpdated>().ok())
            .map(|l| l.inner.data.feedIndex)
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        Ok(indexes)
    }

    /// What the hub holds for a pair.
    pub async fn read(&self, pair: &Pair) -> Result<OnChain, SubmitError> {
        let r = self
            .hub()
            .latest(pair.feed_id())
            .call()
            .await
            .map_err(contract_error)?;
        Ok(on_chain(r.price, r.roundId, r.observedAt, r.updatedAt))
    }

    /// The feed's registration on the hub (index, decimals, bounds).
    pub async fn feed(&self, pair: &Pair) -> Result<FeedOnHub, SubmitError> {
        let info = self
            .hub()
            .feedInfo(pair.feed_id())
            .call()
            .await
            .map_err(contract_error)?;
        let bound = |v: alloy::primitives::I256| i128::try_from(v).unwrap_or(i128::MAX);
        Ok(FeedOnHub {
            index: info.index,
            decimals: info.decimals,
            min_price: bound(info.minPrice),
            max_price: bound(info.maxPrice),
            max_report_age: info.maxReportAge,
        })
    }

    /// The sending account.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The sender's next nonce as the node sees it (pending transactions included).
    pub async fn pending_nonce(&self) -> Result<u64, SubmitError> {
        self.provider()
            .get_transaction_count(self.sender)
            .pending()
            .await
            .map_err(|e| SubmitError::Rpc(format!("eth_getTransactionCount: {e}")))
    }

    /// The sender's nonce counting mined transactions only.
    pub async fn mined_nonce(&self) -> Result<u64, SubmitError> {
        self.provider()
            .get_transaction_count(self.sender)
            .latest()
            .await
            .map_err(|e| SubmitError::Rpc(format!("eth_getTransactionCount: {e}")))
    }

    /// Current fee estimate.
    pub async fn fees(&self) -> Result<Fees, SubmitError> {
        let f = self
            .provider()
            .estimate_eip1559_fees()
            .await
            .map_err(|e| SubmitError::Rpc(format!("fee estimate: {e}")))?;
        Ok(Fees {
            max_fee: f.max_fee_per_gas,
            priority: f.max_priority_fee_per_gas,
        })
    }

    /// The sender's balance, wei.
    pub async fn balance(&self) -> Result<alloy::primitives::U256, SubmitError> {
        self.provider()
            .get_balance(self.sender)
            .await
            .map_err(|e| SubmitError::Rpc(format!("eth_getBalance: {e}")))
    }

    /// Signs the transaction carrying `reports` and the quorum's `signatures`
    /// (ascending by signer) with the given nonce and fees. Gas is estimated,
    /// which fails with the decoded revert when the batch would revert.
    pub async fn sign_tx(
        &self,
        reports: &[Report],
        signatures: &[HubSignature],
        nonce: u64,
        fees: Fees,
    ) -> Result<SignedTx, SubmitError> {
        use alloy::eips::eip2718::Encodable2718;
        use alloy::network::{NetworkTransactionBuilder, TransactionBuilder};
        let mut tx = self
            .hub()
            .submit(pack_reports(reports), pack_signatures(signatures))
            .into_transaction_request();
        tx.set_from(self.sender);
        tx.set_nonce(nonce);
        tx.set_chain_id(self.chain_id);
        tx.set_max_fee_per_gas(fees.max_fee);
        tx.set_max_priority_fee_per_gas(fees.priority);
        let gas = self
            .provider()
            .estimate_gas(tx.clone())
            .await
            .map_err(|e| contract_error(alloy::contract::Error::TransportError(e)))?;
        tx.set_gas_limit(gas + gas / 5);
        let envelope = <alloy::rpc::types::TransactionRequest as NetworkTransactionBuilder<
            alloy::network::Ethereum,
        >>::build(tx, &self.wallet)
        .await
        .map_err(|e| SubmitError::Rpc(format!("signing the transaction: {e}")))?;
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718(),
        })
    }

    /// Broadcasts a signed transaction. "Already known" is not an error.
    pub async fn broadcast(&self, raw: &[u8]) -> Result<(), SubmitError> {
        match self.provider().send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().to_lowercase().contains("already known") => Ok(()),
            Err(e) => Err(SubmitError::Rpc(format!("eth_sendRawTransaction: {e}"))),
        }
    }

    /// The receipt of whichever of `hashes` was mined, if any.
    pub async fn find_receipt(
        &self,
        hashes: &[B256],
    ) -> Result<Option<alloy::rpc::types::TransactionReceipt>, SubmitError> {
        for hash in hashes {
            let r = self
                .provider()
                .get_transaction_receipt(*hash)
                .await
                .map_err(|e| SubmitError::Rpc(format!("eth_getTransactionReceipt: {e}")))?;
            if r.is_some() {
                return Ok(r);
            }
        }
        Ok(None)
    }

    /// The reports the hub skipped in a receipt: `(feed index, round, reason)`.
    pub fn skipped(receipt: &alloy::rpc::types::TransactionReceipt) -> Vec<(u16, u32, SkipReason)> {
        receipt
            .logs()
            .iter()
            .filter_map(|log| log.log_decode::<OracleHub::ReportRejected>().ok())
            .map(|log| {
                let e = log.inner.data;
                (
                    e.feedIndex,
                    e.roundId,
                    oracle_common::chain::skip_reason(e.reason.0),
                )
            })
            .collect()
    }
}
