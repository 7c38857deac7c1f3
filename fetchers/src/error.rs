//! Why a fetch failed, and whether trying again can help.

use std::time::Duration;

/// A failed fetch of one symbol from one source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No answer within the per-request timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The source asked us to slow down (HTTP 429, or Binance's 418 ban).
    #[error("rate limited (HTTP {status}){}: {message}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// HTTP status.
        status: u16,
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
        /// The body's error text.
        message: String,
    },
    /// The source is down or in maintenance (5xx, or an error body saying so).
    #[error("source unavailable (HTTP {status}): {message}")]
    Unavailable {
        /// HTTP status (200 when the error came in the body).
        status: u16,
        /// The body's error text.
        message: String,
    },
    /// The source does not know the symbol.
    #[error("unknown symbol {symbol}: {message}")]
    UnknownSymbol {
        /// The source's symbol we asked for.
        symbol: String,
        /// The body's error text.
        message: String,
    },
    /// Any other refusal (4xx) with the body's error text.
    #[error("rejected (HTTP {status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The body's error text.
        message: String,
    },
    /// The body is not in the source's documented format.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Not sent: the source's request budget (or a pause it asked for) allows
    /// no request before the cycle's deadline.
    #[error("not sent: request budget exhausted until {0:?} from now")]
    Throttled(Duration),
    /// Not sent: the source's circuit breaker is open.
    #[error("not sent: circuit breaker open")]
    CircuitOpen,
    /// The source dates its data later than this host's clock allows: its
    /// clock is wrong (or ours). Never published: one source dated ahead must
    /// not hold a feed hostage.
    #[error("refused: the source dates its data {ahead_ms} ms in the future")]
    FutureTimestamp {
        /// How far ahead of the fetch, ms.
        ahead_ms: u64,
    },
}

impl FetchError {
    /// Whether a retry may succeed: timeouts, connection errors, 5xx and rate
    /// limits are transient; unknown symbols, other 4xx and malformed bodies are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_)
                | Self::Connect(_)
                | Self::RateLimited { .. }
                | Self::Unavailable { .. }
        )
    }

    /// Whether the source was reached and answered like a working API (for the
    /// circuit breaker): only availability failures count against it.
    /// A malformed answer counts too: a broken API is down for our purposes.
    pub fn source_is_down(&self) -> bool {
        self.is_transient() || matches!(self, Self::Malformed(_))
    }

    /// The delay the source asked for before the next request.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::UnknownSymbol { .. } => "unknown_symbol",
            Self::Rejected { .. } => "rejected",
            Self::Malformed(_) => "malformed",
            Self::Throttled(_) => "throttled",
            Self::CircuitOpen => "circuit_open",
            Self::FutureTimestamp { .. } => "future_timestamp",
        }
    }

    /// Classifies an HTTP error status whose body the connector could not explain.
    pub fn from_status(status: u16, message: String, retry_after: Option<Duration>) -> Self {
        match status {
            429 | 418 => Self::RateLimited {
                status,
                retry_after,
                message,
            },
            500..=599 => Self::Unavailable { status, message },
            _ => Self::Rejected { status, message },
        }
    }
}

/// Shortens a body for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= MAX {
        text.to_owned()
    } else {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    }
}
