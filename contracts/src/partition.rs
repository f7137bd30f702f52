//! The partition of a show: which queue (and so which sequencer) owns it.
//!
//! FNV-1a (64 bit) over the 16 bytes of the show id, modulo the partition count.
//! It is tiny, has no dependency and no seed, and is the same on every platform and
//! every release. Changing it moves shows between partitions, which breaks per-show
//! ordering for commands already queued: the test vectors below pin it.

use crate::ids::ShowId;

/// Default number of partition queues.
pub const DEFAULT_PARTITIONS: u16 = 16;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The partition (0-based) of `show` among `partitions` queues.
///
/// # Panics
/// If `partitions` is 0.
pub fn partition_of(show: ShowId, partitions: u16) -> u16 {
    assert!(partitions > 0, "partition count must be positive");
    let mut h = FNV_OFFSET;
    for b in show.0.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    (h % u64::from(partitions)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn show(s: &str) -> ShowId {
        ShowId(Uuid::parse_str(s).unwrap())
    }

    /// Pinned vectors (computed independently with a Python FNV-1a): if this test fails, the partition function changed and every
    /// deployed show would move. Do not "fix" the expected values.
    #[test]
    fn partition_function_matches_pinned_vectors() {
        let vectors = [
            ("00000000-0000-0000-0000-000000000000", 16, 5),
            ("00000000-0000-0000-0000-000000000001", 16, 2),
            ("0191c2a4-7b3e-7c11-9a2f-3d4e5f607182", 16, 7),
            ("6f9619ff-8b86-d011-b42d-00c04fc964ff", 16, 0),
            ("ffffffff-ffff-ffff-ffff-ffffffffffff", 16, 5),
            ("6f9619ff-8b86-d011-b42d-00c04fc964ff", 7, 5),
            ("6f9619ff-8b86-d011-b42d-00c04fc964ff", 1, 0),
        ];
        for (id, n, want) in vectors {
            assert_eq!(partition_of(show(id), n), want, "{id} mod {n}");
        }
    }

    #[test]
    fn partitions_spread_shows_evenly() {
        let mut counts = [0u32; 16];
        for i in 0..16_000u128 {
            counts[partition_of(ShowId(Uuid::from_u128(i * 7919)), 16) as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread: {counts:?}");
        }
    }
}
