//! The disk patterns of the `blk_disk` test, defined once for the three
//! that know them: the test harness (writes `harness` at sectors 0..8
//! before boot, checks the image after), `blk` (checks `harness`, writes
//! `blk` at sectors 100..108) and `blk-client` (checks `harness` through
//! the block service, writes `client` at sectors 300..302); and of
//! `blk_restart`'s load, which its first `blk` instance writes at sectors
//! 1024..1072 until it is killed (`load`). Byte `i` of each is a function
//! of `i` (the offset from the pattern's first sector).

use super::SECTOR;

/// The harness's pattern.
pub const fn harness(i: usize) -> u8 {
    (i * 7 + 3) as u8 ^ (i / SECTOR) as u8
}

/// `blk`'s pattern.
pub const fn blk(i: usize) -> u8 {
    (i * 13 + 5) as u8 ^ 0xa5
}

/// `blk-client`'s pattern.
pub const fn client(i: usize) -> u8 {
    (i * 31 + 11) as u8
}

/// The load's pattern (`blk_restart`).
pub const fn load(i: usize) -> u8 {
    (i * 17 + 29) as u8 ^ 0x3c ^ (i / SECTOR) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_are_fixed() {
        // Byte 0, 1 and 513 of each (513: the harness's second sector).
        assert_eq!((harness(0), harness(1), harness(513)), (3, 10, 10 ^ 1));
        assert_eq!((blk(0), blk(1), blk(513)), (5 ^ 0xa5, 18 ^ 0xa5, 18 ^ 0xa5));
        assert_eq!((client(0), client(1), client(513)), (11, 42, 42));
        assert_eq!((load(0), load(1), load(513)), (29 ^ 0x3c, 46 ^ 0x3c, 46 ^ 0x3c ^ 1));
    }

    /// No sector of one pattern is that sector of another: a disk holding
    /// the wrong one fails the check, whichever sector it looks at.
    #[test]
    fn every_sector_of_each_pattern_differs_from_the_others() {
        let all: [fn(usize) -> u8; 4] = [harness, blk, client, load];
        for (a, p) in all.iter().enumerate() {
            for q in &all[a + 1..] {
                for s in (0..8 * SECTOR).step_by(SECTOR) {
                    assert!((s..s + SECTOR).any(|i| p(i) != q(i)), "sector {}", s / SECTOR);
                }
            }
        }
    }

    #[test]
    fn no_pattern_repeats_one_byte_through_a_sector() {
        for p in [harness, blk, client, load] as [fn(usize) -> u8; 4] {
            assert!((0..8 * SECTOR).step_by(SECTOR).all(|s| (s..s + SECTOR).any(|i| p(i) != p(s))));
        }
    }
}
