//! Gate.io v4: `GET /api/v4/spot/tickers?currency_pair=BTC_USDT`.
//!
//! Success is an array with one ticker object whose prices are strings
//! (`last`, `highest_bid`, `lowest_ask`); no timestamp. Errors:
//! `{"label":"INVALID_CURRENCY_PAIR","message":"…"}` with HTTP 400;
//! `TOO_MANY_REQUESTS` with HTTP 429; `SERVER_ERROR` with 5xx.

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, status_error};
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

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    if r.status != 200 {
        return Err(match serde_json::from_slice::<ApiError<'_>>(r.body) {
            Ok(e) if e.label == "INVALID_CURRENCY_PAIR" => FetchError::UnknownSymbol {
                symbol: m.symbol.to_owned(),
                message: format!("{} {}", e.label, e.message),
            },
            Ok(e) => FetchError::from_status(
                r.status,
                format!("{} {}", e.label, e.message),
                r.retry_after,
            ),
            Err(_) => status_error(r),
        });
    }
    let tickers: Vec<Ticker<'_>> = json(r.body)?;
    let t = tickers
        .into_iter()
        .find(|t| t.currency_pair == m.symbol)
        .ok_or_else(|| FetchError::Malformed(format!("no ticker for {}", m.symbol)))?;
    Ok(Quote {
        price: decimal("last", t.last)?,
        bid: t
            .highest_bid
            .filter(|b| !b.is_empty())
            .map(|b| decimal("highest_bid", b))
            .transpose()?,
        ask: t
            .lowest_ask
            .filter(|a| !a.is_empty())
            .map(|a| decimal("lowest_ask", a))
            .transpose()?,
        observed_at_ms: None,
    })
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
}
