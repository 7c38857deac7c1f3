//! Kraken: `GET /0/public/Ticker?pair=XBTUSD`.
//!
//! Kraken answers under its own name for the pair (`XBTUSD` → `XXBTZUSD`,
//! `ETHUSD` → `XETHZUSD`), so the parser takes the single entry of `result`
//! rather than looking up the requested name. Fields are arrays of strings:
//! `a` = [ask, whole-lot volume, lot volume], `b` = bid likewise,
//! `c` = [last trade price, lot volume]; `t` holds integers and `o` a bare
//! string. Errors come with HTTP 200 in the `error` array:
//! `EQuery:Unknown asset pair`, `EService:Unavailable`, `EService:Busy`,
//! `EGeneral:Too many requests`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json};
use crate::error::FetchError;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    error: Vec<&'a str>,
    #[serde(default, borrow)]
    result: BTreeMap<&'a str, Ticker<'a>>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    #[serde(borrow)]
    a: Vec<&'a str>,
    #[serde(borrow)]
    b: Vec<&'a str>,
    #[serde(borrow)]
    c: Vec<&'a str>,
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let symbol = m.symbol;
    if r.status != 200 {
        return Err(FetchError::from_status(
            r.status,
            crate::error::excerpt(r.body),
            r.retry_after,
        ));
    }
    let env: Envelope<'_> = json(r.body)?;
    if let Some(first) = env.error.first() {
        let message = env.error.join("; ");
        return Err(match *first {
            e if e.starts_with("EQuery:Unknown asset pair") => FetchError::UnknownSymbol {
                symbol: symbol.to_owned(),
                message,
            },
            e if e.starts_with("EService:") => FetchError::Unavailable {
                status: 200,
                message,
            },
            e if e.starts_with("EGeneral:Too many requests")
                || e.starts_with("EAPI:Rate limit") =>
            {
                FetchError::RateLimited {
                    status: 200,
                    retry_after: r.retry_after,
                    message,
                }
            }
            _ => FetchError::Rejected {
                status: 200,
                message,
            },
        });
    }
    let mut entries = env.result.into_iter();
    let (_, t) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => return Err(FetchError::Malformed("empty result".into())),
        (Some(_), Some(_)) => {
            return Err(FetchError::Malformed(format!(
                "several pairs in result, asked for {symbol}"
            )));
        }
    };
    let field = |name: &str, v: &[&str]| -> Result<rust_decimal::Decimal, FetchError> {
        let text = v
            .first()
            .ok_or_else(|| FetchError::Malformed(format!("{name} is empty")))?;
        decimal(name, text)
    };
    Ok(Quote {
        price: field("c", &t.c)?,
        bid: Some(field("b", &t.b)?),
        ask: Some(field("a", &t.a)?),
        observed_at_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kraken answers 200 even for errors.
    fn resp(body: &'static str) -> Response<'static> {
        super::super::resp(200, body)
    }

    #[test]
    fn parses_recorded_ticker_under_krakens_own_key() {
        let q = parse(
            &Market::of("XBTUSD"),
            &resp(include_str!("../../fixtures/kraken/ticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.40000");
        assert_eq!(q.bid.unwrap().to_string(), "97123.40000");
        assert_eq!(q.ask.unwrap().to_string(), "97123.50000");
        let eth = parse(
            &Market::of("ETHUSD"),
            &resp(include_str!("../../fixtures/kraken/ticker_eth_ok.json")),
        )
        .unwrap();
        assert_eq!(eth.price.to_string(), "3050.11000");
    }

    #[test]
    fn error_array_is_classified() {
        let e = parse(
            &Market::of("XBTXYZ"),
            &resp(include_str!("../../fixtures/kraken/unknown_pair.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message == "EQuery:Unknown asset pair")
        );
        assert!(!e.is_transient());
        let e = parse(
            &Market::of("XBTUSD"),
            &resp(include_str!("../../fixtures/kraken/unavailable.json")),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::Unavailable { .. }));
        assert!(e.is_transient());
        let e = parse(
            &Market::of("XBTUSD"),
            &resp(r#"{"error":["EGeneral:Too many requests"]}"#),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            parse(&Market::of("XBTUSD"), &resp(r#"{"error":[],"result":{}}"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("XBTUSD"),
                &resp(r#"{"error":[],"result":{"XXBTZUSD":{"a":[],"b":["1"],"c":["1"]}}}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("XBTUSD"),
                &resp(r#"{"error":[],"result":{"XXBTZUSD":{"a":[1],"b":["1"],"c":["1"]}}}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(&Market::of("XBTUSD"), &resp("not json")),
            Err(FetchError::Malformed(_))
        ));
    }
}
