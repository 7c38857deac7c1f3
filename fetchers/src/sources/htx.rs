//! HTX (formerly Huobi): `GET /market/detail/merged?symbol=btcusdt`.
//!
//! Success: `{"ch":"market.btcusdt.detail.merged","status":"ok","ts":…,"tick":{…}}`
//! where the tick's prices are JSON numbers (`close` is the last price; `bid`
//! and `ask` are `[price, size]` arrays), read exactly from their text; `ts` is
//! the response time. Errors: `{"status":"error","err-code":"invalid-parameter",
//! "err-msg":"invalid symbol",…}` with HTTP 200.
//!
//! Every symbol: `GET /market/tickers` answers `{"data":[{"symbol":"btcusdt",
//! "open":…,"high":…,"low":…,"close":…,"amount":…,"vol":…,"count":…,"bid":…,
//! "bidSize":…,"ask":…,"askSize":…},…],"status":"ok","ts":…}` (JSON numbers;
//! `bid` and `ask` plain prices here; `ts` the response time).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Market, Quote, Response, envelope, pick, raw_decimal};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Envelope<'a> {
    status: &'a str,
    #[serde(rename = "err-code")]
    err_code: Option<&'a str>,
    #[serde(rename = "err-msg")]
    err_msg: Option<&'a str>,
    #[serde(borrow)]
    tick: Option<Tick<'a>>,
}

#[derive(Deserialize)]
struct Tick<'a> {
    #[serde(borrow)]
    close: &'a RawValue,
    #[serde(borrow)]
    bid: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    ask: Option<Vec<&'a RawValue>>,
}

/// The error of a `status` "error" envelope, naming `symbol`.
fn status_error(
    code: Option<&str>,
    msg: Option<&str>,
    symbol: &str,
    r: &Response<'_>,
) -> FetchError {
    let code = code.unwrap_or("");
    let message = format!("{code} {}", msg.unwrap_or(""));
    match code {
        "invalid-parameter" | "bad-request" => FetchError::UnknownSymbol {
            symbol: symbol.to_owned(),
            message,
        },
        "api-limit-exceed" | "too-many-request" => FetchError::RateLimited {
            status: r.status,
            retry_after: r.retry_after,
            message,
        },
        _ => FetchError::Unavailable {
            status: r.status,
            message,
        },
    }
}

#[derive(Deserialize)]
struct Tickers<'a> {
    status: &'a str,
    #[serde(rename = "err-code")]
    err_code: Option<&'a str>,
    #[serde(rename = "err-msg")]
    err_msg: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Vec<Ticker<'a>>>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    symbol: &'a str,
    #[serde(borrow)]
    close: &'a RawValue,
    #[serde(borrow)]
    bid: Option<&'a RawValue>,
    #[serde(borrow)]
    ask: Option<&'a RawValue>,
}

/// Parses the every-symbol answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    let env: Tickers<'_> = envelope(r)?;
    if env.status != "ok" {
        return Err(status_error(env.err_code, env.err_msg, "tickers", r));
    }
    let data = env
        .data
        .ok_or_else(|| FetchError::Malformed("status ok without data".into()))?;
    let by_symbol: HashMap<&str, &Ticker<'_>> = data.iter().map(|t| (t.symbol, t)).collect();
    let side = |name: &str, v: Option<&RawValue>| match v {
        Some(v) if v.get() != "null" => raw_decimal(name, v).map(Some),
        _ => Ok(None),
    };
    Ok(pick(
        markets,
        &by_symbol,
        |m| m.symbol.to_owned(),
        |_, t| {
            Ok(Quote {
                price: raw_decimal("close", t.close)?,
                bid: side("bid", t.bid)?,
                ask: side("ask", t.ask)?,
                observed_at_ms: None,
            })
        },
    ))
}

/// Parses a merged-detail answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let env: Envelope<'_> = envelope(r)?;
    if env.status != "ok" {
        return Err(status_error(env.err_code, env.err_msg, m.symbol, r));
    }
    let tick = env
        .tick
        .ok_or_else(|| FetchError::Malformed("status ok without tick".into()))?;
    let side = |name: &str,
                v: Option<Vec<&RawValue>>|
     -> Result<Option<rust_decimal::Decimal>, FetchError> {
        match v {
            Some(v) if !v.is_empty() => raw_decimal(name, v[0]).map(Some),
            _ => Ok(None),
        }
    };
    Ok(Quote {
        price: raw_decimal("close", tick.close)?,
        bid: side("bid", tick.bid)?,
        ask: side("ask", tick.ask)?,
        observed_at_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_merged_detail() {
        let q = parse(
            &Market::of("btcusdt"),
            &resp(200, include_str!("../../fixtures/htx/merged_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.4");
        assert_eq!(q.bid.unwrap().to_string(), "97123.3");
        assert_eq!(q.ask.unwrap().to_string(), "97123.5");
    }

    #[test]
    fn errors_are_classified() {
        let e = parse(
            &Market::of("btcxyz"),
            &resp(200, include_str!("../../fixtures/htx/invalid_symbol.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("invalid symbol"))
        );
        assert!(matches!(
            parse(&Market::of("btcusdt"), &resp(200, r#"{"status":"ok"}"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("btcusdt"),
                &resp(200, r#"{"status":"ok","tick":{"close":"abc"}}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn parses_recorded_tickers() {
        let ms = [
            Market::of("ethusdt"),
            Market::of("btcusdt"),
            Market::of("nopeusdt"),
        ];
        let out = parse_batch(
            &ms,
            &resp(200, include_str!("../../fixtures/htx/tickers_ok.json")),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.11");
        let btc = out[1].as_ref().unwrap();
        assert_eq!(btc.price.to_string(), "97123.4");
        assert_eq!(btc.bid.unwrap().to_string(), "97123.3");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "nopeusdt")
        );
    }

    #[test]
    fn tickers_errors() {
        let ms = [Market::of("btcusdt"), Market::of("ethusdt")];
        let e = parse_batch(&ms, &resp(200, r#"{"status":"error","err-code":"too-many-request","err-msg":"slow down","data":null}"#)).unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(
                &ms,
                &resp(
                    200,
                    "{\"status\":\"ok\",\"data\":[{\"symbol\":\"btcusdt\"}]}"
                )
            ),
            Err(FetchError::Malformed(_))
        ));
        let out = parse_batch(&ms, &resp(200, r#"{"status":"ok","data":[{"symbol":"btcusdt","close":"abc"},{"symbol":"ethusdt","close":2,"bid":null,"ask":null}]}"#)).unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "2");
    }
}
