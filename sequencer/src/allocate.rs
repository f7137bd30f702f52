//! Best-available allocation over a fixed seating plan.
//!
//! The rules are documented in the crate docs (`lib.rs`); this module is their one
//! implementation. It sees seats only as global indices into the layout order, two
//! masks (`free`: the seat is Available; `wanted`: it is Available *and* of the asked
//! type) and the geometry in [`Floor`]. All arithmetic is on integers, so the result
//! is the same on every machine.

use serde::Serialize;

/// One row-distance step costs as much as this many thousandths of a seat of
/// sideways distance (rule 4: a row counts twice as much as a seat).
const ROW_COST_MILLI: i64 = 2_000;

/// The immutable geometry of a show's seating plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Floor {
    pub rows: Vec<Row>,
    /// Index of the focal row (rule 4).
    pub focal_row: usize,
    /// Per seat (layout order): the next seat in the list is not adjacent to this one
    /// (an aisle runs after it, or it ends its row).
    pub gap_after: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    /// Global index of the row's first seat.
    pub first: usize,
    pub len: usize,
    /// The focal column of this row, in thousandths of a seat position
    /// (`col_permille * (len - 1)`).
    pub focal_milli: i64,
}

/// A run of `size` adjacent seats starting at global index `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub first: usize,
    pub size: usize,
}

/// What ranks blocks: compared as a tuple, smallest wins.
/// (strands a single seat, distance to the focal point, row index, start position)
type Rank = (bool, i64, usize, usize);

impl Floor {
    /// The seats for a best-available request of `quantity` seats, sorted in layout
    /// order, or `Err(available)` when fewer than `quantity` seats are `wanted`.
    ///
    /// Takes, again and again, the best-ranked block whose size is the smaller of
    /// what is still needed and the longest run of wanted seats left; with no split
    /// needed that is the single best block (rules 2 to 5), otherwise it is the split
    /// into the fewest blocks (rule 6). It always succeeds when enough seats are
    /// wanted, since any wanted seat is a run of at least one.
    pub fn best_available(
        &self,
        free: &[bool],
        wanted: &[bool],
        quantity: usize,
    ) -> Result<Vec<usize>, usize> {
        let available = wanted.iter().filter(|w| **w).count();
        if quantity == 0 || available < quantity {
            return Err(available);
        }
        let mut free = free.to_vec();
        let mut wanted = wanted.to_vec();
        let mut picked = Vec::with_capacity(quantity);
        let mut remaining = quantity;
        while remaining > 0 {
            let size = self.longest_run(&wanted).min(remaining);
            let Some(block) = self.best_block(&free, &wanted, size) else {
                // Unreachable: `available >= remaining` guarantees a run of `size`.
                debug_assert!(false, "no block of {size} although seats are wanted");
                return Err(available);
            };
            for seat in block.first..block.first + block.size {
                free[seat] = false;
                wanted[seat] = false;
                picked.push(seat);
            }
            remaining -= size;
        }
        picked.sort_unstable();
        Ok(picked)
    }

    /// The length of the longest run of adjacent wanted seats.
    fn longest_run(&self, wanted: &[bool]) -> usize {
        let mut longest = 0;
        let mut run = 0;
        for (seat, want) in wanted.iter().enumerate() {
            run = if *want { run + 1 } else { 0 };
            longest = longest.max(run);
            if self.gap_after[seat] {
                run = 0;
            }
        }
        longest
    }

    /// The best-ranked block of `size` adjacent wanted seats, if any.
    ///
    /// Scans each row once: it splits the row into free runs (maximal runs of
    /// adjacent Available seats of any type, bounded by taken or blocked seats,
    /// aisles and the row ends), splits each free run into wanted runs, and ranks
    /// every placement of the block inside each wanted run. A placement strands a
    /// seat when exactly one free seat is left between it and its free run's end.
    pub(crate) fn best_block(&self, free: &[bool], wanted: &[bool], size: usize) -> Option<Block> {
        if size == 0 {
            return None;
        }
        let mut best: Option<Rank> = None;
        for (r, row) in self.rows.iter().enumerate() {
            let row_cost = ROW_COST_MILLI * r.abs_diff(self.focal_row) as i64;
            let end = row.first + row.len;
            let mut seat = row.first;
            while seat < end {
                if !free[seat] {
                    seat += 1;
                    continue;
                }
                // The free run [free_first, free_last].
                let free_first = seat;
                let mut free_last = seat;
                while !self.gap_after[free_last] && free[free_last + 1] {
                    free_last += 1;
                }
                let mut s = free_first;
                while s <= free_last {
                    if !wanted[s] {
                        s += 1;
                        continue;
                    }
                    // The wanted run [want_first, want_last] inside the free run.
                    let want_first = s;
                    let mut want_last = s;
                    while want_last < free_last && wanted[want_last + 1] {
                        want_last += 1;
                    }
                    if want_last + 1 - want_first >= size {
                        for start in want_first..=want_last + 1 - size {
                            let last = start + size - 1;
                            let strands = start - free_first == 1 || free_last - last == 1;
                            // Block centre and focal column, both in thousandths of a
                            // position within the row.
                            let centre_milli =
                                ((start - row.first) + (last - row.first)) as i64 * 500;
                            let distance = row_cost + (centre_milli - row.focal_milli).abs();
                            let rank = (strands, distance, r, start);
                            if best.is_none_or(|b| rank < b) {
                                best = Some(rank);
                            }
                        }
                    }
                    s = want_last + 1;
                }
                seat = free_last + 1;
            }
        }
        best.map(|(_, _, _, first)| Block { first, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row of `len` seats with gaps after the given 0-based positions.
    fn row(len: usize, gaps: &[usize], col_permille: i64) -> Floor {
        Floor {
            rows: vec![Row {
                first: 0,
                len,
                focal_milli: col_permille * (len as i64 - 1),
            }],
            focal_row: 0,
            gap_after: (0..len)
                .map(|p| p + 1 == len || gaps.contains(&p))
                .collect(),
        }
    }

    #[test]
    fn runs_stop_at_aisles_and_taken_seats() {
        let floor = row(8, &[2], 500);
        let all = vec![true; 8];
        assert_eq!(floor.longest_run(&all), 5);
        let mut some = all.clone();
        some[5] = false;
        assert_eq!(floor.longest_run(&some), 3);
    }

    #[test]
    fn no_block_is_found_when_none_fits() {
        let floor = row(6, &[2], 500);
        let all = vec![true; 6];
        assert_eq!(floor.best_block(&all, &all, 4), None);
        assert_eq!(floor.best_block(&all, &all, 0), None);
        assert!(floor.best_block(&all, &all, 3).is_some());
    }

    #[test]
    fn too_few_wanted_seats_report_how_many_there_are() {
        let floor = row(6, &[], 500);
        let free = vec![true; 6];
        let wanted = [true, false, true, false, false, false];
        assert_eq!(floor.best_available(&free, &wanted, 3), Err(2));
        assert_eq!(floor.best_available(&free, &wanted, 2), Ok(vec![0, 2]));
    }
}
