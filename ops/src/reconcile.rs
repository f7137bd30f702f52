//! Reconciliation: money versus seats over the whole database.
//!
//! At rest (no saga step in flight), every one of these holds; each violation is
//! listed as a problem with the booking it concerns. A booking may have several
//! payment attempts (`payments` rows); at most one capture is kept, the one the
//! booking names (`bookings.payment_id`):
//! - `confirmed_without_payment`: a `confirmed` booking has no succeeded attempt
//!   with its payment id;
//! - `payment_without_ticket`: a succeeded attempt that is not the payment of a
//!   `confirmed` booking and whose refund has not succeeded (money taken without a
//!   ticket: also a second capture of a paid booking left unrefunded);
//! - `captured_amount_differs`: a `confirmed` booking's captured payment is of
//!   another amount than the booking's held `amount` (the price fixed by the
//!   sequencer at the hold, demand pricing included);
//! - `refund_failed`: a refund the gateway refused (operators must act);
//! - `seat_held_twice`: a seat of a show is live in two bookings;
//! - `seats_disagree`: a live booking's seats are not exactly its live allocations,
//!   or a finished booking still holds seats;
//! - `live_booking_of_cancelled_show`: a cancelled show still has a held, paying or
//!   confirmed booking (its `CancelShow` command never reached the sequencer: cancel
//!   the show again, which is harmless).
//!
//! [`with_gateway`] (what `bookctl reconcile` and `GET /v1/ops/reconcile` run) adds
//! the comparison with the payment gateway's own payments and refunds ([`gateway`]):
//! the database alone cannot tell a payment recorded for the wrong booking.

use payment_adapter::{HttpGateway, PaymentGateway};
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

pub mod gateway;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub booking_id: Option<Uuid>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub bookings: i64,
    pub problems: Vec<Problem>,
}

/// Runs every check of the database and every check against `gateway`. Read-only.
pub async fn with_gateway<G: PaymentGateway>(
    pool: &PgPool,
    gateway: &G,
) -> Result<Report, sqlx::Error> {
    let mut report = reconcile(pool).await?;
    report.problems.extend(gateway::check(pool, gateway).await?);
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// The gateway client of `settings` (as the saga's).
pub fn gateway_of(settings: &platform::Settings) -> HttpGateway {
    let p = &settings.payments;
    HttpGateway::new(
        &p.gateway_url,
        secrecy::ExposeSecret::expose_secret(&p.gateway_api_key),
        Duration::from_millis(p.gateway_timeout_ms),
        p.gateway_max_attempts,
    )
}

/// Runs every check of the database alone. Read-only.
pub async fn reconcile(pool: &PgPool) -> Result<Report, sqlx::Error> {
    let mut problems = Vec::new();
    let bookings: i64 = sqlx::query_scalar("select count(*) from bookings")
        .fetch_one(pool)
        .await?;

    let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "select b.id, (select string_agg(p.status, ',' order by p.attempt)
                         from payments p where p.booking_id = b.id)
           from bookings b
          where b.status = 'confirmed'
            and not exists (select 1 from payments p
                             where p.booking_id = b.id and p.status = 'succeeded'
                               and p.payment_id is not distinct from b.payment_id)",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(id, st)| Problem {
        kind: "confirmed_without_payment",
        booking_id: Some(id),
        detail: format!(
            "no captured payment of its own; attempts {}",
            st.as_deref().unwrap_or("none")
        ),
    }));

    let rows: Vec<(Uuid, String, i32, Option<String>)> = sqlx::query_as(
        "select p.booking_id, b.status, p.attempt, p.refund_status from payments p
           join bookings b on b.id = p.booking_id
          where p.status = 'succeeded'
            and (b.status <> 'confirmed' or p.payment_id is distinct from b.payment_id)
            and p.refund_status is distinct from 'succeeded'
            and p.refund_status is distinct from 'failed'",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(id, st, attempt, refund)| Problem {
        kind: "payment_without_ticket",
        booking_id: Some(id),
        detail: format!(
            "payment attempt {attempt} captured, booking {st}, refund {}",
            refund.as_deref().unwrap_or("not asked")
        ),
    }));

    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "select b.id, p.amount, b.amount from bookings b
           join payments p on p.booking_id = b.id and p.payment_id = b.payment_id
          where b.status = 'confirmed' and p.status = 'succeeded' and p.amount <> b.amount",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(id, captured, held)| Problem {
        kind: "captured_amount_differs",
        booking_id: Some(id),
        detail: format!("captured {captured}, the booking's held amount is {held}"),
    }));

    let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "select booking_id, failure_reason from payments where refund_status = 'failed'
          order by booking_id, attempt",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(id, why)| Problem {
        kind: "refund_failed",
        booking_id: Some(id),
        detail: why.unwrap_or_default(),
    }));

    let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "select show_id, seat_id, count(*) from booking_seats where released_at is null
          group by 1, 2 having count(*) > 1",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(show, seat, n)| Problem {
        kind: "seat_held_twice",
        booking_id: None,
        detail: format!("show {show} seat {seat} is live in {n} bookings"),
    }));

    let rows: Vec<(Uuid, String, i64, i32)> = sqlx::query_as(
        "select b.id, b.status, count(s.seat_id) filter (where s.released_at is null),
                case when b.status in ('held', 'payment_pending', 'confirmed')
                     then cardinality(b.seats) else 0 end
           from bookings b left join booking_seats s on s.booking_id = b.id
          group by b.id
         having count(s.seat_id) filter (where s.released_at is null)
                <> case when b.status in ('held', 'payment_pending', 'confirmed')
                        then cardinality(b.seats) else 0 end",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(id, st, live, want)| Problem {
        kind: "seats_disagree",
        booking_id: Some(id),
        detail: format!("booking {st} holds {live} live seats, expected {want}"),
    }));

    let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "select b.id, b.show_id, b.status from bookings b join shows s on s.id = b.show_id
          where s.status = 'cancelled' and b.status in ('held', 'payment_pending', 'confirmed')",
    )
    .fetch_all(pool)
    .await?;
    problems.extend(rows.into_iter().map(|(id, show, st)| Problem {
        kind: "live_booking_of_cancelled_show",
        booking_id: Some(id),
        detail: format!("show {show} is cancelled but this booking is still {st}"),
    }));

    Ok(Report {
        ok: problems.is_empty(),
        bookings,
        problems,
    })
}
