//! What ingress asks of the payment saga, and the payment method a customer names.

use crate::ids::{BookingId, ShowId};
use serde::{Deserialize, Serialize};

/// Longest payment method name accepted, in bytes.
pub const PAYMENT_METHOD_LEN_MAX: usize = 64;

/// A gateway payment method such as `pm_card_ok`: 1 to
/// [`PAYMENT_METHOD_LEN_MAX`] ASCII letters, digits, `_` or `-`. The wire form is the
/// plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentMethod(String);

impl PaymentMethod {
    /// Why a name is refused, in the words an API client sees.
    pub const RULE: &'static str =
        "payment_method must be 1-64 letters, digits, '_' or '-' (e.g. \"pm_card_ok\")";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for PaymentMethod {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok = (1..=PAYMENT_METHOD_LEN_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(Self(s)) } else { Err(Self::RULE) }
    }
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

/// A customer asks to pay a held booking that was created without a method:
/// ingress puts it on the saga queue (AMQP type
/// [`crate::topology::PAY_REQUEST_TYPE`]), the saga starts the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayRequest {
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub payment_method: PaymentMethod,
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
                Err(PaymentMethod::RULE),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_pay_request_keeps_its_wire_form_and_refuses_a_bad_method() {
        let req = PayRequest {
            booking_id: BookingId(uuid::Uuid::from_u128(1)),
            show_id: ShowId(uuid::Uuid::from_u128(2)),
            payment_method: PaymentMethod::try_from("pm_card_ok".to_owned()).unwrap(),
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
