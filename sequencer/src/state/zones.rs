//! General-admission zones: places counted, not numbered. A zone has a capacity and
//! a seat type (its price); a booking takes `quantity` places of one zone (with
//! chosen seats too when the layout allows mixing). Places are taken and returned
//! exactly where seats are (hold, expiry, release, cancellation, re-take), so a
//! zone's `taken` is always the sum of its live bookings' places and never exceeds
//! its capacity.

use super::{SetupError, ShowState};
use contracts::{BookingId, RejectReason, ScreenLayout, ZonePlaces};
use serde::Serialize;

/// One zone of the show, in layout order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Zone {
    id: String,
    /// Index into `ShowState::seat_types`.
    pub(super) kind: usize,
    capacity: u32,
    /// Places of live bookings (held, being paid or sold).
    taken: u32,
}

/// What a zone looks like to a buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneView<'a> {
    pub id: &'a str,
    pub capacity: u32,
    /// Places neither held nor sold.
    pub available: u32,
}

impl Zone {
    pub(super) fn view(&self) -> ZoneView<'_> {
        ZoneView {
            id: &self.id,
            capacity: self.capacity,
            available: self.capacity - self.taken,
        }
    }
}

/// The zones of a (validated) layout; `seat_types` is the show's sorted type list.
pub(super) fn of_layout(
    layout: &ScreenLayout,
    seat_types: &[String],
) -> Result<Vec<Zone>, SetupError> {
    layout
        .zones
        .iter()
        .map(|z| {
            let kind = seat_types
                .binary_search(&z.seat_type)
                .map_err(|_| SetupError(format!("seat type {:?} lost", z.seat_type)))?;
            Ok(Zone {
                id: z.id.clone(),
                kind,
                capacity: z.capacity,
                taken: 0,
            })
        })
        .collect()
}

impl ShowState {
    /// The index of zone `id`.
    pub(super) fn zone_index(&self, id: &str) -> Option<usize> {
        self.zones.iter().position(|z| z.id == id)
    }

    /// Checks a zone request (`quantity` places of `zone`) against what is left:
    /// the zone's index, or why not. Mixing with seats is checked by the caller.
    pub(super) fn decide_places(
        &self,
        zone: &str,
        quantity: u32,
    ) -> Result<(usize, u32), RejectReason> {
        let Some(z) = self.zone_index(zone) else {
            return Err(RejectReason::InvalidRequest {
                detail: format!("zone {zone:?} is not in the layout"),
            });
        };
        let available = self.zones[z].capacity - self.zones[z].taken;
        if quantity > available {
            return Err(RejectReason::NotEnoughPlaces {
                zone: zone.to_owned(),
                available,
            });
        }
        Ok((z, quantity))
    }

    /// Takes `quantity` places of zone `z` (checked free by [`Self::decide_places`]);
    /// returns them as a booking records them and their price (each place at its
    /// type's price changed by `change` thousandths).
    pub(super) fn take_places(
        &mut self,
        z: usize,
        quantity: u32,
        change: i32,
    ) -> (ZonePlaces, i64) {
        let zone = &mut self.zones[z];
        debug_assert!(zone.taken + quantity <= zone.capacity);
        zone.taken += quantity;
        let price = contracts::pricing::adjust(self.type_prices[zone.kind], change)
            .saturating_mul(i64::from(quantity));
        let places = ZonePlaces {
            zone: zone.id.clone(),
            quantity,
        };
        (places, price)
    }

    /// Gives back the places of a booking that stops occupying them.
    pub(super) fn return_places(&mut self, places: &[ZonePlaces]) {
        for p in places {
            if let Some(z) = self.zone_index(&p.zone) {
                let zone = &mut self.zones[z];
                debug_assert!(zone.taken >= p.quantity);
                zone.taken = zone.taken.saturating_sub(p.quantity);
            }
        }
    }

    /// Whether every one of `places` could be taken again now (a re-take after
    /// expiry): each zone exists and has that many places left.
    pub(super) fn places_free(&self, places: &[ZonePlaces]) -> bool {
        places.iter().all(|p| {
            self.zone_index(&p.zone).is_some_and(|z| {
                let zone = &self.zones[z];
                zone.capacity - zone.taken >= p.quantity
            })
        })
    }

    /// Takes `places` again (checked by [`Self::places_free`]).
    pub(super) fn retake_places(&mut self, places: &[ZonePlaces]) {
        for p in places {
            if let Some(z) = self.zone_index(&p.zone) {
                self.zones[z].taken += p.quantity;
            }
        }
    }

    /// Puts a restored live booking's places back in their zones, refusing an
    /// unknown zone, a zone named twice, no places, and a zone over capacity.
    /// Returns them in zone id order.
    pub(super) fn restore_places(
        &mut self,
        booking: BookingId,
        mut places: Vec<ZonePlaces>,
    ) -> Result<Vec<ZonePlaces>, SetupError> {
        places.sort();
        if places.windows(2).any(|w| w[0].zone == w[1].zone) {
            return Err(SetupError(format!("booking {booking} names a zone twice")));
        }
        for p in &places {
            let Some(z) = self.zone_index(&p.zone) else {
                return Err(SetupError(format!(
                    "booking {booking} holds places of zone {:?}, which is not in the layout",
                    p.zone
                )));
            };
            let zone = &mut self.zones[z];
            if p.quantity == 0 || zone.taken + p.quantity > zone.capacity {
                return Err(SetupError(format!(
                    "booking {booking} takes {} places of zone {:?}, which has {} of {} left",
                    p.quantity,
                    p.zone,
                    zone.capacity - zone.taken,
                    zone.capacity
                )));
            }
            zone.taken += p.quantity;
        }
        Ok(places)
    }

    /// Places of zones `user` occupies in this show (for the per-user limit).
    pub(super) fn places_of(&self, user: contracts::UserId) -> usize {
        self.live
            .values()
            .filter(|b| b.user_id == user)
            .flat_map(|b| &b.zones)
            .map(|p| usize::try_from(p.quantity).unwrap_or(usize::MAX))
            .sum()
    }

    /// Whether one booking may combine chosen seats and zone places.
    pub(super) fn mixing_allowed(&self) -> bool {
        self.mixed_booking
    }
}
