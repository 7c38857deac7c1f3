//! HTX (formerly Huobi): `GET /market/detail/merged?symbol=btcusdt`.
//!
//! Success: `{"ch":"market.btcusdt.detail.merged","status":"ok","ts":…,"tick":{…}}`
//! where the tick's prices are JSON numbers (`close` is the last price; `bid`
//! and `ask` are `[price, size]` arrays), read exactly from their text; `ts` is
//! the response time. Errors: `{"status":"error","err-code":"invalid-parameter",
//! "err-msg":"invalid symbol",…}` with HTTP 200.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Market, Quote, Response, envelope, raw_decimal};
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

/// Parses a merged-detail answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let env: Envelope<'_> = envelope(r)?;
    if env.status != "ok" {
        let code = env.err_code.unwrap_or("");
        let message = format!("{code} {}", env.err_msg.unwrap_or(""));
        return Err(match code {
            "invalid-parameter" | "bad-request" => FetchError::UnknownSymbol {
                symbol: m.symbol.to_owned(),
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
        });
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
}
