//! Who signs reports. The submitter asks a [`ReportSigner`] for signatures
//! over a batch digest; today [`LocalSigners`] signs with the configured keys
//! in this process, and a remote quorum (signer services each holding one key,
//! reached over NATS or HTTP) can implement the same trait later without
//! touching the submission code.

use std::future::Future;
use std::pin::Pin;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use oracle_common::chain::{HubSignature, SignError, sign_digest};

/// A boxed future, so that signers can be used as trait objects.
pub type SignFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<HubSignature>, SignError>> + Send + 'a>>;

/// Produces the signatures a batch needs.
pub trait ReportSigner: std::fmt::Debug + Send + Sync {
    /// The addresses that sign (each must be an authorized signer of the hub).
    fn addresses(&self) -> Vec<Address>;

    /// Signatures over `digest`, ordered by ascending signer address.
    fn sign(&self, digest: B256) -> SignFuture<'_>;
}

/// The configured keys, signing in this process.
#[derive(Debug, Clone)]
pub struct LocalSigners {
    keys: Vec<PrivateKeySigner>,
}

impl LocalSigners {
    /// Signers for these keys.
    pub fn new(keys: Vec<PrivateKeySigner>) -> Self {
        Self { keys }
    }
}

impl ReportSigner for LocalSigners {
    fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(|k| k.address()).collect()
    }

    fn sign(&self, digest: B256) -> SignFuture<'_> {
        Box::pin(async move { sign_digest(digest, &self.keys) })
    }
}
