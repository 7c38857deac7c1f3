//! `GET /` and `GET /assets/{file}`: the live web page, its script and its
//! style sheet, embedded in the binary (no CDN; works offline). The page reads
//! the same public API as any client: `/v1/prices`, `/v1/stream`,
//! `/v1/prices/{pair}/history`, `/v1/reports/{pair}/latest`,
//! `/v1/submissions`, `/v1/status` and `POST /v1/prices/{pair}/refresh`.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const INDEX: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");

/// Only this origin's scripts, styles and API; no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page.
pub async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8", "no-cache")
}

/// `GET /assets/{file}`: `app.js` or `style.css`.
pub async fn assets(Path(file): Path<String>) -> Result<Response, ApiError> {
    match file.as_str() {
        "app.js" => Ok(asset(APP_JS, "text/javascript; charset=utf-8", "no-cache")),
        "style.css" => Ok(asset(STYLE_CSS, "text/css; charset=utf-8", "no-cache")),
        _ => Err(ApiError::NotFound),
    }
}
