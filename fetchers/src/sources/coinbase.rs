//! Coinbase Exchange: `GET /products/BTC-USD/ticker`.
//!
//! Success: `{"ask":"…","bid":"…","volume":"…","trade_id":749412360,"price":"…",
//! "size":"…","time":"2025-11-21T04:40:00.123456Z",…}`: prices as strings,
//! `trade_id` a number, `time` RFC 3339 (the last trade's time). Errors:
//! `{"message":"NotFound"}` with HTTP 404 for an unknown product, HTTP 429 when
//! over the public rate limit (10 requests/s per IP).

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json};
use crate::error::{FetchError, excerpt};

#[derive(Deserialize)]
struct Ticker<'a> {
    price: &'a str,
    bid: Option<&'a str>,
    ask: Option<&'a str>,
    time: Option<&'a str>,
}

#[derive(Deserialize)]
struct ApiError<'a> {
    message: &'a str,
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let symbol = m.symbol;
    if r.status != 200 {
        let message = serde_json::from_slice::<ApiError<'_>>(r.body)
            .map(|e| e.message.to_owned())
            .unwrap_or_else(|_| excerpt(r.body));
        return Err(if r.status == 404 {
            FetchError::UnknownSymbol {
                symbol: symbol.to_owned(),
                message,
            }
        } else {
            FetchError::from_status(r.status, message, r.retry_after)
        });
    }
    let t: Ticker<'_> = json(r.body)?;
    let observed_at_ms = match t.time {
        Some(time) => {
            let at = humantime::parse_rfc3339(time)
                .map_err(|e| FetchError::Malformed(format!("time {time:?}: {e}")))?;
            let ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| FetchError::Malformed(format!("time {time:?} is before 1970")))?
                .as_millis();
            Some(ms as u64)
        }
        None => None,
    };
    Ok(Quote {
        price: decimal("price", t.price)?,
        bid: t.bid.map(|b| decimal("bid", b)).transpose()?,
        ask: t.ask.map(|a| decimal("ask", a)).transpose()?,
        observed_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_ticker_with_its_trade_time() {
        let q = parse(
            &Market::of("BTC-USD"),
            &resp(200, include_str!("../../fixtures/coinbase/ticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97125.00");
        assert_eq!(q.bid.unwrap().to_string(), "97124.99");
        assert_eq!(q.ask.unwrap().to_string(), "97125.01");
        // 2025-11-21T04:40:00.123456Z
        assert_eq!(q.observed_at_ms, Some(1_763_700_000_123));
    }

    #[test]
    fn not_found_is_an_unknown_symbol() {
        let e = parse(
            &Market::of("BTC-XYZ"),
            &resp(404, include_str!("../../fixtures/coinbase/not_found.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message == "NotFound"),
            "{e:?}"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            parse(&Market::of("BTC-USD"), &resp(200, "[]")),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("BTC-USD"),
                &resp(200, r#"{"price":"1","time":"yesterday"}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(&Market::of("BTC-USD"), &resp(200, r#"{"price":"0"}"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(
            parse(
                &Market::of("BTC-USD"),
                &resp(429, r#"{"message":"Public rate limit exceeded"}"#)
            )
            .unwrap_err()
            .is_transient()
        );
    }
}
