//! The pure seat allocator and per-show booking state machine.
//!
//! Commands in, events out: no IO, no async, no clock (time arrives as
//! `CommandEnvelope::issued_at`), no randomness, and no hash-map order anywhere, so
//! the same command log applied to the same start state gives the same events and
//! the same seat map, byte for byte. The sequencer runner in `workers` hosts it.
//!
//! - [`state`]: [`ShowState`], one show's seat map, live bookings and decided
//!   booking ids; built by [`ShowState::new`] or [`ShowState::restore`] from a
//!   [`ShowConfig`] (and [`LiveBooking`]s), advanced by [`ShowState::apply`].
//! - `allocate` (private): the best-available rules below, in one function.
//!
//! # What `apply` does
//!
//! - `HoldSeats` for a booking id already known (decided before, in any way) does
//!   nothing, so retries collapse. Otherwise it emits exactly one event:
//!   `BookingRejected` (`NotOnSale`; `InvalidRequest` for 0 or more than
//!   [`contracts::MAX_SEATS_PER_BOOKING`] seats, a seat chosen twice, a seat not in
//!   the layout, a seat type no seat of the layout has; `SeatUnavailable` with the
//!   taken chosen seats in layout order; `NotEnoughSeats` with the count of
//!   available seats of the type) or `BookingHeld` (seats in layout order, amount =
//!   sum of the seats' prices, `hold_expires_at = issued_at + hold_ttl_ms`).
//!   Chosen seats are all or nothing. Blocked seats are never allocated.
//!   **Demand pricing** (`ShowConfig::pricing`, rule in `contracts::pricing`):
//!   each seat or place costs its type's base price changed by the tier reached by
//!   the share of places occupied *before* this request and by the time from the
//!   command's `issued_at` to `ShowConfig::starts_at`; the amount is fixed in the
//!   `BookingHeld` event, so a replay gives the same amounts.
//! - A zone request (`SeatRequest::Zone`: `quantity` places of a general-admission
//!   zone, with chosen seats too when the layout sets `mixed_booking`) is all or
//!   nothing: `InvalidRequest` for an unknown zone, no places, or seats where the
//!   layout does not mix; `SeatUnavailable` for a taken seat; `NotEnoughPlaces`
//!   with the places left when the zone has fewer than asked. Places are priced by
//!   the zone's seat type, count toward `max_tickets_per_user` like seats, and come
//!   back wherever seats do (expiry, release, cancellation, failure); a late
//!   payment re-takes them only if they are still free (`state/zones.rs`).
//! - `BlockSeats` (an admin's block of broken seats) marks them blocked: never
//!   allocated again, no event; a booking already on them keeps them.
//! - `ExpireHold` frees a booking that is still `Held` once `issued_at` reaches its
//!   `hold_expires_at`: `BookingExpired`, or `PaymentFailed` when its last payment
//!   attempt was declined; otherwise nothing.
//! - `ReleaseHold` frees a `Held` or `PaymentPending` booking (`HoldReleased`);
//!   otherwise nothing. `ReleaseBooking` (the buyer) frees a `Held` booking only
//!   (`BookingReleased`, status `Released`).
//! - `PaymentFailed` of the current attempt (or of any attempt while `Held`): before
//!   the hold runs out the booking is `Held` again with its seats
//!   (`PaymentDeclined`); after, it fails and frees them (`PaymentFailed`). The
//!   rules of `PaymentSucceeded` (at most one capture kept, every other refunded)
//!   are on `ShowState::apply`'s payment module.
//! - Event `i` of a command has id `EventId::derive(message_id, i)`,
//!   `occurred_at = issued_at` and `caused_by = message_id`. A command for another
//!   show gives no events.
//!
//! # Best available
//!
//! A request for `quantity` seats (of `seat_type`, if given) is decided like this:
//!
//! 1. **Candidates** are the Available seats of the asked type (any type when none
//!    is given). With fewer candidates than `quantity` the answer is
//!    `NotEnoughSeats { available: <candidate count> }`.
//! 2. **Adjacency.** A *block* is a run of `quantity` candidate seats that follow
//!    each other in their row's `seats` list with no aisle between them (an aisle
//!    runs after seat `n` when `aisles_after` contains `n`). A block that fits is
//!    always preferred to a split.
//! 3. **No stranded seat.** A *free run* is a maximal run of adjacent Available
//!    seats of any type, bounded by taken or blocked seats, aisles and row ends. A
//!    block strands a seat when it leaves exactly one free seat between itself and
//!    either end of its free run. Blocks that strand nothing beat blocks that do;
//!    when every block strands a seat, one that does is taken anyway.
//! 4. **Closest to the focal point.** The focal row is
//!    `round(row_permille * (rows - 1) / 1000)`; a row's focal column is
//!    `col_permille * (row_len - 1) / 1000`, counted in the row's own seat positions
//!    (0 = its first seat; aisles take no position). A block's distance, in
//!    thousandths of a seat, is `2000 * |row - focal_row|` (a row counts as two
//!    seats) plus `|centre - focal_column|`, where the centre is the mean of the
//!    block's first and last positions. Everything is integer arithmetic: positions
//!    and the focal column are scaled by 1000 before comparing. Smaller wins.
//! 5. **Ties** go to the lower row index (nearer the screen), then the leftmost
//!    start.
//! 6. **Split, when no block of `quantity` fits.** Repeat until `quantity` seats
//!    are taken: let `L` be the length of the longest run of adjacent candidates
//!    left and `k = min(L, still needed)`; take the best block of `k` seats by rules
//!    3 to 5 (judged with the seats already taken for this request counted as
//!    taken). Taking the longest run each time gives the fewest blocks possible
//!    (each block is one run of adjacent seats; two blocks of one row on either side
//!    of an aisle count as two). It always succeeds when there are at least
//!    `quantity` candidates, since a single candidate is a run of one. (Without a
//!    split, this loop takes one step and is exactly rules 2 to 5.)
//!
//! One request scans the seat plan twice per block taken, so it costs
//! O(blocks * seats), with at most [`contracts::MAX_SEATS_PER_BOOKING`] blocks:
//! microseconds for a 500-seat screen.

mod allocate;
pub mod state;

pub use state::{ClosedBooking, LiveBooking, SeatStatus, SetupError, ShowConfig, ShowState};
