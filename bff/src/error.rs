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
    /// The feed exists but has no on-chain value yet.
    #[error("feed {0} has no on-chain value yet")]
    NoData(String),
    /// The chain could not be read.
    #[error("chain read failed: {0}")]
    Chain(String),
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
            ApiError::NoData(_) => "no_data",
            ApiError::Chain(_) => "chain_unavailable",
            ApiError::NotFound => "not_found",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidPair(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownPair(_) | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::NoData(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Chain(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}
