//! Host tests of `obj::domain` (not the kernel: `kernel/src/obj/domain.rs` includes them).

use super::*;

#[test]
fn quota_refuses_overdraft() {
    let mut q = Quota { limit: 10, used: 0 };
    assert_eq!(q.charge(8), Ok(()));
    assert_eq!(q.charge(3), Err(ipc::Error::QuotaExceeded));
    assert_eq!(q.free(), 2);
    q.release(8);
    assert_eq!(q.free(), 10);
}
