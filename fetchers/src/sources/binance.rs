//! Binance spot: `GET /api/v3/ticker/price?symbol=BTCUSDT` (weight 2), or for
//! many symbols `?symbols=["BTCUSDT","ETHUSDT"]` URL-encoded, or no parameter
//! for every symbol (weight 4 either way).
//!
//! Success: `{"symbol":"BTCUSDT","price":"97123.45000000"}` (price as a string,
//! no timestamp); many symbols answer an array of those. Errors:
//! `{"code":-1121,"msg":"Invalid symbol."}` with HTTP 400, for a list too when
//! any one of its symbols is unknown (the whole list is refused: the caller
//! asks for every symbol instead); HTTP 429 (code -1003) when over the
//! request-weight limit, and 418 when the IP is banned for ignoring 429s, both
//! with `Retry-After`.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, pick, price_only};
use crate::error::{FetchError, excerpt};

#[derive(Deserialize)]
struct Ticker<'a> {
    symbol: &'a str,
    price: &'a str,
}

#[derive(Deserialize)]
struct ApiError<'a> {
    code: i64,
    msg: &'a str,
}

/// The error of a non-200 answer, naming `symbol` (one, or the list asked).
fn error(symbol: &str, r: &Response<'_>) -> FetchError {
    let (code, message) = match serde_json::from_slice::<ApiError<'_>>(r.body) {
        Ok(e) => (Some(e.code), e.msg.to_owned()),
        Err(_) => (None, excerpt(r.body)),
    };
    match code {
        // -1121 Invalid symbol; -1100/-1102 malformed or missing symbol parameter.
        Some(-1121 | -1100 | -1102) => FetchError::UnknownSymbol {
            symbol: symbol.to_owned(),
            message,
        },
        _ => FetchError::from_status(r.status, message, r.retry_after),
    }
}

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let symbol = m.symbol;
    if r.status != 200 {
        return Err(error(symbol, r));
    }
    let t: Ticker<'_> = json(r.body)?;
    if t.symbol != symbol {
        return Err(FetchError::Malformed(format!(
            "answer is for {}, asked for {symbol}",
            t.symbol
        )));
    }
    Ok(Quote {
        price: decimal("price", t.price)?,
        bid: None,
        ask: None,
        observed_at_ms: None,
    })
}

/// The many-symbols URL: the list as a URL-encoded JSON array, or every symbol.
pub fn batch_url(base: &str, markets: &[Market<'_>], every: bool) -> String {
    if every {
        return format!("{base}/api/v3/ticker/price");
    }
    let list: Vec<String> = markets
        .iter()
        .map(|m| format!("%22{}%22", m.symbol))
        .collect();
    format!(
        "{base}/api/v3/ticker/price?symbols=%5B{}%5D",
        list.join(",")
    )
}

/// Parses a many-symbols answer (an array of tickers).
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    if r.status != 200 {
        let names: Vec<&str> = markets.iter().map(|m| m.symbol).collect();
        return Err(error(&names.join(","), r));
    }
    let tickers: Vec<Ticker<'_>> = json(r.body)?;
    let by_symbol: HashMap<&str, &str> = tickers.iter().map(|t| (t.symbol, t.price)).collect();
    Ok(pick(
        markets,
        &by_symbol,
        |m| m.symbol.to_owned(),
        |_, price| price_only(price),
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
            &resp(
                200,
                include_str!("../../fixtures/binance/ticker_price_ok.json"),
            ),
        )
        .unwrap();
        assert_eq!(q.price.to_string(), "97123.45000000");
        assert_eq!(q.bid, None);
        assert_eq!(q.observed_at_ms, None);
    }

    #[test]
    fn invalid_symbol_is_permanent_with_the_exchange_text() {
        let e = parse(
            &Market::of("BTCXYZ"),
            &resp(
                400,
                include_str!("../../fixtures/binance/invalid_symbol.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { message, .. } if message == "Invalid symbol."),
            "{e:?}"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn rate_limit_is_transient_and_keeps_retry_after() {
        let r = Response {
            status: 429,
            body: include_str!("../../fixtures/binance/rate_limited.json").as_bytes(),
            retry_after: Some(std::time::Duration::from_secs(7)),
        };
        let e = parse(&Market::of("BTCUSDT"), &r).unwrap_err();
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
        let banned = parse(&Market::of("BTCUSDT"), &resp(418, "")).unwrap_err();
        assert!(matches!(
            banned,
            FetchError::RateLimited { status: 418, .. }
        ));
    }

    #[test]
    fn rejects_malformed_and_mismatched_answers() {
        assert!(matches!(
            parse(
                &Market::of("BTCUSDT"),
                &resp(200, "{\"symbol\":\"BTCUSDT\"")
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("BTCUSDT"),
                &resp(200, r#"{"symbol":"BTCUSDT","price":"abc"}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("BTCUSDT"),
                &resp(200, r#"{"symbol":"BTCUSDT","price":97123.4}"#)
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &Market::of("ETHUSDT"),
                &resp(
                    200,
                    include_str!("../../fixtures/binance/ticker_price_ok.json")
                )
            ),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse(&Market::of("BTCUSDT"), &resp(503, "<html>")),
            Err(FetchError::Unavailable { status: 503, .. })
        ));
    }

    fn markets<'a>(symbols: &[&'a str]) -> Vec<Market<'a>> {
        symbols
            .iter()
            .map(|s| Market {
                symbol: s,
                quote: "USDT",
            })
            .collect()
    }

    #[test]
    fn many_symbols_url_is_an_encoded_json_array_or_every_symbol() {
        let ms = markets(&["BTCUSDT", "ETHUSDT"]);
        assert_eq!(
            batch_url("https://api.binance.com", &ms, false),
            "https://api.binance.com/api/v3/ticker/price?symbols=%5B%22BTCUSDT%22,%22ETHUSDT%22%5D"
        );
        assert_eq!(
            batch_url("https://api.binance.com", &ms, true),
            "https://api.binance.com/api/v3/ticker/price"
        );
    }

    #[test]
    fn parses_recorded_batch_and_reports_the_missing_symbol_alone() {
        let body = include_str!("../../fixtures/binance/ticker_price_batch_ok.json");
        let ms = markets(&["BTCUSDT", "SOLUSDT", "NOPEUSDT", "ETHUSDT"]);
        let out = parse_batch(&ms, &resp(200, body)).unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "97123.45000000");
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "145.12000000");
        assert!(
            matches!(&out[2], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "NOPEUSDT"),
            "{:?}",
            out[2]
        );
        assert_eq!(out[3].as_ref().unwrap().price.to_string(), "3050.11000000");
    }

    #[test]
    fn a_list_refused_for_one_unknown_symbol_is_a_whole_request_error() {
        let ms = markets(&["BTCUSDT", "NOPEUSDT"]);
        let e = parse_batch(
            &ms,
            &resp(
                400,
                include_str!("../../fixtures/binance/invalid_symbol.json"),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { symbol, .. } if symbol == "BTCUSDT,NOPEUSDT"),
            "{e:?}"
        );
        let r = Response {
            status: 429,
            body: include_str!("../../fixtures/binance/rate_limited.json").as_bytes(),
            retry_after: Some(std::time::Duration::from_secs(3)),
        };
        assert_eq!(
            parse_batch(&ms, &r).unwrap_err().retry_after(),
            Some(std::time::Duration::from_secs(3))
        );
        assert!(matches!(
            parse_batch(&ms, &resp(200, r#"[{"symbol":"BTCUSDT","price":"1"}"#)),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            parse_batch(&ms, &resp(200, r#"{"symbol":"BTCUSDT","price":"1"}"#)),
            Err(FetchError::Malformed(_))
        ));
        // One bad entry spoils only its own market.
        let out = parse_batch(
            &ms,
            &resp(
                200,
                r#"[{"symbol":"BTCUSDT","price":"abc"},{"symbol":"NOPEUSDT","price":"2.5"}]"#,
            ),
        )
        .unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "2.5");
    }
}
