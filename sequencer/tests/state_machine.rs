//! The allocator against a model: random command sequences over a small show, with
//! every invariant checked after every step.
//!
//! The model is a map seat -> live booking (or none), plus each live booking's
//! status and expiry time. On failure proptest shrinks the sequence, prints the
//! minimal failing input and saves its seed in `state_machine.regressions` next to
//! this file (replayed first on the next run); `PROPTEST_RNG_SEED` fixes the seed
//! of the random cases.

mod common;

use common::{Driver, HOLD_TTL_MS, START, config, id, plan, prices};
use contracts::{
    BookingId, BookingStatus, Command, Event, MAX_SEATS_PER_BOOKING, Millis, RejectReason,
    ScreenLayout, SeatId, SeatRequest,
};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use sequencer::{LiveBooking, SeatStatus, ShowState};
use std::collections::{BTreeMap, BTreeSet};

/// Four rows of six: a vip row and a mixed row, aisles, one blocked seat.
fn layout() -> ScreenLayout {
    plan(&["vvv|vvv", "rrr|rrr", "rrxrrr", "rrrrvv"])
}

/// Booking numbers 0..BOOKINGS are drawn by the operations; the last two start
/// live (restored), one confirmed and one waiting for payment.
const BOOKINGS: u8 = 14;
const CONFIRMED: u8 = 12;
const PENDING: u8 = 13;
const SEAT_TYPES: [&str; 3] = ["regular", "vip", "balcony"];
/// Chosen seats are drawn from the layout's 24 seats plus two it lacks.
const SEAT_NAMES: usize = 26;

#[derive(Debug, Clone)]
enum Op {
    Choose {
        booking: u8,
        seats: Vec<usize>,
    },
    Best {
        booking: u8,
        quantity: u8,
        seat_type: Option<usize>,
    },
    Expire {
        booking: u8,
    },
    Release {
        booking: u8,
    },
    Advance {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..BOOKINGS, prop::collection::vec(0..SEAT_NAMES, 0..5))
            .prop_map(|(booking, seats)| Op::Choose { booking, seats }),
        4 => (0..BOOKINGS, 0u8..12, prop::option::of(0..SEAT_TYPES.len()))
            .prop_map(|(booking, quantity, seat_type)| Op::Best { booking, quantity, seat_type }),
        2 => (0..BOOKINGS).prop_map(|booking| Op::Expire { booking }),
        1 => (0..BOOKINGS).prop_map(|booking| Op::Release { booking }),
        2 => prop_oneof![Just(0), Just(1), Just(HOLD_TTL_MS / 2), Just(HOLD_TTL_MS)]
            .prop_map(|ms| Op::Advance { ms }),
    ]
}

fn booking_id(n: u8) -> BookingId {
    id(0xb00c_0000 + u128::from(n))
}

struct ModelSeat {
    id: SeatId,
    seat_type: String,
    blocked: bool,
    /// Whether the next seat of the list is adjacent.
    joins_next: bool,
    owner: Option<u8>,
}

struct ModelBooking {
    status: BookingStatus,
    seats: Vec<usize>,
    expires: Millis,
}

struct Model {
    seats: Vec<ModelSeat>,
    live: BTreeMap<u8, ModelBooking>,
    known: BTreeSet<u8>,
}

impl Model {
    fn new(layout: &ScreenLayout) -> Self {
        let mut seats = Vec::new();
        for row in &layout.rows {
            for (pos, s) in row.seats.iter().enumerate() {
                seats.push(ModelSeat {
                    id: SeatId::new(&row.row, s.number).unwrap(),
                    seat_type: s.seat_type.clone(),
                    blocked: s.blocked,
                    joins_next: pos + 1 < row.seats.len() && !row.aisles_after.contains(&s.number),
                    owner: None,
                });
            }
        }
        Self {
            seats,
            live: BTreeMap::new(),
            known: BTreeSet::new(),
        }
    }

    fn seat_name(&self, n: usize) -> SeatId {
        match self.seats.get(n) {
            Some(s) => s.id.clone(),
            None => common::seat(&format!("Z{}", n - self.seats.len() + 1)),
        }
    }

    fn free(&self, i: usize) -> bool {
        self.seats[i].owner.is_none() && !self.seats[i].blocked
    }

    fn status(&self, i: usize) -> SeatStatus {
        match self.seats[i].owner {
            Some(b) if self.live[&b].status == BookingStatus::Confirmed => SeatStatus::Sold,
            Some(_) => SeatStatus::Held,
            None if self.seats[i].blocked => SeatStatus::Blocked,
            None => SeatStatus::Available,
        }
    }

    fn occupy(&mut self, b: u8, status: BookingStatus, seats: Vec<usize>, expires: Millis) {
        for &i in &seats {
            assert!(self.seats[i].owner.is_none());
            self.seats[i].owner = Some(b);
        }
        self.known.insert(b);
        self.live.insert(
            b,
            ModelBooking {
                status,
                seats,
                expires,
            },
        );
    }

    fn vacate(&mut self, b: u8) -> Vec<SeatId> {
        let booking = self.live.remove(&b).unwrap();
        booking
            .seats
            .iter()
            .map(|&i| {
                self.seats[i].owner = None;
                self.seats[i].id.clone()
            })
            .collect()
    }

    fn index_of(&self, seat: &SeatId) -> Option<usize> {
        self.seats.iter().position(|s| &s.id == seat)
    }

    /// Lengths of the maximal runs of adjacent seats satisfying `pick`.
    fn runs(&self, pick: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut runs = Vec::new();
        let mut run = 0;
        for i in 0..self.seats.len() {
            if pick(i) {
                run += 1;
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
            if !self.seats[i].joins_next && run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        runs
    }
}

fn start() -> (Driver, Model) {
    let mut model = Model::new(&layout());
    let restored = |b: u8, status, seats: &[&str]| LiveBooking {
        booking_id: booking_id(b),
        user_id: id(7),
        status,
        seats: seats.iter().map(|s| common::seat(s)).collect(),
        hold_expires_at: START,
        amount: 0,
        currency: "EUR".into(),
        payment_id: None,
        declined: None,
        zones: vec![],
    };
    let live = vec![
        restored(CONFIRMED, BookingStatus::Confirmed, &["D5", "D6"]),
        restored(PENDING, BookingStatus::PaymentPending, &["B1"]),
    ];
    for b in &live {
        let n = if b.status == BookingStatus::Confirmed {
            CONFIRMED
        } else {
            PENDING
        };
        let seats = b.seats.iter().map(|s| model.index_of(s).unwrap()).collect();
        model.occupy(n, b.status, seats, START);
    }
    model.known.insert(0); // decided before the restart
    let state = ShowState::restore(config(layout()), live, [booking_id(0)]).unwrap();
    (Driver::from_state(state), model)
}

fn price(seat_type: &str) -> i64 {
    prices()
        .iter()
        .find(|p| p.seat_type == seat_type)
        .unwrap()
        .amount
}

/// Applies `op` to both, checking the events against the model's prediction.
fn step(show: &mut Driver, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Advance { ms } => {
            show.now = show.now.plus_ms(*ms);
            Ok(())
        }
        Op::Expire { booking } => {
            let events = show.apply(Command::ExpireHold {
                booking_id: booking_id(*booking),
            });
            let due = model
                .live
                .get(booking)
                .is_some_and(|b| b.status == BookingStatus::Held && show.now >= b.expires);
            let expected = if due {
                vec![Event::BookingExpired {
                    seats: model.vacate(*booking),
                }]
            } else {
                vec![]
            };
            let got: Vec<Event> = events.into_iter().map(|e| e.event).collect();
            prop_assert_eq!(got, expected);
            Ok(())
        }
        Op::Release { booking } => {
            let events = show.apply(Command::ReleaseHold {
                booking_id: booking_id(*booking),
                reason: "test".into(),
            });
            let releasable = model.live.get(booking).is_some_and(|b| {
                matches!(
                    b.status,
                    BookingStatus::Held | BookingStatus::PaymentPending
                )
            });
            let expected = if releasable {
                vec![Event::HoldReleased {
                    seats: model.vacate(*booking),
                    reason: "test".into(),
                }]
            } else {
                vec![]
            };
            let got: Vec<Event> = events.into_iter().map(|e| e.event).collect();
            prop_assert_eq!(got, expected);
            Ok(())
        }
        Op::Choose { booking, seats } => {
            let names: Vec<SeatId> = seats.iter().map(|&n| model.seat_name(n)).collect();
            let request = SeatRequest::Chosen { seats: names };
            hold(show, model, *booking, request)
        }
        Op::Best {
            booking,
            quantity,
            seat_type,
        } => {
            let request = SeatRequest::BestAvailable {
                quantity: *quantity,
                seat_type: seat_type.map(|t| SEAT_TYPES[t].to_owned()),
            };
            hold(show, model, *booking, request)
        }
    }
}

fn hold(
    show: &mut Driver,
    model: &mut Model,
    booking: u8,
    request: SeatRequest,
) -> Result<(), TestCaseError> {
    let events = show.apply(Driver::hold_command(booking_id(booking), request.clone()));
    if !model.known.insert(booking) {
        prop_assert!(events.is_empty(), "a retry gave events: {:?}", events);
        return Ok(());
    }
    prop_assert_eq!(events.len(), 1);
    let event = events.into_iter().next().unwrap().event;
    let count = request.seat_count();
    if count == 0 || count > MAX_SEATS_PER_BOOKING {
        prop_assert!(
            matches!(
                event,
                Event::BookingRejected {
                    reason: RejectReason::InvalidRequest { .. },
                    ..
                }
            ),
            "{:?}",
            event
        );
        return Ok(());
    }
    let taken: Vec<usize> = match &request {
        // Zones have a model of their own (tests/zones.rs).
        SeatRequest::Zone { .. } => unreachable!("this model generates no zone requests"),
        SeatRequest::Chosen { seats } => {
            let idx: Vec<Option<usize>> = seats.iter().map(|s| model.index_of(s)).collect();
            let distinct: BTreeSet<_> = seats.iter().collect();
            if idx.contains(&None) || distinct.len() != seats.len() {
                prop_assert!(
                    matches!(
                        event,
                        Event::BookingRejected {
                            reason: RejectReason::InvalidRequest { .. },
                            ..
                        }
                    ),
                    "{:?}",
                    event
                );
                return Ok(());
            }
            let mut idx: Vec<usize> = idx.into_iter().flatten().collect();
            idx.sort_unstable();
            let unavailable: Vec<SeatId> = idx
                .iter()
                .filter(|&&i| !model.free(i))
                .map(|&i| model.seats[i].id.clone())
                .collect();
            if !unavailable.is_empty() {
                let want = RejectReason::SeatUnavailable { seats: unavailable };
                prop_assert!(
                    matches!(&event, Event::BookingRejected { reason, .. } if *reason == want),
                    "{:?}",
                    event
                );
                return Ok(());
            }
            idx
        }
        SeatRequest::BestAvailable { seat_type, .. } => {
            if seat_type.as_deref() == Some("balcony") {
                prop_assert!(
                    matches!(
                        event,
                        Event::BookingRejected {
                            reason: RejectReason::InvalidRequest { .. },
                            ..
                        }
                    ),
                    "{:?}",
                    event
                );
                return Ok(());
            }
            let wanted = |i: usize| {
                model.free(i)
                    && seat_type
                        .as_deref()
                        .is_none_or(|t| model.seats[i].seat_type == t)
            };
            let available = (0..model.seats.len()).filter(|&i| wanted(i)).count();
            if available < count {
                let want = RejectReason::NotEnoughSeats {
                    available: available as u32,
                };
                prop_assert!(
                    matches!(&event, Event::BookingRejected { reason, .. } if *reason == want),
                    "{:?}",
                    event
                );
                return Ok(());
            }
            let Event::BookingHeld { seats, .. } = &event else {
                return Err(TestCaseError::fail(format!("not held: {event:?}")));
            };
            let mut idx = Vec::new();
            for s in seats {
                let i = model.index_of(s);
                prop_assert!(i.is_some_and(wanted), "{} is not a candidate", s);
                idx.push(i.unwrap());
            }
            prop_assert!(idx.windows(2).all(|w| w[0] < w[1]), "not in layout order");
            prop_assert_eq!(idx.len(), count);
            // Fewest blocks: the result splits into as few runs as the candidate
            // runs allow (one when a block fits).
            let mut runs = model.runs(wanted);
            runs.sort_unstable_by(|a, b| b.cmp(a));
            let mut fewest = 0;
            let mut covered = 0;
            while covered < count {
                covered += runs[fewest];
                fewest += 1;
            }
            let picked: BTreeSet<usize> = idx.iter().copied().collect();
            let got_runs = model.runs(|i| picked.contains(&i)).len();
            prop_assert_eq!(got_runs, fewest, "split into more blocks than needed");
            idx
        }
    };
    let expires = show.now.plus_ms(HOLD_TTL_MS);
    let want = Event::BookingHeld {
        user_id: id(7),
        seats: taken.iter().map(|&i| model.seats[i].id.clone()).collect(),
        amount: taken
            .iter()
            .map(|&i| price(&model.seats[i].seat_type))
            .sum(),
        currency: "EUR".into(),
        hold_expires_at: expires,
        payment_method: None,
        zones: vec![],
    };
    prop_assert_eq!(&event, &want);
    model.occupy(booking, BookingStatus::Held, taken, expires);
    Ok(())
}

/// Every invariant, checked against the model after each step.
fn check(show: &Driver, model: &Model) -> Result<(), TestCaseError> {
    let state = &show.state;
    let statuses: Vec<(SeatId, SeatStatus)> =
        state.seats().map(|(id, st)| (id.clone(), st)).collect();
    prop_assert_eq!(statuses.len(), model.seats.len());
    let mut counts = BTreeMap::new();
    for (i, (seat, status)) in statuses.iter().enumerate() {
        prop_assert_eq!(seat, &model.seats[i].id);
        prop_assert_eq!(*status, model.status(i), "seat {}", seat);
        prop_assert_eq!(state.seat_status(seat), Some(*status));
        *counts.entry(format!("{status:?}")).or_insert(0usize) += 1;
    }
    prop_assert_eq!(counts.values().sum::<usize>(), model.seats.len());
    let free = (0..model.seats.len()).filter(|&i| model.free(i)).count();
    prop_assert_eq!(state.free_count(), free);
    prop_assert_eq!(counts.get("Available").copied().unwrap_or(0), free);

    // No seat in two live bookings, and live bookings are exactly the model's.
    let mut occupied = BTreeSet::new();
    let mut live = 0;
    for b in state.live_bookings() {
        live += 1;
        for s in &b.seats {
            prop_assert!(
                occupied.insert(s.clone()),
                "seat {} in two live bookings",
                s
            );
            prop_assert!(matches!(
                state.seat_status(s),
                Some(SeatStatus::Held | SeatStatus::Sold)
            ));
        }
        let n = (0..BOOKINGS)
            .find(|&n| booking_id(n) == b.booking_id)
            .unwrap();
        let m = &model.live[&n];
        prop_assert_eq!(b.status, m.status);
        let seats: Vec<SeatId> = m.seats.iter().map(|&i| model.seats[i].id.clone()).collect();
        prop_assert_eq!(&b.seats, &seats);
    }
    prop_assert_eq!(live, model.live.len());
    let held_or_sold =
        counts.get("Held").copied().unwrap_or(0) + counts.get("Sold").copied().unwrap_or(0);
    prop_assert_eq!(occupied.len(), held_or_sold);
    for n in 0..BOOKINGS {
        prop_assert_eq!(state.is_known(booking_id(n)), model.known.contains(&n));
    }
    Ok(())
}

/// The seed of this run: `SEQUENCER_PROPTEST_SEED` if set, else fresh; printed so a
/// failure can be replayed exactly.
fn seed() -> u64 {
    std::env::var("SEQUENCER_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(42)
        })
}

#[test]
fn random_command_sequences_keep_every_seat_invariant() {
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let seed = seed();
    println!("state machine seed: {seed} (replay: SEQUENCER_PROPTEST_SEED={seed})");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = ProptestConfig {
        cases: 256,
        // Integration tests have no lib.rs beside them, so keep the seeds next to
        // this file rather than in a parallel directory tree.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let result = runner.run(&prop::collection::vec(op(), 1..80), |ops| {
        let (mut show, mut model) = start();
        check(&show, &model)?;
        for (n, op) in ops.iter().enumerate() {
            step(&mut show, &mut model, op)
                .map_err(|e| TestCaseError::fail(format!("step {n} ({op:?}): {e}")))?;
            check(&show, &model)
                .map_err(|e| TestCaseError::fail(format!("after step {n} ({op:?}): {e}")))?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\nseed: {seed} (replay: SEQUENCER_PROPTEST_SEED={seed})");
    }
}
