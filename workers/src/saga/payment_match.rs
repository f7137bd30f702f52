//! Whether a payment the gateway returned belongs to a booking: the saga confirms
//! a booking only with a payment whose id is the one recorded for it (when one is),
//! whose gateway metadata names it, and whose amount and currency are the booking's.
//! A signed webhook naming booking X with booking Y's payment id must never turn X
//! `confirmed` (nor fail it): the saga ignores such a payment and says so.

use contracts::BookingId;
use payment_adapter::PaymentIntent;

/// What the saga recorded when it created the booking's payment (`payments` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The gateway's id, once its create call answered.
    pub payment_id: Option<String>,
    pub amount: i64,
    pub currency: String,
}

/// `Ok` when `pi` is the payment of `booking`; else why not (for the log).
pub fn check(booking: BookingId, recorded: &Recorded, pi: &PaymentIntent) -> Result<(), String> {
    if let Some(id) = &recorded.payment_id
        && *id != pi.id
    {
        return Err(format!(
            "payment {} is not the booking's payment {id}",
            pi.id
        ));
    }
    if pi.metadata.booking_id != booking.0 {
        return Err(format!(
            "payment {} belongs to booking {}",
            pi.id, pi.metadata.booking_id
        ));
    }
    // Currency codes: providers differ in case (Stripe answers lowercase).
    if pi.amount != recorded.amount || !pi.currency.eq_ignore_ascii_case(&recorded.currency) {
        return Err(format!(
            "payment {} is {} {}, the booking's is {} {}",
            pi.id, pi.amount, pi.currency, recorded.amount, recorded.currency
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use payment_adapter::IntentStatus;
    use payment_adapter::model::IntentMetadata;

    fn booking(n: u128) -> BookingId {
        BookingId(uuid::Uuid::from_u128(n))
    }

    fn intent(id: &str, of: BookingId, amount: i64, currency: &str) -> PaymentIntent {
        PaymentIntent {
            id: id.into(),
            object: "payment_intent".into(),
            amount,
            currency: currency.into(),
            status: IntentStatus::Succeeded,
            payment_method: "pm_card_ok".into(),
            metadata: IntentMetadata { booking_id: of.0 },
            amount_refunded: 0,
            last_payment_error: None,
            created: 0,
        }
    }

    fn recorded(id: Option<&str>) -> Recorded {
        Recorded {
            payment_id: id.map(str::to_owned),
            amount: 50_000,
            currency: "INR".into(),
        }
    }

    #[test]
    fn the_bookings_own_payment_matches_with_or_without_a_recorded_id() {
        let x = booking(1);
        assert_eq!(
            check(
                x,
                &recorded(Some("pi_x")),
                &intent("pi_x", x, 50_000, "INR")
            ),
            Ok(())
        );
        assert_eq!(
            check(x, &recorded(None), &intent("pi_x", x, 50_000, "inr")),
            Ok(())
        );
    }

    #[test]
    fn another_bookings_payment_never_matches() {
        let (x, y) = (booking(1), booking(2));
        let of_y = intent("pi_y", y, 50_000, "INR");
        assert!(check(x, &recorded(Some("pi_x")), &of_y).is_err());
        // Even before the create call answered (no recorded id), and even with the
        // same amount: the gateway's metadata names the other booking.
        assert!(check(x, &recorded(None), &of_y).is_err());
    }

    #[test]
    fn a_different_amount_or_currency_never_matches() {
        let x = booking(1);
        let r = recorded(Some("pi_x"));
        assert!(check(x, &r, &intent("pi_x", x, 49_999, "INR")).is_err());
        assert!(check(x, &r, &intent("pi_x", x, 50_000, "USD")).is_err());
    }
}
