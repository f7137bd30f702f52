//! The sales rollup (`show_sales`, migration `20261211100000_show_sales.sql`) that
//! the reports read: kept by triggers on `bookings` and `payments`, it must equal at
//! every moment the figures computed straight from them (`seed::sales::drift`, the
//! report's query before the rollup), whatever writes them: the sequencer and the
//! saga, a bulk statement, two transactions racing, or rows older than the rollup
//! (the migration's backfill).

use crate::venues::{in_hours, ticket, venues, wait_status};
use contracts::ShowId;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestDb, TestSystem, spawn_system};
use time::OffsetDateTime;
use uuid::Uuid;

/// The migration that adds the rollup.
const SHOW_SALES: i64 = 20261211100000;

async fn assert_exact(pool: &sqlx::PgPool, when: &str) {
    let drift = seed::sales::drift(pool).await.expect("drift");
    assert!(
        drift.is_empty(),
        "{when}: the rollup differs from the bookings (show, computed, rollup): {drift:?}"
    );
    let misplaced = seed::sales::misplaced(pool).await.expect("misplaced");
    assert!(
        misplaced.is_empty(),
        "{when}: these shows' rows do not say their start, theater, event or capacity: {misplaced:?}"
    );
}

/// A show's rollup row: tickets, sold, fees, refunds.
async fn rollup(pool: &sqlx::PgPool, show: Uuid) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "select coalesce(max(tickets), 0), coalesce(max(sold), 0), coalesce(max(fees), 0),
                coalesce(max(refunds), 0)
           from show_sales where show_id = $1",
    )
    .bind(show)
    .fetch_one(pool)
    .await
    .expect("rollup row")
}

/// A movie show of 200 seats with the id `id`, starting in `starts_in`.
async fn movie_show(pool: &sqlx::PgPool, id: u128, starts_in: time::Duration) -> ShowId {
    seed::create_show(
        pool,
        &seed::NewShow {
            show_id: ShowId(Uuid::from_u128(id)),
            layout: seed::theater_layout(10, 20),
            prices: seed::inr_prices(),
            starts_at: OffsetDateTime::now_utc() + starts_in,
            city: "Pune".into(),
            theater: "Rollup Talkies".into(),
            movie: "The Ledger".into(),
        },
    )
    .await
    .expect("movie show")
}

#[tokio::test]
async fn the_migration_backfills_the_rollup_and_the_triggers_keep_it_through_bulk_changes() {
    let db = TestDb::new(Some(TestDb::version_before(SHOW_SALES))).await;
    let pool = db.pool.clone();
    let now = OffsetDateTime::now_utc();
    // Sales written before the rollup exists: a movie show and a concert with a
    // 500-place standing floor, every final state, payments with refunds. (Fixed
    // ids: `seed::sales` draws each show's bookings from its id.)
    let movie = movie_show(&pool, 0x5a1e_0008, time::Duration::hours(20)).await;
    let concert = seed::create_concert(
        &pool,
        ShowId(Uuid::from_u128(0x5a1e_0010)),
        time::Duration::hours(30),
    )
    .await
    .expect("concert");
    let before = seed::sales::insert(&pool, now, now + time::Duration::days(2))
        .await
        .expect("sales");
    assert!(before.bookings >= 20 && before.payments >= 10, "{before:?}");

    db.migrate(None).await;
    assert_exact(&pool, "after the backfill").await;
    // Not vacuous: both shows have tickets, fees and refunds, and the concert's
    // tickets include places of the floor.
    for show in [movie, concert] {
        let (tickets, sold, fees, refunds) = rollup(&pool, show.0).await;
        assert!(
            tickets > 0 && sold > 0 && fees > 0 && refunds > 0,
            "{show}: {tickets} {sold} {fees} {refunds}"
        );
    }
    let (zone_places, seat_places): (i64, i64) = sqlx::query_as(
        "select coalesce(sum((z ->> 'quantity')::int8), 0)::int8,
                coalesce(sum(cardinality(b.seats)), 0)::int8
           from bookings b left join lateral jsonb_array_elements(b.zones) z on true
          where b.show_id = $1 and b.status = 'confirmed'",
    )
    .bind(concert.0)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(zone_places > 0, "no confirmed places of the floor");
    assert_eq!(rollup(&pool, concert.0).await.0, zone_places + seat_places);
    let capacity: Vec<(i32, i32)> = sqlx::query_as(
        "select sc.seat_count, sc.zone_capacity from shows s join screens sc on sc.id = s.screen_id
          where s.id = any($1) order by sc.zone_capacity",
    )
    .bind(vec![movie.0, concert.0])
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(capacity, vec![(200, 0), (200, 500)]);

    // After the migration the triggers keep it: another concert's sales in one
    // statement, then bulk transitions of many bookings and payments at once.
    let later = seed::create_concert(
        &pool,
        ShowId(Uuid::from_u128(0x5a1e_000c)),
        time::Duration::hours(60),
    )
    .await
    .expect("concert");
    let after = seed::sales::insert(
        &pool,
        now + time::Duration::days(2),
        now + time::Duration::days(4),
    )
    .await
    .expect("sales");
    assert!(after.bookings > 0, "{after:?}");
    assert!(rollup(&pool, later.0).await.0 > 0);
    assert_exact(&pool, "after new sales").await;
    let changes = [
        // Customers cancel half of the confirmed bookings (their payments already
        // succeeded: the whole amount becomes a fee until refunded)...
        "update bookings set status = 'cancelled' where status = 'confirmed' and id::text < '8'",
        // ...the refunds of some are asked for (the kept amount shrinks at once)...
        "update payments p set refund_status = 'requested', refund_amount = p.amount - p.amount / 10
           from bookings b
          where b.id = p.booking_id and b.status = 'cancelled' and p.status = 'succeeded'
            and p.refund_status is null and p.booking_id::text < '4'",
        // ...and succeed, some bookings end refunded...
        "update payments set refund_status = 'succeeded' where refund_status = 'requested'",
        "update bookings set status = 'refunded' where status = 'cancelled' and id::text < '2'",
        // ...held places and seats are paid, a refund fails, bookings are removed.
        "update bookings set status = 'confirmed' where status = 'held'",
        "update payments set refund_status = 'failed' where refund_status = 'succeeded' and booking_id::text > '8'",
        "delete from payments where booking_id::text > 'e'",
        "delete from bookings b where id::text > 'e'
            and not exists (select 1 from payments p where p.booking_id = b.id)",
    ];
    // The shows' side: a show moved, a screen's floor made smaller (no report
    // sells places that are not there), a show that never sold removed.
    let gone = movie_show(&pool, 0x5a1e_0100, time::Duration::days(5)).await;
    assert_exact(&pool, "after a new show").await;
    let moves = [
        format!(
            "update shows set starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour',
                    busy_until = busy_until + interval '1 hour' where id = '{}'",
            movie.0
        ),
        format!(
            "update screens set layout = jsonb_set(layout, '{{zones,0,capacity}}', '450')
              where id = (select screen_id from shows where id = '{}')",
            concert.0
        ),
        format!("delete from show_prices where show_id = '{}'", gone.0),
        format!("delete from shows where id = '{}'", gone.0),
    ];
    for sql in &moves {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_exact(&pool, sql).await;
    }
    let capacity: i32 = sqlx::query_scalar("select capacity from show_sales where show_id = $1")
        .bind(concert.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(capacity, 650);

    for sql in changes {
        let n = sqlx::raw_sql(sql)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected();
        assert!(n > 0, "changed nothing: {sql}");
        assert_exact(&pool, sql).await;
    }
    db.drop().await;
}

/// One confirmed booking of 2 seats at 500 each with a pending payment.
async fn booking_with_pending_payment(pool: &sqlx::PgPool) -> (Uuid, Uuid) {
    let (booking, show) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "insert into bookings (id, user_id, show_id, status, seats, amount, currency, created_at, updated_at)
         values ($1, $3, $2, 'confirmed', '{A1,A2}', 1000, 'INR', now(), now())",
    )
    .bind(booking)
    .bind(show)
    .bind(Uuid::new_v4())
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into payments (booking_id, attempt, request_id, show_id, method, amount, currency, status)
         values ($1, 1, $3, $2, 'card', 1000, 'INR', 'pending')",
    )
    .bind(booking)
    .bind(show)
    .bind(Uuid::new_v4())
    .execute(pool)
    .await
    .unwrap();
    (booking, show)
}

/// Waits until a statement starting with `prefix` waits for a lock.
async fn blocked(pool: &sqlx::PgPool, prefix: &str) {
    let like = format!("{prefix}%");
    tests::poll(Duration::from_secs(10), tests::POLL, || async {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock' and query like $1",
        )
        .bind(&like)
        .fetch_one(pool)
        .await
        .unwrap();
        if n > 0 { Ok(()) } else { Err(()) }
    })
    .await
    .unwrap_or_else(|()| panic!("no statement {prefix:?} waits for the rollup's lock"));
}

const CANCEL: &str = "update bookings set status = 'cancelled' where id = $1";
const PAY: &str = "update payments set status = 'succeeded' where booking_id = $1";

/// Runs `first` on a new booking with a pending payment in a transaction left open
/// while `second` runs in another, which must wait for the rollup's lock; then
/// commits both and checks the rollup: the booking's 1000 kept as a fee, once.
async fn race(pool: &sqlx::PgPool, first: &'static str, second: &'static str) {
    let (booking, show) = booking_with_pending_payment(pool).await;
    let mut open = pool.begin().await.unwrap();
    sqlx::query(first)
        .bind(booking)
        .execute(&mut *open)
        .await
        .unwrap();
    let other = tokio::spawn({
        let pool = pool.clone();
        async move { sqlx::query(second).bind(booking).execute(&pool).await }
    });
    blocked(pool, &second[..15]).await;
    open.commit().await.unwrap();
    other.await.unwrap().unwrap();
    assert_eq!(
        rollup(pool, show).await,
        (0, 0, 1000, 0),
        "{first}; {second}"
    );
    assert_exact(pool, second).await;
}

#[tokio::test]
async fn a_cancellation_racing_its_payment_is_counted_once_whichever_commits_first() {
    let db = TestDb::new(None).await;
    // The booking is cancelled in a transaction still open when its payment
    // succeeds in another. Without the lock the payment's trigger would read the
    // booking as confirmed (no fee), and the cancellation's, not seeing the payment,
    // no fee either: 1000 kept, 0 counted.
    race(&db.pool, CANCEL, PAY).await;
    // The other order: the payment succeeds in a transaction still open when the
    // booking is cancelled.
    race(&db.pool, PAY, CANCEL).await;
    db.drop().await;
}

/// The report's row for `key` (grouped by show).
async fn report_row(sys: &TestSystem, token: &str, key: &str) -> Value {
    let q = format!(
        "from={}&to={}&group_by=show",
        &in_hours(-24)[..10],
        &in_hours(72)[..10]
    );
    let (status, r) = sys
        .call(
            Method::GET,
            &format!("/v1/admin/reports/sales?{q}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{r}");
    r["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == key).cloned())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_sequencer_and_the_saga_keep_the_rollup_exact_and_zone_places_count() {
    let sys = spawn_system(SystemOptions::default()).await;
    let v = venues(&sys).await;
    let concert = seed::create_concert(&sys.pool, ShowId::new_v7(), time::Duration::days(1))
        .await
        .expect("concert");
    let concert = concert.to_string();
    assert_exact(&sys.pool, "before any sale").await;

    // Confirmations: seats on A, places of the floor with a seat on the concert.
    ticket(&sys, &v.a.show, &["A1", "A2"]).await;
    let (_, fan) = sys.customer(2).await;
    let body = json!({"show_id": concert, "zone": "floor", "quantity": 3, "seats": ["A1"],
                      "payment_method": "pm_card_ok"});
    let (status, accepted) = sys.submit(&fan, "rollup-floor", body).await;
    assert_eq!(status, 202, "{accepted}");
    let floor = accepted["booking_id"].as_str().unwrap().to_owned();
    let floor_paid = wait_status(&sys, &fan, &floor, "confirmed").await["amount"].clone();
    assert_exact(&sys.pool, "after the confirmations").await;

    // A cancellation with a fee: places of the floor bought, then given back.
    let body = json!({"show_id": concert, "zone": "floor", "quantity": 2,
                      "payment_method": "pm_card_ok"});
    let (_, accepted) = sys.submit(&fan, "rollup-floor-cancelled", body).await;
    let given_back = accepted["booking_id"].as_str().unwrap().to_owned();
    wait_status(&sys, &fan, &given_back, "confirmed").await;
    sys.post(&fan, &format!("/v1/bookings/{given_back}/cancel"), None)
        .await;
    wait_status(&sys, &fan, &given_back, "refunded").await;
    assert_exact(&sys.pool, "after a cancellation").await;

    // A show cancelled by its admin: every booking of B refunded whole.
    let (on_b, b_customer, _) = ticket(&sys, &v.b.show, &["C4"]).await;
    let (status, r) = sys
        .call(
            Method::POST,
            &format!("/v1/admin/shows/{}/cancel", v.b.show),
            Some(&v.platform),
            None,
        )
        .await;
    assert_eq!(status, 202, "{r}");
    wait_status(&sys, &b_customer, &on_b, "refunded").await;
    // Every refund settled (the saga records a refund's success after it told the
    // sequencer), then the figures.
    sys.eventually(Duration::from_secs(30), "every refund settled", || async {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from bookings b
                  where b.status not in ('refunded', 'confirmed')
                     or exists (select 1 from payments p where p.booking_id = b.id
                                   and p.refund_status = 'requested')
                     or (b.status = 'refunded' and not exists (
                            select 1 from payments p where p.booking_id = b.id
                               and p.refund_status = 'succeeded'))",
        )
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        open == 0
    })
    .await;
    assert_exact(&sys.pool, "after the refunds").await;

    // The concert's report: 4 tickets (3 places and a seat), the fee of the 2
    // places given back kept (10 % of 2 x 150.00), the rest refunded, and
    // occupancy over 200 seats and 500 places.
    let row = report_row(&sys, &v.platform, &concert).await;
    assert_eq!(row["tickets"], 4, "{row}");
    assert_eq!(row["fees_kept"], 3_000, "{row}");
    assert_eq!(row["refunds"], 27_000, "{row}");
    assert_eq!(
        row["revenue"].as_i64(),
        floor_paid.as_i64().map(|a| a + 3_000),
        "{row}"
    );
    assert_eq!(
        row["occupancy"],
        json!(((4.0_f64 / 700.0) * 10_000.0).round() / 10_000.0)
    );
    let b = report_row(&sys, &v.platform, &v.b.show).await;
    assert_eq!(
        (&b["tickets"], &b["fees_kept"]),
        (&json!(0), &json!(0)),
        "{b}"
    );
    assert_eq!(b["refunds"], 25_000, "{b}");
    sys.shutdown().await;
}
