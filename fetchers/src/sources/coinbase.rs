//! Coinbase Exchange: `GET /products/BTC-USD/ticker`.
//!
//! Success: `{"ask":"…","bid":"…","volume":"…","trade_id":749412360,"price":"…",
//! "size":"…","time":"2025-11-21T04:40:00.123456Z",…}`: prices as strings,
//! `trade_id` a number, `time` RFC 3339 (the last trade's time). Errors:
//! `{"message":"NotFound"}` with HTTP 404 for an unknown product, HTTP 429 when
//! over the public rate limit (10 requests/s per IP).
//!
//! Coinbase Exchange has no many-products ticker. Many products are asked
//! from the public Advanced Trade API (same order books, its own host
//! `api.coinbase.com`, public limit also 10/s per IP):
//! `GET /api/v3/brokerage/market/products?product_ids=BTC-USD&product_ids=ETH-USD`,
//! answering `{"products":[{"product_id":"BTC-USD","price":"97125.00",…}],"num_products":2}`
//! (the last trade price as a string, `""` when there is none; no time, so
//! the slot's time stands). Its errors are `{"error":"…","message":"…",
//! "error_details":"…"}`. When the source's base URL is the Exchange's own
//! production host, many-products requests go to the Advanced Trade host;
//! any other base URL (a proxy, the simulator) serves both paths.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, pick, price_only};
use crate::error::{FetchError, excerpt};

#[derive(Deserialize)]
struct Ticker<'a> {
    price: &'a str,
    bid: Option<&'a str>,
    ask: Option<&'a str>,
    time: Option<&'a str>,
}

#[derive(Deserialize)]
struct ApiError<'a> {
    message: &'a str,
}

/// The Exchange's production host, whose many-products requests go to the
/// Advanced Trade host.
const EXCHANGE_HOST: &str = "https://api.exchange.coinbase.com";
/// The Advanced Trade API's host.
const ADVANCED_HOST: &str = "https://api.coinbase.com";

#[derive(Deserialize)]
struct Products<'a> {
    #[serde(borrow)]
    products: Vec<Product<'a>>,
}

#[derive(Deserialize)]
struct Product<'a> {
    product_id: &'a str,
    price: &'a str,
}

#[derive(Deserialize)]
struct AdvancedError<'a> {
    #[serde(default)]
    error: &'a str,
    #[serde(default)]
    message: &'a str,
}

/// The many-products URL (Advanced Trade public products, repeated `product_ids`).
pub fn batch_url(base: &str, markets: &[Market<'_>]) -> String {
    let host = if base == EXCHANGE_HOST {
        ADVANCED_HOST
    } else {
        base
    };
    let ids: Vec<String> = markets
        .iter()
        .map(|m| format!("product_ids={}", m.symbol))
        .collect();
    format!("{host}/api/v3/brokerage/market/products?{}", ids.join("&"))
}

/// Parses a many-products answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    if r.status != 200 {
        let message = serde_json::from_slice::<AdvancedError<'_>>(r.body)
            .map(|e| format!("{} {}", e.error, e.message).trim().to_owned())
            .unwrap_or_else(|_| excerpt(r.body));
        return Err(FetchError::from_status(r.status, message, r.retry_after));
    }
    let answer: Products<'_> = json(r.body)?;
    let by_id: HashMap<&str, &str> = answer
        .products
        .iter()
        .map(|p| (p.product_id, p.price))
        .collect();
    Ok(pick(
        markets,
        &by_id,
        |m| m.symbol.to_owned(),
        |_, price| price_only(price),
    ))
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let symbol = m.symbol;
    if r.status != 200 {
        let message = serde_json::from_slice::<ApiError<'_>>(r.body)
            .map(|e| e.message.to_owned())
            .unwrap_or_else(|_| excerpt(r.body));
        return Err(if r.status == 404 {
            FetchError::UnknownSymbol {
                symbol: symbol.to_owned(),
                message,
            }
        } else {
            FetchError::from_status(r.status, message, r.retry_after)
        });
    }
    let t: Ticker<'_> = json(r.body)?;
    let observed_at_ms = match t.time {
        Some(time) => {
            let at = humantime::parse_rfc3339(time)
                .map_err(|e| FetchError::Malformed(format!("time {time:?}: {e}")))?;
            let ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| FetchError::Malformed(format!("time {time:?} is before 1970")))?
                .as_millis();
            Some(ms as u64)
        }
        None => None,
    };
    Ok(Quote {
        price: decimal("price", t.price)?,
        bid: t.bid.map(|b| decimal("bid", b)).transpose()?,
        ask: t.ask.map(|a| decimal("ask", a)).transpose()?,
        observed_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::super::resp;
    use super::*;

    #[test]
    fn parses_recorded_ticker_with_its_trade_time() {
        let q = parse(
            &Market::of("BTC-USD"),
            &resp(200, include_str!("../../fixtures/coinbase/ticker_ok.json")),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97125.00");
        assert_eq!(q.bid.unwrap().to_string(), "97124.99");
        assert_eq!(q.ask.unwrap().to_string(), "97125.01");
        // 2025-11-21T04:40:00.123456Z
        assert_eq!(q.observed_at_ms, Some(1_763_700_000_123));
    }

    #[test]
    fn not_found_is_an_unknown_symbol() {
        let e = parse(
            &Market::of("BTC-XYZ"),
            &resp(404, include_str!("../../fixtures/coinbase/not_found.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message == "NotFound"),
            "{e:?}"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            parse(&Market::of("BTC-USD"), &resp(200, "[]")),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("BTC-USD"),
                &resp(200, r#"{"price":"1","time":"yesterday"}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(&Market::of("BTC-USD"), &resp(200, r#"{"price":"0"}"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(
            parse(
                &Market::of("BTC-USD"),
                &resp(429, r#"{"message":"Public rate limit exceeded"}"#)
            )
            .unwrap_err()
            .is_transient()
        );
    }

    #[test]
    fn many_products_go_to_advanced_trade() {
        let ms = [Market::of("BTC-USD"), Market::of("ETH-USD")];
        assert_eq!(
            batch_url("https://api.exchange.coinbase.com", &ms),
            "https://api.coinbase.com/api/v3/brokerage/market/products?product_ids=BTC-USD&product_ids=ETH-USD"
        );
        assert_eq!(
            batch_url("http://127.0.0.1:9/coinbase", &ms[..1]),
            "http://127.0.0.1:9/coinbase/api/v3/brokerage/market/products?product_ids=BTC-USD"
        );
    }

    #[test]
    fn parses_recorded_public_products() {
        let ms = [
            Market::of("ETH-USD"),
            Market::of("BTC-USD"),
            Market::of("NOPE-USD"),
            Market::of("OLD-USD"),
        ];
        let out = parse_batch(
            &ms,
            &resp(
                200,
                include_str!("../../fixtures/coinbase/products_batch_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "3050.11");
        let btc = out[1].as_ref().unwrap();
        assert_eq!(btc.price.to_string(), "97125.00");
        assert_eq!(btc.observed_at_ms, None);
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "NOPE-USD")
        );
        // A product without a last price spoils only itself.
        assert!(
            matches!(out[3], Err(FetchError::Malformed(_))),
            "{:?}",
            out[3]
        );
    }

    #[test]
    fn many_products_errors() {
        let ms = [Market::of("BTC-USD"), Market::of("ETH-USD")];
        let e = parse_batch(
            &ms,
            &resp(
                400,
                include_str!("../../fixtures/coinbase/products_invalid_argument.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::Rejected { status: 400, message } if message.contains("INVALID_ARGUMENT")),
            "{e:?}"
        );
        assert!(
            parse_batch(&ms, &resp(429, "{}"))
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            parse_batch(
                &ms,
                &resp(200, r#"{"products":[{"product_id":"BTC-USD"}]}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
    }
}
