//! This node's one report signer. Each aggregator node is run by its own
//! operator with exactly one signer key; it signs a batch digest only after
//! verifying the batch against its own view (see `verify`), and the leader
//! signs its own proposals. [`ReportSigner`] is the seam for keeping the key
//! outside the process (a KMS or HSM) without touching the protocol code.

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use oracle_common::chain::{HubSignature, SignError, sign};

/// A boxed future, so that signers can be used as trait objects.
pub type SignFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HubSignature, SignError>> + Send + 'a>>;

/// Signs batch digests with this node's one key.
pub trait ReportSigner: std::fmt::Debug + Send + Sync {
    /// The signer's address (an authorized signer of the hub).
    fn address(&self) -> Address;

    /// A signature over `digest`.
    fn sign(&self, digest: B256) -> SignFuture<'_>;
}

/// The key, in this process.
#[derive(Debug, Clone)]
pub struct LocalSigner {
    key: PrivateKeySigner,
}

impl LocalSigner {
    /// A signer for this key.
    pub fn new(key: PrivateKeySigner) -> Self {
        Self { key }
    }
}

impl ReportSigner for LocalSigner {
    fn address(&self) -> Address {
        self.key.address()
    }

    fn sign(&self, digest: B256) -> SignFuture<'_> {
        Box::pin(async move { sign(digest, &self.key) })
    }
}
