//! The heap: a memory object charged to the domain's own quota, mapped at
//! [`crate::layout::HEAP_VA`], managed by `linked_list_allocator`.

use ipc::{CapSlot, Error, Rights};
use linked_list_allocator::LockedHeap;

use crate::{layout, sys};

#[cfg_attr(target_os = "none", global_allocator)]
static HEAP: LockedHeap = LockedHeap::empty();

/// Creates and maps `kib` KiB of heap for the domain `this`.
pub fn init(this: CapSlot, kib: u64) -> Result<(), Error> {
    if kib == 0 {
        return Ok(());
    }
    let pages = layout::pages(kib * 1024);
    let mem = sys::memory_create(this, pages)?;
    sys::memory_map(mem, this, layout::HEAP_VA, Rights::READ | Rights::WRITE)?;
    let size = usize::try_from(pages * layout::PAGE).map_err(|_| Error::InvalidArgument)?;
    // SAFETY: the memory was just mapped read-write at HEAP_VA, belongs to
    // this domain alone, is never unmapped, and the heap is set up once
    // (before `main`).
    unsafe { HEAP.lock().init(layout::HEAP_VA as *mut u8, size) };
    Ok(())
}
