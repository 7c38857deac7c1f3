//! Bitfinex v2: `GET /v2/ticker/tBTCUSD`.
//!
//! Success is a bare array of JSON numbers:
//! `[BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE,
//! LAST_PRICE, VOLUME, HIGH, LOW]`; the numbers are read exactly from their
//! text. Errors are arrays too: `["error", 10020, "symbol: invalid"]` (HTTP
//! 500 for an invalid symbol); `["error", 11010, "ratelimit: error"]` when rate
//! limited.

use serde_json::value::RawValue;

use super::{Market, Quote, Response, envelope, raw_decimal, status_error};
use crate::error::FetchError;

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let fields: Vec<&RawValue> = envelope(r)?;
    if fields.first().map(|f| f.get()) == Some("\"error\"") {
        let code: i64 = fields
            .get(1)
            .and_then(|c| c.get().parse().ok())
            .unwrap_or_default();
        let message = fields
            .get(2)
            .and_then(|t| serde_json::from_str::<String>(t.get()).ok())
            .unwrap_or_default();
        let message = format!("{code} {message}");
        return Err(match code {
            10020 => FetchError::UnknownSymbol {
                symbol: m.symbol.to_owned(),
                message,
            },
            11010 => FetchError::RateLimited {
                status: r.status,
                retry_after: r.retry_after,
                message,
            },
            _ => FetchError::Unavailable {
                status: r.status,
                message,
            },
        });
    }
    if r.status != 200 {
        return Err(status_error(r));
    }
    if fields.len() < 10 {
        return Err(FetchError::Malformed(format!(
            "ticker has {} fields, expected 10",
            fields.len()
        )));
    }
    Ok(Quote {
        price: raw_decimal("LAST_PRICE", fields[6])?,
        bid: Some(raw_decimal("BID", fields[0])?),
        ask: Some(raw_decimal("ASK", fields[2])?),
        observed_at_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_ticker_numbers_exactly() {
        let q = parse(
            &Market::of("tBTCUSD"),
            &resp(200, include_str!("../../fixtures/bitfinex/ticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123");
        assert_eq!(q.bid.unwrap().to_string(), "97122");
        assert_eq!(q.ask.unwrap().to_string(), "97124");
    }

    #[test]
    fn error_arrays_are_classified() {
        let e = parse(
            &Market::of("tBTCXYZ"),
            &resp(
                500,
                include_str!("../../fixtures/bitfinex/invalid_symbol.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("symbol: invalid"))
        );
        assert!(!e.is_transient());
        let e = parse(
            &Market::of("tBTCUSD"),
            &resp(429, r#"["error",11010,"ratelimit: error"]"#),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse(&Market::of("tBTCUSD"), &resp(200, "[1,2,3]")),
            Err(FetchError::Malformed(_))
        ));
    }
}
