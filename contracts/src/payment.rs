//! What ingress asks of the payment saga, and the payment method a customer names.

use crate::ids::{BookingId, ShowId};
use serde::{Deserialize, Serialize};

/// Longest payment method name accepted, in bytes.
pub const PAYMENT_METHOD_LEN_MAX: usize = 64;

/// A gateway payment method such as `pm_card_ok`: 1 to
/// [`PAYMENT_METHOD_LEN_MAX`] ASCII letters, digits, `_` or `-`, and never anything
/// that looks like a card number ([`looks_like_card_number`]): only gateway tokens
/// are accepted, so a card number is never stored, logged or sent on. The wire form
/// is the plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentMethod(String);

/// Why a payment method is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethodError {
    /// It looks like a card number (a PAN): refused whatever its other faults.
    CardNumber,
    /// It breaks [`PaymentMethod::RULE`].
    Rule,
}

impl std::fmt::Display for PaymentMethodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PaymentMethodError::CardNumber => PaymentMethod::CARD_NUMBER_RULE,
            PaymentMethodError::Rule => PaymentMethod::RULE,
        })
    }
}

impl PaymentMethod {
    /// Why a name is refused, in the words an API client sees.
    pub const RULE: &'static str =
        "payment_method must be 1-64 letters, digits, '_' or '-' (e.g. \"pm_card_ok\")";
    /// Why a card number is refused; it never repeats the number.
    pub const CARD_NUMBER_RULE: &'static str = "payment_method looks like a card number: send the \
         payment gateway's token for the card (e.g. \"pm_card_ok\"), never the card number";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for PaymentMethod {
    type Error = PaymentMethodError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if looks_like_card_number(&s) {
            return Err(PaymentMethodError::CardNumber);
        }
        let ok = (1..=PAYMENT_METHOD_LEN_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s))
        } else {
            Err(PaymentMethodError::Rule)
        }
    }
}

/// Fewest and most digits of a card number (ISO/IEC 7812 PANs are 12 to 19).
const PAN_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// Whether `s` contains something that looks like a card number: a run of 12 to 19
/// digits, possibly separated by single spaces or dashes (`4111 1111 1111 1111`,
/// `4111-1111-1111-1111`), that passes the Luhn check. Any such run counts, so a
/// number wrapped in other text (`card:4111111111111111`) is caught too.
pub fn looks_like_card_number(s: &str) -> bool {
    pan_spans(s).next().is_some()
}

/// `s` with every card-number-looking run ([`looks_like_card_number`]) replaced by
/// `[card number removed]`: for texts that may echo what a client sent (a JSON
/// parser's error names the value it refused).
pub fn redact_card_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (start, end) in pan_spans(s) {
        out.push_str(&s[at..start]);
        out.push_str("[card number removed]");
        at = end;
    }
    out.push_str(&s[at..]);
    out
}

/// The byte ranges of card-number-looking runs of `s`, left to right. A run is
/// digits joined by single spaces or dashes; it looks like a card number when it
/// has 12 to 19 digits and passes Luhn.
fn pan_spans(s: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            // A run: digits, with single separators between digits.
            let start = i;
            let mut digits = Vec::new();
            let mut end = i;
            let mut j = i;
            while j < b.len() {
                if b[j].is_ascii_digit() {
                    digits.push(b[j] - b'0');
                    j += 1;
                    end = j;
                } else if (b[j] == b' ' || b[j] == b'-')
                    && j + 1 < b.len()
                    && b[j + 1].is_ascii_digit()
                    && j > start
                {
                    j += 1;
                } else {
                    break;
                }
            }
            i = end.max(start + 1);
            if PAN_DIGITS.contains(&digits.len()) && luhn_valid(&digits) {
                return Some((start, end));
            }
        }
        None
    })
}

/// The Luhn (mod 10) check every card number passes.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if !i.is_multiple_of(2) {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl From<PaymentMethod> for String {
    fn from(m: PaymentMethod) -> String {
        m.0
    }
}

impl std::fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer asks to pay a held booking (again, after a decline): ingress puts it
/// on the saga queue (AMQP type [`crate::topology::PAY_REQUEST_TYPE`]), the saga
/// starts a payment attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayRequest {
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub payment_method: PaymentMethod,
    /// Names the attempt this request starts, so a redelivered request starts no
    /// second one (absent in requests from before payment attempts: the saga
    /// derives one from the booking and the method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_method_is_short_plain_ascii() {
        assert!(PaymentMethod::try_from("pm_card_ok".to_owned()).is_ok());
        assert!(PaymentMethod::try_from("pm-1".to_owned()).is_ok());
        assert!(PaymentMethod::try_from("x".repeat(64)).is_ok());
        for bad in ["", "pm card", "pm;drop", "é", &"x".repeat(65)] {
            assert_eq!(
                PaymentMethod::try_from(bad.to_owned()),
                Err(PaymentMethodError::Rule),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn anything_that_looks_like_a_card_number_is_refused_as_one() {
        for pan in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "378282246310005",
            "card:4242424242424242",
            "6011 0009 9013 9424",
            "5555555555554444",
            "4000056655665556 ",
        ] {
            assert!(looks_like_card_number(pan), "{pan:?}");
            assert_eq!(
                PaymentMethod::try_from(pan.to_owned()),
                Err(PaymentMethodError::CardNumber),
                "{pan:?}"
            );
            let redacted = redact_card_numbers(&format!("invalid value: {pan} here"));
            assert!(!redacted.contains("4111111111111111") && !redacted.contains("1111 1111"));
            assert!(redacted.contains("[card number removed]"), "{redacted}");
        }
        // Not card numbers: failing Luhn, too short, tokens with a few digits.
        for fine in [
            "4111111111111112",
            "41111111111",
            "pm_card_ok",
            "pm_1234",
            "order-2026-12-07",
        ] {
            assert!(!looks_like_card_number(fine), "{fine:?}");
        }
        assert_eq!(
            PaymentMethodError::CardNumber.to_string(),
            PaymentMethod::CARD_NUMBER_RULE
        );
        assert!(!PaymentMethod::CARD_NUMBER_RULE.contains("4111"));
    }

    #[test]
    fn a_pay_request_keeps_its_wire_form_and_refuses_a_bad_method() {
        let req = PayRequest {
            booking_id: BookingId(uuid::Uuid::from_u128(1)),
            show_id: ShowId(uuid::Uuid::from_u128(2)),
            payment_method: PaymentMethod::try_from("pm_card_ok".to_owned()).unwrap(),
            request_id: None,
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "booking_id": "00000000-0000-0000-0000-000000000001",
                "show_id": "00000000-0000-0000-0000-000000000002",
                "payment_method": "pm_card_ok",
            })
        );
        assert_eq!(serde_json::from_value::<PayRequest>(json).unwrap(), req);
        let bad = serde_json::json!({
            "booking_id": "00000000-0000-0000-0000-000000000001",
            "show_id": "00000000-0000-0000-0000-000000000002",
            "payment_method": "no spaces",
        });
        assert!(serde_json::from_value::<PayRequest>(bad).is_err());
    }
}
