//! One test (or two) per best-available rule of the crate docs.

mod common;

use common::{Driver, focal, plan};
use contracts::{Event, RejectReason, ScreenLayout};
use sequencer::SeatStatus;

fn grid(rows: usize, per_row: u16) -> ScreenLayout {
    ScreenLayout::grid(rows, per_row, "regular")
}

#[test]
fn the_centre_of_the_focal_row_comes_first() {
    // 10 rows: the focal row is round(0.667 * 9) = 6, row G; its centre lies
    // between seats 10 and 11 of 20.
    let mut show = Driver::new(grid(10, 20));
    assert_eq!(show.best(2, None), ["G10", "G11"]);
    // Then the centre of the next rows and two seats sideways in G are equally far
    // (a row counts as two seats): the lower row wins the tie.
    assert_eq!(show.best(2, None), ["F10", "F11"]);
    assert_eq!(show.best(2, None), ["G8", "G9"]);
    assert_eq!(show.best(2, None), ["G12", "G13"]);
    assert_eq!(show.best(2, None), ["H10", "H11"]);
}

#[test]
fn ties_go_to_the_lower_row_then_the_leftmost_start() {
    // An odd block in an even row: starts 8 and 9 (0-based) are equally off centre.
    let mut show = Driver::new(grid(10, 20));
    assert_eq!(show.best(3, None), ["G9", "G10", "G11"]);

    // Focal row B full: rows A and C are equally far, A (nearer the screen) wins.
    let mut show = Driver::new(focal(plan(&["rrrr", "rrrr", "rrrr"]), 500, 500));
    show.take(&["B1", "B2", "B3", "B4"]);
    assert_eq!(show.best(4, None), ["A1", "A2", "A3", "A4"]);
    assert_eq!(show.best(4, None), ["C1", "C2", "C3", "C4"]);
}

#[test]
fn one_row_off_costs_as_much_as_two_seats_sideways() {
    // Focal row B (round(0.667 * 2) = 1), focal seat B5 (the middle of nine).
    let mut show = Driver::new(plan(&["rrrrrrrrr", "rrrrrrrrr", "rrrrrrrrr"]));
    show.take(&["B5"]);
    // One seat sideways beats one row off.
    assert_eq!(show.best(1, None), ["B4"]);
    show.take(&["B6"]);
    // Two seats sideways (B3, B7) tie with one row off (A5, C5): lower row, then
    // leftmost, decide.
    assert_eq!(show.best(1, None), ["A5"]);
    assert_eq!(show.best(1, None), ["B3"]);
    assert_eq!(show.best(1, None), ["B7"]);
    assert_eq!(show.best(1, None), ["C5"]);
}

#[test]
fn aisles_break_adjacency() {
    // Row A (the focal row) has 6 seats but an aisle after seat 3: no block of 4.
    let mut show = Driver::new(focal(plan(&["rrr|rrr", "rrrr"]), 0, 500));
    assert_eq!(show.best(4, None), ["B1", "B2", "B3", "B4"]);

    // A pair never straddles the aisle, even though A3-A4 is dead centre.
    let mut show = Driver::new(plan(&["rrr|rrr"]));
    assert_eq!(show.best(2, None), ["A2", "A3"]);
    assert_eq!(show.best(2, None), ["A4", "A5"]);
}

#[test]
fn a_single_seat_is_not_stranded_when_avoidable() {
    // A1 is taken. A3-A4 is dead centre but would leave A2 alone; A2-A3 is as
    // close as A4-A5 (which would leave A6 alone) and strands nothing.
    let mut show = Driver::new(plan(&["rrrrrr"]));
    show.take(&["A1"]);
    assert_eq!(show.best(2, None), ["A2", "A3"]);

    // A blocked seat or an aisle bounds a free run like a taken seat does.
    let mut show = Driver::new(plan(&["xrrrrr"]));
    assert_eq!(show.best(2, None), ["A2", "A3"]);
    let mut show = Driver::new(plan(&["r|rrrrr|r"]));
    assert_eq!(show.best(2, None), ["A2", "A3"]);
}

#[test]
fn a_single_seat_is_stranded_when_unavoidable() {
    // Every pair in a row of three leaves one seat alone: take the closest anyway.
    let mut show = Driver::new(plan(&["rrr"]));
    assert_eq!(show.best(2, None), ["A1", "A2"]);
    assert_eq!(show.best(1, None), ["A3"]);
}

#[test]
fn a_split_uses_the_fewest_rows_when_no_block_fits() {
    // Focal row B. Six seats never fit in a row of four: all of B, then the best
    // pair of A or C (A, the lower row, on a tie; A1-A2 strands nothing).
    let mut show = Driver::new(plan(&["rrrr", "rrrr", "rrrr"]));
    assert_eq!(show.best(6, None), ["A1", "A2", "B1", "B2", "B3", "B4"]);
}

#[test]
fn a_split_takes_the_longest_runs_first() {
    // Sections of 2, 3 and 2: five seats as 3 + 2 (two blocks), not 2 + 2 + 1.
    let mut show = Driver::new(plan(&["rr|rrr|rr"]));
    let seats = show.best(5, None);
    assert_eq!(seats, ["A1", "A2", "A3", "A4", "A5"]);
}

#[test]
fn a_split_always_succeeds_when_enough_seats_are_free() {
    // Only single seats are left: four of them are still four seats.
    let mut show = Driver::new(plan(&["rrrrrrrr"]));
    show.take(&["A2", "A4", "A6", "A8"]);
    assert_eq!(show.best(4, None), ["A1", "A3", "A5", "A7"]);
    assert_eq!(show.state.free_count(), 0);
    assert_eq!(
        show.best_event(1, None),
        Event::BookingRejected {
            user_id: common::id(7),
            reason: RejectReason::NotEnoughSeats { available: 0 }
        }
    );
}

#[test]
fn the_seat_type_filter_only_offers_seats_of_that_type() {
    let mut show = Driver::new(plan(&["vvvv", "rrrr", "rrrr"]));
    assert_eq!(show.best(2, Some("vip")), ["A1", "A2"]);
    assert_eq!(show.best(2, Some("regular")), ["B1", "B2"]);
    assert_eq!(show.best(2, None), ["B3", "B4"]);
    let reason = |e: Event| match e {
        Event::BookingRejected { reason, .. } => reason,
        other => panic!("not rejected: {other:?}"),
    };
    assert_eq!(
        reason(show.best_event(3, Some("vip"))),
        RejectReason::NotEnoughSeats { available: 2 }
    );
    assert!(matches!(
        reason(show.best_event(1, Some("balcony"))),
        RejectReason::InvalidRequest { .. }
    ));
}

#[test]
fn free_seats_of_another_type_still_count_for_stranding() {
    // The centre is A3. A2-A3 would leave A1 alone, and A3-A4 would leave the
    // free vip seat A5 alone, so the regular pair goes to A1-A2.
    let mut show = Driver::new(plan(&["rrrrv"]));
    assert_eq!(show.best(2, Some("regular")), ["A1", "A2"]);
}

#[test]
fn blocked_seats_are_never_sold() {
    let mut show = Driver::new(plan(&["rxrr", "xrrx"]));
    assert_eq!(show.state.free_count(), 5);
    let (_, event) = show.choose(&["A2"]);
    assert!(matches!(
        event,
        Event::BookingRejected {
            reason: RejectReason::SeatUnavailable { .. },
            ..
        }
    ));
    assert_eq!(show.best(5, None).len(), 5);
    assert!(matches!(
        show.best_event(1, None),
        Event::BookingRejected {
            reason: RejectReason::NotEnoughSeats { available: 0 },
            ..
        }
    ));
    for blocked in ["A2", "B1", "B4"] {
        assert_eq!(
            show.state.seat_status(&common::seat(blocked)),
            Some(SeatStatus::Blocked)
        );
    }
}

#[test]
fn the_focal_point_is_configurable() {
    let mut front_left = Driver::new(focal(grid(5, 10), 0, 0));
    assert_eq!(front_left.best(2, None), ["A1", "A2"]);
    let mut back_right = Driver::new(focal(grid(5, 10), 1000, 1000));
    assert_eq!(back_right.best(2, None), ["E9", "E10"]);
    let mut default = Driver::new(grid(5, 10));
    assert_eq!(default.best(2, None), ["D5", "D6"]);
}
