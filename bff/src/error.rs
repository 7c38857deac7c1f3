//! The API's error type: every failure is JSON `{"code": "...", "message": "..."}`
//! with a stable `code` and the matching HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The pair is not of the form `BASE-QUOTE`.
    #[error("{0}")]
    InvalidPair(String),
    /// The pair is well formed but not served.
    #[error("pair {0} is not served by this oracle")]
    UnknownPair(String),
    /// `?chain=` names a chain this service does not serve.
    #[error("{0}")]
    UnknownChain(String),
    /// The feed exists but has no on-chain value (yet, or at that block).
    #[error("feed {0} has no on-chain value yet")]
    NoData(String),
    /// The feed had no on-chain value at the block asked for.
    #[error("feed {pair} had no on-chain value yet at block {block}")]
    NoDataAt {
        /// The feed.
        pair: String,
        /// The block.
        block: u64,
    },
    /// No signed report of the feed is known to this service.
    #[error("no signed report of {0} is known yet")]
    NoReport(String),
    /// This client holds as many streams as it may.
    #[error("at most {0} concurrent streams per client; close one or retry later")]
    TooManyStreams(usize),
    /// The service holds as many streams as it may.
    #[error("the server holds its maximum of {0} streams; retry later")]
    StreamsFull(usize),
    /// A query parameter is unknown, repeated or malformed.
    #[error("{0}")]
    InvalidParameter(String),
    /// The requested block does not exist.
    #[error("block {0} does not exist on this chain")]
    NoSuchBlock(u64),
    /// The hub did not exist yet at the requested block.
    #[error("the oracle contract is not deployed at block {0}")]
    NotDeployed(u64),
    /// The chain could not be read.
    #[error("chain read failed: {0}")]
    Chain(String),
    /// A request body is malformed.
    #[error("{0}")]
    InvalidBody(String),
    /// A submission id is malformed.
    #[error("`{0}` is not a submission id (`{{unix_ms}}-{{8 hex digits}}`)")]
    InvalidSubmissionId(String),
    /// No such submission is known.
    #[error("no submission {0}")]
    UnknownSubmission(String),
    /// The admin endpoints are disabled (no `bff.admin_token`).
    #[error("admin endpoints are disabled: set bff.admin_token")]
    AdminDisabled,
    /// Missing or wrong bearer token.
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    /// The request conflicts with the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// An API key is required.
    #[error("an API key is required in the X-API-Key header")]
    MissingApiKey,
    /// The API key is not one of the configured keys.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// Too many requests from this key or address.
    #[error("rate limit exceeded; retry in {0} s")]
    RateLimited(u64),
    /// The response took longer than the deadline.
    #[error("the request took too long")]
    Timeout,
    /// The body is larger than allowed.
    #[error("the request body is too large")]
    BodyTooLarge,
    /// No aggregator answered on NATS.
    #[error("no aggregator is answering refresh requests")]
    NoAggregator,
    /// NATS is not reachable from this service.
    #[error("the message bus is unavailable: {0}")]
    Bus(String),
    /// The aggregator could not refresh the feed (its stable code).
    #[error("{message}")]
    Refresh {
        /// `no_quorum`, `no_signer_quorum`, `chain_error`, `refresh_failed`
        /// or `retry_failed`.
        code: &'static str,
        /// Its explanation.
        message: String,
    },
    /// The route exists, not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// No route matches.
    #[error("no such endpoint")]
    NotFound,
}

/// The JSON body of an error.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable, machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidPair(_) => "invalid_pair",
            ApiError::UnknownPair(_) => "unknown_pair",
            ApiError::UnknownChain(_) => "unknown_chain",
            ApiError::NoData(_) | ApiError::NoDataAt { .. } => "no_data",
            ApiError::NoReport(_) => "no_report",
            ApiError::TooManyStreams(_) => "too_many_streams",
            ApiError::StreamsFull(_) => "streams_full",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::NoSuchBlock(_) => "no_such_block",
            ApiError::NotDeployed(_) => "not_deployed",
            ApiError::Chain(_) => "chain_unavailable",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::NoAggregator => "no_aggregator",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::AdminDisabled => "admin_disabled",
            ApiError::MissingApiKey => "missing_api_key",
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Timeout => "timeout",
            ApiError::BodyTooLarge => "body_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Conflict(_) => "conflict",
            ApiError::InvalidSubmissionId(_) => "invalid_submission_id",
            ApiError::UnknownSubmission(_) => "unknown_submission",
            ApiError::Bus(_) => "bus_unavailable",
            ApiError::Refresh { code, .. } => code,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidPair(_)
            | ApiError::InvalidParameter(_)
            | ApiError::InvalidBody(_)
            | ApiError::InvalidSubmissionId(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownPair(_)
            | ApiError::UnknownChain(_)
            | ApiError::NotFound
            | ApiError::NoSuchBlock(_)
            | ApiError::UnknownSubmission(_)
            | ApiError::NotDeployed(_)
            | ApiError::NoData(_)
            | ApiError::NoDataAt { .. }
            | ApiError::NoReport(_) => StatusCode::NOT_FOUND,
            ApiError::NoAggregator | ApiError::Bus(_) | ApiError::StreamsFull(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Refresh { code, .. }
                if *code == "no_quorum" || *code == "no_signer_quorum" =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Refresh { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Chain(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::AdminDisabled => StatusCode::FORBIDDEN,
            ApiError::Unauthorized | ApiError::MissingApiKey | ApiError::InvalidApiKey => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::RateLimited(_) | ApiError::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl ApiError {
    /// The error for an aggregator's answer with `code` (the codes both sides
    /// share); codes with no meaning for a client become `otherwise`.
    pub fn from_reply(
        code: oracle_common::wire::ErrorCode,
        message: String,
        pair: Option<&oracle_common::Pair>,
        otherwise: &'static str,
    ) -> Self {
        use oracle_common::wire::ErrorCode;
        match code {
            ErrorCode::UnknownPair => {
                ApiError::UnknownPair(pair.map(|p| p.to_string()).unwrap_or(message))
            }
            ErrorCode::NoQuorum => ApiError::Refresh {
                code: "no_quorum",
                message,
            },
            ErrorCode::NoSignerQuorum => ApiError::Refresh {
                code: "no_signer_quorum",
                message,
            },
            ErrorCode::ChainError => ApiError::Refresh {
                code: "chain_error",
                message,
            },
            ErrorCode::BadRequest | ErrorCode::Unknown => ApiError::Refresh {
                code: otherwise,
                message: format!("{}: {message}", code.as_str()),
            },
        }
    }
}

impl From<oracle_common::pair::PairError> for ApiError {
    fn from(e: oracle_common::pair::PairError) -> Self {
        ApiError::InvalidPair(e.to_string())
    }
}

impl ApiError {
    /// Seconds a client should wait before trying again, sent as
    /// `Retry-After` with refusals that pass with time.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited(secs) => Some(*secs),
            ApiError::TooManyStreams(_) | ApiError::StreamsFull(_) => Some(STREAM_RETRY_AFTER_S),
            ApiError::Chain(_) | ApiError::Timeout => Some(1),
            _ => None,
        }
    }
}

/// `Retry-After` of a refused stream: long enough for a reconnect storm to
/// spread out.
pub const STREAM_RETRY_AFTER_S: u64 = 5;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if self == ApiError::Unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
