//! OKX: `GET /api/v5/market/ticker?instId=BTC-USDT`.
//!
//! Every answer is an envelope `{"code":"0","msg":"","data":[…]}` whose `code`
//! is a string; `"0"` is success. The ticker has `last`, `bidPx`, `askPx` and
//! `ts` (ms, a string: when the ticker data was produced). Errors: code
//! `51001` "Instrument ID does not exist"; `50011` "Too Many Requests" (HTTP 429);
//! `50001`/`50013` service unavailable / busy.
//!
//! Every spot instrument: `GET /api/v5/market/tickers?instType=SPOT` answers
//! the same envelope with one ticker per instrument in `data`.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, opt_decimal, pick};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Envelope<'a> {
    code: &'a str,
    #[serde(default)]
    msg: &'a str,
    #[serde(default, borrow)]
    data: Vec<Ticker<'a>>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    #[serde(rename = "instId")]
    inst_id: &'a str,
    last: &'a str,
    #[serde(rename = "bidPx")]
    bid: Option<&'a str>,
    #[serde(rename = "askPx")]
    ask: Option<&'a str>,
    ts: &'a str,
}

/// Reads the envelope; its error codes name `symbol` (one, or the request).
fn envelope<'a>(symbol: &str, r: &Response<'a>) -> Result<Envelope<'a>, FetchError> {
    let env: Envelope<'_> = match json(r.body) {
        Ok(env) => env,
        Err(e) if r.status != 200 => {
            return Err(FetchError::from_status(
                r.status,
                e.to_string(),
                r.retry_after,
            ));
        }
        Err(e) => return Err(e),
    };
    if env.code != "0" {
        let message = format!("{} {}", env.code, env.msg);
        return Err(match env.code {
            "51001" | "51000" => FetchError::UnknownSymbol {
                symbol: symbol.to_owned(),
                message,
            },
            "50011" | "50061" => FetchError::RateLimited {
                status: r.status,
                retry_after: r.retry_after,
                message,
            },
            "50001" | "50013" | "50026" => FetchError::Unavailable {
                status: r.status,
                message,
            },
            _ => FetchError::from_status(
                if r.status == 200 { 400 } else { r.status },
                message,
                r.retry_after,
            ),
        });
    }
    Ok(env)
}

fn quote(t: &Ticker<'_>) -> Result<Quote, FetchError> {
    let ts: u64 =
        t.ts.parse()
            .map_err(|_| FetchError::Malformed(format!("ts {:?}", t.ts)))?;
    Ok(Quote {
        price: decimal("last", t.last)?,
        bid: opt_decimal("bidPx", t.bid)?,
        ask: opt_decimal("askPx", t.ask)?,
        observed_at_ms: Some(ts),
    })
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let env = envelope(m.symbol, r)?;
    let t = env
        .data
        .iter()
        .find(|t| t.inst_id == m.symbol)
        .ok_or_else(|| FetchError::Malformed(format!("no ticker for {} in data", m.symbol)))?;
    quote(t)
}

/// Parses the every-spot-instrument answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    let env = envelope("instType=SPOT", r)?;
    let by_id: HashMap<&str, &Ticker<'_>> = env.data.iter().map(|t| (t.inst_id, t)).collect();
    Ok(pick(
        markets,
        &by_id,
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
            &Market::of("BTC-USDT"),
            &resp(200, include_str!("../../fixtures/okx/ticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.4");
        assert_eq!(q.bid.unwrap().to_string(), "97123.3");
        assert_eq!(q.observed_at_ms, Some(1_763_700_000_123));
    }

    #[test]
    fn error_codes_are_classified() {
        let e = parse(
            &Market::of("BTC-XYZ"),
            &resp(
                200,
                include_str!("../../fixtures/okx/unknown_instrument.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message.contains("does not exist"))
        );
        let e = parse(
            &Market::of("BTC-USDT"),
            &resp(429, include_str!("../../fixtures/okx/rate_limited.json")),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse(
                &Market::of("ETH-USDT"),
                &resp(200, include_str!("../../fixtures/okx/ticker_ok.json"))
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(
            parse(&Market::of("BTC-USDT"), &resp(502, "<html>"))
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn parses_recorded_spot_tickers() {
        let ms = [
            Market::of("ETH-USDT"),
            Market::of("BTC-USDT"),
            Market::of("NOPE-USDT"),
        ];
        let out = parse_batch(
            &ms,
            &resp(200, include_str!("../../fixtures/okx/tickers_spot_ok.json")),
        )
        .unwrap();
        let eth = out[0].as_ref().unwrap();
        assert_eq!(eth.price.to_string(), "3050.11");
        assert_eq!(eth.observed_at_ms, Some(1_763_700_000_456));
        assert_eq!(out[1].as_ref().unwrap().bid.unwrap().to_string(), "97123.3");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "NOPE-USDT")
        );
    }

    #[test]
    fn spot_tickers_errors() {
        let ms = [Market::of("BTC-USDT"), Market::of("ETH-USDT")];
        let e = parse_batch(
            &ms,
            &resp(429, include_str!("../../fixtures/okx/rate_limited.json")),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(
                &ms,
                &resp(200, r#"{"code":"0","data":[{"instId":"BTC-USDT"}]}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        let out = parse_batch(
            &ms,
            &resp(200, r#"{"code":"0","msg":"","data":[{"instId":"BTC-USDT","last":"1","ts":"x"},{"instId":"ETH-USDT","last":"2","bidPx":"","askPx":"","ts":"5"}]}"#),
        )
        .unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().observed_at_ms, Some(5));
    }
}
