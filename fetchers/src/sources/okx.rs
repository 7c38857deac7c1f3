//! OKX: `GET /api/v5/market/ticker?instId=BTC-USDT`.
//!
//! Every answer is an envelope `{"code":"0","msg":"","data":[…]}` whose `code`
//! is a string; `"0"` is success. The ticker has `last`, `bidPx`, `askPx` and
//! `ts` (ms, a string: when the ticker data was produced). Errors: code
//! `51001` "Instrument ID does not exist"; `50011` "Too Many Requests" (HTTP 429);
//! `50001`/`50013` service unavailable / busy.

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json};
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

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
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
                symbol: m.symbol.to_owned(),
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
    let t = env
        .data
        .into_iter()
        .find(|t| t.inst_id == m.symbol)
        .ok_or_else(|| FetchError::Malformed(format!("no ticker for {} in data", m.symbol)))?;
    let ts: u64 =
        t.ts.parse()
            .map_err(|_| FetchError::Malformed(format!("ts {:?}", t.ts)))?;
    Ok(Quote {
        price: decimal("last", t.last)?,
        bid: t
            .bid
            .filter(|b| !b.is_empty())
            .map(|b| decimal("bidPx", b))
            .transpose()?,
        ask: t
            .ask
            .filter(|a| !a.is_empty())
            .map(|a| decimal("askPx", a))
            .transpose()?,
        observed_at_ms: Some(ts),
    })
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
}
