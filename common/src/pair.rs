//! Trading pairs (`BTC/USD`): parsing, the subject form (`BTC-USD`) and the
//! on-chain feed id (`keccak256("BTC/USD")`).

use std::fmt;
use std::str::FromStr;

use alloy::primitives::{B256, keccak256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A pair of asset symbols, base and quote, such as `BTC/USD`.
///
/// Symbols are 1 to 16 upper-case ASCII letters or digits. The canonical text
/// form is `BASE/QUOTE`; subjects and URLs use `BASE-QUOTE`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    base: String,
    quote: String,
}

/// Why a text is not a pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid pair {input:?}: expected BASE/QUOTE or BASE-QUOTE with 1-16 upper-case letters or digits each"
)]
pub struct PairError {
    input: String,
}

impl Pair {
    /// Builds a pair from its two symbols, validating them.
    pub fn new(base: &str, quote: &str) -> Result<Self, PairError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 16
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        if ok(base) && ok(quote) {
            Ok(Self {
                base: base.to_owned(),
                quote: quote.to_owned(),
            })
        } else {
            Err(PairError {
                input: format!("{base}/{quote}"),
            })
        }
    }

    /// Parses the subject/URL form `BTC-USD`.
    pub fn from_subject_token(token: &str) -> Result<Self, PairError> {
        let (base, quote) = token.split_once('-').ok_or_else(|| PairError {
            input: token.to_owned(),
        })?;
        Self::new(base, quote).map_err(|_| PairError {
            input: token.to_owned(),
        })
    }

    /// The base asset (`BTC`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The quote asset (`USD`).
    pub fn quote(&self) -> &str {
        &self.quote
    }

    /// The subject and URL form, `BTC-USD`.
    pub fn subject_token(&self) -> String {
        format!("{}-{}", self.base, self.quote)
    }

    /// The on-chain feed id: `keccak256("BTC/USD")`.
    pub fn feed_id(&self) -> B256 {
        keccak256(self.to_string().as_bytes())
    }
}

impl FromStr for Pair {
    type Err = PairError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((base, quote)) => Self::new(base, quote).map_err(|_| PairError {
                input: s.to_owned(),
            }),
            None => Self::from_subject_token(s),
        }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pair({self})")
    }
}

impl Serialize for Pair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let a: Pair = "BTC/USD".parse().unwrap();
        let b: Pair = "BTC-USD".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "BTC/USD");
        assert_eq!(a.subject_token(), "BTC-USD");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "BTC",
            "btc/usd",
            "BTC/",
            "/USD",
            "BTC/USD/EUR",
            "BTC USD",
            "B.C/USD",
            "BTC-USD-X",
        ] {
            assert!(bad.parse::<Pair>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn feed_id_is_keccak_of_canonical_name() {
        let p: Pair = "ETH/USD".parse().unwrap();
        assert_eq!(p.feed_id(), keccak256(b"ETH/USD"));
    }
}
