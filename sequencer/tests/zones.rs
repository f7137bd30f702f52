//! General-admission zones: examples, then random command sequences over a small
//! show with seats and two zones (mixed requests allowed or not), with every
//! invariant checked after every step:
//!
//! - a zone's places taken are exactly its live bookings' places, never more than
//!   its capacity;
//! - a hold is all or nothing: a rejection changes no seat and no zone; a hold takes
//!   every asked seat and place, priced by the zone's seat type;
//! - places come back when a booking stops occupying them (expiry, release,
//!   cancellation, a failed payment) and are re-taken only if still free;
//! - no user holds more than the per-user limit, places counting like seats;
//! - the same log gives the same bytes, and a state restored from its live and
//!   closed bookings equals the original.
//!
//! `PROPTEST_RNG_SEED` fixes the seed; failures are saved in `zones.regressions`.

mod common;

use common::{Driver, HOLD_TTL_MS, config, id, plan, seat, with_zone};
use contracts::{BookingId, Command, Event, RejectReason, ScreenLayout, SeatRequest, UserId};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use sequencer::{SeatStatus, ShowConfig, ShowState};
use std::collections::BTreeMap;

/// Six seats, a `floor` of 6 places and a `pit` of 3.
fn layout(mixed: bool) -> ScreenLayout {
    let mut l = with_zone(with_zone(plan(&["rrr|rrr"]), "floor", 6), "pit", 3);
    l.mixed_booking = mixed;
    l
}

const LIMIT: u32 = 7;

fn limited(layout: ScreenLayout) -> ShowConfig {
    ShowConfig {
        max_tickets_per_user: Some(LIMIT),
        ..config(layout)
    }
}

const ZONES: [&str; 3] = ["floor", "pit", "balcony"];
const SEATS: [&str; 7] = ["A1", "A2", "A3", "A4", "A5", "A6", "B1"];

fn available(show: &ShowState) -> BTreeMap<String, u32> {
    show.zones()
        .map(|z| (z.id.to_owned(), z.available))
        .collect()
}

#[test]
fn zone_places_are_held_priced_and_given_back() {
    let mut show = Driver::new(layout(false));
    let (b, e) = show.places("floor", 4, &[]);
    let Event::BookingHeld {
        seats,
        zones,
        amount,
        ..
    } = e
    else {
        panic!("not held: {e:?}")
    };
    assert!(seats.is_empty());
    assert_eq!(zones.len(), 1);
    assert_eq!((zones[0].zone.as_str(), zones[0].quantity), ("floor", 4));
    assert_eq!(amount, 4 * 900);
    assert_eq!(show.available("floor"), 2);
    let (_, e) = show.places("floor", 3, &[]);
    assert_eq!(
        e,
        Event::BookingRejected {
            user_id: id(7),
            reason: RejectReason::NotEnoughPlaces {
                zone: "floor".into(),
                available: 2
            }
        }
    );
    show.apply(Command::ReleaseBooking { booking_id: b });
    assert_eq!(show.available("floor"), 6);
}

#[test]
fn a_mixed_request_is_all_or_nothing_and_refused_where_the_layout_does_not_mix() {
    let mut show = Driver::new(layout(true));
    show.take(&["A2"]);
    let (_, e) = show.places("floor", 2, &["A1", "A2"]);
    assert!(
        matches!(
            e,
            Event::BookingRejected {
                reason: RejectReason::SeatUnavailable { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        show.available("floor"),
        6,
        "no place taken for a refused request"
    );
    let (_, e) = show.places("pit", 4, &["A1"]);
    assert!(
        matches!(
            e,
            Event::BookingRejected {
                reason: RejectReason::NotEnoughPlaces { available: 3, .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        show.state.seat_status(&seat("A1")),
        Some(SeatStatus::Available)
    );
    let (_, e) = show.places("pit", 3, &["A1"]);
    assert!(
        matches!(&e, Event::BookingHeld { seats, amount, .. } if seats.len() == 1 && *amount == 1200 + 3 * 900),
        "{e:?}"
    );

    let mut unmixed = Driver::new(layout(false));
    let (_, e) = unmixed.places("floor", 1, &["A1"]);
    assert!(
        matches!(
            e,
            Event::BookingRejected {
                reason: RejectReason::InvalidRequest { .. },
                ..
            }
        ),
        "{e:?}"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Places {
        booking: u8,
        user: u8,
        zone: usize,
        quantity: u32,
        seats: Vec<usize>,
    },
    Seats {
        booking: u8,
        user: u8,
        seats: Vec<usize>,
    },
    Expire(u8),
    Release(u8),
    Pay(u8, u8),
    Decline(u8),
    Cancel(u8),
    Advance(i64),
}

const BOOKINGS: u8 = 12;

fn op() -> impl Strategy<Value = Op> {
    let seats = || prop::collection::vec(0..SEATS.len(), 0..3);
    prop_oneof![
        5 => (0..BOOKINGS, 0u8..3, 0..ZONES.len(), 0u32..6, seats())
            .prop_map(|(booking, user, zone, quantity, seats)| Op::Places { booking, user, zone, quantity, seats }),
        2 => (0..BOOKINGS, 0u8..3, seats())
            .prop_map(|(booking, user, seats)| Op::Seats { booking, user, seats }),
        2 => (0..BOOKINGS).prop_map(Op::Expire),
        1 => (0..BOOKINGS).prop_map(Op::Release),
        2 => (0..BOOKINGS, 0u8..2).prop_map(|(b, p)| Op::Pay(b, p)),
        1 => (0..BOOKINGS).prop_map(Op::Decline),
        1 => (0..BOOKINGS).prop_map(Op::Cancel),
        2 => prop_oneof![Just(1), Just(HOLD_TTL_MS)].prop_map(Op::Advance),
    ]
}

fn booking_id(n: u8) -> BookingId {
    id(0xb00c_0000 + u128::from(n))
}

fn command(op: &Op) -> Option<Command> {
    let hold = |booking: u8, user: u8, request| {
        Command::HoldSeats(contracts::HoldSeats {
            booking_id: booking_id(booking),
            user_id: id::<UserId>(1 + u128::from(user)),
            request,
            hold_ttl_ms: HOLD_TTL_MS,
            payment_method: None,
        })
    };
    let ids = |seats: &[usize]| seats.iter().map(|&s| seat(SEATS[s])).collect();
    let pi = |b: u8, p: u8| format!("pi_{b}_{p}");
    Some(match op {
        Op::Places {
            booking,
            user,
            zone,
            quantity,
            seats,
        } => hold(
            *booking,
            *user,
            SeatRequest::Zone {
                zone: ZONES[*zone].to_owned(),
                quantity: *quantity,
                seats: ids(seats),
            },
        ),
        Op::Seats {
            booking,
            user,
            seats,
        } => hold(*booking, *user, SeatRequest::Chosen { seats: ids(seats) }),
        Op::Expire(b) => Command::ExpireHold {
            booking_id: booking_id(*b),
        },
        Op::Release(b) => Command::ReleaseBooking {
            booking_id: booking_id(*b),
        },
        Op::Pay(b, p) => Command::PaymentSucceeded {
            booking_id: booking_id(*b),
            payment_id: pi(*b, *p),
            amount: 1,
        },
        Op::Decline(b) => Command::PaymentFailed {
            booking_id: booking_id(*b),
            payment_id: pi(*b, 0),
            reason: "declined".into(),
        },
        Op::Cancel(b) => Command::CancelBooking {
            booking_id: booking_id(*b),
            fee_permille: 100,
        },
        Op::Advance(_) => return None,
    })
}

/// The invariants of the state on its own.
fn check_state(show: &ShowState) -> Result<(), TestCaseError> {
    let mut taken: BTreeMap<&str, u32> = BTreeMap::new();
    let mut per_user: BTreeMap<UserId, u32> = BTreeMap::new();
    for b in show.live_bookings() {
        prop_assert!(!b.seats.is_empty() || !b.zones.is_empty());
        for p in &b.zones {
            prop_assert!(p.quantity > 0);
            *taken.entry(p.zone.as_str()).or_default() += p.quantity;
        }
        let places: u32 = b.zones.iter().map(|p| p.quantity).sum();
        *per_user.entry(b.user_id).or_default() += places + b.seats.len() as u32;
    }
    for z in show.zones() {
        let t = taken.get(z.id).copied().unwrap_or(0);
        prop_assert!(t <= z.capacity, "zone {} over capacity", z.id);
        prop_assert_eq!(z.capacity - z.available, t, "zone {} miscounted", z.id);
    }
    for (user, n) in per_user {
        prop_assert!(n <= LIMIT, "user {user} has {n}");
    }
    Ok(())
}

/// What the event of one hold says, against the state before it.
fn check_hold(
    op: &Op,
    before: &BTreeMap<String, u32>,
    seats_before: &[SeatStatus],
    show: &ShowState,
    events: &[Event],
) -> Result<(), TestCaseError> {
    let seats_after: Vec<SeatStatus> = show.seats().map(|(_, s)| s).collect();
    match events {
        [] => {} // a retry of a decided booking
        [Event::BookingRejected { reason, .. }] => {
            prop_assert_eq!(&available(show), before, "a refusal took places");
            prop_assert_eq!(seats_after, seats_before, "a refusal took seats");
            if let (
                RejectReason::NotEnoughPlaces { zone, available },
                Op::Places { quantity, .. },
            ) = (reason, op)
            {
                prop_assert_eq!(before.get(zone).copied(), Some(*available));
                prop_assert!(available < quantity);
            }
        }
        [
            Event::BookingHeld {
                seats,
                zones,
                amount,
                ..
            },
        ] => {
            let (want_zone, want_qty, want_seats) = match op {
                Op::Places {
                    zone,
                    quantity,
                    seats,
                    ..
                } => (Some(ZONES[*zone]), *quantity, seats.len()),
                Op::Seats { seats, .. } => (None, 0, seats.len()),
                _ => unreachable!(),
            };
            prop_assert_eq!(seats.len(), want_seats);
            match want_zone {
                Some(z) => {
                    prop_assert_eq!(zones.len(), 1);
                    prop_assert_eq!(zones[0].zone.as_str(), z);
                    prop_assert_eq!(zones[0].quantity, want_qty);
                    prop_assert_eq!(available(show)[z] + want_qty, before[z]);
                }
                None => prop_assert!(zones.is_empty()),
            }
            let want_amount = 1200 * want_seats as i64 + 900 * i64::from(want_qty);
            prop_assert_eq!(*amount, want_amount);
        }
        other => prop_assert!(false, "a hold gave {other:?}"),
    }
    Ok(())
}

fn run(mixed: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let start = ShowState::new(limited(layout(mixed))).unwrap();
    let mut show = Driver::from_state(start.clone());
    let mut log = Vec::new();
    for op in ops {
        if let Op::Advance(ms) = op {
            show.now = show.now.plus_ms(*ms);
            continue;
        }
        let before = available(&show.state);
        let seats_before: Vec<SeatStatus> = show.state.seats().map(|(_, s)| s).collect();
        let live_before: BTreeMap<BookingId, u32> = show
            .state
            .live_bookings()
            .map(|b| (b.booking_id, b.zones.iter().map(|p| p.quantity).sum()))
            .collect();
        let env = show.envelope(command(op).expect("not an advance"));
        let events: Vec<Event> = show
            .state
            .apply(&env)
            .into_iter()
            .map(|e| e.event)
            .collect();
        log.push(env);
        match op {
            Op::Places { .. } | Op::Seats { .. } => {
                check_hold(op, &before, &seats_before, &show.state, &events)?
            }
            _ => {
                // Whatever ended a booking gave all its places back.
                let given_back: u32 = live_before
                    .iter()
                    .filter(|(b, _)| show.state.live_booking(**b).is_none())
                    .map(|(_, n)| *n)
                    .sum();
                let retaken: u32 = show
                    .state
                    .live_bookings()
                    .filter(|b| !live_before.contains_key(&b.booking_id))
                    .flat_map(|b| &b.zones)
                    .map(|p| p.quantity)
                    .sum();
                let sum = |m: &BTreeMap<String, u32>| m.values().sum::<u32>();
                prop_assert_eq!(
                    sum(&available(&show.state)) + retaken,
                    sum(&before) + given_back
                );
            }
        }
        check_state(&show.state)?;
    }

    // Replay: the same log from the same start, the same bytes.
    let mut again = start;
    let first: Vec<_> = log.iter().flat_map(|c| again.apply(c)).collect();
    let mut once_more = ShowState::new(limited(layout(mixed))).unwrap();
    let second: Vec<_> = log.iter().flat_map(|c| once_more.apply(c)).collect();
    prop_assert_eq!(
        serde_json::to_vec(&first).unwrap(),
        serde_json::to_vec(&second).unwrap()
    );
    prop_assert_eq!(&again, &show.state);

    // Restore: the live and closed bookings rebuild the same state.
    let known: Vec<BookingId> = (0..BOOKINGS)
        .map(booking_id)
        .filter(|b| show.state.is_known(*b))
        .collect();
    let restored = ShowState::restore(
        limited(layout(mixed)),
        show.state.live_bookings().cloned().collect(),
        known,
    )
    .and_then(|s| s.with_closed(show.state.closed_bookings().cloned().collect()))
    .unwrap();
    prop_assert_eq!(
        serde_json::to_vec(&restored).unwrap(),
        serde_json::to_vec(&show.state).unwrap()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn zones_never_oversell_and_every_hold_is_all_or_nothing(
        mixed in any::<bool>(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(mixed, &ops)?;
    }
}
