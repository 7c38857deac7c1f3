//! Gate.io v4: `GET /api/v4/spot/tickers?currency_pair=BTC_USDT`.
//!
//! Success is an array with one ticker object whose prices are strings
//! (`last`, `highest_bid`, `lowest_ask`); no timestamp. Errors:
//! `{"label":"INVALID_CURRENCY_PAIR","message":"…"}` with HTTP 400;
//! `TOO_MANY_REQUESTS` with HTTP 429; `SERVER_ERROR` with 5xx.
//!
//! Every pair: the same request without `currency_pair` answers an array of
//! every pair's ticker.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, opt_decimal, pick, status_error};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Ticker<'a> {
    currency_pair: &'a str,
    last: &'a str,
    highest_bid: Option<&'a str>,
    lowest_ask: Option<&'a str>,
}

#[derive(Deserialize)]
struct ApiError<'a> {
    label: &'a str,
    #[serde(default)]
    message: &'a str,
}

/// The error of a non-200 answer, naming `symbol`.
fn error(symbol: &str, r: &Response<'_>) -> FetchError {
    match serde_json::from_slice::<ApiError<'_>>(r.body) {
        Ok(e) if e.label == "INVALID_CURRENCY_PAIR" => FetchError::UnknownSymbol {
            symbol: symbol.to_owned(),
            message: format!("{} {}", e.label, e.message),
        },
        Ok(e) => FetchError::from_status(
            r.status,
            format!("{} {}", e.label, e.message),
            r.retry_after,
        ),
        Err(_) => status_error(r),
    }
}

fn quote(t: &Ticker<'_>) -> Result<Quote, FetchError> {
    Ok(Quote {
        price: decimal("last", t.last)?,
        bid: opt_decimal("highest_bid", t.highest_bid)?,
        ask: opt_decimal("lowest_ask", t.lowest_ask)?,
        observed_at_ms: None,
    })
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    if r.status != 200 {
        return Err(error(m.symbol, r));
    }
    let tickers: Vec<Ticker<'_>> = json(r.body)?;
    let t = tickers
        .iter()
        .find(|t| t.currency_pair == m.symbol)
        .ok_or_else(|| FetchError::Malformed(format!("no ticker for {}", m.symbol)))?;
    quote(t)
}

/// Parses the every-pair answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    if r.status != 200 {
        return Err(error("tickers", r));
    }
    let tickers: Vec<Ticker<'_>> = json(r.body)?;
    let by_pair: HashMap<&str, &Ticker<'_>> =
        tickers.iter().map(|t| (t.currency_pair, t)).collect();
    Ok(pick(
        markets,
        &by_pair,
        |m| m.symbol.to_owned(),
        |_, t| quote(t),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_tickers() {
        let q = parse(
            &Market::of("BTC_USDT"),
            &resp(200, include_str!("../../fixtures/gateio/tickers_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.4");
        assert_eq!(q.bid.unwrap().to_string(), "97123.3");
    }

    #[test]
    fn errors_are_classified() {
        let e = parse(
            &Market::of("BTC_XYZ"),
            &resp(400, include_str!("../../fixtures/gateio/invalid_pair.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("Invalid currency pair"))
        );
        let e = parse(
            &Market::of("BTC_USDT"),
            &resp(
                429,
                r#"{"label":"TOO_MANY_REQUESTS","message":"slow down"}"#,
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse(&Market::of("BTC_USDT"), &resp(200, "[]")),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn parses_recorded_every_pair_tickers() {
        let ms = [
            Market::of("ETH_USDT"),
            Market::of("BTC_USDT"),
            Market::of("NOPE_USDT"),
        ];
        let out = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/gateio/tickers_all_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.11");
        assert_eq!(out[1].as_ref().unwrap().ask.unwrap().to_string(), "97123.5");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "NOPE_USDT")
        );
    }

    #[test]
    fn every_pair_errors() {
        let ms = [Market::of("BTC_USDT"), Market::of("ETH_USDT")];
        let e = parse_batch(
            &ms,
            &resp(
                429,
                r#"{"label":"TOO_MANY_REQUESTS","message":"Request Rate limit Exceeded"}"#,
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(&ms, &resp(200, "[{\"currency_pair\":\"BTC_USDT\"}]")),
            Err(FetchError::Malformed(_))
        ));
        assert!(
            parse_batch(&ms, &resp(500, r#"{"label":"SERVER_ERROR","message":"x"}"#))
                .unwrap_err()
                .is_transient()
        );
    }
}
