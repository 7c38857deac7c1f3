//! Configuration: one TOML file per environment (`config/default.toml` for the
//! real exchanges, `config/dev.toml` for the local simulator), every key
//! overridable by an environment variable ([`env`]), checked at start-up.
//! Secrets are never printed and may come from files ([`secret`]).
//!
//! Each section lives in its own module with its defaults and its own
//! `validate`; [`Config::validate`] runs them all, plus the rules that span
//! sections (feeds naming configured sources). Every error names the key it
//! is about, e.g. `config key feeds[0].heartbeat: invalid value: …`.

mod aggregator;
pub mod bff;
mod chain;
mod deploy;
pub mod env;
mod feeds;
mod fetchers;
mod nats;
pub mod secret;
mod sources;
mod telemetry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use aggregator::AggregatorConfig;
pub use bff::BffConfig;
pub use chain::{ChainConfig, FeedOverride};
pub use deploy::DeployConfig;
pub use env::ENV_PREFIX;
pub use feeds::{FeedConfig, MAX_REPORT_AGE_LIMIT};
pub use fetchers::FetchersConfig;
pub use nats::NatsConfig;
pub use secret::Secret;
pub use sources::{RateLimit, SourceConfig, SymbolSpec};
pub use telemetry::{LogFormat, TelemetryConfig};

use crate::{Pair, SourceId};

/// A configuration that could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// An environment override does not fit the file's structure.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A key has a wrong type or value.
    #[error("config key {key}: {message}")]
    Key {
        /// Dotted path of the key, e.g. `feeds[0].heartbeat`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The whole configuration. Each service validates the parts it uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// NATS connection and streams.
    pub nats: NatsConfig,
    /// The chains served, each with its hub; the first is the default one.
    pub chains: Vec<ChainConfig>,
    /// The feeds the oracle serves.
    pub feeds: Vec<FeedConfig>,
    /// The price sources, by id.
    pub sources: BTreeMap<SourceId, SourceConfig>,
    /// The fetchers service.
    pub fetchers: FetchersConfig,
    /// The aggregator service.
    pub aggregator: AggregatorConfig,
    /// The client API.
    pub bff: BffConfig,
    /// Deploying the contracts (`oracle-deploy`, the local stack).
    pub deploy: DeployConfig,
}
/// The `--config` option every service binary takes (`ORACLE_CONFIG` in the
/// environment works too); flatten it into a clap parser.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Configuration file (TOML); keys can be overridden by ORACLE__… variables.
    #[arg(
        long = "config",
        value_name = "CONFIG",
        env = "ORACLE_CONFIG",
        default_value = "config/default.toml",
        global = true
    )]
    pub path: PathBuf,
}

/// A configuration file that could not be loaded, with its path.
#[derive(Debug, thiserror::Error)]
#[error("loading {}", path.display())]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: ConfigError,
}

impl ConfigArg {
    /// Loads the file with the environment's overrides.
    pub fn load(&self) -> Result<Config, LoadError> {
        Config::load(&self.path).map_err(|source| LoadError {
            path: self.path.clone(),
            source,
        })
    }
}

impl Config {
    /// Loads `path`, applies `ORACLE__…` overrides from the process
    /// environment, and checks every section.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Config::load`], with the environment given explicitly.
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_with_env(&text, path, env)
    }

    /// Parses TOML text (`origin` names it in errors), applies overrides, checks.
    pub fn from_toml_with_env(
        text: &str,
        origin: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let root: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_owned(),
            message: e.message().to_owned(),
        })?;
        let config: Config = env::deserialize(root, env)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every section, and that feeds name configured sources once each.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.nats.validate()?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, feed) in self.feeds.iter().enumerate() {
            if !seen.insert(feed.pair.clone()) {
                return Err(ConfigError::key(
                    format!("feeds[{i}].pair"),
                    format!("{} is configured twice", feed.pair),
                ));
            }
            feed.validate(i, &self.sources)?;
        }
        for (id, source) in &self.sources {
            source.validate(id)?;
        }
        chain::validate_all(&self.chains, &self.feeds)?;
        self.fetchers.validate()?;
        self.aggregator.validate()?;
        self.bff.validate()?;
        Ok(())
    }

    /// Checks what the aggregator and the bff need of `[[chains]]`: at least
    /// one chain, each with its hub's address; the chains.
    pub fn require_chains(&self) -> Result<&[ChainConfig], ConfigError> {
        if self.chains.is_empty() {
            return Err(ConfigError::key(
                "chains",
                "at least one [[chains]] entry is required",
            ));
        }
        for chain in &self.chains {
            chain.require_hub()?;
        }
        Ok(&self.chains)
    }

    /// The chain named `name`.
    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The feed for a pair, if configured.
    pub fn feed(&self, pair: &Pair) -> Option<&FeedConfig> {
        self.feeds.iter().find(|f| &f.pair == pair)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SAMPLE: &str = r#"
[nats]
urls = ["nats://127.0.0.1:4222"]

[[chains]]
name = "local"
chain_id = 31337
rpc_urls = ["http://127.0.0.1:8545"]

[sources.kraken]
base_url = "https://api.kraken.com"
symbols = { "BTC/USD" = "XBTUSD" }

[sources.coinbase]
base_url = "https://api.exchange.coinbase.com"
symbols = { "BTC/USD" = "BTC-USD" }

[[feeds]]
pair = "BTC/USD"
sources = ["kraken", "coinbase"]
heartbeat = "1h"
min_price = "1000"
max_price = "10000000"

[aggregator]
signer_key = "0x01"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml_with_env(
            text,
            Path::new("test.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn loads_with_defaults() {
        let c = load(SAMPLE, &[]).unwrap();
        assert_eq!(c.feeds[0].decimals, 8);
        assert_eq!(c.feeds[0].heartbeat, Duration::from_secs(3600));
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.fetchers.poll_interval, Duration::from_secs(1));
    }

    #[test]
    fn env_overrides_nested_keys_and_list_items() {
        let c = load(
            SAMPLE,
            &[
                ("ORACLE__CHAINS__0__RPC_URLS", "http://10.0.0.1:8545"),
                ("ORACLE__FEEDS__0__HEARTBEAT", "30s"),
                ("ORACLE__FEEDS__0__MIN_SOURCES", "1"),
                ("ORACLE__FETCHERS__ID", "7"),
                ("ORACLE__SOURCES__KRAKEN__SYMBOLS__BTC_USD", "XXBTZUSD"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.chains[0].rpc_urls, ["http://10.0.0.1:8545"]);
        assert_eq!(c.feeds[0].heartbeat, Duration::from_secs(30));
        assert_eq!(c.feeds[0].min_sources, 1);
        assert_eq!(c.fetchers.id, "7");
        let pair: Pair = "BTC/USD".parse().unwrap();
        assert_eq!(
            c.sources[&"kraken".parse().unwrap()].symbols[&pair].symbol(),
            "XXBTZUSD"
        );
    }

    #[test]
    fn nats_servers_are_a_list_from_file_or_environment() {
        let c = load(SAMPLE, &[]).unwrap();
        assert_eq!(c.nats.urls, ["nats://127.0.0.1:4222"]);
        let three = ["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"];
        let c = load(
            SAMPLE,
            &[(
                "ORACLE__NATS__URLS",
                r#"["nats://n1:4222", "nats://n2:4222", "nats://n3:4222"]"#,
            )],
        )
        .unwrap();
        assert_eq!(c.nats.urls, three);
        let c = load(
            SAMPLE,
            &[
                (
                    "ORACLE__NATS__URLS",
                    "nats://n1:4222, nats://n2:4222,nats://n3:4222",
                ),
                ("ORACLE__NATS__REPLICAS", "3"),
            ],
        )
        .unwrap();
        assert_eq!(c.nats.urls, three);
        assert_eq!(c.nats.replicas, 3);
        assert_eq!(
            c.nats.describe(),
            "nats://n1:4222,nats://n2:4222,nats://n3:4222"
        );

        let err = load(SAMPLE, &[("ORACLE__NATS__URLS", "[]")]).unwrap_err();
        assert!(err.to_string().contains("nats.urls"), "{err}");
        let err = load(SAMPLE, &[("ORACLE__NATS__URLS", "nats://a:4222,http://b")]).unwrap_err();
        assert!(err.to_string().contains("nats.urls[1]"), "{err}");
        let err = load(SAMPLE, &[("ORACLE__NATS__REPLICAS", "7")]).unwrap_err();
        assert!(err.to_string().contains("nats.replicas"), "{err}");
        // The single-server key of earlier versions is refused by name.
        let err = load(
            &SAMPLE.replace(
                "urls = [\"nats://127.0.0.1:4222\"]",
                "url = \"nats://x:4222\"",
            ),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("url"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__HEARTBEAT", "soon")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].heartbeat"), "{err}");

        let err = load(
            &SAMPLE.replace("heartbeat = \"1h\"", "hartbeat = \"1h\""),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("hartbeat"), "{err}");

        let err = load(
            &SAMPLE.replace("\"kraken\", \"coinbase\"", "\"kraken\", \"bitstamp\""),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("feeds[0].sources"), "{err}");
        assert!(err.to_string().contains("bitstamp"), "{err}");

        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MIN_SOURCES", "3")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].min_sources"), "{err}");

        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MIN_SOURCES", "many")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].min_sources"), "{err}");
        assert!(
            err.to_string().contains("ORACLE__FEEDS__0__MIN_SOURCES"),
            "{err}"
        );

        let err = load(SAMPLE, &[("ORACLE__FEEDS__5__HEARTBEAT", "1s")]).unwrap_err();
        assert!(err.to_string().contains("past the list"), "{err}");

        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MAX_PRICE", "10000001")]).unwrap_err();
        assert!(err.to_string().contains("feeds[0].max_price"), "{err}");
        let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MIN_PRICE", "20000000")]).unwrap_err();
        assert!(err.to_string().contains("min_price < max_price"), "{err}");

        let err = load("[nats\nurl=1", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn fallbacks_and_proxy_markets() {
        let text = SAMPLE.replace(
            "sources = [\"kraken\", \"coinbase\"]",
            "sources = [\"kraken\"]\nfallbacks = [\"coinbase\"]",
        ).replace(
            "symbols = { \"BTC/USD\" = \"BTC-USD\" }",
            "symbols = { \"BTC/USD\" = { symbol = \"BTC-USDT\", quote = \"USDT\" } }\nrate_limit = { requests = 5, per = \"1s\" }",
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.feeds[0].fallbacks.len(), 1);
        let pair: Pair = "BTC/USD".parse().unwrap();
        let cb = &c.sources[&"coinbase".parse().unwrap()];
        assert_eq!(cb.symbols[&pair].symbol(), "BTC-USDT");
        assert_eq!(cb.symbols[&pair].proxy_quote(), Some("USDT"));
        assert_eq!(cb.rate_limit.unwrap().requests, 5);

        let twice = SAMPLE.replace(
            "heartbeat = \"1h\"",
            "heartbeat = \"1h\"\nfallbacks = [\"kraken\"]",
        );
        let err = load(&twice, &[]).unwrap_err();
        assert!(
            err.to_string().contains("feeds[0].fallbacks")
                && err.to_string().contains("named twice"),
            "{err}"
        );
        let zero = text.replace("requests = 5", "requests = 0");
        let err = load(&zero, &[]).unwrap_err();
        assert!(
            err.to_string().contains("sources.coinbase.rate_limit"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_and_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("oracle-secret-{}", std::process::id()));
        std::fs::write(&dir, "0xabc\n").unwrap();
        let c = load(
            SAMPLE,
            &[(
                "ORACLE__AGGREGATOR__SENDER_KEY",
                &format!("file:{}", dir.display()),
            )],
        )
        .unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(c.aggregator.sender_key.expose(), "0xabc");
        let shown = format!("{:?}", c.aggregator);
        assert!(
            !shown.contains("0xabc") && !shown.contains("0x01"),
            "{shown}"
        );
    }

    #[test]
    fn a_list_of_signer_keys_is_refused_by_name_without_showing_them() {
        let text = SAMPLE.replace(
            "signer_key = \"0x01\"",
            "signer_keys = [\"0xaaaa\", \"0xbbbb\"]",
        );
        let err = load(&text, &[]).unwrap_err().to_string();
        assert!(err.contains("aggregator.signer_keys"), "{err}");
        assert!(err.contains("exactly one signer key"), "{err}");
        assert!(!err.contains("0xaaaa") && !err.contains("0xbbbb"), "{err}");
        // One key is the way.
        assert_eq!(
            load(SAMPLE, &[]).unwrap().aggregator.signer_key.expose(),
            "0x01"
        );
    }

    #[test]
    fn max_report_age_must_fit_the_hub() {
        let c = load(SAMPLE, &[]).unwrap();
        assert_eq!(c.feeds[0].max_report_age, Duration::from_secs(120));
        for bad in ["0s", "4096s"] {
            let err = load(SAMPLE, &[("ORACLE__FEEDS__0__MAX_REPORT_AGE", bad)]).unwrap_err();
            assert!(err.to_string().contains("feeds[0].max_report_age"), "{err}");
        }
        let ok = load(SAMPLE, &[("ORACLE__FEEDS__0__MAX_REPORT_AGE", "4095s")]).unwrap();
        assert_eq!(ok.feeds[0].max_report_age, Duration::from_secs(4095));
    }

    #[test]
    fn chains_have_their_own_policy_and_are_checked_by_name() {
        let two = format!(
            "{SAMPLE}\n{}",
            r#"
[[chains]]
name = "l2"
chain_id = 10
rpc_urls = ["http://a:8545", "https://b:8545"]
ws_url = "ws://a:8546"
block_time = "2s"
confirmations = 3
fee_bump_percent = 15
[chains.feeds."BTC/USD"]
deviation_bps = 5
heartbeat = "10m"
"#
        );
        let c = load(&two, &[]).unwrap();
        assert_eq!(c.chains.len(), 2);
        assert_eq!(c.chains[0].block_time, Duration::from_secs(12));
        assert_eq!(c.chains[0].confirmations, 0);
        let l2 = c.chain("l2").unwrap();
        assert_eq!((l2.chain_id, l2.confirmations), (10, 3));
        let btc = l2.feed(&c.feeds[0]);
        assert_eq!(btc.deviation_bps, 5);
        assert_eq!(btc.heartbeat, Duration::from_secs(600));
        // The first chain keeps the feed's own policy.
        assert_eq!(
            c.chains[0].feed(&c.feeds[0]).heartbeat,
            c.feeds[0].heartbeat
        );
        // Hubs are required by the services that use them, named by chain.
        let err = c.require_chains().unwrap_err().to_string();
        assert!(err.contains("chains.local.hub_address"), "{err}");
        let c = load(
            &two,
            &[
                (
                    "ORACLE__CHAINS__0__HUB_ADDRESS",
                    "0x00000000000000000000000000000000000000aa",
                ),
                (
                    "ORACLE__CHAINS__1__HUB_ADDRESS",
                    "0x00000000000000000000000000000000000000bb",
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.require_chains().unwrap().len(), 2);

        for (bad, key) in [
            (
                two.replace("name = \"l2\"", "name = \"local\""),
                "chains[1].name",
            ),
            (
                two.replace("chain_id = 10", "chain_id = 31337"),
                "chains[1].chain_id",
            ),
            (
                two.replace("name = \"l2\"", "name = \"L 2\""),
                "chains[1].name",
            ),
            (
                two.replace("\"https://b:8545\"", "\"b:8545\""),
                "chains[1].rpc_urls[1]",
            ),
            (
                two.replace("fee_bump_percent = 15", "fee_bump_percent = 5"),
                "chains[1].fee_bump_percent",
            ),
            (
                two.replace("ws://a:8546", "http://a:8546"),
                "chains[1].ws_url",
            ),
            (
                two.replace("[chains.feeds.\"BTC/USD\"]", "[chains.feeds.\"ETH/USD\"]"),
                "chains[1].feeds.\"ETH/USD\"",
            ),
            (
                two.replace("deviation_bps = 5", "deviation_bps = 0"),
                "chains[1].feeds.\"BTC/USD\".deviation_bps",
            ),
        ] {
            let err = load(&bad, &[]).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        // The single `[chain]` table of earlier versions is refused by name.
        let old = SAMPLE.replace("[[chains]]", "[chain]");
        let err = load(&old, &[]).unwrap_err().to_string();
        assert!(err.contains("chain"), "{err}");
        // No chain at all: fine for the fetchers, not for the chain services.
        let none = SAMPLE.replace("[[chains]]\nname = \"local\"\nchain_id = 31337\nrpc_urls = [\"http://127.0.0.1:8545\"]\n", "");
        let c = load(&none, &[]).unwrap();
        assert!(
            c.require_chains()
                .unwrap_err()
                .to_string()
                .contains("[[chains]]")
        );
    }

    #[test]
    fn shipped_configs_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("config");
        for name in ["default.toml", "dev.toml"] {
            let c = Config::load_with_env(&root.join(name), Vec::new())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!c.feeds.is_empty(), "{name} has no feeds");
        }
    }
}
