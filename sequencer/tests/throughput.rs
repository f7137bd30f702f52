//! How fast a 500-seat show decides best-available requests. Ignored by default
//! (timing depends on the machine and the build profile); run it with
//! `cargo test -p sequencer --release --test throughput -- --ignored --nocapture`.

mod common;

use common::{HOLD_TTL_MS, config, id, show_id};
use contracts::{Command, CommandEnvelope, HoldSeats, MessageId, ScreenLayout, SeatRequest};
use sequencer::ShowState;
use std::time::Instant;

#[test]
#[ignore = "timing: run in release with --ignored"]
fn a_500_seat_show_decides_well_over_5000_requests_a_second() {
    // 20 rows of 25 seats with two aisles; requests of 1 to 8 seats, every hold
    // released again so the show never fills up and each request does full work.
    let mut layout = ScreenLayout::grid(20, 25, "regular");
    for row in &mut layout.rows {
        row.aisles_after = vec![5, 20];
    }
    let mut state = ShowState::new(config(layout)).unwrap();
    let requests = 50_000u128;
    let started = Instant::now();
    let mut seats_held = 0usize;
    for n in 0..requests {
        let booking_id = id(0xb00c_0000 + n);
        let hold = CommandEnvelope {
            message_id: id::<MessageId>(2 * n),
            show_id: show_id(),
            issued_at: common::START,
            request_id: None,
            trace: None,
            command: Command::HoldSeats(HoldSeats {
                booking_id,
                user_id: id(7),
                request: SeatRequest::BestAvailable {
                    quantity: 1 + (n % 8) as u8,
                    seat_type: None,
                },
                hold_ttl_ms: HOLD_TTL_MS,
                payment_method: None,
            }),
        };
        state.apply(&hold);
        seats_held = 500 - state.free_count();
        if seats_held > 400 {
            // Free the oldest holds so the seat map stays busy but not full.
            let live: Vec<_> = state
                .live_bookings()
                .map(|b| b.booking_id)
                .take(40)
                .collect();
            for b in live {
                state.apply(&CommandEnvelope {
                    message_id: id::<MessageId>(2 * n + 1),
                    show_id: show_id(),
                    issued_at: common::START,
                    request_id: None,
                    trace: None,
                    command: Command::ReleaseHold {
                        booking_id: b,
                        reason: "bench".into(),
                    },
                });
            }
        }
    }
    let elapsed = started.elapsed();
    let per_second = requests as f64 / elapsed.as_secs_f64();
    println!(
        "{requests} requests in {elapsed:?}: {per_second:.0}/s, {:.2} µs each (last fill {seats_held} seats)",
        elapsed.as_secs_f64() * 1e6 / requests as f64
    );
    assert!(per_second > 5_000.0, "only {per_second:.0} requests/s");
}
