//! Bitstamp: `GET /api/v2/ticker/btcusd/`.
//!
//! Success: every field a string, `timestamp` in Unix seconds as a string:
//! `{"timestamp":"1763700000","last":"97123","bid":"97122","ask":"97124",…}`.
//! Unknown pair: HTTP 404 with `{"errors":[{"message":"Not Found",…}]}`.
//!
//! Every market: `GET /api/v2/ticker/` answers an array of the same tickers,
//! each naming its market in `pair` as `"BTC/USD"` (the URL symbol is that,
//! lower case, without the slash).

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, pick, status_error};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Ticker<'a> {
    #[serde(default)]
    pair: &'a str,
    timestamp: &'a str,
    last: &'a str,
    bid: Option<&'a str>,
    ask: Option<&'a str>,
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    if r.status == 404 {
        return Err(FetchError::UnknownSymbol {
            symbol: m.symbol.to_owned(),
            message: crate::error::excerpt(r.body),
        });
    }
    if r.status != 200 {
        return Err(status_error(r));
    }
    let t: Ticker<'_> = json(r.body)?;
    quote(&t)
}

fn quote(t: &Ticker<'_>) -> Result<Quote, FetchError> {
    let seconds: u64 = t
        .timestamp
        .parse()
        .map_err(|_| FetchError::Malformed(format!("timestamp {:?}", t.timestamp)))?;
    Ok(Quote {
        price: decimal("last", t.last)?,
        bid: t.bid.map(|b| decimal("bid", b)).transpose()?,
        ask: t.ask.map(|a| decimal("ask", a)).transpose()?,
        observed_at_ms: Some(seconds * 1000),
    })
}

/// Parses the every-market answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    if r.status != 200 {
        return Err(status_error(r));
    }
    let tickers: Vec<Ticker<'_>> = json(r.body)?;
    let by_symbol: HashMap<String, &Ticker<'_>> = tickers
        .iter()
        .map(|t| (t.pair.replace('/', "").to_ascii_lowercase(), t))
        .collect();
    Ok(pick(
        markets,
        &by_symbol,
        |m| m.symbol.to_ascii_lowercase(),
        |_, t| quote(t),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_ticker() {
        let q = parse(
            &Market::of("btcusd"),
            &resp(200, include_str!("../../fixtures/bitstamp/ticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123");
        assert_eq!(q.bid.unwrap().to_string(), "97122");
        assert_eq!(q.observed_at_ms, Some(1_763_700_000_000));
    }

    #[test]
    fn unknown_pair_and_malformed() {
        let e = parse(
            &Market::of("btcxyz"),
            &resp(404, include_str!("../../fixtures/bitstamp/not_found.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("Not Found"))
        );
        assert!(matches!(
            parse(
                &Market::of("btcusd"),
                &resp(200, r#"{"timestamp":"x","last":"1"}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(
            parse(&Market::of("btcusd"), &resp(503, "down"))
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn parses_recorded_every_market_answer() {
        let ms = [
            Market::of("ethusd"),
            Market::of("btcusd"),
            Market::of("dogeusd"),
        ];
        let out = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/bitstamp/ticker_all_ok.json"),
            ),
        )
        .unwrap();
        let eth = out[0].as_ref().unwrap();
        assert_eq!(eth.price.to_string(), "3050.11");
        assert_eq!(eth.observed_at_ms, Some(1_763_700_001_000));
        assert_eq!(out[1].as_ref().unwrap().bid.unwrap().to_string(), "97122");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "dogeusd")
        );
    }

    #[test]
    fn every_market_errors() {
        let ms = [Market::of("btcusd"), Market::of("ethusd")];
        assert!(
            parse_batch(&ms, &resp(503, "<html>down</html>"))
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            parse_batch(&ms, &resp(200, r#"{"timestamp":"1"}"#)),
            Err(FetchError::Malformed(_))
        ));
        let out = parse_batch(
            &ms,
            &resp(200, r#"[{"pair":"BTC/USD","timestamp":"x","last":"1"},{"pair":"ETH/USD","timestamp":"1","last":"2"}]"#),
        )
        .unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "2");
    }
}
