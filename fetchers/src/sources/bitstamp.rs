//! Bitstamp: `GET /api/v2/ticker/btcusd/`.
//!
//! Success: every field a string, `timestamp` in Unix seconds as a string:
//! `{"timestamp":"1763700000","last":"97123","bid":"97122","ask":"97124",…}`.
//! Unknown pair: HTTP 404 with `{"errors":[{"message":"Not Found",…}]}`.

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, status_error};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Ticker<'a> {
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
}
