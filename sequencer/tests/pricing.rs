//! Demand pricing: examples of the tier step (by share sold before the request,
//! by time to start against the command's own time), then random command sequences
//! over a small priced show checking after every hold that:
//!
//! - the amount held is what the show's current prices said just before the
//!   command (what the seat map shows is what the buyer pays);
//! - each seat and place costs its base price changed by the tier reached by the
//!   share occupied *before* the request;
//! - the same log gives the same amounts, and a state restored from its bookings
//!   goes on pricing identically.
//!
//! `PROPTEST_RNG_SEED` fixes the seed; failures are saved in `pricing.regressions`.

mod common;

use common::{Driver, HOLD_TTL_MS, START, config, id, plan, seat, with_zone};
use contracts::pricing::adjust;
use contracts::{BookingId, Command, Event, HoldSeats, Millis, Pricing, ScreenLayout, SeatRequest};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use sequencer::{ShowConfig, ShowState};

fn pricing(json: &str) -> Pricing {
    serde_json::from_str(json).unwrap()
}

fn priced(layout: ScreenLayout, tiers: &str, starts_at: Option<Millis>) -> ShowConfig {
    ShowConfig {
        pricing: Some(pricing(tiers)),
        starts_at,
        ..config(layout)
    }
}

fn amount(event: &Event) -> i64 {
    match event {
        Event::BookingHeld { amount, .. } => *amount,
        other => panic!("not held: {other:?}"),
    }
}

const HALF: &str = r#"{"tiers":[{"sold_share":0.5,"change_permille":100}]}"#;

#[test]
fn the_price_steps_up_once_half_is_sold_before_the_request() {
    // Ten regular seats at 1200; +10% from 50% occupied.
    let mut show =
        Driver::from_state(ShowState::new(priced(plan(&["rrrrrrrrrr"]), HALF, None)).unwrap());
    for s in ["A1", "A2", "A3"] {
        assert_eq!(amount(&show.choose(&[s]).1), 1200, "{s}");
    }
    // 3 of 10 before: both seats at the base price, though the request crosses 50%.
    assert_eq!(amount(&show.choose(&["A4", "A5"]).1), 2400);
    // 5 of 10 before: the tier is reached.
    assert_eq!(show.state.current_prices(show.now), vec![("regular", 1320)]);
    let (late, event) = show.choose(&["A6"]);
    assert_eq!(amount(&event), 1320);
    // The booking keeps the price it was held at.
    assert_eq!(show.state.live_booking(late).unwrap().amount, 1320);
    // Seats coming back lower the share: the next hold is at the base price again.
    show.apply(Command::ReleaseHold {
        booking_id: late,
        reason: "client_cancelled".into(),
    });
    let first = show.state.live_bookings().next().unwrap().booking_id;
    show.apply(Command::ReleaseHold {
        booking_id: first,
        reason: "client_cancelled".into(),
    });
    assert_eq!(amount(&show.choose(&["A9"]).1), 1200);
}

#[test]
fn zone_places_count_toward_the_share_and_are_priced_too() {
    // Two seats and a floor of 8 places: 10 places; +25% from 40%.
    let layout = with_zone(plan(&["rr"]), "floor", 8);
    let tiers = r#"{"tiers":[{"sold_share":0.4,"change_permille":250}]}"#;
    let mut show = Driver::from_state(ShowState::new(priced(layout, tiers, None)).unwrap());
    assert_eq!(amount(&show.places("floor", 4, &[]).1), 3600);
    assert_eq!(amount(&show.places("floor", 2, &[]).1), 2 * 1125);
    assert_eq!(amount(&show.choose(&["A1"]).1), 1500);
}

#[test]
fn a_time_tier_is_measured_against_the_command_time() {
    // Starts an hour after START; -20% in the last hour, +50% in the last 10 minutes.
    let starts = Millis(START.0 + 3_600_000);
    let tiers = r#"{"tiers":[{"before_start_secs":3600,"change_permille":-200},
                               {"before_start_secs":600,"change_permille":500}]}"#;
    let mut show = Driver::from_state(
        ShowState::new(priced(plan(&["rrrrrrrrrr"]), tiers, Some(starts))).unwrap(),
    );
    show.now = Millis(START.0 - 1);
    assert_eq!(amount(&show.choose(&["A1"]).1), 1200);
    show.now = START;
    assert_eq!(amount(&show.choose(&["A2"]).1), 960);
    show.now = Millis(starts.0 - 600_000);
    assert_eq!(amount(&show.choose(&["A3"]).1), 1800);
}

#[test]
fn bad_pricing_is_refused_at_setup() {
    let bad = ShowConfig {
        pricing: Some(pricing(r#"{"tiers":[{"change_permille":100}]}"#)),
        ..config(plan(&["rr"]))
    };
    assert!(ShowState::new(bad).is_err());
}

#[test]
fn without_pricing_nothing_changes() {
    let mut show = Driver::new(plan(&["rrrr"]));
    for s in ["A1", "A2", "A3", "A4"] {
        assert_eq!(amount(&show.choose(&[s]).1), 1200);
    }
}

/// Three tiers by share and one by time on six seats (one vip) and a floor of 6.
const TIERS: &str = r#"{"tiers":[{"sold_share":0.25,"change_permille":100},
    {"sold_share":0.5,"change_permille":300},{"sold_share":0.75,"change_permille":-50},
    {"before_start_secs":60,"change_permille":-500}]}"#;

fn small_config() -> ShowConfig {
    let layout = with_zone(plan(&["rrv|rrr"]), "floor", 6);
    priced(layout, TIERS, Some(Millis(START.0 + 200_000)))
}

#[derive(Debug, Clone)]
enum Op {
    Seats(Vec<u8>),
    Places(u32),
    Best(u8),
    Release(u8),
    Expire(u8),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(0u8..6, 1..3).prop_map(Op::Seats),
        (1u32..4).prop_map(Op::Places),
        (1u8..3).prop_map(Op::Best),
        any::<u8>().prop_map(Op::Release),
        any::<u8>().prop_map(Op::Expire),
        (1u16..60).prop_map(Op::Advance),
    ]
}

const SEATS: [&str; 6] = ["A1", "A2", "A3", "A4", "A5", "A6"];

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let start = ShowState::new(small_config()).unwrap();
    let mut show = Driver::from_state(start.clone());
    let mut bookings: Vec<BookingId> = Vec::new();
    let mut log = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let pick = |k: u8| {
            bookings
                .get(usize::from(k) % bookings.len().max(1))
                .copied()
        };
        let command = match op {
            Op::Advance(secs) => {
                show.now = show.now.plus_ms(i64::from(*secs) * 1000);
                continue;
            }
            Op::Release(k) | Op::Expire(k) => {
                let Some(booking_id) = pick(*k) else { continue };
                if matches!(op, Op::Release(_)) {
                    Command::ReleaseHold {
                        booking_id,
                        reason: "client_cancelled".into(),
                    }
                } else {
                    Command::ExpireHold { booking_id }
                }
            }
            hold => {
                let booking_id: BookingId = id(0xb00c_0000 + n as u128);
                bookings.push(booking_id);
                let request = match hold {
                    Op::Seats(s) => SeatRequest::Chosen {
                        seats: s.iter().map(|&i| seat(SEATS[usize::from(i)])).collect(),
                    },
                    Op::Places(q) => SeatRequest::Zone {
                        zone: "floor".into(),
                        quantity: *q,
                        seats: vec![],
                    },
                    Op::Best(q) => SeatRequest::BestAvailable {
                        quantity: *q,
                        seat_type: None,
                    },
                    _ => unreachable!(),
                };
                Command::HoldSeats(HoldSeats {
                    booking_id,
                    user_id: id(7),
                    request,
                    hold_ttl_ms: HOLD_TTL_MS,
                    payment_method: None,
                })
            }
        };
        // What the map says a hold costs now, and the tier the share reaches.
        let shown: Vec<(String, i64)> = show
            .state
            .current_prices(show.now)
            .into_iter()
            .map(|(t, p)| (t.to_owned(), p))
            .collect();
        let (taken, capacity) = show.state.occupancy();
        let env = show.envelope(command);
        let events = show.state.apply(&env);
        log.push(env);
        for e in &events {
            if let Event::BookingHeld {
                seats,
                zones,
                amount,
                ..
            } = &e.event
            {
                let price = |t: &str| shown.iter().find(|(s, _)| s == t).unwrap().1;
                let expected: i64 = seats
                    .iter()
                    .map(|s| {
                        price(if s.to_string() == "A3" {
                            "vip"
                        } else {
                            "regular"
                        })
                    })
                    .sum::<i64>()
                    + zones
                        .iter()
                        .map(|p| price("standing") * i64::from(p.quantity))
                        .sum::<i64>();
                prop_assert_eq!(*amount, expected, "held at another price than shown");
                // The share before the request picks the tier.
                let share_change = match taken * 1000 / capacity {
                    750.. => -50,
                    500.. => 300,
                    250.. => 100,
                    _ => 0,
                };
                let time_change = if START.0 + 200_000 - show.now.0 <= 60_000 {
                    -500
                } else {
                    0
                };
                prop_assert_eq!(price("regular"), adjust(1200, share_change + time_change));
            }
        }
    }

    // Replay from the same start: the same amounts, byte for byte.
    let mut again = start;
    let first: Vec<_> = log.iter().flat_map(|c| again.apply(c)).collect();
    let mut once_more = ShowState::new(small_config()).unwrap();
    let second: Vec<_> = log.iter().flat_map(|c| once_more.apply(c)).collect();
    prop_assert_eq!(
        serde_json::to_vec(&first).unwrap(),
        serde_json::to_vec(&second).unwrap()
    );
    prop_assert_eq!(&again, &show.state);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_hold_pays_the_price_shown_before_it(ops in prop::collection::vec(op(), 1..50)) {
        run(&ops)?;
    }
}
