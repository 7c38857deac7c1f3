//! Gemini: `GET /v1/pubticker/btcusd`.
//!
//! Success: `{"bid":"…","ask":"…","volume":{"BTC":"…","USD":"…","timestamp":1763700000000},"last":"…"}`
//! (strings, but the volume's `timestamp` is a number in ms and the volume keys
//! depend on the pair). Errors: `{"result":"error","reason":"InvalidSymbol","message":…}`
//! with HTTP 400; maintenance comes as `reason` `System` or `Maintenance`.
//!
//! Every pair: `GET /v1/pricefeed` answers
//! `[{"pair":"BTCUSD","price":"97123.45","percentChange24h":"0.0133"},…]`:
//! the pair upper case, the last price only (no bid, ask or time).

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, pick, price_only, status_error};
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

#[derive(Deserialize)]
struct Price<'a> {
    pair: &'a str,
    price: &'a str,
}

/// The error body, if the answer is one, for `symbol`.
fn api_error(symbol: &str, r: &Response<'_>) -> Option<FetchError> {
    let e = serde_json::from_slice::<ApiError<'_>>(r.body).ok()?;
    let message = format!("{}: {}", e.reason, e.message.unwrap_or(""));
    Some(match e.reason {
        "InvalidSymbol" => FetchError::UnknownSymbol {
            symbol: symbol.to_owned(),
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
    })
}

/// Parses the price feed (every pair).
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    if let Some(e) = api_error("pricefeed", r) {
        return Err(e);
    }
    if r.status != 200 {
        return Err(status_error(r));
    }
    let prices: Vec<Price<'_>> = json(r.body)?;
    let by_pair: HashMap<&str, &str> = prices.iter().map(|p| (p.pair, p.price)).collect();
    Ok(pick(
        markets,
        &by_pair,
        |m| m.symbol.to_ascii_uppercase(),
        |_, price| price_only(price),
    ))
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    if let Some(e) = api_error(m.symbol, r) {
        return Err(e);
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

    #[test]
    fn parses_recorded_price_feed() {
        let ms = [
            Market::of("ethusd"),
            Market::of("btcusd"),
            Market::of("nopeusd"),
        ];
        let out = parse_batch(
            &ms,
            &resp(200, include_str!("../../fixtures/gemini/pricefeed_ok.json")),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.11");
        let btc = out[1].as_ref().unwrap();
        assert_eq!(btc.price.to_string(), "97123.45");
        assert_eq!((btc.bid, btc.ask, btc.observed_at_ms), (None, None, None));
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "nopeusd")
        );
    }

    #[test]
    fn price_feed_errors() {
        let ms = [Market::of("btcusd"), Market::of("ethusd")];
        let e = parse_batch(
            &ms,
            &resp(503, include_str!("../../fixtures/gemini/maintenance.json")),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::Unavailable { .. }));
        assert!(matches!(
            parse_batch(&ms, &resp(200, r#"[{"pair":"BTCUSD"}]"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(parse_batch(&ms, &resp(502, "")).unwrap_err().is_transient());
    }
}
