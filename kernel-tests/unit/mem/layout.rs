//! Host tests of `mem::layout` (not the kernel: `kernel/src/mem/layout.rs` includes them).

use super::*;
use crate::mem::PAGE_SIZE;

#[test]
fn stacks_have_guards_and_fit_their_stride() {
    for cpu in [0usize, 1, 63] {
        let mut prev_end = STACKS_BASE + cpu as u64 * STACK_STRIDE;
        for n in 0..=IST_COUNT {
            let (bottom, size) = stack_slot(cpu, n);
            assert!(bottom >= prev_end + PAGE_SIZE, "guard page below stack {n}");
            assert_eq!(bottom % PAGE_SIZE, 0);
            prev_end = bottom + size;
        }
        assert!(prev_end + PAGE_SIZE <= STACKS_BASE + (cpu as u64 + 1) * STACK_STRIDE);
    }
}
