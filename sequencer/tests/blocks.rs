//! Seats blocked by an admin from a date on (`BlockSeats`, `ShowConfig::blocked`):
//! never allocated again, an occupant keeps its seat until it leaves, no event,
//! and a show loaded with the block behaves like one that received it.

mod common;

use common::{Driver, config, plan, seat};
use contracts::{Command, Event, RejectReason, SeatRequest};
use sequencer::{SeatStatus, ShowConfig, ShowState};

fn block(show: &mut Driver, seats: &[&str]) {
    let events = show.apply(Command::BlockSeats {
        seats: seats.iter().map(|s| seat(s)).collect(),
    });
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_blocked_seat_is_refused_skipped_and_kept_by_its_occupant_until_freed() {
    let mut show = Driver::new(plan(&["rrrr"]));
    let holder = show.take(&["A2"]);
    block(&mut show, &["A2", "A3"]);
    // Unknown seats are ignored; repeating changes nothing.
    block(&mut show, &["A3", "Z9"]);
    assert_eq!(show.state.seat_status(&seat("A2")), Some(SeatStatus::Held));
    assert_eq!(
        show.state.seat_status(&seat("A3")),
        Some(SeatStatus::Blocked)
    );
    match show.choose(&["A3"]).1 {
        Event::BookingRejected {
            reason: RejectReason::SeatUnavailable { seats },
            ..
        } => assert_eq!(seats, vec![seat("A3")]),
        other => panic!("{other:?}"),
    }
    assert_eq!(show.best(2, None), vec!["A1".to_owned(), "A4".to_owned()]);
    // The occupant leaves: the seat stays blocked.
    show.apply(Command::ReleaseHold {
        booking_id: holder,
        reason: "client_cancelled".into(),
    });
    assert_eq!(
        show.state.seat_status(&seat("A2")),
        Some(SeatStatus::Blocked)
    );
    assert!(matches!(
        show.hold(SeatRequest::BestAvailable {
            quantity: 1,
            seat_type: None
        })
        .1,
        Event::BookingRejected { .. }
    ));
}

#[test]
fn a_show_loaded_with_its_blocks_equals_one_that_received_them() {
    let mut received = Driver::new(plan(&["rrrr"]));
    block(&mut received, &["A1", "A4"]);
    let loaded = ShowState::new(ShowConfig {
        blocked: vec![seat("A4"), seat("A1")],
        ..config(plan(&["rrrr"]))
    })
    .unwrap();
    assert_eq!(loaded, received.state);
}
