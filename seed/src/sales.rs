//! Sales for the catalog's shows, for the reports benchmark: bookings in every state
//! a booking ends in, with their payment attempts, written straight to PostgreSQL
//! (no sequencer) as the sequencer and the saga would have left them.
//!
//! Per show 10 to 38 bookings (24 on average) of 1 to 4 seats, or of 1 to 6 places
//! of the first zone when the show's layout has zones (a third of its bookings): 68 %
//! confirmed (one in ten after a declined first card), 5 % cancelled (a 10 % fee
//! kept, the rest refunded), 3 % refunded (a late payment given back whole), 10 %
//! expired, 7 % rejected, 3 % failed (a declined card), 2 % released and 2 % still
//! held. Amounts are the show's cheapest price per place.
//!
//! Deterministic (ids are hashes of the show and the booking's number) and
//! idempotent: a show that has bookings is skipped. One statement for the bookings
//! and one for the payments per day of shows, so the rollup's triggers see large
//! statements, as after a busy batch.

use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Rows inserted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Inserted {
    pub bookings: u64,
    pub payments: u64,
}

/// Writes sales for every show starting in `[from, to)` that has no booking yet.
pub async fn insert(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> anyhow::Result<Inserted> {
    let mut n = Inserted::default();
    // The days that have shows only (a year's period may hold two weeks of them).
    let (first, last): (Option<OffsetDateTime>, Option<OffsetDateTime>) = sqlx::query_as(
        "select min(starts_at), max(starts_at) from shows where starts_at >= $1 and starts_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let (Some(mut day), Some(last)) = (first, last) else {
        return Ok(n);
    };
    while day <= last {
        let end = (day + Duration::days(1)).min(to);
        let mut tx = pool.begin().await?;
        // Not prepared: each day gets a plan for its own bounds (a generic plan
        // does not know that a day holds a few thousand of the shows).
        for (sql, rows) in [(BOOKINGS, &mut n.bookings), (PAYMENTS, &mut n.payments)] {
            *rows += sqlx::query(sql)
                .persistent(false)
                .bind(day)
                .bind(end)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        day = end;
    }
    Ok(n)
}

/// A booking's numbers come from hashes of `show/number`: `h(i)` is a value in
/// `0..2^31` drawn from the `i`-th 8 hex digits of the md5.
const BOOKINGS: &str = "
    with s as (
        select s.id, s.starts_at,
               (select min(p.amount) from show_prices p where p.show_id = s.id) as price,
               sc.layout -> 'zones' -> 0 ->> 'id' as zone
          from shows s join screens sc on sc.id = s.screen_id
         where s.starts_at >= $1 and s.starts_at < $2
           and not exists (select 1 from bookings b where b.show_id = s.id)
    ), b as (
        select s.id as show_id, s.starts_at, s.price, s.zone, g,
               md5(s.id::text || '/' || g) as h
          from s, generate_series(1, 10 + (('x' || substr(md5(s.id::text), 1, 7))::bit(28)::int % 29)) as g
    ), d as (
        select b.*,
               ('x' || substr(h, 1, 7))::bit(28)::int % 100 as status_roll,
               ('x' || substr(h, 9, 7))::bit(28)::int as places_roll,
               ('x' || substr(h, 17, 7))::bit(28)::int % 5000 as user_no,
               ('x' || substr(h, 25, 7))::bit(28)::int % (14 * 24 * 60) as minutes_before
          from b
    ), e as (
        select d.*,
               case when status_roll < 68 then 'confirmed'
                    when status_roll < 73 then 'cancelled'
                    when status_roll < 76 then 'refunded'
                    when status_roll < 86 then 'expired'
                    when status_roll < 93 then 'rejected'
                    when status_roll < 96 then 'failed'
                    when status_roll < 98 then 'released'
                    else 'held' end as status,
               zone is not null and places_roll % 3 = 0 as in_zone,
               case when zone is not null and places_roll % 3 = 0 then 1 + places_roll % 6
                    else 1 + places_roll % 4 end as places
          from d
    )
    insert into bookings (id, user_id, show_id, status, seats, amount, currency, payment_method,
                          hold_expires_at, reason, created_at, updated_at, zones)
    select md5(h)::uuid, md5('user/' || user_no)::uuid, show_id, status,
           case when in_zone or status = 'rejected' then '{}'::text[]
                else array(select chr(65 + (g + k) % 20) || (1 + (g * 7 + k) % 25)
                             from generate_series(0, places - 1) as k) end,
           case when status = 'rejected' then 0 else coalesce(price, 0) * places end,
           'INR',
           case when status in ('confirmed', 'cancelled', 'refunded', 'failed') then 'card' end,
           case when status = 'held' then starts_at end,
           case when status = 'rejected' then '{\"code\": \"seat_unavailable\"}'::jsonb
                when status = 'expired' then '{\"code\": \"hold_expired\"}'::jsonb end,
           starts_at - make_interval(mins => minutes_before),
           starts_at - make_interval(mins => minutes_before / 2),
           case when in_zone and status <> 'rejected'
                then jsonb_build_array(jsonb_build_object('zone', zone, 'quantity', places))
                else '[]'::jsonb end
      from e
    on conflict (id) do nothing";

/// The payment attempts of the bookings of the shows of `[$1, $2)`: a confirmed
/// booking's succeeded payment (after a declined one for one in ten), a cancelled
/// booking's payment with the fee kept and the rest refunded, a refunded booking's
/// payment refunded whole, a failed booking's declined card.
const PAYMENTS: &str = "
    with b as (
        select b.id, b.show_id, b.status, b.amount, b.created_at,
               ('x' || substr(md5(b.id::text), 1, 7))::bit(28)::int % 10 = 0 as declined_first
          from bookings b join shows s on s.id = b.show_id
         where s.starts_at >= $1 and s.starts_at < $2
           and b.status in ('confirmed', 'cancelled', 'refunded', 'failed')
    ), a as (
        select b.*, 1 as attempt,
               case when b.status = 'failed' or (b.status = 'confirmed' and declined_first)
                    then 'failed' else 'succeeded' end as pay
          from b
        union all
        select b.*, 2, 'succeeded' from b where b.status = 'confirmed' and declined_first
    )
    insert into payments (booking_id, attempt, request_id, show_id, payment_id, method, amount,
                          currency, status, failure_reason, refund_status, refund_id,
                          refund_amount, created_at, updated_at)
    select id, attempt, md5(id::text || '/pay/' || attempt)::uuid, show_id,
           'pi_' || md5(id::text || '/' || attempt), 'card', amount, 'INR', pay,
           case when pay = 'failed' then 'card_declined' end,
           case when pay = 'succeeded' and status in ('cancelled', 'refunded') then 'succeeded' end,
           case when pay = 'succeeded' and status in ('cancelled', 'refunded')
                then 're_' || md5(id::text) end,
           case when pay = 'succeeded' and status = 'cancelled' then amount - amount / 10
                when pay = 'succeeded' and status = 'refunded' then amount end,
           created_at, created_at
      from a
    on conflict do nothing";

/// A show's figures as `show_sales` holds them: tickets, sold, fees, refunds.
pub type Figures = (i64, i64, i64, i64);

/// A show, its figures computed, then its rollup's.
type DriftRow = (Uuid, i64, i64, i64, i64, i64, i64, i64, i64);

/// Every show whose `show_sales` row differs from its figures computed straight from
/// its bookings and payments (as the report computed them before the rollup), with
/// (the computed figures, the rollup's): empty when the rollup is exact.
pub async fn drift(pool: &PgPool) -> sqlx::Result<Vec<(Uuid, Figures, Figures)>> {
    let rows: Vec<DriftRow> = sqlx::query_as(
        "with direct as (
            select b.show_id,
                   coalesce(sum(booking_tickets(b.seats, b.zones)) filter (where b.status = 'confirmed'), 0)::int8 as tickets,
                   coalesce(sum(b.amount) filter (where b.status = 'confirmed'), 0)::int8 as sold,
                   coalesce(sum(p.kept) filter (where b.status in ('cancelled', 'refunded')), 0)::int8 as fees,
                   coalesce(sum(p.refunded), 0)::int8 as refunds
              from bookings b
              left join lateral (
                    select sum(p.amount - coalesce(p.refund_amount, 0))
                               filter (where p.status = 'succeeded') as kept,
                           sum(p.refund_amount) filter (where p.refund_status = 'succeeded') as refunded
                      from payments p where p.booking_id = b.id) p on true
             group by b.show_id
         )
         select coalesce(d.show_id, r.show_id),
                coalesce(d.tickets, 0), coalesce(d.sold, 0), coalesce(d.fees, 0), coalesce(d.refunds, 0),
                coalesce(r.tickets, 0), coalesce(r.sold, 0), coalesce(r.fees, 0), coalesce(r.refunds, 0)
           from direct d full join show_sales r on r.show_id = d.show_id
          where (coalesce(d.tickets, 0), coalesce(d.sold, 0), coalesce(d.fees, 0), coalesce(d.refunds, 0))
                is distinct from
                (coalesce(r.tickets, 0), coalesce(r.sold, 0), coalesce(r.fees, 0), coalesce(r.refunds, 0))
          order by 1",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.0, (r.1, r.2, r.3, r.4), (r.5, r.6, r.7, r.8)))
        .collect())
}

/// Every show whose `show_sales` row does not say its start, theater, event and
/// capacity (seats and zone places) as the show and its screen do, and every row
/// dated for a show that does not exist: empty when the rollup is in place.
pub async fn misplaced(pool: &PgPool) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select coalesce(s.id, r.show_id)
           from (select s.id, s.starts_at, sc.theater_id, s.movie_id,
                        sc.seat_count + sc.zone_capacity as capacity
                   from shows s join screens sc on sc.id = s.screen_id) s
           full join (select * from show_sales where starts_at is not null) r on r.show_id = s.id
          where (s.starts_at, s.theater_id, s.movie_id, s.capacity)
                is distinct from (r.starts_at, r.theater_id, r.movie_id, r.capacity)
          order by 1",
    )
    .fetch_all(pool)
    .await
}
