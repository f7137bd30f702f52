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
    /// The gateway payment, once one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

/// A booking that no longer occupies seats but may still see money move: an
/// expired or failed hold (a late payment may still succeed), a cancelled booking
/// (its refund is pending), or a late payment waiting for its refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedBooking {
    pub booking_id: BookingId,
    pub user_id: UserId,
    /// `Expired`, `Failed` or `Cancelled`.
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
    closed: BTreeMap<BookingId, ClosedBooking>,
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
            closed: BTreeMap::new(),
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

    /// Adds the bookings that no longer hold seats but may still see a payment or
    /// refund (see [`ClosedBooking`]). Refuses one that is also live or not closed.
    pub fn with_closed(mut self, closed: Vec<ClosedBooking>) -> Result<Self, SetupError> {
        for b in closed {
            let id = b.booking_id;
            if !matches!(
                b.status,
                BookingStatus::Expired | BookingStatus::Failed | BookingStatus::Cancelled
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

    /// The show is cancelled: no more sales; every live booking ends, in booking id
    /// order (deterministic). Confirmed ones are cancelled with a full refund; held
    /// and payment-pending ones are released (a payment that succeeds later finds
    /// the show off sale and is refunded).
    fn cancel_show(&mut self, reason: &str) -> Vec<(BookingId, Event)> {
        self.on_sale = false;
        let live: Vec<(BookingId, BookingStatus)> = self
            .live
            .values()
            .map(|b| (b.booking_id, b.status))
            .collect();
        live.into_iter()
            .map(|(id, status)| {
                if status == BookingStatus::Confirmed {
                    let seats = self.close(id, BookingStatus::Cancelled);
                    let closed = self.closed.get_mut(&id).expect("closed just above");
                    closed.refund_pending = true;
                    let event = Event::BookingCancelled {
                        seats,
                        payment_id: closed.payment_id.clone().unwrap_or_default(),
                        refund_amount: closed.amount,
                        currency: closed.currency.clone(),
                    };
                    (id, event)
                } else {
                    let seats = self.close(id, BookingStatus::Failed);
                    let reason = reason.to_owned();
                    (id, Event::HoldReleased { seats, reason })
                }
            })
            .collect()
    }

    /// A command about one booking: its event, if it changes anything.
    fn apply_to_one(&mut self, command: &Command, issued_at: Millis) -> Option<(BookingId, Event)> {
        match command {
            Command::CancelShow { .. } => None,
            Command::HoldSeats(hold) => {
                if !self.known.insert(hold.booking_id) {
                    // A retry of a booking already decided: the first decision stands.
                    None
                } else {
                    let event = match self.decide(&hold.request) {
                        Ok(seats) => {
                            let hold_expires_at = issued_at.plus_ms(hold.hold_ttl_ms);
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
                    b.status == BookingStatus::Held && issued_at >= b.hold_expires_at
                });
                due.then(|| {
                    let seats = self.close(*booking_id, BookingStatus::Expired);
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
                    let seats = self.close(*booking_id, BookingStatus::Failed);
                    let reason = reason.clone();
                    (*booking_id, Event::HoldReleased { seats, reason })
                })
            }
            Command::PaymentStarted {
                booking_id,
                payment_id,
            } => match self.live.get_mut(booking_id) {
                Some(b) if b.status == BookingStatus::Held => {
                    b.status = BookingStatus::PaymentPending;
                    b.payment_id = Some(payment_id.clone());
                    Some((
                        *booking_id,
                        Event::PaymentPending {
                            payment_id: payment_id.clone(),
                        },
                    ))
                }
                // Already pending or confirmed, or no longer live: a late success is
                // decided when it arrives.
                _ => None,
            },
            Command::PaymentSucceeded {
                booking_id,
                payment_id,
                amount,
            } => self
                .payment_succeeded(*booking_id, payment_id, *amount)
                .map(|e| (*booking_id, e)),
            Command::PaymentFailed {
                booking_id,
                payment_id,
                reason,
            } => {
                let open = self.live.get(booking_id).is_some_and(|b| {
                    matches!(
                        b.status,
                        BookingStatus::Held | BookingStatus::PaymentPending
                    )
                });
                open.then(|| {
                    let seats = self.close(*booking_id, BookingStatus::Failed);
                    (
                        *booking_id,
                        Event::PaymentFailed {
                            seats,
                            payment_id: payment_id.clone(),
                            reason: reason.clone(),
                        },
                    )
                })
            }
            Command::CancelBooking {
                booking_id,
                fee_permille,
            } => {
                let confirmed = self
                    .live
                    .get(booking_id)
                    .is_some_and(|b| b.status == BookingStatus::Confirmed);
                confirmed.then(|| {
                    let seats = self.close(*booking_id, BookingStatus::Cancelled);
                    let closed = self.closed.get_mut(booking_id).expect("closed just above");
                    closed.refund_pending = true;
                    let fee = closed
                        .amount
                        .saturating_mul(i64::from((*fee_permille).min(1000)))
                        / 1000;
                    (
                        *booking_id,
                        Event::BookingCancelled {
                            seats,
                            payment_id: closed.payment_id.clone().unwrap_or_default(),
                            refund_amount: closed.amount - fee,
                            currency: closed.currency.clone(),
                        },
                    )
                })
            }
            Command::RefundCompleted {
                booking_id,
                refund_id,
                amount,
            } => {
                let pending = self
                    .closed
                    .get(booking_id)
                    .is_some_and(|b| b.refund_pending);
                pending.then(|| {
                    self.closed.remove(booking_id);
                    (
                        *booking_id,
                        Event::BookingRefunded {
                            refund_id: refund_id.clone(),
                            amount: *amount,
                        },
                    )
                })
            }
        }
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
            payment_id: None,
        };
        self.live.entry(booking_id).or_insert(booking)
    }

    /// A payment succeeded for `booking_id`:
    /// - live and held or pending: confirmed, its seats sold;
    /// - live and confirmed: nothing (a repeat);
    /// - closed (expired or failed) and every one of its seats still available:
    ///   the same seats are taken again, confirmed (`retaken`);
    /// - closed otherwise: the money must go back (`LatePaymentRefused`), once.
    fn payment_succeeded(
        &mut self,
        booking_id: BookingId,
        payment_id: &str,
        paid: i64,
    ) -> Option<Event> {
        if let Some(b) = self.live.get_mut(&booking_id) {
            if b.status == BookingStatus::Confirmed {
                return None;
            }
            b.status = BookingStatus::Confirmed;
            b.payment_id = Some(payment_id.to_owned());
            let b = b.clone();
            for seat in &b.seats {
                if let Some(&i) = self.index.get(seat) {
                    self.seats[i].occupant = Some((booking_id, SeatStatus::Sold));
                }
            }
            return Some(Event::BookingConfirmed {
                user_id: b.user_id,
                seats: b.seats,
                amount: b.amount,
                currency: b.currency,
                payment_id: payment_id.to_owned(),
                retaken: false,
            });
        }
        let closed = self.closed.get(&booking_id)?;
        if closed.refund_pending || closed.status == BookingStatus::Cancelled {
            return None;
        }
        let seats: Option<Vec<usize>> = closed
            .seats
            .iter()
            .map(|s| {
                self.index
                    .get(s)
                    .copied()
                    .filter(|&i| self.seats[i].status() == SeatStatus::Available)
            })
            .collect();
        match seats {
            // A show off sale (cancelled) never sells again: the money goes back.
            Some(seats) if !seats.is_empty() && self.on_sale => {
                let closed = self.closed.remove(&booking_id).expect("checked above");
                for &i in &seats {
                    self.seats[i].occupant = Some((booking_id, SeatStatus::Sold));
                }
                self.live.insert(
                    booking_id,
                    LiveBooking {
                        booking_id,
                        user_id: closed.user_id,
                        status: BookingStatus::Confirmed,
                        seats: closed.seats.clone(),
                        hold_expires_at: Millis(i64::MAX),
                        amount: closed.amount,
                        currency: closed.currency.clone(),
                        payment_id: Some(payment_id.to_owned()),
                    },
                );
                Some(Event::BookingConfirmed {
                    user_id: closed.user_id,
                    seats: closed.seats,
                    amount: closed.amount,
                    currency: closed.currency,
                    payment_id: payment_id.to_owned(),
                    retaken: true,
                })
            }
            _ => {
                let closed = self.closed.get_mut(&booking_id).expect("checked above");
                closed.refund_pending = true;
                closed.payment_id = Some(payment_id.to_owned());
                Some(Event::LatePaymentRefused {
                    payment_id: payment_id.to_owned(),
                    amount: paid,
                    currency: closed.currency.clone(),
                    reason: if self.on_sale {
                        "seats_resold"
                    } else {
                        "not_on_sale"
                    }
                    .to_owned(),
                })
            }
        }
    }

    /// Frees live booking `booking_id`'s seats and remembers it as closed with
    /// `status`; returns the seats.
    fn close(&mut self, booking_id: BookingId, status: BookingStatus) -> Vec<SeatId> {
        let Some(b) = self.live.get(&booking_id).cloned() else {
            return Vec::new();
        };
        let seats = self.vacate(booking_id);
        self.closed.insert(
            booking_id,
            ClosedBooking {
                booking_id,
                user_id: b.user_id,
                status,
                seats: seats.clone(),
                amount: b.amount,
                currency: b.currency,
                payment_id: b.payment_id,
                refund_pending: false,
            },
        );
        seats
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
