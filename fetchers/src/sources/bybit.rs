//! Bybit v5: `GET /v5/market/tickers?category=spot&symbol=BTCUSDT`.
//!
//! Envelope `{"retCode":0,"retMsg":"OK","result":{"category":"spot","list":[…]},"time":…}`
//! (`retCode` a number; `time` is the server's response time, not a data time).
//! The ticker has `lastPrice`, `bid1Price`, `ask1Price` as strings. Errors:
//! `10001` "Not supported symbols", `10006` "Too many visits!" (rate limit),
//! `10016` service error.
//!
//! Every spot symbol: the same request without `symbol`
//! (`?category=spot`) answers one ticker per symbol in `result.list`.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, envelope, opt_decimal, pick};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "retCode")]
    ret_code: i64,
    #[serde(rename = "retMsg", default)]
    ret_msg: &'a str,
    #[serde(borrow)]
    result: Option<ResultBody<'a>>,
}

#[derive(Deserialize)]
struct ResultBody<'a> {
    #[serde(default, borrow)]
    list: Vec<Ticker<'a>>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    symbol: &'a str,
    #[serde(rename = "lastPrice")]
    last: &'a str,
    #[serde(rename = "bid1Price")]
    bid: Option<&'a str>,
    #[serde(rename = "ask1Price")]
    ask: Option<&'a str>,
}

/// Reads the envelope; its codes name `symbol` (one, or the request).
fn read<'a>(symbol: &str, r: &Response<'a>) -> Result<Vec<Ticker<'a>>, FetchError> {
    let env: Envelope<'_> = envelope(r)?;
    if env.ret_code != 0 {
        let message = format!("{} {}", env.ret_code, env.ret_msg);
        return Err(match env.ret_code {
            10001 => FetchError::UnknownSymbol {
                symbol: symbol.to_owned(),
                message,
            },
            10006 | 10018 => FetchError::RateLimited {
                status: r.status,
                retry_after: r.retry_after,
                message,
            },
            10016 | 10000 => FetchError::Unavailable {
                status: r.status,
                message,
            },
            _ => FetchError::Rejected {
                status: r.status,
                message,
            },
        });
    }
    env.result
        .map(|res| res.list)
        .ok_or_else(|| FetchError::Malformed("retCode 0 without result".into()))
}

fn quote(t: &Ticker<'_>) -> Result<Quote, FetchError> {
    Ok(Quote {
        price: decimal("lastPrice", t.last)?,
        bid: opt_decimal("bid1Price", t.bid)?,
        ask: opt_decimal("ask1Price", t.ask)?,
        observed_at_ms: None,
    })
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let list = read(m.symbol, r)?;
    let t = list.iter().find(|t| t.symbol == m.symbol).ok_or_else(|| {
        FetchError::Malformed(format!("no ticker for {} in result.list", m.symbol))
    })?;
    quote(t)
}

/// Parses the every-spot-symbol answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    let list = read("category=spot", r)?;
    let by_symbol: HashMap<&str, &Ticker<'_>> = list.iter().map(|t| (t.symbol, t)).collect();
    Ok(pick(
        markets,
        &by_symbol,
        |m| m.symbol.to_owned(),
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
            &Market::of("BTCUSDT"),
            &resp(200, include_str!("../../fixtures/bybit/tickers_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.4");
        assert_eq!(q.ask.unwrap().to_string(), "97123.5");
        assert_eq!(
            q.observed_at_ms, None,
            "`time` is a response time, not a data time"
        );
    }

    #[test]
    fn ret_codes_are_classified() {
        let e = parse(
            &Market::of("BTCXYZ"),
            &resp(
                200,
                include_str!("../../fixtures/bybit/unsupported_symbol.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("Not supported"))
        );
        let e = parse(
            &Market::of("BTCUSDT"),
            &resp(
                200,
                include_str!("../../fixtures/bybit/too_many_visits.json"),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse(&Market::of("BTCUSDT"), &resp(200, "{\"retCode\":0}")),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn parses_recorded_spot_tickers() {
        let ms = [
            Market::of("ETHUSDT"),
            Market::of("BTCUSDT"),
            Market::of("NOPEUSDT"),
        ];
        let out = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/bybit/tickers_spot_all_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.11");
        let btc = out[1].as_ref().unwrap();
        assert_eq!(btc.ask.unwrap().to_string(), "97123.5");
        assert_eq!(btc.observed_at_ms, None);
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "NOPEUSDT")
        );
    }

    #[test]
    fn spot_tickers_errors() {
        let ms = [Market::of("BTCUSDT"), Market::of("ETHUSDT")];
        let e = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/bybit/too_many_visits.json"),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(&ms, &resp(200, "{\"retCode\":0}")),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(&ms, &resp(200, "{\"retCode\":0,")),
            Err(FetchError::Malformed(_))
        ));
    }
}
