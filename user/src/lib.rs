//! The runtime every Ryokan domain links: its entry point, typed syscalls, a
//! heap, `log` to the debug console, and the panic handler.
//!
//! A domain is a `no_std` binary for `x86_64-unknown-none`, linked with
//! `user/link.ld`, that names its main function with [`entry!`]:
//!
//! ```ignore
//! #![cfg_attr(target_os = "none", no_std)]
//! #![no_main]
//!
//! user::entry!(main);
//!
//! fn main(start: &'static user::StartInfo) -> u64 {
//!     log::info!("hello from {}", start.name());
//!     0 // the exit code its supervisor learns
//! }
//! ```
//!
//! Before `main` runs, the runtime has checked the start page, set up the
//! logger (each record one console line `[<domain name>] <message>`) and the
//! heap (a memory object charged to the domain's own quota; `entry!(main,
//! heap_kib = N)` sets its size, 256 KiB by default, 0 for none), and, if
//! asked (`stack_kib = N`), moved `main` to a stack larger than the 64 KiB
//! a domain starts on. When `main` returns, the domain exits with its
//! value; a panic logs `panicked: …` and exits with
//! [`ipc::event::EXIT_PANIC`].
//!
//! Built for the host, `entry!` gives the binary a `main` that only says it
//! must be built for the bare-metal target, so that `cargo check` and
//! `cargo clippy` of the whole workspace work; nothing here runs on the host.
//! The address-space layout every domain shares is in [`layout`].

#![cfg_attr(not(test), no_std)]

pub mod arch;
mod heap;
pub mod layout;
mod logger;
pub mod msg;
pub mod rt;
pub mod start;
pub mod sys;
pub mod time;

pub use ipc;
pub use ipc::boot::StartInfo;
pub use ipc::{CapSlot, Error, ObjectType, Rights};
pub use start::{Caps, SharedRegion};

/// Defines the domain's entry: `entry!(main)`, or with settings of
/// [`rt::Config`], e.g. `entry!(main, heap_kib = 0, stack_kib = 256)`;
/// `fn main(start: &'static StartInfo) -> u64` returns the exit code. The
/// binary must be `#![no_main]` (and `no_std` on the target).
#[macro_export]
macro_rules! entry {
    ($main:ident $(, $key:ident = $value:expr)* $(,)?) => {
        // Every field may be given: then the update is a no-op.
        #[allow(clippy::needless_update)]
        const __RYOKAN_CONFIG: $crate::rt::Config =
            $crate::rt::Config { $($key: $value,)* ..$crate::rt::Config::DEFAULT };

        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        extern "C" fn __ryokan_main(info: *const $crate::StartInfo) -> ! {
            let main: fn(&'static $crate::StartInfo) -> u64 = $main;
            // SAFETY: `_start` calls this once, with the start page pointer
            // the kernel or the supervisor put in rdi.
            unsafe { $crate::rt::run(info, __RYOKAN_CONFIG, main) }
        }

        #[cfg(not(target_os = "none"))]
        mod __ryokan_host {
            #[unsafe(no_mangle)]
            extern "C" fn main() -> i32 {
                let _: fn(&'static $crate::StartInfo) -> u64 = super::$main;
                let _ = super::__RYOKAN_CONFIG;
                ::std::eprintln!("this is a Ryokan domain: build it for x86_64-unknown-none");
                2
            }
        }
    };
}
