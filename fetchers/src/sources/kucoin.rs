//! KuCoin: `GET /api/v1/market/orderbook/level1?symbol=BTC-USDT`.
//!
//! Envelope `{"code":"200000","data":{…}}` (`code` a string, `"200000"` is
//! success). Level 1 has `price` (last trade), `bestBid`, `bestAsk` as strings
//! and `time` (ms, a number: the book's time). An unknown symbol answers
//! success with `"data":null`; other errors carry their own code (`400100`
//! bad parameter, `429000` too many requests).

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, envelope};
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

/// Parses a level-1 answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let env: Envelope<'_> = envelope(r)?;
    if env.code != "200000" {
        let message = format!("{} {}", env.code, env.msg);
        return Err(match env.code {
            "429000" => FetchError::RateLimited {
                status: r.status,
                retry_after: r.retry_after,
                message,
            },
            "400100" => FetchError::UnknownSymbol {
                symbol: m.symbol.to_owned(),
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
        });
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
}
