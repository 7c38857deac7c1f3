//! Exact price arithmetic: decimal prices scaled to the integers stored on
//! chain (`price * 10^decimals`) and back. No floating point touches a price.

use rust_decimal::{Decimal, RoundingStrategy};

/// A price that cannot be represented on chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// More than 28 decimals were asked for.
    #[error("decimals {0} out of range (max 18)")]
    Decimals(u32),
    /// The scaled value does not fit the on-chain integer.
    #[error("price {0} overflows when scaled by 10^{1}")]
    Overflow(Decimal, u32),
}

/// Scales `price` to an integer with `decimals` digits, rounding half to even.
pub fn to_scaled(price: Decimal, decimals: u32) -> Result<i128, PriceError> {
    if decimals > 18 {
        return Err(PriceError::Decimals(decimals));
    }
    let rounded = price.round_dp_with_strategy(decimals, RoundingStrategy::MidpointNearestEven);
    let factor = Decimal::from_i128_with_scale(10i128.pow(decimals), 0);
    let scaled = rounded
        .checked_mul(factor)
        .ok_or(PriceError::Overflow(price, decimals))?;
    // `scaled` is an integer now; its mantissa divided by 10^scale is exact.
    let normalized = scaled.normalize();
    let mantissa = normalized.mantissa();
    let scale = normalized.scale();
    Ok(mantissa / 10i128.pow(scale))
}

/// The decimal value of an on-chain integer with `decimals` digits.
pub fn from_scaled(value: i128, decimals: u32) -> Result<Decimal, PriceError> {
    if decimals > 18 {
        return Err(PriceError::Decimals(decimals));
    }
    Decimal::try_from_i128_with_scale(value, decimals)
        .map_err(|_| PriceError::Overflow(Decimal::ZERO, decimals))
}

/// A bound the hub can store: `mantissa * 10^exponent` with a 16-bit mantissa
/// and an exponent of at most 33 (see `OracleHub._encodeBound`).
pub fn bound_representable(scaled: i128) -> bool {
    if scaled < 0 {
        return false;
    }
    let mut v = scaled as u128;
    let mut exp = 0;
    while v > 0xFFFF {
        if !v.is_multiple_of(10) {
            return false;
        }
        v /= 10;
        exp += 1;
    }
    exp <= 33
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn scales_exactly() {
        assert_eq!(to_scaled(d("97123.40"), 8).unwrap(), 9_712_340_000_000);
        assert_eq!(to_scaled(d("0.00000001"), 8).unwrap(), 1);
        assert_eq!(to_scaled(d("3000"), 0).unwrap(), 3000);
    }

    #[test]
    fn rounds_half_to_even() {
        assert_eq!(to_scaled(d("1.000000005"), 8).unwrap(), 100_000_000);
        assert_eq!(to_scaled(d("1.000000015"), 8).unwrap(), 100_000_002);
    }

    #[test]
    fn round_trips() {
        let v = to_scaled(d("97123.4"), 8).unwrap();
        assert_eq!(from_scaled(v, 8).unwrap(), d("97123.40000000"));
    }

    #[test]
    fn bounds_follow_the_hubs_encoding() {
        assert!(bound_representable(0));
        assert!(bound_representable(65_535));
        assert!(bound_representable(100_000_000_000)); // 1000 with 8 decimals
        assert!(bound_representable(12_345 * 10i128.pow(30)));
        assert!(!bound_representable(65_536 + 1));
        assert!(!bound_representable(123_456_789));
        assert!(bound_representable(10i128.pow(37))); // 10000 * 10^33
        assert!(!bound_representable(10i128.pow(38))); // exponent 34
        assert!(!bound_representable(-1));
    }

    #[test]
    fn rejects_bad_decimals() {
        assert!(to_scaled(d("1"), 19).is_err());
    }
}
