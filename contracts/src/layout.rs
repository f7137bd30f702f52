//! A screen's seat layout and a show's prices.
//!
//! The layout is stored as JSON on the screen, validated by ingress and admin, and
//! loaded by the sequencer to allocate seats. A seat is adjacent to the next one in
//! its row unless an aisle lies between them.

use crate::ids::SeatId;
use serde::{Deserialize, Serialize};

/// Bounds that keep a layout small enough to hold thousands of shows in memory.
pub const MAX_ROWS: usize = 60;
pub const MAX_SEATS_PER_ROW: usize = 120;
/// Bounds of general-admission zones: how many a layout may have, and the places
/// one zone may hold.
pub const MAX_ZONES: usize = 20;
pub const MAX_ZONE_CAPACITY: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenLayout {
    /// Rows from the front (nearest the screen) to the back.
    pub rows: Vec<LayoutRow>,
    /// Where the best seat is; `None` means the default: the centre of the row two
    /// thirds of the way back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_point: Option<FocalPoint>,
    /// General-admission zones beside the rows (a standing floor, a lawn): places
    /// counted, not numbered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<LayoutZone>,
    /// Whether one booking may combine chosen seats and zone places (all or
    /// nothing). Off by default: a booking is then either seats or one zone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mixed_booking: bool,
}

/// A general-admission zone: `capacity` places of `seat_type` (its price), sold by
/// count (`{zone, quantity}`), never more than the capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LayoutZone {
    /// Stable id, 1-32 of `a-z`, `0-9`, `-`, `_` (`"floor"`); what a booking names.
    pub id: String,
    /// What buyers see (`"Standing floor"`), 1-100 characters.
    pub name: String,
    /// How many places the zone has, 1 to 100,000.
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: u32,
    /// The seat type whose show price one place costs.
    pub seat_type: String,
}

/// Places of one zone held or bought by one booking.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct ZonePlaces {
    pub zone: String,
    pub quantity: u32,
}

/// Whether `id` is a well-formed zone id (1-32 of `a-z`, `0-9`, `-`, `_`).
pub fn is_zone_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LayoutRow {
    /// Row label, 1-3 uppercase letters.
    pub row: String,
    /// Seats from left to right (as seen from the seats).
    pub seats: Vec<LayoutSeat>,
    /// Seat numbers after which an aisle (or gap) runs: the seat after it is not
    /// adjacent to this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aisles_after: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LayoutSeat {
    pub number: u16,
    #[serde(rename = "type")]
    pub seat_type: String,
    /// Never sold (broken, reserved for the house, wheelchair space, ...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

/// The best place to sit, as fractions in thousandths: `row_permille` 0 is the
/// front row and 1000 the back row; `col_permille` 0 is the left end of a row and
/// 1000 the right end. Integers keep the allocator's arithmetic exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FocalPoint {
    pub row_permille: u16,
    pub col_permille: u16,
}

impl Default for FocalPoint {
    fn default() -> Self {
        Self {
            row_permille: 667,
            col_permille: 500,
        }
    }
}

/// The price of one seat type at one show, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Price {
    pub seat_type: String,
    pub amount: i64,
    pub currency: String,
}

/// Why a layout is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayoutError {}

impl ScreenLayout {
    /// Checks the layout: bounded size, valid and unique row labels and seat ids,
    /// aisles that name seats of their row, a focal point within range.
    pub fn validate(&self) -> Result<(), LayoutError> {
        let err = |m: String| Err(LayoutError(m));
        if self.rows.is_empty() {
            return err("a layout needs at least one row".into());
        }
        if self.rows.len() > MAX_ROWS {
            return err(format!("a layout has at most {MAX_ROWS} rows"));
        }
        let mut seen = std::collections::HashSet::new();
        for row in &self.rows {
            if row.seats.is_empty() || row.seats.len() > MAX_SEATS_PER_ROW {
                return err(format!(
                    "row {:?} must have 1 to {MAX_SEATS_PER_ROW} seats",
                    row.row
                ));
            }
            if !seen.insert(format!("row:{}", row.row)) {
                return err(format!("row {:?} appears twice", row.row));
            }
            for seat in &row.seats {
                let id =
                    SeatId::new(&row.row, seat.number).map_err(|e| LayoutError(e.to_string()))?;
                if !seen.insert(id.to_string()) {
                    return err(format!("seat {id} appears twice"));
                }
                if seat.seat_type.is_empty() || seat.seat_type.len() > 32 {
                    return err(format!("seat {id} needs a type of 1 to 32 characters"));
                }
            }
            for aisle in &row.aisles_after {
                if !row.seats.iter().any(|s| s.number == *aisle) {
                    return err(format!(
                        "row {:?} has an aisle after seat {aisle}, which it does not have",
                        row.row
                    ));
                }
            }
        }
        if let Some(fp) = self.focal_point
            && (fp.row_permille > 1000 || fp.col_permille > 1000)
        {
            return err("focal_point permille values must be 0 to 1000".into());
        }
        self.validate_zones()
    }

    /// Checks the zones: bounded count, unique well-formed ids, a name, a capacity
    /// of 1 to [`MAX_ZONE_CAPACITY`], a seat type like a seat's.
    fn validate_zones(&self) -> Result<(), LayoutError> {
        let err = |m: String| Err(LayoutError(m));
        if self.zones.len() > MAX_ZONES {
            return err(format!("a layout has at most {MAX_ZONES} zones"));
        }
        let mut ids = std::collections::HashSet::new();
        for z in &self.zones {
            if !is_zone_id(&z.id) {
                return err(format!(
                    "zone id {:?} must be 1 to 32 of a-z, 0-9, '-' and '_'",
                    z.id
                ));
            }
            if !ids.insert(z.id.as_str()) {
                return err(format!("zone {:?} appears twice", z.id));
            }
            let name = z.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return err(format!(
                    "zone {:?} needs a name of 1 to 100 characters",
                    z.id
                ));
            }
            if !(1..=MAX_ZONE_CAPACITY).contains(&z.capacity) {
                return err(format!(
                    "zone {:?} needs a capacity of 1 to {MAX_ZONE_CAPACITY}",
                    z.id
                ));
            }
            if z.seat_type.is_empty() || z.seat_type.len() > 32 {
                return err(format!(
                    "zone {:?} needs a seat type of 1 to 32 characters",
                    z.id
                ));
            }
        }
        Ok(())
    }

    /// The zone `id`, if the layout has it.
    pub fn zone(&self, id: &str) -> Option<&LayoutZone> {
        self.zones.iter().find(|z| z.id == id)
    }

    /// Every seat type the layout sells (its seats' and its zones'), sorted: the
    /// types a show of it needs a price for.
    pub fn seat_types(&self) -> std::collections::BTreeSet<&str> {
        self.seats()
            .map(|(_, s)| s.seat_type.as_str())
            .chain(self.zones.iter().map(|z| z.seat_type.as_str()))
            .collect()
    }

    /// Every seat id with its type, front row first, left to right.
    pub fn seats(&self) -> impl Iterator<Item = (SeatId, &LayoutSeat)> {
        self.rows.iter().flat_map(|r| {
            r.seats
                .iter()
                .filter_map(move |s| SeatId::new(&r.row, s.number).ok().map(|id| (id, s)))
        })
    }

    /// A plain rectangular layout: `rows` rows labelled A, B, ... of `per_row` seats,
    /// all of `seat_type`. Demo data and tests use it.
    pub fn grid(rows: usize, per_row: u16, seat_type: &str) -> Self {
        Self {
            rows: (0..rows)
                .map(|i| LayoutRow {
                    row: row_label(i),
                    seats: (1..=per_row)
                        .map(|n| LayoutSeat {
                            number: n,
                            seat_type: seat_type.to_owned(),
                            blocked: false,
                        })
                        .collect(),
                    aisles_after: vec![],
                })
                .collect(),
            focal_point: None,
            zones: vec![],
            mixed_booking: false,
        }
    }
}

/// The label of row `i` counting from 0: A..Z, then AA, AB, ...
pub fn row_label(i: usize) -> String {
    if i < 26 {
        ((b'A' + i as u8) as char).to_string()
    } else {
        let j = i - 26;
        format!(
            "{}{}",
            (b'A' + (j / 26) as u8 % 26) as char,
            (b'A' + (j % 26) as u8) as char
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_layout_is_valid_and_lists_every_seat() {
        let l = ScreenLayout::grid(3, 4, "regular");
        l.validate().unwrap();
        let ids: Vec<String> = l.seats().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids.len(), 12);
        assert_eq!(ids[0], "A1");
        assert_eq!(ids[11], "C4");
    }

    #[test]
    fn duplicate_seats_and_stray_aisles_are_refused() {
        let mut l = ScreenLayout::grid(1, 3, "regular");
        l.rows[0].seats[2].number = 2;
        assert!(l.validate().is_err());
        let mut l = ScreenLayout::grid(1, 3, "regular");
        l.rows[0].aisles_after = vec![9];
        assert!(l.validate().is_err());
    }

    fn zone(id: &str, capacity: u32) -> LayoutZone {
        LayoutZone {
            id: id.into(),
            name: "Standing floor".into(),
            capacity,
            seat_type: "standing".into(),
        }
    }

    #[test]
    fn zones_are_valid_within_their_bounds_and_add_their_seat_types() {
        let mut l = ScreenLayout::grid(1, 2, "regular");
        l.zones = vec![zone("floor", 500), zone("vip-pit", MAX_ZONE_CAPACITY)];
        l.validate().unwrap();
        assert_eq!(
            l.seat_types().into_iter().collect::<Vec<_>>(),
            ["regular", "standing"]
        );
        assert_eq!(l.zone("floor").map(|z| z.capacity), Some(500));
    }

    #[test]
    fn zones_with_a_bad_id_a_repeated_id_or_a_capacity_out_of_range_are_refused() {
        for zones in [
            vec![zone("floor", 0)],
            vec![zone("floor", MAX_ZONE_CAPACITY + 1)],
            vec![zone("Floor", 10)],
            vec![zone("", 10)],
            vec![zone("floor", 10), zone("floor", 20)],
        ] {
            let mut l = ScreenLayout::grid(1, 2, "regular");
            l.zones = zones.clone();
            assert!(l.validate().is_err(), "{zones:?}");
        }
        let mut l = ScreenLayout::grid(1, 2, "regular");
        l.zones = vec![LayoutZone {
            seat_type: String::new(),
            ..zone("floor", 10)
        }];
        assert!(l.validate().is_err());
    }

    #[test]
    fn a_layout_without_zones_keeps_its_wire_form() {
        let l = ScreenLayout::grid(1, 1, "regular");
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"{"rows":[{"row":"A","seats":[{"number":1,"type":"regular"}]}]}"#
        );
    }

    #[test]
    fn row_labels_go_past_z() {
        assert_eq!(row_label(0), "A");
        assert_eq!(row_label(25), "Z");
        assert_eq!(row_label(26), "AA");
        assert_eq!(row_label(27), "AB");
    }
}
