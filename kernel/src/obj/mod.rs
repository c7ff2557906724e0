//! Kernel objects, one file each, kept in fixed pools (`pool`) or in pools
//! backed by their owners' quotas (`window`).

/// Declares `$name`: the registers `$r`, each a u64, in this order
/// (`#[repr(C)]`, as the entry stubs lay them out), with `set`, which
/// takes another's values register by register: inline moves where a
/// plain `=` of the whole struct became a call to `memmove` on every guest
/// exit (39 instructions and the call).
macro_rules! registers {
    ($(#[$doc:meta])* $name:ident { $($r:ident),* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        #[repr(C)]
        pub struct $name {
            $(pub $r: u64,)*
        }

        impl $name {
            #[inline(always)]
            pub fn set(&mut self, r: &$name) {
                $(self.$r = r.$r;)*
            }
        }
    };
}

pub mod device;
pub mod domain;
pub mod endpoint;
pub mod ioports;
pub mod irq;
pub mod memory;
pub mod notification;
pub mod pool;
pub mod thread;
pub mod timer;
pub mod vcpu;
pub mod virq;
pub mod window;
