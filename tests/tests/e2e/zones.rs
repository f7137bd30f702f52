//! General-admission zones (API.md, Round 2): `{show_id, zone, quantity}` books
//! places of a zone, with chosen seats too where the layout mixes them; the
//! sequencer decides in the show's partition and the database proves the capacity
//! (`show_zones`' CHECK, kept by a trigger on `booking_zones`).

use contracts::{
    BookingId, Event, EventEnvelope, EventId, MessageId, Millis, ShowId, UserId, ZonePlaces,
};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// A concert of `seed::concert_layout`: 200 seats and a 500-place `floor`.
async fn concert(sys: &TestSystem) -> ShowId {
    seed::create_concert(&sys.pool, ShowId::new_v7(), time::Duration::days(1))
        .await
        .expect("concert")
}

/// Places taken in `zone` of `show` as the database counts them: (the trigger's
/// `show_zones.taken`, the live `booking_zones` rows, the held bookings' places).
async fn counted(sys: &TestSystem, show: ShowId, zone: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "select coalesce((select taken::int8 from show_zones where show_id = $1 and zone_id = $2), 0),
                coalesce((select sum(quantity)::int8 from booking_zones
                           where show_id = $1 and zone_id = $2 and released_at is null), 0),
                coalesce((select sum((p ->> 'quantity')::int8)::int8 from bookings b,
                                 jsonb_array_elements(b.zones) p
                           where b.show_id = $1 and p ->> 'zone' = $2
                             and b.status in ('held', 'payment_pending', 'confirmed')), 0)",
    )
    .bind(show.0)
    .bind(zone)
    .fetch_one(&sys.pool)
    .await
    .expect("count places")
}

/// The seat map's `available` for `zone`, once it shows `want`.
async fn map_shows(sys: &TestSystem, show: ShowId, zone: &str, want: i64) {
    sys.eventually(
        Duration::from_secs(20),
        "the seat map shows the places left",
        || async {
            let (_, map) = sys.get(&format!("/v1/shows/{show}/seats")).await;
            map["zones"]
                .as_array()
                .and_then(|zs| zs.iter().find(|z| z["id"] == zone))
                .is_some_and(|z| z["available"] == want)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_concurrent_requests_mixing_zone_and_seats_never_oversell_either() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = concert(&sys).await;
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(sys.customer(i).await.1);
    }
    let seat_ids: Vec<String> = seed::concert_layout()
        .seats()
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(seat_ids.len(), 200);
    let requests: Vec<(String, String, Value)> = (0..2000)
        .map(|i| {
            let token = users[i % users.len()].clone();
            let s = show.to_string();
            // A fixed mix: zone places, a chosen seat, places with a seat (mixed),
            // best-available seats.
            let body = match i % 4 {
                0 => json!({"show_id": s, "zone": "floor", "quantity": 1 + i % 4}),
                1 => json!({"show_id": s, "seats": [seat_ids[(i * 37) % 200]]}),
                2 => json!({"show_id": s, "zone": "floor", "quantity": 1 + i % 2,
                            "seats": [seat_ids[(i * 13) % 200]]}),
                _ => json!({"show_id": s, "quantity": 1 + (i % 3)}),
            };
            (token, format!("zones-{i}"), body)
        })
        .collect();
    let results: Vec<(u16, Value)> = futures::stream::iter(requests)
        .map(|(token, key, body)| {
            let sys = &sys;
            async move { sys.submit(&token, &key, body).await }
        })
        .buffer_unordered(2000)
        .collect()
        .await;
    let mut ids = HashSet::new();
    for (status, body) in &results {
        assert_eq!(*status, 202, "{body}");
        ids.insert(
            body["booking_id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        );
    }
    assert_eq!(ids.len(), 2000, "every request is its own booking");
    let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    // Every request decided: 2,000 rows, each held or rejected.
    sys.wait_decided(&ids, Duration::from_secs(180)).await;
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "select status, count(*) from bookings where id = any($1) group by status order by status",
    )
    .bind(&ids)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert_eq!(statuses.iter().map(|s| s.1).sum::<i64>(), 2000);
    for (status, _) in &statuses {
        assert!(status == "held" || status == "rejected", "{statuses:?}");
    }

    // The floor: never over 500, and the trigger's count, the rows and the
    // bookings agree; the demand (about 1,250 places) filled it.
    let (taken, rows, booked) = counted(&sys, show, "floor").await;
    assert!(taken <= 500, "the floor holds {taken} places");
    assert_eq!((taken, rows), (booked, booked));
    assert!(taken > 450, "only {taken} places of the floor taken");
    let full: i64 = sqlx::query_scalar(
        "select count(*) from bookings where show_id = $1 and reason ->> 'code' = 'not_enough_places'",
    )
    .bind(show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert!(full > 0, "no request found the floor full");

    // The seats: none twice, and exactly the held bookings' seats.
    let held_seats: Vec<(String, i64)> = sqlx::query_as(
        "select seat_id, count(*) from booking_seats
          where show_id = $1 and released_at is null group by seat_id",
    )
    .bind(show.0)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert!(held_seats.iter().all(|(_, n)| *n == 1), "a seat held twice");
    let seats_of_held: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(seats)), 0) from bookings where show_id = $1 and status = 'held'",
    )
    .bind(show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(seats_of_held, held_seats.len() as i64);

    // All or nothing: a rejected booking has neither seats nor places, and a held
    // zone booking is priced at 150.00 a place plus its seats.
    let leaked: i64 = sqlx::query_scalar(
        "select (select count(*) from booking_seats s join bookings b on b.id = s.booking_id
                  where b.show_id = $1 and b.status = 'rejected')
              + (select count(*) from booking_zones z join bookings b on b.id = z.booking_id
                  where b.show_id = $1 and b.status = 'rejected')",
    )
    .bind(show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    let mispriced: i64 = sqlx::query_scalar(
        "select count(*) from bookings b
          where b.show_id = $1 and b.status = 'held' and jsonb_array_length(b.zones) > 0
            and b.amount <> (b.zones -> 0 ->> 'quantity')::int8 * 15000
                          + (select coalesce(sum(p.amount), 0) from unnest(b.seats) s(id)
                               join show_prices p on p.show_id = b.show_id
                              where p.seat_type = case when s.id < 'D' then 'regular'
                                                        when s.id < 'I' then 'premium'
                                                        else 'recliner' end)",
    )
    .bind(show.0)
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(
        mispriced, 0,
        "a zone booking's amount is not its places and seats"
    );

    map_shows(&sys, show, "floor", 500 - taken).await;
    println!(
        "floor: {taken} of 500 places taken, {full} requests found it full; {} of 200 seats held; {statuses:?}",
        held_seats.len()
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn places_are_held_shown_on_the_map_and_given_back_on_release() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = concert(&sys).await;
    let (_, buyer) = sys.customer(1).await;
    let (_, map) = sys.get(&format!("/v1/shows/{show}/seats")).await;
    assert_eq!(map["mixed_booking"], true, "{map}");
    let floor = &map["zones"][0];
    assert_eq!(
        (
            &floor["id"],
            &floor["capacity"],
            &floor["available"],
            &floor["price"]
        ),
        (&json!("floor"), &json!(500), &json!(500), &json!(15000)),
        "{map}"
    );

    let (status, res) = sys
        .submit(
            &buyer,
            "mixed",
            json!({"show_id": show.to_string(), "zone": "floor", "quantity": 3, "seats": ["A1"]}),
        )
        .await;
    assert_eq!(status, 202, "{res}");
    let id = res["booking_id"].as_str().unwrap().to_owned();
    let b = sys
        .booking_until(&buyer, &id, "held", |b| b["status"] == "held")
        .await;
    assert_eq!(b["zones"], json!([{"zone": "floor", "quantity": 3}]), "{b}");
    assert_eq!(b["seats"], json!(["A1"]), "{b}");
    assert_eq!(b["amount"], 3 * 15_000 + 20_000, "{b}");
    map_shows(&sys, show, "floor", 497).await;
    assert_eq!(counted(&sys, show, "floor").await, (3, 3, 3));

    let (status, res) = sys
        .post(&buyer, &format!("/v1/bookings/{id}/release"), None)
        .await;
    assert_eq!(status, 202, "{res}");
    sys.booking_until(&buyer, &id, "released", |b| b["status"] == "released")
        .await;
    map_shows(&sys, show, "floor", 500).await;
    assert_eq!(counted(&sys, show, "floor").await, (0, 0, 0));
    sys.shutdown().await;
}

#[tokio::test]
async fn a_bad_zone_request_is_a_422_problem_and_changes_nothing() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = concert(&sys).await;
    // A hall of the same seats and floor that does not mix them in one booking.
    let unmixed = ShowId::new_v7();
    let mut layout = seed::concert_layout();
    layout.mixed_booking = false;
    seed::create_show(
        &sys.pool,
        &seed::NewShow {
            show_id: unmixed,
            layout,
            prices: seed::concert_prices(),
            starts_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
            city: "Pune".into(),
            theater: "Unmixed Hall".into(),
            movie: "Unmixed".into(),
        },
    )
    .await
    .unwrap();
    let (_, buyer) = sys.customer(1).await;
    let s = show.to_string();
    let bad = [
        json!({"show_id": s, "zone": "balcony", "quantity": 2}),
        json!({"show_id": s, "zone": "floor", "quantity": 0}),
        json!({"show_id": s, "zone": "floor", "quantity": 11}),
        json!({"show_id": s, "zone": "floor", "quantity": 9, "seats": ["A1", "A2"]}),
        json!({"show_id": s, "zone": "floor"}),
        json!({"show_id": s, "zone": "floor", "quantity": 1, "seat_type": "standing"}),
        json!({"show_id": s, "zone": "floor", "quantity": 1, "seats": ["Z99"]}),
        json!({"show_id": unmixed.to_string(), "zone": "floor", "quantity": 1, "seats": ["A1"]}),
    ];
    for (i, body) in bad.iter().enumerate() {
        let res = sys
            .http
            .post(sys.url("/v1/bookings"))
            .bearer_auth(&buyer)
            .header("idempotency-key", format!("bad-{i}"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 422, "{body}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/problem+json"), "{ct}");
        let problem: Value = res.json().await.unwrap();
        assert!(problem["detail"].as_str().is_some(), "{problem}");
    }
    let (decided, accepted): (i64, i64) = sqlx::query_as(
        "select (select count(*) from bookings), (select count(*) from accepted_bookings)",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(
        (decided, accepted),
        (0, 0),
        "a refused request left a trace"
    );
    sys.shutdown().await;
}

/// A hold event of `n` places of `zone`, as a buggy sequencer might emit it.
fn held(show: ShowId, n: u128, zone: &str, quantity: u32) -> EventEnvelope {
    EventEnvelope {
        event_id: EventId(uuid::Uuid::new_v4()),
        show_id: show,
        booking_id: BookingId(uuid::Uuid::from_u128(0xb00c_0000 + n)),
        occurred_at: Millis(1_900_000_000_000),
        caused_by: MessageId(uuid::Uuid::new_v4()),
        trace: None,
        event: Event::BookingHeld {
            user_id: UserId(uuid::Uuid::from_u128(7)),
            seats: vec![],
            amount: 1,
            currency: "INR".into(),
            hold_expires_at: Millis(1_900_000_480_000),
            payment_method: None,
            zones: vec![ZonePlaces {
                zone: zone.into(),
                quantity,
            }],
        },
    }
}

#[tokio::test]
async fn the_database_refuses_a_commit_that_oversells_a_zone_whatever_the_sequencer_says() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = concert(&sys).await;
    // A partition no worker of this system owns, so the test commits as a runner.
    let p = 900;
    let epoch = sequencer_store::acquire_partition(&sys.pool, p, "zones-test")
        .await
        .unwrap();
    let commit = |events: Vec<EventEnvelope>| {
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.caused_by.0).collect();
        let pool = sys.pool.clone();
        async move {
            sequencer_store::commit_batch(&pool, p, epoch, "booking.events", &ids, &events).await
        }
    };
    commit(vec![
        held(show, 1, "floor", 300),
        held(show, 2, "floor", 200),
    ])
    .await
    .expect("exactly the capacity commits");
    assert_eq!(counted(&sys, show, "floor").await, (500, 500, 500));

    // One place more: the batch is refused by the CHECK, and nothing of it stays.
    let over = commit(vec![held(show, 3, "floor", 1)]).await;
    let err = over
        .expect_err("an oversold zone must not commit")
        .to_string();
    assert!(err.contains("show_zones_within_capacity"), "{err}");
    // A zone the layout does not have is refused too.
    let unknown = commit(vec![held(show, 4, "balcony", 1)]).await;
    assert!(unknown.is_err(), "a zone not in the layout committed");
    let n: i64 = sqlx::query_scalar("select count(*) from bookings where show_id = $1")
        .bind(show.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(n, 2, "a refused batch left rows");
    assert_eq!(counted(&sys, show, "floor").await, (500, 500, 500));

    // The sequencer restored from these rows agrees: the floor is full.
    let state = sequencer_store::load_show_state(&sys.pool, show)
        .await
        .unwrap()
        .unwrap();
    let floor = state.zones().next().unwrap();
    assert_eq!((floor.id, floor.available), ("floor", 0));
    sys.shutdown().await;
}
