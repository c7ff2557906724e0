//! Host tests of `obj::domain` (not the kernel: `kernel/src/obj/domain.rs` includes them).

use super::*;

#[test]
fn a_domain_is_charged_to_its_line_below_the_root() {
    // 0 is the root; 1 and 5 are its children; 2 is 1's, 3 is 2's.
    let sup = |x: u8| [None, Some(0), Some(1), Some(2), None, Some(0)][usize::from(x)];
    let account = |d| account(d, Some(0), 8, sup);
    assert_eq!(account(0), None, "the root is not limited");
    assert_eq!((account(1), account(2), account(3)), (Some(1), Some(1), Some(1)), "children share one");
    assert_eq!(account(5), Some(5), "a sibling has its own");
    assert_eq!(account(4), Some(4), "a chain that ends elsewhere ends there");
    // A cycle (which supervision rules out) still ends.
    assert!(super::account(1u8, Some(0), 8, |x| Some(x ^ 3)).is_some());
}

#[test]
fn quota_refuses_overdraft() {
    let mut q = Quota { limit: 10, used: 0 };
    assert_eq!(q.charge(8), Ok(()));
    assert_eq!(q.charge(3), Err(ipc::Error::QuotaExceeded));
    assert_eq!(q.free(), 2);
    q.release(8);
    assert_eq!(q.free(), 10);
}
