//! `GET /openapi.json`: the OpenAPI 3.1 description of this API (kept in
//! `bff/api/openapi.json`; router tests check every documented operation is
//! routed and every error code the API can send is in its `Error` schema).

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// `GET /openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
