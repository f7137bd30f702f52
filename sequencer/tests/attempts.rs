//! Payment attempts and the buyer's release through the sequencer (Round 2): a
//! decline keeps the seats while the hold lasts, a hold that runs out after a
//! decline fails, at most one capture is kept and every other one is refunded, a
//! released booking frees its seats at once and refunds a late capture. Plus a
//! property: any log of attempts keeps those rules, and replays (also from a
//! restored state) give the same bytes.

mod common;

use common::{Driver, HOLD_TTL_MS, START, config, id, names, plan};
use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, Event, EventEnvelope, MessageId, Millis,
    SeatRequest,
};
use proptest::prelude::*;
use sequencer::{SeatStatus, ShowState};
use std::collections::{BTreeMap, BTreeSet};

fn events(d: &mut Driver, command: Command) -> Vec<Event> {
    d.apply(command).into_iter().map(|e| e.event).collect()
}

fn started(b: BookingId, pi: &str) -> Command {
    Command::PaymentStarted {
        booking_id: b,
        payment_id: pi.into(),
    }
}

fn failed(b: BookingId, pi: &str) -> Command {
    Command::PaymentFailed {
        booking_id: b,
        payment_id: pi.into(),
        reason: "card_declined".into(),
    }
}

fn succeeded(b: BookingId, pi: &str) -> Command {
    Command::PaymentSucceeded {
        booking_id: b,
        payment_id: pi.into(),
        amount: 1200,
    }
}

fn refunded(b: BookingId, pi: &str) -> Command {
    Command::RefundCompleted {
        booking_id: b,
        refund_id: format!("re_{pi}"),
        amount: 1200,
        payment_id: Some(pi.into()),
    }
}

#[test]
fn a_declined_attempt_keeps_the_seats_and_a_second_attempt_confirms() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1"]);
    events(&mut d, started(b, "pi_1"));
    assert!(matches!(
        &events(&mut d, failed(b, "pi_1"))[..],
        [Event::PaymentDeclined { .. }]
    ));
    assert_eq!(
        d.state.seat_status(&common::seat("A1")),
        Some(SeatStatus::Held)
    );
    assert_eq!(
        events(&mut d, started(b, "pi_2")),
        vec![Event::PaymentPending {
            payment_id: "pi_2".into()
        }]
    );
    let ev = events(&mut d, succeeded(b, "pi_2"));
    assert!(
        matches!(&ev[..], [Event::BookingConfirmed { payment_id, retaken: false, .. }] if payment_id == "pi_2"),
        "{ev:?}"
    );
    assert_eq!(
        d.state.seat_status(&common::seat("A1")),
        Some(SeatStatus::Sold)
    );
}

#[test]
fn the_start_of_an_attempt_whose_failure_came_first_leaves_the_booking_held() {
    // The soak saw it: the saga's PaymentStarted reached the partition after the
    // PaymentFailed of the same attempt, and the booking stayed payment_pending on
    // a payment that had failed, its seats taken for good.
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1"]);
    assert!(matches!(
        &events(&mut d, failed(b, "pi_1"))[..],
        [Event::PaymentDeclined { .. }]
    ));
    assert!(events(&mut d, started(b, "pi_1")).is_empty());
    let live = d.state.live_booking(b).unwrap();
    assert_eq!(live.status, BookingStatus::Held);
    assert_eq!(live.payment_id.as_deref(), Some("pi_1"));
    // The next attempt goes ahead.
    assert_eq!(
        events(&mut d, started(b, "pi_2")),
        vec![Event::PaymentPending {
            payment_id: "pi_2".into()
        }]
    );
}

#[test]
fn the_failure_of_an_attempt_that_is_not_current_changes_nothing() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1"]);
    events(&mut d, started(b, "pi_2"));
    // pi_1 raced pi_2 and lost the start; its decline is not the booking's news.
    assert!(events(&mut d, failed(b, "pi_1")).is_empty());
    assert_eq!(
        d.state.live_booking(b).unwrap().status,
        BookingStatus::PaymentPending
    );
}

#[test]
fn a_second_capture_of_a_paid_booking_is_refunded_and_its_refund_does_not_end_the_booking() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1"]);
    events(&mut d, started(b, "pi_slow"));
    events(&mut d, started(b, "pi_ok"));
    assert!(matches!(
        &events(&mut d, succeeded(b, "pi_ok"))[..],
        [Event::BookingConfirmed { .. }]
    ));
    let ev = events(&mut d, succeeded(b, "pi_slow"));
    assert_eq!(
        ev,
        vec![Event::LatePaymentRefused {
            payment_id: "pi_slow".into(),
            amount: 1200,
            currency: "EUR".into(),
            reason: "duplicate_payment".into(),
        }]
    );
    assert!(events(&mut d, succeeded(b, "pi_ok")).is_empty(), "a repeat");
    assert!(events(&mut d, refunded(b, "pi_slow")).is_empty());
    assert_eq!(
        d.state.live_booking(b).unwrap().status,
        BookingStatus::Confirmed
    );
    // Cancelled later: its own refund ends it, an extra capture is refunded apart.
    events(
        &mut d,
        Command::CancelBooking {
            booking_id: b,
            fee_permille: 0,
        },
    );
    let ev = events(&mut d, succeeded(b, "pi_third"));
    assert!(
        matches!(&ev[..], [Event::LatePaymentRefused { payment_id, reason, .. }] if payment_id == "pi_third" && reason == "duplicate_payment"),
        "{ev:?}"
    );
    assert!(events(&mut d, refunded(b, "pi_third")).is_empty());
    assert!(matches!(
        &events(&mut d, refunded(b, "pi_ok"))[..],
        [Event::BookingRefunded { .. }]
    ));
    // Long finished, still ours: a capture now is refunded too.
    let ev = events(&mut d, succeeded(b, "pi_fourth"));
    assert!(
        matches!(&ev[..], [Event::LatePaymentRefused { .. }]),
        "{ev:?}"
    );
}

#[test]
fn the_buyer_releases_a_held_booking_only_and_a_late_capture_of_it_is_refunded() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1", "A2"]);
    let release = |b| Command::ReleaseBooking { booking_id: b };
    let ev = events(&mut d, release(b));
    assert!(
        matches!(&ev[..], [Event::BookingReleased { seats }] if names(seats) == ["A1", "A2"]),
        "{ev:?}"
    );
    assert_eq!(d.state.free_count(), 4);
    assert_eq!(
        d.state.closed_booking(b).unwrap().status,
        BookingStatus::Released
    );
    assert!(events(&mut d, release(b)).is_empty(), "final");
    // A payment that was in flight captures anyway: refunded, seats untouched.
    let ev = events(&mut d, succeeded(b, "pi_1"));
    assert!(
        matches!(&ev[..], [Event::LatePaymentRefused { reason, .. }] if reason == "released"),
        "{ev:?}"
    );
    assert_eq!(d.state.free_count(), 4);
    assert!(matches!(
        &events(&mut d, refunded(b, "pi_1"))[..],
        [Event::BookingRefunded { .. }]
    ));
    // Paying and paid bookings are not the buyer's to release.
    let paying = d.take(&["A3"]);
    events(&mut d, started(paying, "pi_p"));
    assert!(events(&mut d, release(paying)).is_empty());
    events(&mut d, succeeded(paying, "pi_p"));
    assert!(events(&mut d, release(paying)).is_empty());
    assert_eq!(
        d.state.seat_status(&common::seat("A3")),
        Some(SeatStatus::Sold)
    );
}

#[test]
fn a_hold_that_runs_out_expires_without_an_attempt_and_fails_after_a_decline() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let plain = d.take(&["A1"]);
    let declined = d.take(&["A2"]);
    events(&mut d, failed(declined, "")); // refused at the gateway: no payment id
    d.now = d.now.plus_ms(HOLD_TTL_MS);
    let ev = events(&mut d, Command::ExpireHold { booking_id: plain });
    assert!(matches!(&ev[..], [Event::BookingExpired { .. }]), "{ev:?}");
    let ev = events(
        &mut d,
        Command::ExpireHold {
            booking_id: declined,
        },
    );
    assert!(
        matches!(&ev[..], [Event::PaymentFailed { reason, seats, .. }] if reason == "card_declined" && names(seats) == ["A2"]),
        "{ev:?}"
    );
    assert_eq!(
        d.state.closed_booking(declined).unwrap().status,
        BookingStatus::Failed
    );
    assert_eq!(d.state.free_count(), 4);
}

/// One step of a random log over a few bookings and payment ids.
#[derive(Debug, Clone)]
enum Op {
    Hold { booking: u8, seat: u8 },
    Start { booking: u8, pi: u8 },
    Fail { booking: u8, pi: u8 },
    Succeed { booking: u8, pi: u8 },
    Refund { booking: u8, pi: u8 },
    Release { booking: u8 },
    Cancel { booking: u8 },
    Expire { booking: u8 },
    Advance { ms: i64 },
}

const BOOKINGS: u8 = 5;
const PAYMENTS: u8 = 3;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..BOOKINGS, 0u8..4).prop_map(|(booking, seat)| Op::Hold { booking, seat }),
        3 => (0..BOOKINGS, 0..PAYMENTS).prop_map(|(booking, pi)| Op::Start { booking, pi }),
        3 => (0..BOOKINGS, 0..PAYMENTS).prop_map(|(booking, pi)| Op::Fail { booking, pi }),
        3 => (0..BOOKINGS, 0..PAYMENTS).prop_map(|(booking, pi)| Op::Succeed { booking, pi }),
        1 => (0..BOOKINGS, 0..PAYMENTS).prop_map(|(booking, pi)| Op::Refund { booking, pi }),
        1 => (0..BOOKINGS).prop_map(|booking| Op::Release { booking }),
        1 => (0..BOOKINGS).prop_map(|booking| Op::Cancel { booking }),
        2 => (0..BOOKINGS).prop_map(|booking| Op::Expire { booking }),
        2 => prop_oneof![Just(1), Just(HOLD_TTL_MS / 2), Just(HOLD_TTL_MS)]
            .prop_map(|ms| Op::Advance { ms }),
    ]
}

fn booking(n: u8) -> BookingId {
    id(0xb00c_0000 + u128::from(n))
}

fn pi(booking: u8, n: u8) -> String {
    format!("pi_{booking}_{n}")
}

/// The commands of `ops` (with message ids and times), as a runner would see them.
/// A payment id succeeds at most once, as the saga's fixed message ids and the
/// inbox make sure.
fn log_of(ops: &[Op]) -> Vec<CommandEnvelope> {
    let mut now = START;
    let mut succeeded_once = BTreeSet::new();
    let mut log = vec![];
    for (n, op) in ops.iter().enumerate() {
        let command = match op.clone() {
            Op::Advance { ms } => {
                now = now.plus_ms(ms);
                continue;
            }
            Op::Hold { booking: b, seat } => Driver::hold_command(
                booking(b),
                SeatRequest::Chosen {
                    seats: vec![common::seat(&format!("A{}", 1 + seat))],
                },
            ),
            Op::Start { booking: b, pi: p } => started(booking(b), &pi(b, p)),
            Op::Fail { booking: b, pi: p } => failed(booking(b), &pi(b, p)),
            Op::Succeed { booking: b, pi: p } => {
                if !succeeded_once.insert((b, p)) {
                    continue;
                }
                succeeded(booking(b), &pi(b, p))
            }
            Op::Refund { booking: b, pi: p } => refunded(booking(b), &pi(b, p)),
            Op::Release { booking: b } => Command::ReleaseBooking {
                booking_id: booking(b),
            },
            Op::Cancel { booking: b } => Command::CancelBooking {
                booking_id: booking(b),
                fee_permille: 100,
            },
            Op::Expire { booking: b } => Command::ExpireHold {
                booking_id: booking(b),
            },
        };
        log.push(CommandEnvelope {
            message_id: id::<MessageId>(0x0a77_0000 + n as u128),
            show_id: common::show_id(),
            issued_at: now,
            request_id: None,
            trace: None,
            command,
        });
    }
    log
}

fn replay(state: &mut ShowState, log: &[CommandEnvelope]) -> Vec<EventEnvelope> {
    log.iter().flat_map(|c| state.apply(c)).collect()
}

fn fresh() -> ShowState {
    ShowState::new(config(plan(&["rrrr"]))).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_capture_is_kept_once_or_refunded_and_replays_are_byte_for_byte(
        ops in prop::collection::vec(op(), 1..80),
        split in 0usize..80,
    ) {
        let log = log_of(&ops);
        let mut state = fresh();
        let mut confirmed: BTreeMap<BookingId, u32> = BTreeMap::new();
        let mut outcome_of_capture: BTreeMap<(BookingId, String), u32> = BTreeMap::new();
        for cmd in &log {
            let before_known = state.is_known(cmd.command.booking_id());
            let events = state.apply(cmd);
            for e in &events {
                match &e.event {
                    Event::BookingConfirmed { payment_id, .. } => {
                        *confirmed.entry(e.booking_id).or_default() += 1;
                        *outcome_of_capture.entry((e.booking_id, payment_id.clone())).or_default() += 1;
                    }
                    Event::LatePaymentRefused { payment_id, .. } => {
                        *outcome_of_capture.entry((e.booking_id, payment_id.clone())).or_default() += 1;
                    }
                    _ => {}
                }
            }
            // Every capture of a booking the show knows is kept or refunded, once.
            if let Command::PaymentSucceeded { booking_id, payment_id, .. } = &cmd.command {
                let n = outcome_of_capture.get(&(*booking_id, payment_id.clone())).copied().unwrap_or(0);
                prop_assert_eq!(n, u32::from(before_known), "capture {} of {}", payment_id, booking_id);
            }
            // Seats: each occupied seat belongs to exactly one live booking, and a
            // live booking occupies exactly its seats.
            let mut occupied = 0;
            for b in state.live_bookings() {
                for s in &b.seats {
                    let want = if b.status == BookingStatus::Confirmed { SeatStatus::Sold } else { SeatStatus::Held };
                    prop_assert_eq!(state.seat_status(s), Some(want));
                    occupied += 1;
                }
            }
            prop_assert_eq!(occupied + state.free_count(), 4);
        }
        // At most one capture is kept per booking.
        prop_assert!(confirmed.values().all(|n| *n == 1), "{:?}", confirmed);

        // The same log gives the same bytes; a state restored mid-way behaves alike.
        let mut again = fresh();
        let mut original = fresh();
        prop_assert_eq!(
            serde_json::to_vec(&replay(&mut again, &log)).unwrap(),
            serde_json::to_vec(&replay(&mut original, &log)).unwrap()
        );
        let (head, tail) = log.split_at(split.min(log.len()));
        let mut original = fresh();
        replay(&mut original, head);
        let known: Vec<BookingId> = (0..BOOKINGS).map(booking).filter(|b| original.is_known(*b)).collect();
        let mut restored = ShowState::restore(
            config(plan(&["rrrr"])),
            original.live_bookings().cloned().collect(),
            known,
        )
        .unwrap()
        .with_closed(original.closed_bookings().cloned().collect())
        .unwrap();
        prop_assert_eq!(
            serde_json::to_vec(&replay(&mut original, tail)).unwrap(),
            serde_json::to_vec(&replay(&mut restored, tail)).unwrap()
        );
        prop_assert_eq!(serde_json::to_vec(&original).unwrap(), serde_json::to_vec(&restored).unwrap());
    }
}

#[test]
fn a_declined_booking_restored_from_the_database_still_fails_when_its_hold_runs_out() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1"]);
    events(&mut d, failed(b, "pi_1"));
    let live: Vec<_> = d.state.live_bookings().cloned().collect();
    assert_eq!(live[0].declined.as_deref(), Some("card_declined"));
    let restored = ShowState::restore(config(plan(&["rrrr"])), live, [b]).unwrap();
    let mut after = Driver::from_state(restored);
    after.now = Millis(START.0 + HOLD_TTL_MS);
    let ev = events(&mut after, Command::ExpireHold { booking_id: b });
    assert!(matches!(&ev[..], [Event::PaymentFailed { .. }]), "{ev:?}");
}
