//! KuCoin: `GET /api/v1/market/orderbook/level1?symbol=BTC-USDT`.
//!
//! Envelope `{"code":"200000","data":{…}}` (`code` a string, `"200000"` is
//! success). Level 1 has `price` (last trade), `bestBid`, `bestAsk` as strings
//! and `time` (ms, a number: the book's time). An unknown symbol answers
//! success with `"data":null`; other errors carry their own code (`400100`
//! bad parameter, `429000` too many requests).
//!
//! Every symbol: `GET /api/v1/market/allTickers` (public weight 15 against 2
//! for level 1) answers `{"code":"200000","data":{"time":…,"ticker":[…]}}`,
//! each ticker with `symbol`, `last`, `buy` (best bid), `sell` (best ask) as
//! strings, `last` null for a market without trades. `data.time` is when the
//! snapshot of all markets was taken (every few seconds), not each market's
//! own time, so the slot's time stands.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, envelope, opt_decimal, pick};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Envelope<'a> {
    code: &'a str,
    #[serde(default)]
    msg: &'a str,
    #[serde(borrow)]
    data: Option<Level1<'a>>,
}

#[derive(Deserialize)]
struct Level1<'a> {
    time: u64,
    price: &'a str,
    #[serde(rename = "bestBid")]
    bid: Option<&'a str>,
    #[serde(rename = "bestAsk")]
    ask: Option<&'a str>,
}

/// The error of an envelope whose code is not success, naming `symbol`.
fn code_error(code: &str, msg: &str, symbol: &str, r: &Response<'_>) -> FetchError {
    let message = format!("{code} {msg}");
    match code {
        "429000" => FetchError::RateLimited {
            status: r.status,
            retry_after: r.retry_after,
            message,
        },
        "400100" => FetchError::UnknownSymbol {
            symbol: symbol.to_owned(),
            message,
        },
        c if c.starts_with('5') => FetchError::Unavailable {
            status: r.status,
            message,
        },
        _ => FetchError::Rejected {
            status: r.status,
            message,
        },
    }
}

/// Parses a level-1 answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let env: Envelope<'_> = envelope(r)?;
    if env.code != "200000" {
        return Err(code_error(env.code, env.msg, m.symbol, r));
    }
    let l1 = env.data.ok_or_else(|| FetchError::UnknownSymbol {
        symbol: m.symbol.to_owned(),
        message: "data is null".into(),
    })?;
    Ok(Quote {
        price: decimal("price", l1.price)?,
        bid: l1.bid.map(|b| decimal("bestBid", b)).transpose()?,
        ask: l1.ask.map(|a| decimal("bestAsk", a)).transpose()?,
        observed_at_ms: Some(l1.time),
    })
}

#[derive(Deserialize)]
struct AllEnvelope<'a> {
    code: &'a str,
    #[serde(default)]
    msg: &'a str,
    #[serde(borrow)]
    data: Option<AllTickers<'a>>,
}

#[derive(Deserialize)]
struct AllTickers<'a> {
    #[serde(borrow)]
    ticker: Vec<Ticker<'a>>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    symbol: &'a str,
    last: Option<&'a str>,
    buy: Option<&'a str>,
    sell: Option<&'a str>,
}

/// Parses the every-symbol answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    let env: AllEnvelope<'_> = envelope(r)?;
    if env.code != "200000" {
        return Err(code_error(env.code, env.msg, "allTickers", r));
    }
    let all = env
        .data
        .ok_or_else(|| FetchError::Malformed("allTickers without data".into()))?;
    let by_symbol: HashMap<&str, &Ticker<'_>> = all.ticker.iter().map(|t| (t.symbol, t)).collect();
    Ok(pick(
        markets,
        &by_symbol,
        |m| m.symbol.to_owned(),
        |m, t| {
            let last = t
                .last
                .ok_or_else(|| FetchError::Malformed(format!("{}: last is null", m.symbol)))?;
            Ok(Quote {
                price: decimal("last", last)?,
                bid: opt_decimal("buy", t.buy)?,
                ask: opt_decimal("sell", t.sell)?,
                observed_at_ms: None,
            })
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_level1() {
        let q = parse(
            &Market::of("BTC-USDT"),
            &resp(200, include_str!("../../fixtures/kucoin/level1_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.4");
        assert_eq!(q.bid.unwrap().to_string(), "97123.3");
        assert_eq!(q.observed_at_ms, Some(1_763_700_000_123));
    }

    #[test]
    fn unknown_symbol_comes_as_null_data() {
        let e = parse(
            &Market::of("BTC-XYZ"),
            &resp(
                200,
                include_str!("../../fixtures/kucoin/unknown_symbol.json"),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::UnknownSymbol { .. }) && !e.is_transient());
        let e = parse(
            &Market::of("BTC-XYZ"),
            &resp(
                400,
                include_str!("../../fixtures/kucoin/pair_not_provided.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("not provided"))
        );
        assert!(matches!(
            parse(
                &Market::of("BTC-USDT"),
                &resp(200, r#"{"code":"200000","data":{"time":1}}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn parses_recorded_all_tickers() {
        let ms = [
            Market::of("ETH-USDT"),
            Market::of("BTC-USDT"),
            Market::of("NOPE-USDT"),
            Market::of("NEW-USDT"),
        ];
        let out = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/kucoin/all_tickers_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.11");
        let btc = out[1].as_ref().unwrap();
        assert_eq!(btc.bid.unwrap().to_string(), "97123.3");
        assert_eq!(btc.ask.unwrap().to_string(), "97123.5");
        assert_eq!(btc.observed_at_ms, None);
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "NOPE-USDT")
        );
        // Listed but never traded: `last` is null.
        assert!(
            matches!(out[3], Err(FetchError::Malformed(_))),
            "{:?}",
            out[3]
        );
    }

    #[test]
    fn all_tickers_errors() {
        let ms = [Market::of("BTC-USDT"), Market::of("ETH-USDT")];
        let e = parse_batch(
            &ms,
            &resp(429, r#"{"code":"429000","msg":"Too Many Requests"}"#),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(&ms, &resp(200, r#"{"code":"200000","data":null}"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(
            parse_batch(&ms, &resp(503, "<html>"))
                .unwrap_err()
                .is_transient()
        );
    }
}
