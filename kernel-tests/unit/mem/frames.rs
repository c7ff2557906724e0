//! Host tests of `mem::frames` (not the kernel: `kernel/src/mem/frames.rs` includes them).

#![allow(clippy::single_range_in_vec_init)]
use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn ranges(rs: &[Range<u64>]) -> Ranges {
    rs.iter().cloned().collect()
}

#[test]
fn hands_out_exactly_the_usable_frames() {
    let r = ranges(&[0x10_0000..0x10_3000, 0x20_0000..0x20_2000]);
    let mut bits = vec![0; FrameAllocator::bitmap_words(&r)];
    let mut fa = FrameAllocator::new(&r, &mut bits).unwrap();
    assert_eq!((fa.usable_count(), fa.free_count()), (5, 5));
    let got: BTreeSet<u64> = std::iter::from_fn(|| fa.alloc()).map(|p| p.as_u64()).collect();
    let want: BTreeSet<u64> = [0x10_0000, 0x10_1000, 0x10_2000, 0x20_0000, 0x20_1000].into();
    assert_eq!(got, want);
    assert_eq!(fa.free_count(), 0);
    assert_eq!(fa.alloc(), None);
}

#[test]
fn refuses_bad_frees() {
    let r = ranges(&[0x10_0000..0x10_2000, 0x10_3000..0x10_4000]);
    let mut bits = vec![0; FrameAllocator::bitmap_words(&r)];
    let mut fa = FrameAllocator::new(&r, &mut bits).unwrap();
    let f = fa.alloc().unwrap();
    assert_eq!(fa.free(f + 8u64), Err(FrameError::Misaligned));
    assert_eq!(fa.free(PhysAddr::new(0x10_2000)), Err(FrameError::NotManaged));
    assert_eq!(fa.free(PhysAddr::new(0x9000)), Err(FrameError::NotManaged));
    assert_eq!(fa.free(f), Ok(()));
    assert_eq!(fa.free(f), Err(FrameError::DoubleFree));
    assert_eq!(fa.free_count(), 3);
}

#[test]
fn alloc_below_respects_the_limit() {
    let r = ranges(&[0x1000..0x3000, 0x1_0000_0000..0x1_0000_2000]);
    let mut bits = vec![0; FrameAllocator::bitmap_words(&r)];
    let mut fa = FrameAllocator::new(&r, &mut bits).unwrap();
    // Move the hint high first.
    let mut high = vec![];
    for _ in 0..4 {
        high.push(fa.alloc().unwrap());
    }
    for p in high.iter().filter(|p| p.as_u64() < 0x3000) {
        fa.free(*p).unwrap();
    }
    assert!(fa.alloc_below(0x1_0000_0000).unwrap().as_u64() < 0x3000);
    assert!(fa.alloc_below(0x1_0000_0000).unwrap().as_u64() < 0x3000);
    assert_eq!(fa.alloc_below(0x1_0000_0000), None);
}

#[test]
fn small_bitmap_is_refused() {
    let r = ranges(&[0..0x100_0000]);
    let mut bits = vec![0; 3];
    assert!(matches!(FrameAllocator::new(&r, &mut bits), Err(FrameError::BitmapTooSmall)));
}

#[test]
fn contiguous_runs_skip_holes() {
    let r = ranges(&[0x1000..0x3000, 0x4000..0x8000]);
    let mut bits = vec![0; FrameAllocator::bitmap_words(&r)];
    let mut fa = FrameAllocator::new(&r, &mut bits).unwrap();
    assert_eq!(fa.alloc_contiguous(3), Some(PhysAddr::new(0x4000)), "the first range is too short");
    assert_eq!(fa.alloc_contiguous(2), Some(PhysAddr::new(0x1000)));
    assert_eq!(fa.alloc_contiguous(2), None);
    assert_eq!(fa.alloc_contiguous(1), Some(PhysAddr::new(0x7000)));
    assert_eq!(fa.free_count(), 0);
    fa.free(PhysAddr::new(0x5000)).unwrap();
    assert_eq!(fa.alloc_contiguous(0), None);
    assert_eq!(fa.alloc(), Some(PhysAddr::new(0x5000)));
}

proptest! {
    /// Against a model: a set of free frames.
    #[test]
    fn matches_a_set_model(ops in prop::collection::vec((any::<bool>(), 0usize..64), 1..300)) {
        let r = ranges(&[0x1000..0x9000, 0x2_0000..0x3_0000]);
        let mut bits = vec![0; FrameAllocator::bitmap_words(&r)];
        let mut fa = FrameAllocator::new(&r, &mut bits).unwrap();
        let mut free: BTreeSet<u64> = (1..9).chain(0x20..0x30).map(|f| f * 0x1000).collect();
        let mut held: std::vec::Vec<u64> = vec![];
        for (is_alloc, k) in ops {
            if is_alloc || held.is_empty() {
                match fa.alloc() {
                    Some(p) => { prop_assert!(free.remove(&p.as_u64())); held.push(p.as_u64()); }
                    None => prop_assert!(free.is_empty()),
                }
            } else {
                let p = held.swap_remove(k % held.len());
                prop_assert_eq!(fa.free(PhysAddr::new(p)), Ok(()));
                free.insert(p);
            }
            prop_assert_eq!(fa.free_count(), free.len() as u64);
        }
    }
}
