//! One function per command: what it does to the show's state and the event it
//! causes. [`ShowState::apply`] dispatches here; nothing in this module reads a
//! clock or does IO (time arrives as `issued_at`).

use super::{ClosedBooking, LiveBooking, SeatStatus, ShowState};
use contracts::{
    BookingId, BookingStatus, Command, Event, HoldSeats, MAX_SEATS_PER_BOOKING, Millis,
    RejectReason, SeatId, SeatRequest, UserId,
};

/// What a hold request is given: seat indices (sorted) and zone places (zone
/// index, quantity).
#[derive(Debug, Default)]
struct Decision {
    seats: Vec<usize>,
    places: Option<(usize, u32)>,
}

impl ShowState {
    /// The show is cancelled: no more sales; every live booking ends, in booking id
    /// order (deterministic). Confirmed ones are cancelled with a full refund; held
    /// and payment-pending ones are released (a payment that succeeds later finds
    /// the show off sale and is refunded).
    pub(super) fn cancel_show(&mut self, reason: &str) -> Vec<(BookingId, Event)> {
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
                        by_theater: true,
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

    /// Blocks `seats` (those in the layout): never allocated again; an occupant
    /// keeps its seat until it leaves. No event: the block's row is the record.
    fn block(&mut self, seats: &[SeatId]) {
        for seat in seats {
            if let Some(&i) = self.index.get(seat) {
                self.seats[i].blocked = true;
            }
        }
    }

    /// A command about one booking: its event, if it changes anything.
    pub(super) fn apply_to_one(
        &mut self,
        command: &Command,
        issued_at: Millis,
    ) -> Option<(BookingId, Event)> {
        match command {
            Command::CancelShow { .. } => None,
            Command::BlockSeats { seats } => {
                self.block(seats);
                None
            }
            Command::HoldSeats(hold) => self.on_hold(hold, issued_at),
            Command::ExpireHold { booking_id } => self.on_expire(*booking_id, issued_at),
            Command::ReleaseHold { booking_id, reason } => self.on_release(*booking_id, reason),
            Command::ReleaseBooking { booking_id } => self.on_buyer_release(*booking_id),
            Command::PaymentStarted {
                booking_id,
                payment_id,
            } => self.on_payment_started(*booking_id, payment_id),
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
            } => self.on_payment_failed(*booking_id, payment_id, reason, issued_at),
            Command::CancelBooking {
                booking_id,
                fee_permille,
            } => self.on_cancel_booking(*booking_id, *fee_permille),
            Command::RefundCompleted {
                booking_id,
                refund_id,
                amount,
                payment_id,
            } => self.on_refund_completed(*booking_id, refund_id, *amount, payment_id.as_deref()),
        }
    }

    /// A new hold: decided once per booking id (a retry of a decided booking is
    /// ignored, the first decision stands).
    fn on_hold(&mut self, hold: &HoldSeats, issued_at: Millis) -> Option<(BookingId, Event)> {
        if !self.known.insert(hold.booking_id) {
            return None;
        }
        let event = match self.decide(&hold.request, hold.user_id) {
            Ok(decision) => {
                let hold_expires_at = issued_at.plus_ms(hold.hold_ttl_ms);
                // Priced by what was sold before this request (deterministic: the
                // state and the command's own time).
                let change = self.price_change(issued_at);
                let booking = self.occupy(
                    hold.booking_id,
                    hold.user_id,
                    decision,
                    hold_expires_at,
                    change,
                );
                Event::BookingHeld {
                    user_id: hold.user_id,
                    seats: booking.seats.clone(),
                    amount: booking.amount,
                    currency: booking.currency.clone(),
                    hold_expires_at,
                    payment_method: hold.payment_method.clone(),
                    zones: booking.zones.clone(),
                }
            }
            Err(reason) => Event::BookingRejected {
                user_id: hold.user_id,
                reason,
            },
        };
        Some((hold.booking_id, event))
    }

    /// A hold that has run out (and is still only held) ends and its seats return:
    /// `Expired` when no payment was tried, `Failed` when the last attempt was
    /// declined (paying can no longer succeed).
    fn on_expire(
        &mut self,
        booking_id: BookingId,
        issued_at: Millis,
    ) -> Option<(BookingId, Event)> {
        let b = self
            .live
            .get(&booking_id)
            .filter(|b| b.status == BookingStatus::Held && issued_at >= b.hold_expires_at)?;
        match (b.declined.clone(), b.payment_id.clone()) {
            (Some(reason), payment_id) => {
                let seats = self.close(booking_id, BookingStatus::Failed);
                let payment_id = payment_id.unwrap_or_default();
                let event = Event::PaymentFailed {
                    seats,
                    payment_id,
                    reason,
                };
                Some((booking_id, event))
            }
            (None, _) => {
                let seats = self.close(booking_id, BookingStatus::Expired);
                Some((booking_id, Event::BookingExpired { seats }))
            }
        }
    }

    /// The buyer gives a held booking back: its seats return at once and it ends
    /// `Released`. A payment in flight (`PaymentPending`) is not the buyer's to
    /// stop: the gateway decides it; any other status stays as it is.
    fn on_buyer_release(&mut self, booking_id: BookingId) -> Option<(BookingId, Event)> {
        let held = self
            .live
            .get(&booking_id)
            .is_some_and(|b| b.status == BookingStatus::Held);
        held.then(|| {
            let seats = self.close(booking_id, BookingStatus::Released);
            (booking_id, Event::BookingReleased { seats })
        })
    }

    /// A held or payment-pending booking is released; its seats return.
    fn on_release(&mut self, booking_id: BookingId, reason: &str) -> Option<(BookingId, Event)> {
        let releasable = self.live.get(&booking_id).is_some_and(|b| {
            matches!(
                b.status,
                BookingStatus::Held | BookingStatus::PaymentPending
            )
        });
        releasable.then(|| {
            let seats = self.close(booking_id, BookingStatus::Failed);
            let reason = reason.to_owned();
            (booking_id, Event::HoldReleased { seats, reason })
        })
    }

    /// The buyer cancels a confirmed booking: its seats return and the payment is
    /// refunded less the fee (per mille of the amount, at most all of it).
    fn on_cancel_booking(
        &mut self,
        booking_id: BookingId,
        fee_permille: u16,
    ) -> Option<(BookingId, Event)> {
        let confirmed = self
            .live
            .get(&booking_id)
            .is_some_and(|b| b.status == BookingStatus::Confirmed);
        confirmed.then(|| {
            let seats = self.close(booking_id, BookingStatus::Cancelled);
            let closed = self.closed.get_mut(&booking_id).expect("closed just above");
            closed.refund_pending = true;
            let (_, refund) = contracts::Money::new(closed.amount, closed.currency.clone())
                .split_fee(fee_permille);
            (
                booking_id,
                Event::BookingCancelled {
                    seats,
                    payment_id: closed.payment_id.clone().unwrap_or_default(),
                    refund_amount: refund.amount,
                    currency: refund.currency,
                    by_theater: false,
                },
            )
        })
    }

    /// Decides a hold request of `user`: the seats and places to take, or why not.
    /// A zone request with seats is all or nothing: the seats are checked first
    /// (`SeatUnavailable`), then the places (`NotEnoughPlaces`).
    /// The seats and zone places `user` occupies in this show (held, being paid or
    /// sold): what `max_tickets_per_user` counts.
    pub(super) fn tickets_of(&self, user: UserId) -> u32 {
        let tickets = self
            .live
            .values()
            .filter(|b| b.user_id == user)
            .map(|b| b.seats.len())
            .sum::<usize>()
            + self.places_of(user);
        u32::try_from(tickets).unwrap_or(u32::MAX)
    }

    fn decide(&self, request: &SeatRequest, user: UserId) -> Result<Decision, RejectReason> {
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
        if let Some(limit) = self.max_tickets_per_user {
            // Every seat the user occupies in this show counts: held, being paid
            // or sold. Decided here, in the partition's order, so two requests of
            // one user sent at once are counted one after the other.
            // Zone places count like seats.
            let already = self.tickets_of(user);
            if already.saturating_add(u32::try_from(count).unwrap_or(u32::MAX)) > limit {
                return Err(RejectReason::LimitPerUser { limit, already });
            }
        }
        match request {
            SeatRequest::Chosen { seats } => Ok(Decision {
                seats: self.decide_chosen(seats)?,
                places: None,
            }),
            SeatRequest::Zone {
                zone,
                quantity,
                seats,
            } => {
                if *quantity == 0 {
                    return invalid(format!("zone {zone:?} needs a quantity of at least 1"));
                }
                if !seats.is_empty() && !self.mixing_allowed() {
                    return invalid(
                        "this layout does not combine seats and zone places in one booking".into(),
                    );
                }
                if self.zone_index(zone).is_none() {
                    return invalid(format!("zone {zone:?} is not in the layout"));
                }
                let seats = self.decide_chosen(seats)?;
                let places = self.decide_places(zone, *quantity)?;
                Ok(Decision {
                    seats,
                    places: Some(places),
                })
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
                    .map(|seats| Decision {
                        seats,
                        places: None,
                    })
                    .map_err(|available| RejectReason::NotEnoughSeats {
                        available: u32::try_from(available).unwrap_or(u32::MAX),
                    })
            }
        }
    }

    /// Chosen seats, all or nothing: their sorted indices, or why not.
    fn decide_chosen(&self, seats: &[SeatId]) -> Result<Vec<usize>, RejectReason> {
        let invalid = |detail: String| Err(RejectReason::InvalidRequest { detail });
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

    /// Puts a new `Held` booking on the decided seats (sorted indices, all
    /// Available) and zone places (checked free), each priced at its type's base
    /// price changed by `change` thousandths (demand pricing).
    fn occupy(
        &mut self,
        booking_id: BookingId,
        user_id: UserId,
        decision: Decision,
        hold_expires_at: Millis,
        change: i32,
    ) -> &LiveBooking {
        use contracts::pricing::adjust;
        let Decision { seats, places } = decision;
        let mut amount: i64 = 0;
        for &i in &seats {
            debug_assert_eq!(self.seats[i].status(), SeatStatus::Available);
            self.seats[i].occupant = Some((booking_id, SeatStatus::Held));
            amount = amount.saturating_add(adjust(self.type_prices[self.seats[i].kind], change));
        }
        let mut zones = Vec::new();
        if let Some((z, quantity)) = places {
            let (taken, price) = self.take_places(z, quantity, change);
            amount = amount.saturating_add(price);
            zones.push(taken);
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
            declined: None,
            zones,
        };
        self.live.entry(booking_id).or_insert(booking)
    }

    /// Frees live booking `booking_id`'s seats and remembers it as closed with
    /// `status`; returns the seats.
    pub(super) fn close(&mut self, booking_id: BookingId, status: BookingStatus) -> Vec<SeatId> {
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
                zones: b.zones,
            },
        );
        seats
    }

    /// Removes live booking `booking_id` and frees its seats, which it returns, and
    /// its zone places.
    fn vacate(&mut self, booking_id: BookingId) -> Vec<SeatId> {
        let Some(booking) = self.live.remove(&booking_id) else {
            return Vec::new();
        };
        self.return_places(&booking.zones);
        for seat in &booking.seats {
            if let Some(&i) = self.index.get(seat) {
                debug_assert_eq!(self.seats[i].occupant.map(|o| o.0), Some(booking_id));
                self.seats[i].occupant = None;
            }
        }
        booking.seats
    }
}
