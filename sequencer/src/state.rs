//! The per-show state machine: setup ([`ShowState::new`], [`ShowState::restore`]),
//! the transition function [`ShowState::apply`], and read-only views. What each
//! command does to the state is in [`transitions`] (seats) and [`payments`] (money),
//! one function per command.

use crate::allocate::{Floor, Row};
use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, Event, EventEnvelope, EventId, Millis,
    Price, Pricing, ScreenLayout, SeatId, ShowId, UserId, ZonePlaces,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod payments;
mod transitions;
mod zones;

use zones::Zone;
pub use zones::ZoneView;

/// What the sequencer needs to know about a show to allocate its seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowConfig {
    pub show_id: ShowId,
    pub layout: ScreenLayout,
    /// One price per seat type of the layout, all in one currency.
    pub prices: Vec<Price>,
    /// When false every hold is rejected with `NotOnSale`.
    pub on_sale: bool,
    /// Most seats one user may occupy (held, being paid or sold) in this show;
    /// `None`: only the per-booking limit applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tickets_per_user: Option<u32>,
    /// Demand pricing (`contracts::pricing`); `None`: every seat at its base price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// When the show starts, for the pricing's time tiers (measured against each
    /// command's `issued_at`, never a clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Millis>,
    /// Seats blocked for this show beside the layout's own (a block of its screen
    /// from a time at or before its start); seats not in the layout are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<SeatId>,
}

/// A booking that occupies seats, as restored from the database (and as kept in
/// memory while it lives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveBooking {
    pub booking_id: BookingId,
    pub user_id: UserId,
    /// `Held`, `PaymentPending` or `Confirmed`: the statuses that occupy seats.
    pub status: BookingStatus,
    /// In layout order once inside a [`ShowState`].
    pub seats: Vec<SeatId>,
    pub hold_expires_at: Millis,
    pub amount: i64,
    pub currency: String,
    /// The gateway payment, once one was started: while `PaymentPending`, the
    /// attempt in flight (a failure of another attempt changes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Why the last payment attempt was declined, while the booking is open: a
    /// hold that runs out after a decline ends `Failed`, not `Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined: Option<String>,
    /// General-admission places it occupies, by zone id order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZonePlaces>,
}

/// A booking that no longer occupies seats but may still see money move: an
/// expired or failed hold (a late payment may still succeed), a cancelled booking
/// (its refund is pending), a released one (a payment that still captures is
/// refunded), or a late payment waiting for its refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedBooking {
    pub booking_id: BookingId,
    pub user_id: UserId,
    /// `Expired`, `Failed`, `Cancelled` or `Released`.
    pub status: BookingStatus,
    /// The seats it had, in layout order.
    pub seats: Vec<SeatId>,
    pub amount: i64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// A refund was asked for (cancellation or a late payment that lost its seats).
    #[serde(default)]
    pub refund_pending: bool,
    /// The general-admission places it had, by zone id order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZonePlaces>,
}

/// Why a show state could not be built from its configuration or restored rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// What a seat looks like to a buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    /// Free to be held.
    Available,
    /// Occupied by a booking that is `Held` or `PaymentPending`.
    Held,
    /// Occupied by a `Confirmed` booking.
    Sold,
    /// Blocked in the layout and not occupied.
    Blocked,
}

/// One seat of the plan, in layout order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Seat {
    id: SeatId,
    /// Index into `ShowState::seat_types`.
    kind: usize,
    blocked: bool,
    /// The live booking on the seat and the status it shows.
    occupant: Option<(BookingId, SeatStatus)>,
}

impl Seat {
    fn status(&self) -> SeatStatus {
        match self.occupant {
            Some((_, status)) => status,
            None if self.blocked => SeatStatus::Blocked,
            None => SeatStatus::Available,
        }
    }
}

/// The in-memory state of one show: its seat map, its live bookings and the ids of
/// every booking it has ever decided. Serializes deterministically (vectors in
/// layout order, `BTreeMap`/`BTreeSet` in id order), so two states can be compared
/// byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShowState {
    show_id: ShowId,
    on_sale: bool,
    currency: String,
    /// The distinct seat types of the layout, sorted.
    seat_types: Vec<String>,
    /// Price of one seat, by index into `seat_types`.
    type_prices: Vec<i64>,
    floor: Floor,
    seats: Vec<Seat>,
    /// Seat id -> index into `seats`; derived from `seats`, so not serialized.
    #[serde(skip)]
    index: BTreeMap<SeatId, usize>,
    /// General-admission zones, in layout order, with their places taken.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    zones: Vec<Zone>,
    /// Whether one booking may combine chosen seats and zone places.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mixed_booking: bool,
    live: BTreeMap<BookingId, LiveBooking>,
    closed: BTreeMap<BookingId, ClosedBooking>,
    known: BTreeSet<BookingId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tickets_per_user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pricing: Option<Pricing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    starts_at: Option<Millis>,
}

impl ShowState {
    /// A show with every seat free (except the blocked ones).
    ///
    /// Refuses a layout that does not validate, a seat type without a price, two
    /// prices for one type, a negative price, and prices in more than one currency.
    pub fn new(config: ShowConfig) -> Result<Self, SetupError> {
        let ShowConfig {
            show_id,
            layout,
            prices,
            on_sale,
            max_tickets_per_user,
            pricing,
            starts_at,
            blocked,
        } = config;
        layout
            .validate()
            .map_err(|e| SetupError(format!("invalid layout: {e}")))?;
        if let Some(p) = &pricing {
            p.validate()
                .map_err(|e| SetupError(format!("invalid pricing: {e}")))?;
        }

        let mut price_of: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &prices {
            if p.amount < 0 {
                return Err(SetupError(format!(
                    "seat type {:?} has a negative price",
                    p.seat_type
                )));
            }
            if price_of.insert(&p.seat_type, p.amount).is_some() {
                return Err(SetupError(format!(
                    "seat type {:?} has two prices",
                    p.seat_type
                )));
            }
        }
        let currency = prices
            .first()
            .map(|p| p.currency.clone())
            .unwrap_or_default();
        if let Some(p) = prices.iter().find(|p| p.currency != currency) {
            return Err(SetupError(format!(
                "all prices of a show share one currency, but {:?} is in {:?} and {:?} in {:?}",
                prices[0].seat_type, currency, p.seat_type, p.currency
            )));
        }

        let seat_types: Vec<String> = layout.seat_types().into_iter().map(str::to_owned).collect();
        let mut type_prices = Vec::with_capacity(seat_types.len());
        for t in &seat_types {
            match price_of.get(t.as_str()) {
                Some(amount) => type_prices.push(*amount),
                None => return Err(SetupError(format!("seat type {t:?} has no price"))),
            }
        }

        let focal = layout.focal_point.unwrap_or_default();
        let row_count = layout.rows.len();
        let focal_row = (usize::from(focal.row_permille) * (row_count - 1) + 500) / 1000;
        let mut rows = Vec::with_capacity(row_count);
        let mut seats = Vec::new();
        let mut gap_after = Vec::new();
        let mut index = BTreeMap::new();
        for row in &layout.rows {
            rows.push(Row {
                first: seats.len(),
                len: row.seats.len(),
                focal_milli: i64::from(focal.col_permille) * (row.seats.len() as i64 - 1),
            });
            for (pos, s) in row.seats.iter().enumerate() {
                let id = SeatId::new(&row.row, s.number)
                    .map_err(|e| SetupError(format!("invalid layout: {e}")))?;
                index.insert(id.clone(), seats.len());
                gap_after.push(pos + 1 == row.seats.len() || row.aisles_after.contains(&s.number));
                seats.push(Seat {
                    id,
                    kind: seat_types
                        .binary_search(&s.seat_type)
                        .map_err(|_| SetupError(format!("seat type {:?} lost", s.seat_type)))?,
                    blocked: s.blocked,
                    occupant: None,
                });
            }
        }

        for seat in &blocked {
            if let Some(&i) = index.get(seat) {
                seats[i].blocked = true;
            }
        }
        let zones = zones::of_layout(&layout, &seat_types)?;
        Ok(Self {
            show_id,
            on_sale,
            currency,
            zones,
            mixed_booking: layout.mixed_booking,
            seat_types,
            type_prices,
            floor: Floor {
                rows,
                focal_row,
                gap_after,
            },
            seats,
            index,
            live: BTreeMap::new(),
            closed: BTreeMap::new(),
            known: BTreeSet::new(),
            max_tickets_per_user,
            pricing,
            starts_at,
        })
    }

    /// A show as it stands in the database: `live` are the bookings that occupy
    /// seats (`Held`, `PaymentPending`, `Confirmed`), `known` the ids of every
    /// booking of the show ever decided, in any status (live ones may be repeated or
    /// left out; they are known either way).
    ///
    /// Refuses a live booking in another status, one listed twice, one naming a
    /// seat twice or a seat not in the layout, and two live bookings on one seat.
    /// A live booking on a seat the layout now blocks is kept: the seat shows as
    /// held or sold while it lasts and as blocked once freed.
    pub fn restore(
        config: ShowConfig,
        live: Vec<LiveBooking>,
        known: impl IntoIterator<Item = BookingId>,
    ) -> Result<Self, SetupError> {
        let mut state = Self::new(config)?;
        state.known.extend(known);
        for mut booking in live {
            let id = booking.booking_id;
            let status = match booking.status {
                BookingStatus::Held | BookingStatus::PaymentPending => SeatStatus::Held,
                BookingStatus::Confirmed => SeatStatus::Sold,
                other => {
                    return Err(SetupError(format!(
                        "booking {id} is {other}, which does not occupy seats"
                    )));
                }
            };
            if state.live.contains_key(&id) {
                return Err(SetupError(format!("booking {id} is listed twice")));
            }
            let mut seats = Vec::with_capacity(booking.seats.len());
            for seat in &booking.seats {
                match state.index.get(seat) {
                    Some(i) => seats.push(*i),
                    None => {
                        return Err(SetupError(format!(
                            "booking {id} holds seat {seat}, which is not in the layout"
                        )));
                    }
                }
            }
            seats.sort_unstable();
            if seats.windows(2).any(|w| w[0] == w[1]) {
                return Err(SetupError(format!("booking {id} names a seat twice")));
            }
            for &i in &seats {
                if let Some((other, _)) = state.seats[i].occupant {
                    return Err(SetupError(format!(
                        "seat {} is occupied by both booking {other} and booking {id}",
                        state.seats[i].id
                    )));
                }
                state.seats[i].occupant = Some((id, status));
            }
            booking.seats = seats.iter().map(|&i| state.seats[i].id.clone()).collect();
            booking.zones = state.restore_places(id, std::mem::take(&mut booking.zones))?;
            state.known.insert(id);
            state.live.insert(id, booking);
        }
        Ok(state)
    }

    /// Adds the bookings that no longer hold seats but may still see a payment or
    /// refund (see [`ClosedBooking`]). Refuses one that is also live or not closed.
    pub fn with_closed(mut self, closed: Vec<ClosedBooking>) -> Result<Self, SetupError> {
        for b in closed {
            let id = b.booking_id;
            if !matches!(
                b.status,
                BookingStatus::Expired
                    | BookingStatus::Failed
                    | BookingStatus::Cancelled
                    | BookingStatus::Released
            ) {
                return Err(SetupError(format!(
                    "booking {id} is {}, not closed",
                    b.status
                )));
            }
            if self.live.contains_key(&id) || self.closed.contains_key(&id) {
                return Err(SetupError(format!("booking {id} is listed twice")));
            }
            self.known.insert(id);
            self.closed.insert(id, b);
        }
        Ok(self)
    }

    /// The closed bookings (see [`ClosedBooking`]), in booking id order.
    pub fn closed_bookings(&self) -> impl Iterator<Item = &ClosedBooking> {
        self.closed.values()
    }

    /// The closed booking `b` (see [`ClosedBooking`]), if it is one.
    pub fn closed_booking(&self, b: BookingId) -> Option<&ClosedBooking> {
        self.closed.get(&b)
    }

    /// Applies one command and returns the events it caused (none when it changes
    /// nothing). The same command applied to the same state always gives the same
    /// events and the same next state.
    pub fn apply(&mut self, cmd: &CommandEnvelope) -> Vec<EventEnvelope> {
        if cmd.show_id != self.show_id {
            return Vec::new();
        }
        let outcome: Vec<(BookingId, Event)> = match &cmd.command {
            Command::CancelShow { reason } => self.cancel_show(reason),
            single => self
                .apply_to_one(single, cmd.issued_at)
                .into_iter()
                .collect(),
        };
        outcome
            .into_iter()
            .enumerate()
            .map(|(i, (booking_id, event))| EventEnvelope {
                event_id: EventId::derive(cmd.message_id, i as u32),
                show_id: self.show_id,
                booking_id,
                occurred_at: cmd.issued_at,
                caused_by: cmd.message_id,
                trace: cmd.trace,
                event,
            })
            .collect()
    }

    pub fn show_id(&self) -> ShowId {
        self.show_id
    }

    /// The status of `seat`, or `None` when the layout has no such seat.
    pub fn seat_status(&self, seat: &SeatId) -> Option<SeatStatus> {
        self.index.get(seat).map(|&i| self.seats[i].status())
    }

    /// Every seat with its status, in layout order (front row first, left to right).
    pub fn seats(&self) -> impl Iterator<Item = (&SeatId, SeatStatus)> {
        self.seats.iter().map(|s| (&s.id, s.status()))
    }

    /// Every general-admission zone with its capacity and places left, in layout
    /// order.
    pub fn zones(&self) -> impl Iterator<Item = ZoneView<'_>> {
        self.zones.iter().map(Zone::view)
    }

    /// How many seats are Available.
    pub fn free_count(&self) -> usize {
        self.seats
            .iter()
            .filter(|s| s.status() == SeatStatus::Available)
            .count()
    }

    /// The bookings occupying seats, in booking id order; their seats in layout order.
    pub fn live_bookings(&self) -> impl Iterator<Item = &LiveBooking> {
        self.live.values()
    }

    /// The live booking `b`, if it occupies seats.
    pub fn live_booking(&self, b: BookingId) -> Option<&LiveBooking> {
        self.live.get(&b)
    }

    /// The price of one seat (or place) of each seat type for a hold issued at
    /// `now`, demand pricing applied, as `(seat type, amount)` in type order.
    pub fn current_prices(&self, now: Millis) -> Vec<(&str, i64)> {
        let change = self.price_change(now);
        self.seat_types
            .iter()
            .zip(&self.type_prices)
            .map(|(t, &p)| (t.as_str(), contracts::pricing::adjust(p, change)))
            .collect()
    }

    /// Places held, being paid or sold, and places on sale (seats not blocked in
    /// the layout plus every zone's capacity): what the share sold is measured on.
    pub fn occupancy(&self) -> (u64, u64) {
        let seats = self
            .seats
            .iter()
            .filter(|s| !s.blocked || s.occupant.is_some());
        let (mut taken, mut capacity) = (0u64, 0u64);
        for s in seats {
            capacity += 1;
            taken += u64::from(s.occupant.is_some());
        }
        for z in self.zones() {
            capacity += u64::from(z.capacity);
            taken += u64::from(z.capacity - z.available);
        }
        (taken, capacity)
    }

    /// The demand-pricing change in force for a hold issued at `now`, in
    /// thousandths (0 without pricing).
    fn price_change(&self, now: Millis) -> i32 {
        let Some(pricing) = &self.pricing else {
            return 0;
        };
        let (taken, capacity) = self.occupancy();
        let to_start = self.starts_at.map(|s| s.0.saturating_sub(now.0));
        pricing.change_permille(taken, capacity, to_start)
    }

    /// Whether a hold for `b` was ever decided (held, rejected, or restored as known).
    pub fn is_known(&self, b: BookingId) -> bool {
        self.known.contains(&b)
    }
}
