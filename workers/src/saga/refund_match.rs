//! Whether a refund the gateway returned is the one the saga asked for: a refund of
//! the booking's own payment (its recorded id, the gateway's metadata naming the
//! booking, its amount and currency: [`payment_match`](super::payment_match)), of
//! the amount the saga requested, in the payment's currency, and (once the gateway's
//! answer to the request was recorded) with the recorded refund id. A signed
//! `refund.succeeded` naming booking X with booking Y's refund, or with an id the
//! gateway does not know, must never end X `refunded`: the saga ignores it and says so.

use super::payment_match::{self, Recorded};
use contracts::BookingId;
use payment_adapter::{PaymentIntent, Refund};

/// What the saga asked the gateway to refund (its `payments` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The attempt whose payment is refunded.
    pub payment: Recorded,
    /// The gateway's refund id, once its answer to the request was recorded.
    pub refund_id: Option<String>,
    /// Minor units asked back.
    pub amount: i64,
}

/// `Ok` when `refund` of payment `pi` is the refund `booking` asked for; else why
/// not (for the log).
pub fn check(
    booking: BookingId,
    requested: &Requested,
    refund: &Refund,
    pi: &PaymentIntent,
) -> Result<(), String> {
    if refund.payment_intent != pi.id {
        return Err(format!(
            "refund {} is of payment {}, not {}",
            refund.id, refund.payment_intent, pi.id
        ));
    }
    payment_match::check(booking, &requested.payment, pi)?;
    if let Some(id) = &requested.refund_id
        && *id != refund.id
    {
        return Err(format!(
            "refund {} is not the booking's refund {id}",
            refund.id
        ));
    }
    if refund.amount != requested.amount
        || !refund
            .currency
            .eq_ignore_ascii_case(&requested.payment.currency)
    {
        return Err(format!(
            "refund {} is {} {}, the booking asked for {} {}",
            refund.id, refund.amount, refund.currency, requested.amount, requested.payment.currency
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use payment_adapter::model::IntentMetadata;
    use payment_adapter::{IntentStatus, RefundStatus};

    fn booking(n: u128) -> BookingId {
        BookingId(uuid::Uuid::from_u128(n))
    }

    fn intent(id: &str, of: BookingId) -> PaymentIntent {
        PaymentIntent {
            id: id.into(),
            object: "payment_intent".into(),
            amount: 50_000,
            currency: "INR".into(),
            status: IntentStatus::Succeeded,
            payment_method: "pm_card_ok".into(),
            metadata: IntentMetadata { booking_id: of.0 },
            amount_refunded: 45_000,
            last_payment_error: None,
            created: 0,
        }
    }

    fn refund(id: &str, of: &str, amount: i64) -> Refund {
        Refund {
            id: id.into(),
            object: "refund".into(),
            payment_intent: of.into(),
            amount,
            currency: "inr".into(),
            status: RefundStatus::Succeeded,
            failure_reason: None,
        }
    }

    fn requested(refund_id: Option<&str>) -> Requested {
        Requested {
            payment: Recorded {
                payment_id: Some("pi_x".into()),
                amount: 50_000,
                currency: "INR".into(),
            },
            refund_id: refund_id.map(str::to_owned),
            amount: 45_000,
        }
    }

    #[test]
    fn the_bookings_own_refund_matches_with_or_without_a_recorded_id() {
        let x = booking(1);
        let pi = intent("pi_x", x);
        let re = refund("re_x", "pi_x", 45_000);
        assert_eq!(check(x, &requested(Some("re_x")), &re, &pi), Ok(()));
        assert_eq!(check(x, &requested(None), &re, &pi), Ok(()));
    }

    #[test]
    fn another_bookings_refund_never_matches() {
        let (x, y) = (booking(1), booking(2));
        // Y's refund of Y's payment, named in a webhook about X.
        let of_y = refund("re_y", "pi_y", 45_000);
        assert!(check(x, &requested(None), &of_y, &intent("pi_y", y)).is_err());
        // A refund of X's payment, but not the one recorded for it.
        let other = refund("re_other", "pi_x", 45_000);
        assert!(check(x, &requested(Some("re_x")), &other, &intent("pi_x", x)).is_err());
        // A refund whose payment is not the one fetched.
        let re = refund("re_x", "pi_y", 45_000);
        assert!(check(x, &requested(None), &re, &intent("pi_x", x)).is_err());
    }

    #[test]
    fn a_different_amount_or_currency_never_matches() {
        let x = booking(1);
        let pi = intent("pi_x", x);
        let less = refund("re_x", "pi_x", 44_999);
        assert!(check(x, &requested(None), &less, &pi).is_err());
        let mut usd = refund("re_x", "pi_x", 45_000);
        usd.currency = "USD".into();
        assert!(check(x, &requested(None), &usd, &pi).is_err());
    }
}
