//! The hardware the kernel's core (`state`, `syscall`, `sched`, `fastpath`,
//! `vm`) uses, and nothing more, grouped by concern:
//! - `cpu`: which CPU runs, which are online, the time, idling;
//! - `irq`: interrupting another CPU, ending an interrupt, masking a line;
//! - `space`: address spaces (a domain's page tables, a guest's EPT or
//!   NPT): making, mapping, translating, destroying, loading, and the TLB
//!   shootdowns that keep other CPUs' translations fresh;
//! - `frames`: physical frames (contiguous runs) and where the kernel sees
//!   them;
//! - `vm`: running a vCPU until its next exit, its hardware state;
//! - `console`, `io` (port I/O a capability allows), `power`.
//!
//! On the machine (`machine.rs`) each is a re-export or an inlined call of
//! `arch`, `virt` and `mem::kspace`: static dispatch through `cfg`, no
//! trait objects or generics, so the core compiles to what it did when it
//! called those directly (the `cargo xtask bench` figures are unchanged).
//! On the host (`kernel-tests/fake.rs`, not part of this crate) a fake implements the same functions, so that
//! the core builds and runs under `cargo test` against it.
//!
//! Layers point one way (`cargo xtask layers`, checked by `lint`): the
//! entry points (`arch::entry`: boot, traps, syscalls) call the core
//! (`sched` → `vm` → `syscall`, `fastpath` → `state`), the core calls this
//! interface, and the rest of `arch`, `virt` and `mem::kspace` implement
//! it; nothing below names what is above it.
//!
//! The pure data both sides share lives below both, in `hwdata` (the trap
//! frame and vectors, a vCPU entry and its exit), re-exported here.

pub use crate::hwdata::{dma, guest, trap};

#[cfg(target_os = "none")]
mod machine;
#[cfg(target_os = "none")]
pub use machine::*;

// On the host, the tests' crate (`kernel-tests/`) builds the core over a
// fake of this interface in place of `machine.rs`; the kernel does not
// know it.
