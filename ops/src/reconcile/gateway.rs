//! Reconciliation against the payment gateway's own records: the database may say
//! a booking is paid or refunded, but only the gateway holds the money. Every
//! problem names the booking and why:
//! - `gateway_payment_mismatch`: a `confirmed` booking's payment is unknown to the
//!   gateway, or not `succeeded` there, or of another amount or currency, or the
//!   gateway's metadata names another booking (a payment of one booking recorded
//!   as another's);
//! - `gateway_refund_mismatch`: a refund recorded `succeeded` is unknown to the
//!   gateway, not `succeeded` there, of another payment or of another amount; or a
//!   `refunded` booking has no refund recorded at all;
//! - `gateway_capture_unaccounted`: a payment the gateway captured that the
//!   database does not record as captured (no attempt has its id, or the attempt
//!   says it was not paid): money taken that no booking keeps or refunds;
//! - `gateway_unavailable`: the gateway could not be asked (then the verdict is
//!   not ok: nothing was verified against it).

use super::Problem;
use payment_adapter::{GatewayError, IntentStatus, PaymentGateway, PaymentIntent, RefundStatus};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Payments asked per page of the gateway's list.
const PAGE_SIZE: u32 = 100;

fn problem(kind: &'static str, booking: Option<Uuid>, detail: String) -> Problem {
    Problem {
        kind,
        booking_id: booking,
        detail,
    }
}

fn unavailable(booking: Option<Uuid>, what: &str, e: &GatewayError) -> Problem {
    problem("gateway_unavailable", booking, format!("{what}: {e}"))
}

/// Every payment of the gateway's account, by id (the list pages newest first).
async fn all_payments<G: PaymentGateway>(
    gateway: &G,
) -> Result<HashMap<String, PaymentIntent>, GatewayError> {
    let mut all = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = gateway.list_payments(after.as_deref(), PAGE_SIZE).await?;
        after = page.data.last().map(|p| p.id.clone());
        let more = page.has_more && after.is_some();
        all.extend(page.data.into_iter().map(|p| (p.id.clone(), p)));
        if !more {
            return Ok(all);
        }
    }
}

/// Why the gateway's `pi` is not the captured payment of `booking` (`amount` in
/// `currency`), if it is not.
pub(super) fn payment_disagrees(
    booking: Uuid,
    amount: i64,
    currency: &str,
    pi: &PaymentIntent,
) -> Option<String> {
    if pi.status != IntentStatus::Succeeded {
        return Some(format!(
            "payment {} is {:?} at the gateway, not succeeded",
            pi.id, pi.status
        ));
    }
    if pi.metadata.booking_id != booking {
        return Some(format!(
            "payment {} belongs to booking {} at the gateway",
            pi.id, pi.metadata.booking_id
        ));
    }
    if pi.amount != amount || !pi.currency.eq_ignore_ascii_case(currency) {
        return Some(format!(
            "payment {} is {} {} at the gateway, the booking's is {amount} {currency}",
            pi.id, pi.amount, pi.currency
        ));
    }
    None
}

/// The gateway's checks (read-only on both sides).
pub(super) async fn check<G: PaymentGateway>(
    pool: &PgPool,
    gateway: &G,
) -> Result<Vec<Problem>, sqlx::Error> {
    let payments = match all_payments(gateway).await {
        Ok(p) => p,
        Err(e) => return Ok(vec![unavailable(None, "listing the payments", &e)]),
    };
    let mut problems = Vec::new();

    // Every confirmed booking's payment: captured at the gateway, for it, in full.
    let confirmed: Vec<(Uuid, Option<String>, i64, Option<String>)> = sqlx::query_as(
        "select id, payment_id, amount, currency from bookings
          where status = 'confirmed' and payment_id is not null order by id",
    )
    .fetch_all(pool)
    .await?;
    for (booking, payment_id, amount, currency) in confirmed {
        let payment_id = payment_id.unwrap_or_default();
        let fetched;
        let pi = match payments.get(&payment_id) {
            Some(pi) => pi,
            // Created after the list was read, or not the gateway's at all.
            None => match gateway.get_payment(&payment_id).await {
                Ok(pi) => {
                    fetched = pi;
                    &fetched
                }
                Err(e) if e.is_retryable() => {
                    problems.push(unavailable(Some(booking), "asking for its payment", &e));
                    continue;
                }
                Err(e) => {
                    problems.push(problem(
                        "gateway_payment_mismatch",
                        Some(booking),
                        format!("payment {payment_id} is unknown to the gateway: {e}"),
                    ));
                    continue;
                }
            },
        };
        let currency = currency.unwrap_or_default();
        if let Some(why) = payment_disagrees(booking, amount, &currency, pi) {
            problems.push(problem("gateway_payment_mismatch", Some(booking), why));
        }
    }

    // Every refund recorded done: done at the gateway, of that payment, that much.
    // A refund an operator recorded by hand (`bookctl refund record`) is not the
    // gateway's: its id is the operator's reference, and the operator answers for it.
    let refunds: Vec<(Uuid, Option<String>, Option<String>, i64)> = sqlx::query_as(
        "select booking_id, payment_id, refund_id, refund_amount from payments
          where refund_status = 'succeeded' and refund_amount > 0
            and refund_recorded_by is null
          order by booking_id, attempt",
    )
    .fetch_all(pool)
    .await?;
    for (booking, payment_id, refund_id, amount) in refunds {
        let refund_id = refund_id.unwrap_or_default();
        let refund = match gateway.get_refund(&refund_id).await {
            Ok(r) => r,
            Err(e) if e.is_retryable() => {
                problems.push(unavailable(Some(booking), "asking for its refund", &e));
                continue;
            }
            Err(e) => {
                problems.push(problem(
                    "gateway_refund_mismatch",
                    Some(booking),
                    format!("refund {refund_id:?} is unknown to the gateway: {e}"),
                ));
                continue;
            }
        };
        let payment_id = payment_id.unwrap_or_default();
        let why = if refund.status != RefundStatus::Succeeded {
            Some(format!(
                "refund {} is {:?} at the gateway, not succeeded",
                refund.id, refund.status
            ))
        } else if refund.payment_intent != payment_id {
            Some(format!(
                "refund {} is of payment {} at the gateway, not {payment_id}",
                refund.id, refund.payment_intent
            ))
        } else if refund.amount != amount {
            Some(format!(
                "refund {} is {} at the gateway, recorded {amount}",
                refund.id, refund.amount
            ))
        } else {
            None
        };
        if let Some(why) = why {
            problems.push(problem("gateway_refund_mismatch", Some(booking), why));
        }
    }
    let unrefunded: Vec<Uuid> = sqlx::query_scalar(
        "select b.id from bookings b
          where b.status = 'refunded'
            and not exists (select 1 from payments p
                             where p.booking_id = b.id and p.refund_status = 'succeeded')
          order by b.id",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(unrefunded.into_iter().map(|b| {
        problem(
            "gateway_refund_mismatch",
            Some(b),
            "the booking is refunded but no refund of it is recorded".into(),
        )
    }));

    // Every capture at the gateway is one the database knows it captured (the
    // checks above and `payment_without_ticket` then say whether it is kept or
    // refunded).
    let known: HashSet<String> = sqlx::query_scalar(
        "select payment_id from payments where status = 'succeeded' and payment_id is not null",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut unaccounted: Vec<&PaymentIntent> = payments
        .values()
        .filter(|pi| pi.status == IntentStatus::Succeeded && !known.contains(&pi.id))
        .collect();
    unaccounted.sort_by(|a, b| a.id.cmp(&b.id));
    problems.extend(unaccounted.into_iter().map(|pi| {
        problem(
            "gateway_capture_unaccounted",
            Some(pi.metadata.booking_id),
            format!(
                "payment {} captured {} {} at the gateway (refunded {}), recorded as captured by no booking",
                pi.id, pi.amount, pi.currency, pi.amount_refunded
            ),
        )
    }));
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use payment_adapter::model::IntentMetadata;

    fn intent(of: Uuid, status: IntentStatus, amount: i64, currency: &str) -> PaymentIntent {
        PaymentIntent {
            id: "pi_1".into(),
            object: "payment_intent".into(),
            amount,
            currency: currency.into(),
            status,
            payment_method: "pm_card_ok".into(),
            metadata: IntentMetadata { booking_id: of },
            amount_refunded: 0,
            last_payment_error: None,
            created: 0,
        }
    }

    #[test]
    fn a_payment_agrees_only_when_captured_for_the_booking_in_full() {
        let (x, y) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ok = intent(x, IntentStatus::Succeeded, 500, "inr");
        assert_eq!(payment_disagrees(x, 500, "INR", &ok), None);
        for (pi, booking) in [
            (intent(x, IntentStatus::Processing, 500, "INR"), x),
            (intent(y, IntentStatus::Succeeded, 500, "INR"), x),
            (intent(x, IntentStatus::Succeeded, 499, "INR"), x),
            (intent(x, IntentStatus::Succeeded, 500, "USD"), x),
        ] {
            assert!(
                payment_disagrees(booking, 500, "INR", &pi).is_some(),
                "{pi:?}"
            );
        }
    }
}
