//! The per-show state machine: setup ([`ShowState::new`], [`ShowState::restore`]),
//! the transition function [`ShowState::apply`], and read-only views.

use crate::allocate::{Floor, Row};
use contracts::{
    BookingId, BookingStatus, Command, CommandEnvelope, Event, EventEnvelope, EventId,
    MAX_SEATS_PER_BOOKING, Millis, Price, RejectReason, ScreenLayout, SeatId, SeatRequest, ShowId,
    UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What the sequencer needs to know about a show to allocate its seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowConfig {
    pub show_id: ShowId,
    pub layout: ScreenLayout,
    /// One price per seat type of the layout, all in one currency.
    pub prices: Vec<Price>,
    /// When false every hold is rejected with `NotOnSale`.
    pub on_sale: bool,
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
    live: BTreeMap<BookingId, LiveBooking>,
    known: BTreeSet<BookingId>,
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
        } = config;
        layout
            .validate()
            .map_err(|e| SetupError(format!("invalid layout: {e}")))?;

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

        let seat_types: Vec<String> = layout
            .rows
            .iter()
            .flat_map(|r| r.seats.iter().map(|s| s.seat_type.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
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

        Ok(Self {
            show_id,
            on_sale,
            currency,
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
            known: BTreeSet::new(),
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
            state.known.insert(id);
            state.live.insert(id, booking);
        }
        Ok(state)
    }

    /// Applies one command and returns the events it caused (none when it changes
    /// nothing). The same command applied to the same state always gives the same
    /// events and the same next state.
    pub fn apply(&mut self, cmd: &CommandEnvelope) -> Vec<EventEnvelope> {
        if cmd.show_id != self.show_id {
            return Vec::new();
        }
        let outcome = match &cmd.command {
            Command::HoldSeats(hold) => {
                if !self.known.insert(hold.booking_id) {
                    // A retry of a booking already decided: the first decision stands.
                    None
                } else {
                    let event = match self.decide(&hold.request) {
                        Ok(seats) => {
                            let hold_expires_at = cmd.issued_at.plus_ms(hold.hold_ttl_ms);
                            let booking =
                                self.occupy(hold.booking_id, hold.user_id, &seats, hold_expires_at);
                            Event::BookingHeld {
                                user_id: hold.user_id,
                                seats: booking.seats.clone(),
                                amount: booking.amount,
                                currency: booking.currency.clone(),
                                hold_expires_at,
                                payment_method: hold.payment_method.clone(),
                            }
                        }
                        Err(reason) => Event::BookingRejected {
                            user_id: hold.user_id,
                            reason,
                        },
                    };
                    Some((hold.booking_id, event))
                }
            }
            Command::ExpireHold { booking_id } => {
                let due = self.live.get(booking_id).is_some_and(|b| {
                    b.status == BookingStatus::Held && cmd.issued_at >= b.hold_expires_at
                });
                due.then(|| {
                    let seats = self.vacate(*booking_id);
                    (*booking_id, Event::BookingExpired { seats })
                })
            }
            Command::ReleaseHold { booking_id, reason } => {
                let releasable = self.live.get(booking_id).is_some_and(|b| {
                    matches!(
                        b.status,
                        BookingStatus::Held | BookingStatus::PaymentPending
                    )
                });
                releasable.then(|| {
                    let seats = self.vacate(*booking_id);
                    let reason = reason.clone();
                    (*booking_id, Event::HoldReleased { seats, reason })
                })
            }
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

    /// Whether a hold for `b` was ever decided (held, rejected, or restored as known).
    pub fn is_known(&self, b: BookingId) -> bool {
        self.known.contains(&b)
    }

    /// Decides a hold request: the seat indices to take (sorted), or why not.
    fn decide(&self, request: &SeatRequest) -> Result<Vec<usize>, RejectReason> {
        if !self.on_sale {
            return Err(RejectReason::NotOnSale);
        }
        let invalid = |detail: String| Err(RejectReason::InvalidRequest { detail });
        let count = request.seat_count();
        if count == 0 || count > MAX_SEATS_PER_BOOKING {
            return invalid(format!(
                "a booking takes 1 to {MAX_SEATS_PER_BOOKING} seats, not {count}"
            ));
        }
        match request {
            SeatRequest::Chosen { seats } => {
                let mut chosen = Vec::with_capacity(seats.len());
                for seat in seats {
                    match self.index.get(seat) {
                        Some(&i) => chosen.push(i),
                        None => return invalid(format!("seat {seat} is not in the layout")),
                    }
                }
                chosen.sort_unstable();
                if let Some(w) = chosen.windows(2).find(|w| w[0] == w[1]) {
                    return invalid(format!("seat {} is chosen twice", self.seats[w[0]].id));
                }
                let unavailable: Vec<SeatId> = chosen
                    .iter()
                    .filter(|&&i| self.seats[i].status() != SeatStatus::Available)
                    .map(|&i| self.seats[i].id.clone())
                    .collect();
                if unavailable.is_empty() {
                    Ok(chosen)
                } else {
                    Err(RejectReason::SeatUnavailable { seats: unavailable })
                }
            }
            SeatRequest::BestAvailable { seat_type, .. } => {
                let kind = match seat_type {
                    None => None,
                    Some(t) => match self.seat_types.binary_search(t) {
                        Ok(k) => Some(k),
                        Err(_) => return invalid(format!("unknown seat type {t:?}")),
                    },
                };
                let free: Vec<bool> = self
                    .seats
                    .iter()
                    .map(|s| s.status() == SeatStatus::Available)
                    .collect();
                let wanted: Vec<bool> = self
                    .seats
                    .iter()
                    .zip(&free)
                    .map(|(s, f)| *f && kind.is_none_or(|k| s.kind == k))
                    .collect();
                self.floor
                    .best_available(&free, &wanted, count)
                    .map_err(|available| RejectReason::NotEnoughSeats {
                        available: u32::try_from(available).unwrap_or(u32::MAX),
                    })
            }
        }
    }

    /// Puts a new `Held` booking on `seats` (sorted indices, all Available).
    fn occupy(
        &mut self,
        booking_id: BookingId,
        user_id: UserId,
        seats: &[usize],
        hold_expires_at: Millis,
    ) -> &LiveBooking {
        let mut amount: i64 = 0;
        for &i in seats {
            debug_assert_eq!(self.seats[i].status(), SeatStatus::Available);
            self.seats[i].occupant = Some((booking_id, SeatStatus::Held));
            amount = amount.saturating_add(self.type_prices[self.seats[i].kind]);
        }
        let booking = LiveBooking {
            booking_id,
            user_id,
            status: BookingStatus::Held,
            seats: seats.iter().map(|&i| self.seats[i].id.clone()).collect(),
            hold_expires_at,
            amount,
            currency: self.currency.clone(),
        };
        self.live.entry(booking_id).or_insert(booking)
    }

    /// Removes live booking `booking_id` and frees its seats, which it returns.
    fn vacate(&mut self, booking_id: BookingId) -> Vec<SeatId> {
        let Some(booking) = self.live.remove(&booking_id) else {
            return Vec::new();
        };
        for seat in &booking.seats {
            if let Some(&i) = self.index.get(seat) {
                debug_assert_eq!(self.seats[i].occupant.map(|o| o.0), Some(booking_id));
                self.seats[i].occupant = None;
            }
        }
        booking.seats
    }
}
