//! Query strings: parsed by the handlers themselves so that an unknown,
//! repeated or malformed parameter is a JSON `invalid_parameter` error (axum's
//! own `Query` rejection is plain text).

use std::collections::BTreeMap;

use crate::error::ApiError;

/// A query string split into its parameters, each allowed at most once.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `raw` and rejects any parameter not in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| ApiError::InvalidParameter("query string is not URL-encoded".into()))?;
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::InvalidParameter(format!(
                    "unknown parameter `{key}` (allowed: {})",
                    allowed.join(", ")
                )));
            }
            if map.insert(key.clone(), value).is_some() {
                return Err(ApiError::InvalidParameter(format!(
                    "parameter `{key}` given more than once"
                )));
            }
        }
        Ok(Self(map))
    }

    /// An optional text parameter.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// An optional unsigned integer parameter.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.0
            .get(key)
            .map(|v| {
                // Digits only: Rust's parser would also take a leading `+`.
                let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                digits
                    .then(|| v.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "`{key}` must be a non-negative integer, got `{v}`"
                        ))
                    })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_and_rejects_unknown_repeated_or_malformed() {
        let p = Params::parse(Some("block=12"), &["block"]).unwrap();
        assert_eq!(p.u64("block").unwrap(), Some(12));
        assert_eq!(
            Params::parse(None, &["block"])
                .unwrap()
                .u64("block")
                .unwrap(),
            None
        );
        for bad in ["blok=1", "block=1&block=2"] {
            let e = Params::parse(Some(bad), &["block"]).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad}");
        }
        for bad in [
            "-1",
            "+1",
            "1.5",
            "0x10",
            "",
            " 1",
            "99999999999999999999999",
        ] {
            let q = format!("block={bad}");
            let p = Params::parse(Some(&q), &["block"]).unwrap();
            assert_eq!(
                p.u64("block").unwrap_err().code(),
                "invalid_parameter",
                "{bad}"
            );
        }
    }
}
