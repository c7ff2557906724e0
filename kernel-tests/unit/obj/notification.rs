//! Host tests of `obj::notification` (not the kernel: `kernel/src/obj/notification.rs` includes them).

use super::*;

#[test]
fn signals_accumulate_until_taken() {
    let r = Ref { index: 0, generation: 0 };
    let mut n = Notification::new(r);
    assert_eq!(n.signal(1), None);
    assert_eq!(n.signal(4), None);
    assert_eq!(n.word, 5);
    n.waiter = Some(r);
    assert_eq!(n.signal(2), Some((r, 7)));
    assert_eq!((n.word, n.waiter), (0, None));
}
