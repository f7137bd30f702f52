//! Payment attempts: one `payments` row each. A declined card keeps the booking's
//! seats while its hold lasts and the buyer may try another method, so a booking
//! may have several attempts; each has its own gateway idempotency key, its own
//! refund key and its own saga message ids, so two attempts never collapse into
//! one and a repeat of one attempt's step is still applied once.

use super::payment_match::Recorded;
use contracts::{BookingId, ShowId};
use platform::amqp::Failure;
use sqlx::PgPool;
use uuid::Uuid;

/// How often an insert that lost the race for an attempt number is tried again.
const INSERT_TRIES_MAX: usize = 5;

/// One payment attempt of a booking (a `payments` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub booking: BookingId,
    /// 1 for the first attempt of the booking, then 2, 3, ...
    pub number: i32,
    /// The gateway's id, once its create call answered.
    pub payment_id: Option<String>,
    pub method: String,
    pub amount: i64,
    pub currency: String,
}

impl Attempt {
    /// The gateway idempotency key: the booking id for the first attempt (as
    /// before attempts existed, so payments created then are found again), and
    /// `{booking}-a{n}` for the n-th.
    pub fn gateway_key(&self) -> String {
        if self.number == 1 {
            self.booking.to_string()
        } else {
            format!("{}-a{}", self.booking, self.number)
        }
    }

    /// The idempotency key of this attempt's refund.
    pub fn refund_key(&self) -> String {
        format!("{}-refund", self.gateway_key())
    }

    /// The saga step name of a command about this attempt: the message id is fixed
    /// by (booking, step), so every attempt needs its own.
    pub fn step(&self, step: &str) -> String {
        if self.number == 1 {
            step.to_owned()
        } else {
            format!("{step}-a{}", self.number)
        }
    }

    /// What the saga recorded, to check a gateway answer against.
    pub fn recorded(&self) -> Recorded {
        Recorded {
            payment_id: self.payment_id.clone(),
            amount: self.amount,
            currency: self.currency.clone(),
        }
    }
}

/// booking, attempt, payment id, method, amount, currency.
pub(crate) type Row = (Uuid, i32, Option<String>, String, i64, String);

const COLUMNS: &str = "booking_id, attempt, payment_id, method, amount, currency";

pub(crate) fn of_row((booking, number, payment_id, method, amount, currency): Row) -> Attempt {
    Attempt {
        booking: BookingId(booking),
        number,
        payment_id,
        method,
        amount,
        currency,
    }
}

async fn one(pool: &PgPool, sql: &str, booking: Uuid, arg: &str) -> sqlx::Result<Option<Attempt>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql.replace("{COLUMNS}", COLUMNS)))
        .bind(booking)
        .bind(arg)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(of_row))
}

/// The attempt of `booking` that the gateway knows as `payment_id`.
pub async fn by_payment(
    pool: &PgPool,
    booking: BookingId,
    payment_id: &str,
) -> sqlx::Result<Option<Attempt>> {
    one(
        pool,
        "select {COLUMNS} from payments where booking_id = $1 and payment_id = $2",
        booking.0,
        payment_id,
    )
    .await
}

/// Whether an attempt of `booking` was created without its gateway id recorded
/// yet (its create call is in flight: a webhook for it may come first).
pub async fn has_unrecorded(pool: &PgPool, booking: BookingId) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from payments
                         where booking_id = $1 and payment_id is null
                           and status in ('creating', 'pending'))",
    )
    .bind(booking.0)
    .fetch_one(pool)
    .await
}

/// The attempts of `booking` the gateway may still settle (created and open).
pub async fn open_of(pool: &PgPool, booking: BookingId) -> sqlx::Result<Vec<Attempt>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from payments
          where booking_id = $1 and payment_id is not null and status in ('creating', 'pending')
          order by attempt"
    )))
    .bind(booking.0)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(of_row).collect())
}

/// The attempt started by `request_id`, inserting it (with the next number of
/// the booking) if it does not exist. A redelivered request finds its attempt.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    pool: &PgPool,
    booking: BookingId,
    show: ShowId,
    request_id: Uuid,
    method: &str,
    amount: i64,
    currency: &str,
    traceparent: Option<String>,
) -> Result<Attempt, Failure> {
    // One statement (one round trip): insert the attempt with the next number, and
    // return it, or the request's attempt that exists already. The second half reads
    // the statement's snapshot, so it sees an earlier attempt but not the one this
    // statement inserts, which `ins` returns.
    let sql = format!(
        "with ins as (
           insert into payments (booking_id, attempt, request_id, show_id, method, amount,
                                 currency, status, traceparent)
           select $1, coalesce(max(attempt), 0) + 1, $2, $3, $4, $5, $6, 'creating', $7
             from payments where booking_id = $1
           on conflict do nothing
           returning {COLUMNS})
         select {COLUMNS} from ins
         union all
         select {COLUMNS} from payments where request_id = $2
         limit 1"
    );
    for _ in 0..INSERT_TRIES_MAX {
        // Any unique violation is skipped: the request's own attempt (a repeat) or
        // a concurrent request that took this number (then we look again).
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(booking.0)
            .bind(request_id)
            .bind(show.0)
            .bind(method)
            .bind(amount)
            .bind(currency)
            .bind(&traceparent)
            .fetch_optional(pool)
            .await?;
        if let Some(row) = row {
            return Ok(of_row(row));
        }
    }
    Err(Failure::Retry(format!(
        "payment attempts of booking {booking} kept racing for a number"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(number: i32) -> Attempt {
        Attempt {
            booking: BookingId(Uuid::from_u128(7)),
            number,
            payment_id: None,
            method: "pm_card_ok".into(),
            amount: 100,
            currency: "INR".into(),
        }
    }

    #[test]
    fn the_first_attempt_keeps_the_keys_of_before_attempts_and_later_ones_get_their_own() {
        let b = "00000000-0000-0000-0000-000000000007";
        assert_eq!(attempt(1).gateway_key(), b);
        assert_eq!(attempt(1).refund_key(), format!("{b}-refund"));
        assert_eq!(attempt(1).step("payment-succeeded"), "payment-succeeded");
        assert_eq!(attempt(2).gateway_key(), format!("{b}-a2"));
        assert_eq!(attempt(2).refund_key(), format!("{b}-a2-refund"));
        assert_eq!(attempt(3).step("payment-succeeded"), "payment-succeeded-a3");
    }
}
