//! The payment commands: what each does to a booking and the event it causes.
//! A booking may see several payment attempts (a declined card keeps the seats while
//! the hold lasts, and another card may be tried); at most one capture is kept,
//! every other one is refunded (`LatePaymentRefused`).

use super::{LiveBooking, SeatStatus, ShowState};
use contracts::{BookingId, BookingStatus, Event, Millis};

impl ShowState {
    /// The saga created a payment: a held booking becomes payment-pending (its
    /// seats stay taken past the hold's expiry while the payment is in flight),
    /// with this attempt as its current one.
    pub(super) fn on_payment_started(
        &mut self,
        booking_id: BookingId,
        payment_id: &str,
    ) -> Option<(BookingId, Event)> {
        match self.live.get_mut(&booking_id) {
            // The start of an attempt whose failure came first (the saga's two
            // messages can reach the partition in either order): that attempt is
            // over, and the booking stays held for the next one.
            Some(b)
                if b.status == BookingStatus::Held
                    && b.declined.is_some()
                    && b.payment_id.as_deref() == Some(payment_id) =>
            {
                None
            }
            Some(b) if b.status == BookingStatus::Held => {
                b.status = BookingStatus::PaymentPending;
                b.payment_id = Some(payment_id.to_owned());
                Some((
                    booking_id,
                    Event::PaymentPending {
                        payment_id: payment_id.to_owned(),
                    },
                ))
            }
            // Already pending (another attempt is current) or confirmed, or no
            // longer live: a success is decided when it arrives.
            _ => None,
        }
    }

    /// A payment attempt failed (declined, refused, or cancelled):
    /// - held, or pending with this attempt current (or none recorded): while the
    ///   hold lasts the booking is held again and remembers why (`PaymentDeclined`);
    ///   once it ran out the booking fails and its seats return (`PaymentFailed`);
    /// - pending with another attempt current: nothing (that attempt decides);
    /// - anything else: nothing.
    pub(super) fn on_payment_failed(
        &mut self,
        booking_id: BookingId,
        payment_id: &str,
        reason: &str,
        issued_at: Millis,
    ) -> Option<(BookingId, Event)> {
        let b = self.live.get_mut(&booking_id)?;
        let concerned = match b.status {
            BookingStatus::Held => true,
            BookingStatus::PaymentPending => {
                b.payment_id.as_deref().is_none_or(|p| p == payment_id)
            }
            _ => false,
        };
        if !concerned {
            return None;
        }
        if issued_at >= b.hold_expires_at {
            let seats = self.close(booking_id, BookingStatus::Failed);
            return Some((
                booking_id,
                Event::PaymentFailed {
                    seats,
                    payment_id: payment_id.to_owned(),
                    reason: reason.to_owned(),
                },
            ));
        }
        b.status = BookingStatus::Held;
        // The declined attempt, as the database records it (a failure that
        // overtook its attempt's start leaves the booking held with this attempt
        // named, so that start is recognised as stale).
        b.payment_id = Some(payment_id.to_owned());
        b.declined = Some(reason.to_owned());
        Some((
            booking_id,
            Event::PaymentDeclined {
                payment_id: payment_id.to_owned(),
                reason: reason.to_owned(),
            },
        ))
    }

    /// A refund has completed. The booking is done (`BookingRefunded`) when it is
    /// closed, waits for a refund, and this is the refund of its own payment (or
    /// the command names none, as before payment attempts); the refund of an extra
    /// capture changes nothing.
    pub(super) fn on_refund_completed(
        &mut self,
        booking_id: BookingId,
        refund_id: &str,
        amount: i64,
        payment_id: Option<&str>,
    ) -> Option<(BookingId, Event)> {
        let pending = self.closed.get(&booking_id).is_some_and(|b| {
            b.refund_pending
                && payment_id.is_none_or(|p| b.payment_id.as_deref().is_none_or(|own| own == p))
        });
        pending.then(|| {
            self.closed.remove(&booking_id);
            (
                booking_id,
                Event::BookingRefunded {
                    refund_id: refund_id.to_owned(),
                    amount,
                },
            )
        })
    }

    /// A payment succeeded for `booking_id`:
    /// - live and held or pending: confirmed with this payment (whichever attempt
    ///   captured first), its seats sold;
    /// - live and confirmed with this payment: nothing (a repeat);
    /// - live and confirmed with another payment: this second capture is refunded
    ///   (`LatePaymentRefused`, `duplicate_payment`);
    /// - closed with a refund under way or cancelled: nothing when it is the
    ///   booking's own payment, else refunded (`duplicate_payment`);
    /// - released: refunded (`released`); the buyer gave the seats back;
    /// - expired or failed and every one of its seats still available (and the
    ///   show on sale, and the user still within `max_tickets_per_user` with them):
    ///   the same seats are taken again, confirmed (`retaken`);
    /// - closed otherwise: refunded (`seats_resold`, `not_on_sale` or
    ///   `limit_per_user`: the user booked others in the meantime), once;
    /// - known but long finished (refunded): refunded (`duplicate_payment`).
    pub(super) fn payment_succeeded(
        &mut self,
        booking_id: BookingId,
        payment_id: &str,
        paid: i64,
    ) -> Option<Event> {
        if let Some(b) = self.live.get_mut(&booking_id) {
            if b.status == BookingStatus::Confirmed {
                if b.payment_id.as_deref() == Some(payment_id) {
                    return None;
                }
                let currency = b.currency.clone();
                return Some(refused(payment_id, paid, currency, "duplicate_payment"));
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
                zones: b.zones,
            });
        }
        let Some(closed) = self.closed.get(&booking_id) else {
            // Finished for good (refunded) but still ours: the money goes back.
            return self
                .known
                .contains(&booking_id)
                .then(|| refused(payment_id, paid, self.currency.clone(), "duplicate_payment"));
        };
        if closed.refund_pending || closed.status == BookingStatus::Cancelled {
            if closed.payment_id.as_deref() == Some(payment_id) {
                return None;
            }
            let currency = closed.currency.clone();
            return Some(refused(payment_id, paid, currency, "duplicate_payment"));
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
        let tickets = closed.seats.len()
            + closed
                .zones
                .iter()
                .map(|p| p.quantity as usize)
                .sum::<usize>();
        let within_limit = self.max_tickets_per_user.is_none_or(|limit| {
            self.tickets_of(closed.user_id)
                .saturating_add(u32::try_from(tickets).unwrap_or(u32::MAX))
                <= limit
        });
        let retake = closed.status != BookingStatus::Released
            && self.on_sale
            && within_limit
            && self.places_free(&closed.zones);
        let occupies = seats
            .as_ref()
            .is_some_and(|s| !s.is_empty() || !closed.zones.is_empty());
        match seats {
            // A show off sale (cancelled) never sells again, and released seats
            // were given back: the money goes back.
            Some(seats) if occupies && retake => {
                let closed = self.closed.remove(&booking_id).expect("checked above");
                for &i in &seats {
                    self.seats[i].occupant = Some((booking_id, SeatStatus::Sold));
                }
                self.retake_places(&closed.zones);
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
                        declined: None,
                        zones: closed.zones.clone(),
                    },
                );
                Some(Event::BookingConfirmed {
                    user_id: closed.user_id,
                    seats: closed.seats,
                    amount: closed.amount,
                    currency: closed.currency,
                    payment_id: payment_id.to_owned(),
                    retaken: true,
                    zones: closed.zones,
                })
            }
            _ => {
                let closed = self.closed.get_mut(&booking_id).expect("checked above");
                closed.refund_pending = true;
                closed.payment_id = Some(payment_id.to_owned());
                let why = if closed.status == BookingStatus::Released {
                    "released"
                } else if !within_limit {
                    "limit_per_user"
                } else if self.on_sale {
                    "seats_resold"
                } else {
                    "not_on_sale"
                };
                Some(refused(payment_id, paid, closed.currency.clone(), why))
            }
        }
    }
}

/// The event that sends `paid` of `payment_id` back.
fn refused(payment_id: &str, paid: i64, currency: String, why: &str) -> Event {
    Event::LatePaymentRefused {
        payment_id: payment_id.to_owned(),
        amount: paid,
        currency,
        reason: why.to_owned(),
    }
}
