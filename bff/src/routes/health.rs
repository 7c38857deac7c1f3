//! `GET /healthz`: the process is alive and serving.

use axum::Json;
use serde_json::{Value, json};

/// Liveness: always 200 while the server runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
