//! Source identifiers: the lower-case name of a price source (`kraken`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of a price source, lower-case ASCII letters, digits, `_` or `-`
/// (1 to 32 characters). It names the source in config, subjects and metrics.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(String);

/// Why a text is not a source id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid source id {0:?}: 1-32 characters of a-z, 0-9, '_' or '-'")]
pub struct SourceIdError(String);

impl SourceId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SourceId {
    type Err = SourceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(SourceIdError(s.to_owned()))
        }
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceId({})", self.0)
    }
}

impl Serialize for SourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!("kraken".parse::<SourceId>().is_ok());
        assert!("gate-io_2".parse::<SourceId>().is_ok());
        assert!("Kraken".parse::<SourceId>().is_err());
        assert!("".parse::<SourceId>().is_err());
        assert!("a.b".parse::<SourceId>().is_err());
    }
}
