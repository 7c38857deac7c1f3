//! CoinGecko: `GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true`.
//!
//! The symbol is CoinGecko's coin id (`bitcoin`), the quote the lower-case
//! vs currency. Success: `{"bitcoin":{"usd":97123,"last_updated_at":1763699990}}`
//! (the price a JSON number, read exactly from its text; the time in Unix
//! seconds). An unknown id answers `{}` with HTTP 200. Over the public rate
//! limit: HTTP 429 with `{"status":{"error_code":429,"error_message":…}}`.
//!
//! Many coins: `ids=bitcoin,ethereum` (and every vs currency asked, comma
//! separated) answers one entry per known id; unknown ids are left out.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Market, Quote, Response, json, raw_decimal};
use crate::error::{FetchError, excerpt};

#[derive(Deserialize)]
struct ApiError<'a> {
    #[serde(borrow)]
    status: Status<'a>,
}

#[derive(Deserialize)]
struct Status<'a> {
    error_code: u16,
    error_message: &'a str,
}

/// The error of a non-200 answer.
fn error(r: &Response<'_>) -> FetchError {
    let message = serde_json::from_slice::<ApiError<'_>>(r.body)
        .map(|e| format!("{} {}", e.status.error_code, e.status.error_message))
        .unwrap_or_else(|_| excerpt(r.body));
    FetchError::from_status(r.status, message, r.retry_after)
}

/// The many-coins URL: every id asked, every vs currency they are asked in.
pub fn batch_url(base: &str, markets: &[Market<'_>]) -> String {
    let ids: Vec<&str> = markets.iter().map(|m| m.symbol).collect();
    let mut vs: Vec<String> = markets
        .iter()
        .map(|m| m.quote.to_ascii_lowercase())
        .collect();
    vs.sort();
    vs.dedup();
    format!(
        "{base}/api/v3/simple/price?ids={}&vs_currencies={}&include_last_updated_at=true",
        ids.join(","),
        vs.join(",")
    )
}

/// Parses a many-coins answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    if r.status != 200 {
        return Err(error(r));
    }
    let coins: BTreeMap<&str, BTreeMap<&str, &RawValue>> = json(r.body)?;
    Ok(markets
        .iter()
        .map(|m| match coins.get(m.symbol) {
            Some(fields) => read(m, fields),
            None => Err(super::missing(m.symbol)),
        })
        .collect())
}

/// Parses a simple-price answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    if r.status != 200 {
        return Err(error(r));
    }
    let coins: BTreeMap<&str, BTreeMap<&str, &RawValue>> = json(r.body)?;
    let fields = coins
        .get(m.symbol)
        .ok_or_else(|| FetchError::UnknownSymbol {
            symbol: m.symbol.to_owned(),
            message: "the coin id is not in the answer".into(),
        })?;
    read(m, fields)
}

fn read(m: &Market<'_>, fields: &BTreeMap<&str, &RawValue>) -> Result<Quote, FetchError> {
    let vs = m.quote.to_ascii_lowercase();
    let price = fields
        .get(vs.as_str())
        .ok_or_else(|| FetchError::UnknownSymbol {
            symbol: format!("{}/{vs}", m.symbol),
            message: format!("no {vs} price"),
        })?;
    let updated = fields
        .get("last_updated_at")
        .and_then(|t| t.get().parse::<u64>().ok())
        .map(|s| s * 1000);
    Ok(Quote {
        price: raw_decimal(&vs, price)?,
        bid: None,
        ask: None,
        observed_at_ms: updated,
    })
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_simple_price() {
        let q = parse(
            &Market::of("bitcoin"),
            &resp(
                200,
                include_str!("../../fixtures/coingecko/simple_price_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123");
        assert_eq!(q.observed_at_ms, Some(1_763_699_990_000));
        let q = parse(
            &Market::of("ethereum"),
            &resp(
                200,
                include_str!("../../fixtures/coingecko/simple_price_eth_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "3050.11");
    }

    #[test]
    fn unknown_id_and_rate_limit() {
        let e = parse(
            &Market::of("notacoin"),
            &resp(
                200,
                include_str!("../../fixtures/coingecko/unknown_id.json"),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::UnknownSymbol { .. }) && !e.is_transient());
        let e = parse(
            &Market::of("bitcoin"),
            &resp(
                429,
                include_str!("../../fixtures/coingecko/rate_limited.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::RateLimited { message, .. } if message.contains("exceeded the Rate Limit"))
        );
        let eur = Market {
            symbol: "bitcoin",
            quote: "EUR",
        };
        assert!(matches!(
            parse(
                &eur,
                &resp(
                    200,
                    include_str!("../../fixtures/coingecko/simple_price_ok.json")
                )
            ),
            Err(FetchError::UnknownSymbol { .. })
        ));
    }

    #[test]
    fn parses_recorded_many_coins() {
        let ms = [
            Market::of("ethereum"),
            Market::of("bitcoin"),
            Market::of("notacoin"),
            Market {
                symbol: "bitcoin",
                quote: "EUR",
            },
        ];
        assert_eq!(
            batch_url("https://api.coingecko.com", &ms),
            "https://api.coingecko.com/api/v3/simple/price?ids=ethereum,bitcoin,notacoin,bitcoin&vs_currencies=eur,usd&include_last_updated_at=true"
        );
        let out = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/coingecko/simple_price_batch_ok.json"),
            ),
        )
        .unwrap();
        let eth = out[0].as_ref().unwrap();
        assert_eq!(eth.price.to_string(), "3050.11");
        assert_eq!(eth.observed_at_ms, Some(1_763_699_995_000));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "97123");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "notacoin")
        );
        assert_eq!(out[3].as_ref().unwrap().price.to_string(), "89811.5");
    }

    #[test]
    fn many_coins_errors() {
        let ms = [Market::of("bitcoin"), Market::of("ethereum")];
        let e = parse_batch(
            &ms,
            &resp(
                429,
                include_str!("../../fixtures/coingecko/rate_limited.json"),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::RateLimited { .. }));
        assert!(matches!(
            parse_batch(&ms, &resp(200, "[]")),
            Err(FetchError::Malformed(_))
        ));
        let out = parse_batch(
            &ms,
            &resp(200, r#"{"bitcoin":{"usd":"abc"},"ethereum":{"usd":2}}"#),
        )
        .unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "2");
    }
}
