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
//!
//! Many pairs: `Ticker?pair=XBTUSD,ETHUSD`, or no `pair` for every tradeable
//! pair. The answer keys each pair under Kraken's own name, which for the
//! older assets adds class prefixes to the name asked (`XBTUSD` → `XXBTZUSD`:
//! `X` for crypto, `Z` for fiat), so each asked name is matched to its key by
//! those rules. One unknown pair in the list refuses the whole request
//! (`EQuery:Unknown asset pair`); the caller then asks for every pair, where
//! an unknown pair is only missing.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Market, Quote, Response, decimal, json, missing};
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

/// Reads the envelope of an answer for `symbol` (one pair, or the list asked).
fn envelope<'a>(symbol: &str, r: &Response<'a>) -> Result<Envelope<'a>, FetchError> {
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
    Ok(env)
}

fn quote(t: &Ticker<'_>) -> Result<Quote, FetchError> {
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

/// Parses a ticker answer.
pub fn parse(m: &Market<'_>, r: &Response<'_>) -> Result<Quote, FetchError> {
    let symbol = m.symbol;
    let env = envelope(symbol, r)?;
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
    quote(&t)
}

/// The many-pairs URL: the pairs asked, or every pair.
pub fn batch_url(base: &str, markets: &[Market<'_>], every: bool) -> String {
    if every {
        return format!("{base}/0/public/Ticker");
    }
    let pairs: Vec<&str> = markets.iter().map(|m| m.symbol).collect();
    format!("{base}/0/public/Ticker?pair={}", pairs.join(","))
}

/// The keys Kraken may answer a pair asked as `asked` under: the name itself,
/// or with class prefixes on its two assets (`XBTUSD` → `XXBTZUSD`,
/// `ETHXBT` → `XETHXXBT`, `USDTUSD` → `USDTZUSD`).
pub fn answer_keys(asked: &str) -> Vec<String> {
    let mut keys = vec![asked.to_owned()];
    for split in 2..asked.len().saturating_sub(1) {
        let Some((base, quote)) = asked.split_at_checked(split) else {
            continue;
        };
        for (b, q) in [("X", "Z"), ("X", "X"), ("", "Z"), ("X", ""), ("Z", "Z")] {
            keys.push(format!("{b}{base}{q}{quote}"));
        }
    }
    keys
}

/// Parses a many-pairs answer.
pub fn parse_batch(
    markets: &[Market<'_>],
    r: &Response<'_>,
) -> Result<Vec<Result<Quote, FetchError>>, FetchError> {
    let names: Vec<&str> = markets.iter().map(|m| m.symbol).collect();
    let env = envelope(&names.join(","), r)?;
    Ok(markets
        .iter()
        .map(|m| {
            answer_keys(m.symbol)
                .iter()
                .find_map(|k| env.result.get(k.as_str()))
                .map_or_else(|| Err(missing(m.symbol)), quote)
        })
        .collect())
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

    #[test]
    fn answer_keys_follow_krakens_class_prefixes() {
        assert!(answer_keys("XBTUSD").contains(&"XXBTZUSD".to_owned()));
        assert!(answer_keys("ETHXBT").contains(&"XETHXXBT".to_owned()));
        assert!(answer_keys("USDTUSD").contains(&"USDTZUSD".to_owned()));
        assert_eq!(answer_keys("SOLUSD")[0], "SOLUSD");
        assert_eq!(
            batch_url(
                "https://api.kraken.com",
                &[Market::of("XBTUSD"), Market::of("ETHUSD")],
                false
            ),
            "https://api.kraken.com/0/public/Ticker?pair=XBTUSD,ETHUSD"
        );
        assert_eq!(
            batch_url("https://api.kraken.com", &[Market::of("XBTUSD")], true),
            "https://api.kraken.com/0/public/Ticker"
        );
    }

    #[test]
    fn parses_recorded_many_pairs_under_krakens_own_keys() {
        let ms = [
            Market::of("XBTUSD"),
            Market::of("SOLUSD"),
            Market::of("ETHUSD"),
            Market::of("DOTUSD"),
            Market::of("USDTUSD"),
        ];
        let out = parse_batch(
            &ms,
            &resp(include_str!("../../fixtures/kraken/ticker_batch_ok.json")),
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap().price.to_string(), "97123.40000");
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "145.12000");
        assert_eq!(
            out[2].as_ref().unwrap().ask.unwrap().to_string(),
            "3050.12000"
        );
        assert!(
            matches!(&out[3], Err(FetchError::UnknownSymbol { symbol, .. }) if symbol == "DOTUSD")
        );
        assert_eq!(out[4].as_ref().unwrap().price.to_string(), "1.00010000");
    }

    #[test]
    fn many_pairs_errors_refuse_the_whole_request() {
        let ms = [Market::of("XBTUSD"), Market::of("NOPEUSD")];
        let e = parse_batch(
            &ms,
            &resp(include_str!("../../fixtures/kraken/unknown_pair.json")),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::UnknownSymbol { symbol, .. } if symbol == "XBTUSD,NOPEUSD"),
            "{e:?}"
        );
        assert!(
            parse_batch(
                &ms,
                &resp(include_str!("../../fixtures/kraken/unavailable.json"))
            )
            .unwrap_err()
            .is_transient()
        );
        assert!(matches!(
            parse_batch(&ms, &resp("{\"error\":[],\"result\":")),
            Err(FetchError::Malformed(_))
        ));
        // A pair with a broken entry spoils only itself.
        let out = parse_batch(
            &ms,
            &resp(r#"{"error":[],"result":{"XXBTZUSD":{"a":[],"b":["1"],"c":["1"]},"NOPEUSD":{"a":["2"],"b":["2"],"c":["2"]}}}"#),
        )
        .unwrap();
        assert!(matches!(out[0], Err(FetchError::Malformed(_))));
        assert_eq!(out[1].as_ref().unwrap().price.to_string(), "2");
    }
}
