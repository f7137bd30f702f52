//! Varied, realistic screen layouts: sizes from a 40-seat recliner lounge to a
//! 700-seat hall, regular rows in front, premium behind, recliners (wider, so fewer
//! per row) at the back; one or two aisles; a few seats blocked (wheelchair spaces,
//! broken seats).

use contracts::layout::row_label;
use contracts::{LayoutRow, LayoutSeat, ScreenLayout};
use rand::Rng;
use rand::rngs::StdRng;

/// How a screen's rows are split by seat type, and how wide it is.
struct Shape {
    regular_rows: usize,
    premium_rows: usize,
    recliner_rows: usize,
    per_row: u16,
}

fn shape(rng: &mut StdRng) -> Shape {
    match rng.random_range(0..10) {
        // A recliner lounge.
        0 => Shape {
            regular_rows: 0,
            premium_rows: 0,
            recliner_rows: rng.random_range(5..=7),
            per_row: rng.random_range(12..=16),
        },
        // A small screen.
        1..=3 => {
            let rows = rng.random_range(8..=12);
            let recliner = rng.random_range(0..=1);
            let premium = (rows - recliner) * 2 / 5;
            Shape {
                regular_rows: rows - recliner - premium,
                premium_rows: premium,
                recliner_rows: recliner,
                per_row: rng.random_range(12..=18),
            }
        }
        // A mid-size screen.
        4..=7 => {
            let rows = rng.random_range(12..=18);
            let recliner = rng.random_range(1..=2);
            let premium = (rows - recliner) * rng.random_range(35..=50) / 100;
            Shape {
                regular_rows: rows - recliner - premium,
                premium_rows: premium,
                recliner_rows: recliner,
                per_row: rng.random_range(18..=26),
            }
        }
        // A large hall.
        _ => {
            let rows = rng.random_range(18..=24);
            let recliner = rng.random_range(2..=3);
            let premium = (rows - recliner) * rng.random_range(30..=45) / 100;
            Shape {
                regular_rows: rows - recliner - premium,
                premium_rows: premium,
                recliner_rows: recliner,
                per_row: rng.random_range(24..=32),
            }
        }
    }
}

/// Aisles of a row of `seats`: a centre aisle, or one a quarter of the way in from
/// each side; none in short rows.
fn aisles(seats: u16, centre: bool) -> Vec<u16> {
    if seats < 8 {
        return vec![];
    }
    if centre {
        vec![seats / 2]
    } else {
        vec![seats / 4, seats - seats / 4]
    }
}

/// A layout drawn from `rng`; it always passes [`ScreenLayout::validate`].
pub fn screen_layout(rng: &mut StdRng) -> ScreenLayout {
    let s = shape(rng);
    let centre_aisle = rng.random_bool(0.4);
    // Recliners are wider: two take the room of three seats.
    let recliner_width = (s.per_row * 2 / 3).max(4);
    let types = std::iter::repeat_n(("regular", s.per_row), s.regular_rows)
        .chain(std::iter::repeat_n(("premium", s.per_row), s.premium_rows))
        .chain(std::iter::repeat_n(
            ("recliner", recliner_width),
            s.recliner_rows,
        ));
    let wheelchair_front = rng.random_bool(0.5);
    let rows = types
        .enumerate()
        .map(|(i, (seat_type, seats))| LayoutRow {
            row: row_label(i),
            seats: (1..=seats)
                .map(|n| LayoutSeat {
                    number: n,
                    seat_type: seat_type.to_owned(),
                    // The front row's end seats give way to wheelchairs; about one
                    // seat in a hundred is out of order.
                    blocked: (wheelchair_front && i == 0 && (n == 1 || n == seats))
                        || rng.random_ratio(1, 100),
                })
                .collect(),
            aisles_after: aisles(seats, centre_aisle),
        })
        .collect();
    ScreenLayout {
        rows,
        focal_point: None,
        zones: vec![],
        mixed_booking: false,
    }
}

/// The seat types of `layout`, in order of first appearance.
pub fn seat_types(layout: &ScreenLayout) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for (_, seat) in layout.seats() {
        if !types.contains(&seat.seat_type) {
            types.push(seat.seat_type.clone());
        }
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_drawn_layout_is_valid_and_they_vary() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut sizes = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let l = screen_layout(&mut rng);
            l.validate().unwrap();
            assert!(!seat_types(&l).is_empty());
            sizes.insert(l.seats().count());
        }
        assert!(sizes.len() > 50, "only {} distinct sizes", sizes.len());
        assert!(*sizes.first().unwrap() >= 40 && *sizes.last().unwrap() <= 800);
    }
}
