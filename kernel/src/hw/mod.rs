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
//! Layers point one way: the entry stubs (`arch::trap`, `arch::entry`)
//! call the core, the core calls this interface, and `arch`, `virt` and
//! `mem::kspace` implement it. Two calls still go up: `arch::trap`'s
//! dispatch enters the core (`sched::from_user`, `sched::irq_in_idle`),
//! which is what an entry stub is for; nothing else in `arch` or `virt`
//! names the core.
//!
//! The pure data both sides share lives here: the trap frame and vectors
//! (`trap`), a vCPU entry and its exit (`guest`).

pub mod guest;
pub mod trap;

#[cfg(target_os = "none")]
mod machine;
#[cfg(target_os = "none")]
pub use machine::*;

// On the host, the tests' crate (`kernel-tests/`) builds the core over a
// fake of this interface in place of `machine.rs`; the kernel does not
// know it.
