//! Payments through the sequencer: pending is a lock, success confirms, a decline
//! keeps the seats until the hold runs out (then the booking fails and frees them),
//! a late success takes the same seats again or asks for a refund, a cancellation
//! frees the seats and asks for a refund, refunds complete once.

mod common;

use common::{Driver, HOLD_TTL_MS, names, plan};
use contracts::{BookingId, BookingStatus, Command, Event};
use sequencer::SeatStatus;

fn started(d: &mut Driver, b: BookingId, pi: &str) -> Vec<Event> {
    d.apply(Command::PaymentStarted {
        booking_id: b,
        payment_id: pi.into(),
    })
    .into_iter()
    .map(|e| e.event)
    .collect()
}

fn succeeded(d: &mut Driver, b: BookingId, pi: &str) -> Vec<Event> {
    d.apply(Command::PaymentSucceeded {
        booking_id: b,
        payment_id: pi.into(),
        amount: 2400,
    })
    .into_iter()
    .map(|e| e.event)
    .collect()
}

fn expire(d: &mut Driver, b: BookingId) -> Vec<Event> {
    d.now = d.now.plus_ms(HOLD_TTL_MS);
    d.apply(Command::ExpireHold { booking_id: b })
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[test]
fn a_started_payment_locks_the_seats_and_survives_expiry() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1", "A2"]);
    assert_eq!(
        started(&mut d, b, "pi_1"),
        vec![Event::PaymentPending {
            payment_id: "pi_1".into()
        }]
    );
    assert_eq!(
        d.state.live_booking(b).unwrap().status,
        BookingStatus::PaymentPending
    );
    // Pending is never expired by the sequencer: the saga asks the gateway first.
    assert!(expire(&mut d, b).is_empty());
    assert_eq!(
        d.state.seat_status(&common::seat("A1")),
        Some(SeatStatus::Held)
    );
    // A second start is a no-op.
    assert!(started(&mut d, b, "pi_1").is_empty());
}

#[test]
fn a_successful_payment_confirms_and_sells_the_seats_once() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1", "A2"]);
    started(&mut d, b, "pi_1");
    let events = succeeded(&mut d, b, "pi_1");
    match &events[..] {
        [
            Event::BookingConfirmed {
                seats,
                amount,
                payment_id,
                retaken,
                ..
            },
        ] => {
            assert_eq!(names(seats), ["A1", "A2"]);
            assert_eq!(*amount, 2400);
            assert_eq!(payment_id, "pi_1");
            assert!(!retaken);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.state.seat_status(&common::seat("A2")),
        Some(SeatStatus::Sold)
    );
    assert!(
        succeeded(&mut d, b, "pi_1").is_empty(),
        "a repeat changes nothing"
    );
}

#[test]
fn a_declined_payment_keeps_the_seats_until_the_hold_runs_out_then_the_booking_fails() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A3"]);
    started(&mut d, b, "pi_1");
    let decline = |d: &mut Driver, pi: &str| -> Vec<Event> {
        d.apply(Command::PaymentFailed {
            booking_id: b,
            payment_id: pi.into(),
            reason: "card_declined".into(),
        })
        .into_iter()
        .map(|e| e.event)
        .collect()
    };
    // Declined while the hold lasts: held again, the seat still taken.
    assert_eq!(
        decline(&mut d, "pi_1"),
        vec![Event::PaymentDeclined {
            payment_id: "pi_1".into(),
            reason: "card_declined".into()
        }]
    );
    assert_eq!(d.state.live_booking(b).unwrap().status, BookingStatus::Held);
    assert_eq!(d.state.free_count(), 3);
    // The hold runs out after the decline: the booking fails and frees the seat.
    let events = expire(&mut d, b);
    assert!(
        matches!(&events[..], [Event::PaymentFailed { seats, reason, .. }] if names(seats) == ["A3"] && reason == "card_declined"),
        "{events:?}"
    );
    assert_eq!(d.state.free_count(), 4);
    assert_eq!(
        d.state.closed_booking(b).unwrap().status,
        BookingStatus::Failed
    );
}

#[test]
fn a_payment_failing_after_the_hold_ran_out_fails_the_booking_and_frees_the_seats() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A3"]);
    started(&mut d, b, "pi_1");
    d.now = d.now.plus_ms(HOLD_TTL_MS);
    let events: Vec<Event> = d
        .apply(Command::PaymentFailed {
            booking_id: b,
            payment_id: "pi_1".into(),
            reason: "hold_expired".into(),
        })
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert!(matches!(&events[..], [Event::PaymentFailed { seats, .. }] if names(seats) == ["A3"]));
    assert_eq!(d.state.free_count(), 4);
    assert_eq!(
        d.state.closed_booking(b).unwrap().status,
        BookingStatus::Failed
    );
}

#[test]
fn a_late_success_retakes_the_same_seats_when_they_are_still_free() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1", "A2"]);
    assert_eq!(expire(&mut d, b).len(), 1);
    let events = succeeded(&mut d, b, "pi_late");
    assert!(
        matches!(&events[..], [Event::BookingConfirmed { retaken: true, seats, .. }] if names(seats) == ["A1", "A2"]),
        "{events:?}"
    );
    assert_eq!(
        d.state.seat_status(&common::seat("A1")),
        Some(SeatStatus::Sold)
    );
    assert_eq!(
        d.state.live_booking(b).unwrap().status,
        BookingStatus::Confirmed
    );
}

#[test]
fn a_late_success_is_refused_for_a_refund_when_a_seat_was_resold() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1", "A2"]);
    expire(&mut d, b);
    let other = d.take(&["A2"]);
    let events = succeeded(&mut d, b, "pi_late");
    assert!(
        matches!(&events[..], [Event::LatePaymentRefused { amount: 2400, payment_id, .. }] if payment_id == "pi_late"),
        "{events:?}"
    );
    // Seats untouched; the refusal is not repeated; the refund completes once.
    assert_eq!(d.state.live_booking(other).unwrap().seats.len(), 1);
    assert_eq!(
        d.state.seat_status(&common::seat("A1")),
        Some(SeatStatus::Available)
    );
    assert!(succeeded(&mut d, b, "pi_late").is_empty());
    let refunded: Vec<Event> = d
        .apply(Command::RefundCompleted {
            booking_id: b,
            refund_id: "re_1".into(),
            amount: 2400,
            payment_id: None,
        })
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        refunded,
        vec![Event::BookingRefunded {
            refund_id: "re_1".into(),
            amount: 2400
        }]
    );
    assert!(
        d.apply(Command::RefundCompleted {
            booking_id: b,
            refund_id: "re_1".into(),
            amount: 2400,
            payment_id: None,
        })
        .is_empty()
    );
}

#[test]
fn cancelling_a_confirmed_booking_frees_its_seats_and_refunds_minus_the_fee() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let b = d.take(&["A1", "A2"]);
    started(&mut d, b, "pi_1");
    succeeded(&mut d, b, "pi_1");
    let events: Vec<Event> = d
        .apply(Command::CancelBooking {
            booking_id: b,
            fee_permille: 100,
        })
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        vec![Event::BookingCancelled {
            seats: vec![common::seat("A1"), common::seat("A2")],
            payment_id: "pi_1".into(),
            refund_amount: 2160,
            currency: "EUR".into(),
            by_theater: false,
        }]
    );
    assert_eq!(d.state.free_count(), 4);
    // A held (unpaid) booking cannot be cancelled this way; a second cancel is a no-op.
    let held = d.take(&["A4"]);
    assert!(
        d.apply(Command::CancelBooking {
            booking_id: held,
            fee_permille: 0
        })
        .is_empty()
    );
    assert!(
        d.apply(Command::CancelBooking {
            booking_id: b,
            fee_permille: 0
        })
        .is_empty()
    );
    // A late success for a cancelled booking does not take seats again.
    assert!(succeeded(&mut d, b, "pi_1").is_empty());
}

#[test]
fn cancelling_the_show_ends_every_booking_refunds_in_full_and_stops_sales() {
    let mut d = Driver::new(plan(&["rrrr"]));
    let held = d.take(&["A1"]);
    let pending = d.take(&["A2"]);
    started(&mut d, pending, "pi_p");
    let paid = d.take(&["A3", "A4"]);
    started(&mut d, paid, "pi_c");
    succeeded(&mut d, paid, "pi_c");

    let cancel = || Command::CancelShow {
        reason: "show_cancelled".into(),
    };
    let events: Vec<(BookingId, Event)> = d
        .apply(cancel())
        .into_iter()
        .map(|e| (e.booking_id, e.event))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    for (b, event) in &events {
        match event {
            Event::BookingCancelled {
                payment_id,
                refund_amount,
                by_theater,
                ..
            } => {
                assert!(by_theater, "the theater cancelled it, not the buyer");
                assert_eq!(*b, paid);
                assert_eq!(payment_id, "pi_c");
                assert_eq!(*refund_amount, 2400, "a cancelled show refunds in full");
            }
            Event::HoldReleased { reason, .. } => {
                assert!(*b == held || *b == pending);
                assert_eq!(reason, "show_cancelled");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(d.state.free_count(), 4);
    assert!(d.state.live_bookings().next().is_none());

    // No sale afterwards, a repeat changes nothing, and the pending payment that
    // still succeeds is refunded instead of taking its seat again.
    let (_, after) = d.choose(&["A1"]);
    assert!(
        matches!(
            after,
            Event::BookingRejected {
                reason: contracts::RejectReason::NotOnSale,
                ..
            }
        ),
        "{after:?}"
    );
    assert!(d.apply(cancel()).is_empty());
    match succeeded(&mut d, pending, "pi_p").as_slice() {
        [Event::LatePaymentRefused { reason, .. }] => assert_eq!(reason, "not_on_sale"),
        other => panic!("expected a refund, got {other:?}"),
    }
    assert_eq!(d.state.free_count(), 4);
}
