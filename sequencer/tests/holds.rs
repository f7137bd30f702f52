//! Chosen seats, retries, sale state, setup and restore, expiry and release.

mod common;

use common::{Driver, HOLD_TTL_MS, START, config, id, names, plan, seat, show_id};
use contracts::{
    BookingStatus, Command, CommandEnvelope, Event, EventId, HoldSeats, Millis, Price,
    RejectReason, SeatRequest, UserId,
};
use sequencer::{LiveBooking, SeatStatus, ShowState};

fn rejection(event: Event) -> RejectReason {
    match event {
        Event::BookingRejected { reason, .. } => reason,
        other => panic!("not rejected: {other:?}"),
    }
}

fn status(show: &Driver, s: &str) -> SeatStatus {
    show.state.seat_status(&seat(s)).unwrap()
}

#[test]
fn chosen_seats_are_held_all_or_nothing() {
    let mut show = Driver::new(plan(&["rrrr"]));
    show.take(&["A2"]);
    let (b, event) = show.choose(&["A3", "A2"]);
    assert_eq!(
        rejection(event),
        RejectReason::SeatUnavailable {
            seats: vec![seat("A2")]
        }
    );
    assert_eq!(status(&show, "A3"), SeatStatus::Available);
    assert!(show.state.is_known(b));
    assert!(show.state.live_booking(b).is_none());
}

#[test]
fn unavailable_seats_are_reported_in_layout_order() {
    let mut show = Driver::new(plan(&["rrrx", "rrrr"]));
    show.take(&["B1"]);
    show.take(&["A1"]);
    let (_, event) = show.choose(&["B1", "A2", "A4", "A1"]);
    assert_eq!(
        rejection(event),
        RejectReason::SeatUnavailable {
            seats: vec![seat("A1"), seat("A4"), seat("B1")]
        }
    );
}

#[test]
fn a_held_booking_carries_its_seats_price_currency_and_expiry() {
    let mut show = Driver::new(plan(&["vvrr"]));
    let booking = show.new_booking();
    let env = CommandEnvelope {
        message_id: id(99),
        show_id: show_id(),
        issued_at: START,
        request_id: Some("req-1".into()),
        trace: None,
        command: Command::HoldSeats(HoldSeats {
            booking_id: booking,
            user_id: id(5),
            request: SeatRequest::Chosen {
                seats: vec![seat("A3"), seat("A1")],
            },
            hold_ttl_ms: HOLD_TTL_MS,
            payment_method: Some("card".into()),
        }),
    };
    let events = show.state.apply(&env);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event_id, EventId::derive(id(99), 0));
    assert_eq!(e.caused_by, id(99));
    assert_eq!(e.occurred_at, START);
    assert_eq!(e.booking_id, booking);
    assert_eq!(e.show_id, show_id());
    assert_eq!(
        e.event,
        Event::BookingHeld {
            user_id: id::<UserId>(5),
            seats: vec![seat("A1"), seat("A3")],
            amount: 2000 + 1200,
            currency: "EUR".into(),
            hold_expires_at: START.plus_ms(HOLD_TTL_MS),
            payment_method: Some("card".into()),
            zones: vec![],
        }
    );
    assert_eq!(status(&show, "A1"), SeatStatus::Held);
    assert_eq!(status(&show, "A2"), SeatStatus::Available);
    assert_eq!(show.state.free_count(), 2);
}

#[test]
fn duplicate_unknown_and_out_of_range_seats_are_invalid_requests() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let invalid = |e: Event| matches!(rejection(e), RejectReason::InvalidRequest { .. });
    assert!(invalid(show.choose(&["A1", "A1"]).1));
    assert!(invalid(show.choose(&["A1", "Z9"]).1));
    assert!(invalid(show.choose(&[]).1));
    let eleven: Vec<String> = (1..=11).map(|n| format!("A{n}")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    assert!(invalid(show.choose(&eleven).1));
    assert!(invalid(show.best_event(0, None)));
    assert!(invalid(show.best_event(11, None)));
    assert_eq!(show.state.free_count(), 4);
}

#[test]
fn a_retried_hold_with_the_same_booking_id_collapses() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let b = show.new_booking();
    let hold = |seats: &[&str]| {
        Driver::hold_command(
            b,
            SeatRequest::Chosen {
                seats: seats.iter().map(|s| seat(s)).collect(),
            },
        )
    };
    assert_eq!(show.apply(hold(&["A1"])).len(), 1);
    // Same booking, new message id, even a different request: nothing happens.
    assert!(show.apply(hold(&["A1"])).is_empty());
    assert!(show.apply(hold(&["A2"])).is_empty());
    assert_eq!(status(&show, "A2"), SeatStatus::Available);

    // A rejected booking stays rejected on retry, even once its seat is free.
    let other = show.new_booking();
    let retry = Driver::hold_command(
        other,
        SeatRequest::Chosen {
            seats: vec![seat("A1")],
        },
    );
    assert_eq!(show.apply(retry.clone()).len(), 1);
    show.apply(Command::ReleaseHold {
        booking_id: b,
        reason: "client gave up".into(),
    });
    assert!(show.apply(retry).is_empty());
    assert_eq!(status(&show, "A1"), SeatStatus::Available);
}

#[test]
fn a_show_not_on_sale_rejects_every_hold() {
    let mut cfg = config(plan(&["rrrr"]));
    cfg.on_sale = false;
    let mut show = Driver::from_state(ShowState::new(cfg).unwrap());
    assert_eq!(rejection(show.choose(&["A1"]).1), RejectReason::NotOnSale);
    assert_eq!(rejection(show.best_event(2, None)), RejectReason::NotOnSale);
    assert_eq!(show.state.free_count(), 4);
}

#[test]
fn a_command_for_another_show_is_ignored() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let b = show.new_booking();
    let mut env = show.envelope(Driver::hold_command(
        b,
        SeatRequest::BestAvailable {
            quantity: 1,
            seat_type: None,
        },
    ));
    env.show_id = id(0xdead);
    assert!(show.state.apply(&env).is_empty());
    assert!(!show.state.is_known(b));
}

#[test]
fn setup_refuses_bad_layouts_missing_prices_and_mixed_currencies() {
    let mut cfg = config(plan(&["rrrr"]));
    cfg.layout.rows[0].aisles_after = vec![9];
    assert!(ShowState::new(cfg).is_err());

    let mut cfg = config(plan(&["rrvv"]));
    cfg.prices.retain(|p| p.seat_type == "regular");
    let err = ShowState::new(cfg).unwrap_err();
    assert!(err.to_string().contains("vip"), "{err}");

    let mut cfg = config(plan(&["rrvv"]));
    cfg.prices[1].currency = "USD".into();
    assert!(ShowState::new(cfg).is_err());

    let mut cfg = config(plan(&["rrvv"]));
    cfg.prices.push(Price {
        seat_type: "vip".into(),
        amount: 1,
        currency: "EUR".into(),
    });
    assert!(ShowState::new(cfg).is_err());
}

fn live(n: u128, status: BookingStatus, seats: &[&str]) -> LiveBooking {
    LiveBooking {
        booking_id: id(n),
        user_id: id(7),
        status,
        seats: seats.iter().map(|s| seat(s)).collect(),
        hold_expires_at: START.plus_ms(HOLD_TTL_MS),
        amount: 1200 * seats.len() as i64,
        currency: "EUR".into(),
        payment_id: None,
        declined: None,
        zones: vec![],
    }
}

#[test]
fn restore_refuses_two_live_bookings_on_one_seat() {
    let err = ShowState::restore(
        config(plan(&["rrrr"])),
        vec![
            live(1, BookingStatus::Held, &["A1", "A2"]),
            live(2, BookingStatus::Confirmed, &["A2"]),
        ],
        [],
    )
    .unwrap_err();
    assert!(err.to_string().contains("A2"), "{err}");
    for bad in [
        vec![live(1, BookingStatus::Expired, &["A1"])],
        vec![live(1, BookingStatus::Held, &["A1", "A1"])],
        vec![live(1, BookingStatus::Held, &["Q1"])],
        vec![
            live(1, BookingStatus::Held, &["A1"]),
            live(1, BookingStatus::Held, &["A2"]),
        ],
    ] {
        assert!(ShowState::restore(config(plan(&["rrrr"])), bad, []).is_err());
    }
}

#[test]
fn restore_shows_held_pending_and_confirmed_seats_and_remembers_known_bookings() {
    let state = ShowState::restore(
        config(plan(&["rrrrx"])),
        vec![
            live(1, BookingStatus::Held, &["A2", "A1"]),
            live(2, BookingStatus::PaymentPending, &["A3"]),
            live(3, BookingStatus::Confirmed, &["A4"]),
        ],
        [id(40), id(41)],
    )
    .unwrap();
    let statuses: Vec<SeatStatus> = state.seats().map(|(_, s)| s).collect();
    assert_eq!(
        statuses,
        [
            SeatStatus::Held,
            SeatStatus::Held,
            SeatStatus::Held,
            SeatStatus::Sold,
            SeatStatus::Blocked
        ]
    );
    assert_eq!(state.free_count(), 0);
    assert_eq!(
        names(&state.live_booking(id(1)).unwrap().seats),
        ["A1", "A2"]
    );
    for known in [1, 2, 3, 40, 41] {
        assert!(state.is_known(id(known)));
    }
    assert!(!state.is_known(id(42)));
}

#[test]
fn expire_hold_before_the_expiry_time_does_nothing() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let b = show.take(&["A1", "A2"]);
    show.now = START.plus_ms(HOLD_TTL_MS - 1);
    assert!(show.apply(Command::ExpireHold { booking_id: b }).is_empty());
    assert_eq!(status(&show, "A1"), SeatStatus::Held);
    assert!(show.state.live_booking(b).is_some());
}

#[test]
fn expire_hold_at_the_expiry_time_frees_exactly_the_held_seats() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let b = show.take(&["A2", "A1"]);
    let other = show.take(&["A3"]);
    show.now = START.plus_ms(HOLD_TTL_MS);
    let events = show.apply(Command::ExpireHold { booking_id: b });
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].booking_id, b);
    assert_eq!(
        events[0].event,
        Event::BookingExpired {
            seats: vec![seat("A1"), seat("A2")]
        }
    );
    assert_eq!(status(&show, "A1"), SeatStatus::Available);
    assert_eq!(status(&show, "A2"), SeatStatus::Available);
    assert_eq!(status(&show, "A3"), SeatStatus::Held);
    assert!(show.state.live_booking(other).is_some());
    assert!(show.state.is_known(b));
    // A second sweep finds nothing to expire.
    assert!(show.apply(Command::ExpireHold { booking_id: b }).is_empty());
}

#[test]
fn expire_hold_after_the_expiry_time_also_frees_the_seats() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let b = show.take(&["A4"]);
    show.now = Millis(START.0 + 10 * HOLD_TTL_MS);
    assert_eq!(show.apply(Command::ExpireHold { booking_id: b }).len(), 1);
    assert_eq!(show.state.free_count(), 4);
}

#[test]
fn release_hold_frees_the_seats_with_its_reason() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let b = show.take(&["A3", "A4"]);
    let events = show.apply(Command::ReleaseHold {
        booking_id: b,
        reason: "payment_failed".into(),
    });
    assert_eq!(
        events.into_iter().map(|e| e.event).collect::<Vec<_>>(),
        [Event::HoldReleased {
            seats: vec![seat("A3"), seat("A4")],
            reason: "payment_failed".into()
        }]
    );
    assert_eq!(show.state.free_count(), 4);
    assert!(
        show.apply(Command::ReleaseHold {
            booking_id: b,
            reason: "again".into()
        })
        .is_empty()
    );
}

#[test]
fn pending_and_confirmed_bookings_are_not_expired_and_confirmed_ones_not_released() {
    let state = ShowState::restore(
        config(plan(&["rrrr"])),
        vec![
            live(1, BookingStatus::PaymentPending, &["A1"]),
            live(2, BookingStatus::Confirmed, &["A2"]),
        ],
        [],
    )
    .unwrap();
    let mut show = Driver::from_state(state);
    show.now = Millis(START.0 + 10 * HOLD_TTL_MS);
    assert!(
        show.apply(Command::ExpireHold { booking_id: id(1) })
            .is_empty()
    );
    assert!(
        show.apply(Command::ExpireHold { booking_id: id(2) })
            .is_empty()
    );
    let release = |b: u128| Command::ReleaseHold {
        booking_id: id(b),
        reason: "saga".into(),
    };
    assert!(show.apply(release(2)).is_empty());
    assert_eq!(status(&show, "A2"), SeatStatus::Sold);
    assert_eq!(show.apply(release(1)).len(), 1);
    assert_eq!(status(&show, "A1"), SeatStatus::Available);
}

#[test]
fn a_restored_booking_on_a_now_blocked_seat_keeps_it_until_freed() {
    let state = ShowState::restore(
        config(plan(&["rx"])),
        vec![live(1, BookingStatus::Held, &["A2"])],
        [],
    )
    .unwrap();
    let mut show = Driver::from_state(state);
    assert_eq!(status(&show, "A2"), SeatStatus::Held);
    show.now = Millis(START.0 + HOLD_TTL_MS);
    assert_eq!(
        show.apply(Command::ExpireHold { booking_id: id(1) }).len(),
        1
    );
    assert_eq!(status(&show, "A2"), SeatStatus::Blocked);
    assert_eq!(show.state.free_count(), 1);
}
