//! Money: an amount in minor units of a currency, its cancellation fee and its
//! display.
//!
//! Events and rows carry the two parts as `amount` and `currency` fields (their
//! stored and published form, pinned by the sequencer's determinism digests); code
//! that computes or shows money goes through [`Money`], so that the fee arithmetic
//! and the way an amount is written exist once.

use serde::{Deserialize, Serialize};

/// An amount of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units (paise for INR, cents for USD, yen for JPY).
    pub amount: i64,
    /// ISO 4217 code, e.g. `INR`.
    pub currency: String,
}

impl Money {
    pub fn new(amount: i64, currency: impl Into<String>) -> Self {
        Self {
            amount,
            currency: currency.into(),
        }
    }

    /// Splits a paid amount on cancellation: the fee kept is `fee_permille`
    /// thousandths of it (at most all of it), rounded down; the rest is refunded.
    /// Returns (fee, refund). The sequencer refunds by this rule and ingress shows
    /// the buyer the same figures before they cancel.
    pub fn split_fee(&self, fee_permille: u16) -> (Money, Money) {
        let fee = self
            .amount
            .saturating_mul(i64::from(fee_permille.min(1000)))
            / 1000;
        (
            Money::new(fee, self.currency.clone()),
            Money::new(self.amount - fee, self.currency.clone()),
        )
    }

    /// Digits after the decimal point in the currency's major unit (ISO 4217).
    pub fn exponent(&self) -> u32 {
        match self.currency.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

/// `INR 700.00`, `JPY 1500`, `KWD 1.250`.
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exp = self.exponent();
        if exp == 0 {
            return write!(f, "{} {}", self.currency, self.amount);
        }
        let unit = 10u64.pow(exp);
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        write!(
            f,
            "{} {sign}{}.{:0width$}",
            self.currency,
            abs / unit,
            abs % unit,
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fee_is_rounded_down_and_the_rest_refunded() {
        let paid = Money::new(70_001, "INR");
        let (fee, refund) = paid.split_fee(100);
        assert_eq!((fee.amount, refund.amount), (7_000, 63_001));
        assert_eq!(fee.amount + refund.amount, paid.amount);
        assert_eq!(refund.currency, "INR");
        // No more than all of it, and nothing for a free cancellation.
        assert_eq!(paid.split_fee(5_000).1.amount, 0);
        assert_eq!(paid.split_fee(0).0.amount, 0);
        // No overflow on an absurd amount.
        let huge = Money::new(i64::MAX, "INR").split_fee(1000);
        assert_eq!(huge.1.amount, i64::MAX - huge.0.amount);
    }

    #[test]
    fn an_amount_is_written_in_the_currency_s_major_unit() {
        assert_eq!(Money::new(70_000, "INR").to_string(), "INR 700.00");
        assert_eq!(Money::new(5, "USD").to_string(), "USD 0.05");
        assert_eq!(Money::new(1_500, "JPY").to_string(), "JPY 1500");
        assert_eq!(Money::new(1_250, "KWD").to_string(), "KWD 1.250");
        assert_eq!(Money::new(-150, "INR").to_string(), "INR -1.50");
    }

    #[test]
    fn on_the_wire_it_is_an_amount_and_a_currency() {
        let m = Money::new(700, "INR");
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json, serde_json::json!({"amount": 700, "currency": "INR"}));
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), m);
    }
}
