//! Binance spot: `GET /api/v3/ticker/price?symbol=BTCUSDT`.
//!
//! Success: `{"symbol":"BTCUSDT","price":"97123.45000000"}` (price as a string,
//! no timestamp). Errors: `{"code":-1121,"msg":"Invalid symbol."}` with HTTP
//! 400; HTTP 429 (code -1003) when over the request-weight limit, and 418 when
//! the IP is banned for ignoring 429s, both with `Retry-After`.

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json};
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

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let symbol = m.symbol;
    if r.status != 200 {
        let (code, message) = match serde_json::from_slice::<ApiError<'_>>(r.body) {
            Ok(e) => (Some(e.code), e.msg.to_owned()),
            Err(_) => (None, excerpt(r.body)),
        };
        return Err(match code {
            // -1121 Invalid symbol; -1100/-1102 malformed or missing symbol parameter.
            Some(-1121 | -1100 | -1102) => FetchError::UnknownSymbol {
                symbol: symbol.to_owned(),
                message,
            },
            _ => FetchError::from_status(r.status, message, r.retry_after),
        });
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
}
