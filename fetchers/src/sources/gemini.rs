//! Gemini: `GET /v1/pubticker/btcusd`.
//!
//! Success: `{"bid":"…","ask":"…","volume":{"BTC":"…","USD":"…","timestamp":1763700000000},"last":"…"}`
//! (strings, but the volume's `timestamp` is a number in ms and the volume keys
//! depend on the pair). Errors: `{"result":"error","reason":"InvalidSymbol","message":…}`
//! with HTTP 400; maintenance comes as `reason` `System` or `Maintenance`.

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, status_error};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Ticker<'a> {
    last: &'a str,
    bid: Option<&'a str>,
    ask: Option<&'a str>,
}

#[derive(Deserialize)]
struct ApiError<'a> {
    reason: &'a str,
    message: Option<&'a str>,
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    if let Ok(e) = serde_json::from_slice::<ApiError<'_>>(r.body) {
        let message = format!("{}: {}", e.reason, e.message.unwrap_or(""));
        return Err(match e.reason {
            "InvalidSymbol" => FetchError::UnknownSymbol {
                symbol: m.symbol.to_owned(),
                message,
            },
            "System" | "Maintenance" => FetchError::Unavailable {
                status: r.status,
                message,
            },
            "RateLimit" | "RateLimited" => FetchError::RateLimited {
                status: r.status,
                retry_after: r.retry_after,
                message,
            },
            _ => FetchError::from_status(r.status.max(400), message, r.retry_after),
        });
    }
    if r.status != 200 {
        return Err(status_error(r));
    }
    let t: Ticker<'_> = json(r.body)?;
    Ok(Quote {
        price: decimal("last", t.last)?,
        bid: t.bid.map(|b| decimal("bid", b)).transpose()?,
        ask: t.ask.map(|a| decimal("ask", a)).transpose()?,
        // volume.timestamp is the time of the volume window, not of the price.
        observed_at_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_ticker() {
        let q = parse(
            &Market::of("btcusd"),
            &resp(200, include_str!("../../fixtures/gemini/pubticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.45");
        assert_eq!(q.ask.unwrap().to_string(), "97125.00");
    }

    #[test]
    fn errors_are_classified() {
        let e = parse(
            &Market::of("btcxyz"),
            &resp(
                400,
                include_str!("../../fixtures/gemini/invalid_symbol.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("not a valid symbol"))
        );
        let e = parse(
            &Market::of("btcusd"),
            &resp(503, include_str!("../../fixtures/gemini/maintenance.json")),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::Unavailable { .. }) && e.is_transient());
        assert!(matches!(
            parse(&Market::of("btcusd"), &resp(200, r#"{"bid":"1"}"#)),
            Err(FetchError::Malformed(_))
        ));
    }
}
