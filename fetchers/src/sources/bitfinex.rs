//! Bitfinex v2: `GET /v2/ticker/tBTCUSD`.
//!
//! Success is a bare array of JSON numbers:
//! `[BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE,
//! LAST_PRICE, VOLUME, HIGH, LOW]`; the numbers are read exactly from their
//! text. Errors are arrays too: `["error", 10020, "symbol: invalid"]` (HTTP
//! 500 for an invalid symbol); `["error", 11010, "ratelimit: error"]` when rate
//! limited.
//!
//! Many symbols: `GET /v2/tickers?symbols=tBTCUSD,tETHUSD` (or `symbols=ALL`)
//! answers an array of such arrays, each led by its symbol:
//! `[SYMBOL, BID, BID_SIZE, ASK, ASK_SIZE, DAILY_CHANGE, DAILY_CHANGE_RELATIVE,
//! LAST_PRICE, VOLUME, HIGH, LOW]` for trading pairs (funding symbols, `f…`,
//! carry more fields and are skipped). Unknown symbols are left out of the
//! answer. The `tickers` endpoint is limited to 30 requests/min against 90
//! for `ticker`.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::{Market, Quote, Response, envelope, json, pick, raw_decimal, status_error};
use crate::error::FetchError;

/// The error an `["error", code, text]` array stands for, naming `symbol`.
fn error_array(fields: &[&RawValue], symbol: &str, r: &Response<'_>) -> Option<FetchError> {
    if fields.first().map(|f| f.get()) != Some("\"error\"") {
        return None;
    }
    let code: i64 = fields
        .get(1)
        .and_then(|c| c.get().parse().ok())
        .unwrap_or_default();
    let message = fields
        .get(2)
        .and_then(|t| serde_json::from_str::<String>(t.get()).ok())
        .unwrap_or_default();
    let message = format!("{code} {message}");
    Some(match code {
        10020 => FetchError::UnknownSymbol {
            symbol: symbol.to_owned(),
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
    })
}

/// Reads the ten ticker fields that follow a symbol (or stand alone).
fn quote(fields: &[&RawValue]) -> Result<Quote, FetchError> {
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

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let fields: Vec<&RawValue> = envelope(r)?;
    if let Some(e) = error_array(&fields, m.symbol, r) {
        return Err(e);
    }
    if r.status != 200 {
        return Err(status_error(r));
    }
    quote(&fields)
}

/// The many-symbols URL: the symbols asked, or `ALL`.
pub fn batch_url(base: &str, markets: &[Market<'_>], every: bool) -> String {
    let list = if every {
        "ALL".to_owned()
    } else {
        markets
            .iter()
            .map(|m| m.symbol)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!("{base}/v2/tickers?symbols={list}")
}

/// Parses a many-symbols answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    let rows: Vec<&RawValue> = envelope(r)?;
    if let Some(e) = error_array(&rows, "tickers", r) {
        return Err(e);
    }
    if r.status != 200 {
        return Err(status_error(r));
    }
    let mut by_symbol: HashMap<String, Vec<&RawValue>> = HashMap::with_capacity(rows.len());
    for row in rows {
        let fields: Vec<&RawValue> = json(row.get().as_bytes())?;
        let symbol: String = fields
            .first()
            .and_then(|s| serde_json::from_str(s.get()).ok())
            .ok_or_else(|| {
                FetchError::Malformed(format!("ticker without a symbol: {}", row.get()))
            })?;
        by_symbol.insert(symbol, fields);
    }
    Ok(pick(
        markets,
        &by_symbol,
        |m| m.symbol.to_owned(),
        |_, fields| quote(&fields[1..]),
    ))
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

    #[test]
    fn parses_recorded_tickers() {
        let ms = [
            Market::of("tETHUSD"),
            Market::of("tBTCUSD"),
            Market::of("tNOPEUSD"),
        ];
        let out = parse_batch(
            &ms,
            &resp(200, include_str!("../../fixtures/bitfinex/tickers_ok.json")),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.1");
        let btc = out[1].as_ref().unwrap();
        assert_eq!(btc.price.to_string(), "97123");
        assert_eq!(btc.bid.unwrap().to_string(), "97122");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "tNOPEUSD")
        );
        assert_eq!(
            batch_url("https://api-pub.bitfinex.com", &ms[..2], false),
            "https://api-pub.bitfinex.com/v2/tickers?symbols=tETHUSD,tBTCUSD"
        );
        assert_eq!(
            batch_url("https://api-pub.bitfinex.com", &ms, true),
            "https://api-pub.bitfinex.com/v2/tickers?symbols=ALL"
        );
    }

    #[test]
    fn tickers_errors() {
        let ms = [Market::of("tBTCUSD"), Market::of("tETHUSD")];
        let e = parse_batch(&ms, &resp(429, r#"["error",11010,"ratelimit: error"]"#)).unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(&ms, &resp(200, "[[1,2]]")),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(&ms, &resp(200, "[[\"tBTCUSD\",1")),
            Err(FetchError::Malformed(_))
        ));
        let out = parse_batch(
            &ms,
            &resp(200, r#"[["tBTCUSD",1,2],["tETHUSD",1,1,2,1,0,0,3,1,4,1]]"#),
        )
        .unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "3");
    }
}
