//! The kernel's virtual address layout: everything lives in the upper half
//! (PML4 slots 256..512), so that every domain's lower half is its own.

/// All physical memory that the memory map names, mapped RW and NX.
pub const PHYS_OFFSET: u64 = 0xFFFF_8000_0000_0000;
/// Device registers (local APIC, IOMMU, …), mapped uncached on demand.
pub const MMIO_BASE: u64 = 0xFFFF_C000_0000_0000;
/// The size of the MMIO window.
pub const MMIO_SIZE: u64 = 1 << 39;
/// The windows of kernel objects (`obj::window`), one `WINDOW_SPAN` each,
/// backed on demand by frames charged to the objects' owners.
pub const OBJECTS_BASE: u64 = 0xFFFF_D000_0000_0000;
/// The virtual space of one object window.
pub const WINDOW_SPAN: u64 = 1 << 32;
/// The object windows: notifications, endpoints, memory objects, port
/// ranges, VirqLines, doorbells, timers, domains, threads, devices, the
/// root's capability table, mappings (`state`).
pub const WINDOWS: u64 = 12;

// All of them under the one PML4 entry made at boot (`kspace`), which
// every address space shares.
const _: () = assert!(OBJECTS_BASE >> 39 == (OBJECTS_BASE + WINDOWS * WINDOW_SPAN - 1) >> 39);
/// Per-CPU stacks, each surrounded by unmapped guard pages.
pub const STACKS_BASE: u64 = 0xFFFF_E000_0000_0000;
/// The kernel image (code-model=kernel: the top 2 GiB).
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;

/// Size of a CPU's kernel stack.
pub const KSTACK_SIZE: u64 = 64 * 1024;
/// Size of each interrupt stack (double fault, NMI, machine check).
pub const IST_SIZE: u64 = 16 * 1024;
/// Number of interrupt stacks per CPU.
pub const IST_COUNT: u64 = 3;
/// Virtual space set aside per CPU: a guard page before each stack.
pub const STACK_STRIDE: u64 = 0x10_0000;

/// Where CPU `cpu`'s stack number `n` lives (`n == 0`: the kernel stack,
/// `1..=IST_COUNT`: the interrupt stacks); returns `(bottom, size)`.
pub const fn stack_slot(cpu: usize, n: u64) -> (u64, u64) {
    let base = STACKS_BASE + cpu as u64 * STACK_STRIDE;
    if n == 0 {
        (base + super::PAGE_SIZE, KSTACK_SIZE)
    } else {
        let off = super::PAGE_SIZE + KSTACK_SIZE + (n - 1) * (IST_SIZE + super::PAGE_SIZE);
        (base + off + super::PAGE_SIZE, IST_SIZE)
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/mem/layout.rs"]
mod tests;
