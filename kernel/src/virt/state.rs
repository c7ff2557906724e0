//! The architectural state a guest can change that VT-x and AMD-V do not
//! switch: the FPU/SSE/AVX registers (with XCR0) and the debug registers
//! DR0–DR3 (and DR6, which VT-x leaves in the CPU). Each vCPU keeps them in
//! its own state frame; a CPU's registers hold those of the last vCPU it
//! entered, and are switched only when another vCPU enters there (lazily:
//! no cost on an exit that returns to the same vCPU).
//!
//! The host never sees them: the kernel is built without FPU or SSE, and
//! native domains get neither (CR0.EM set, CR4.OSFXSR and CR4.OSXSAVE clear
//! outside the switch: x87, SSE, AVX, XSAVE and XGETBV all fault in ring
//! 3). A breakpoint a guest arms stays its own: VT-x resets DR7 on every
//! exit, and `disarm` does so on AMD-V, where the kernel also does a guest's
//! writes of the breakpoint registers (`svm::debugreg`).
//!
//! Components are saved and restored with the widest mask the kernel
//! supports ([`mask`]), whatever the guest's XCR0, so that every component
//! a guest could reach by raising its XCR0 holds its own values or the
//! initial ones, never another guest's.
//!
//! XCR0, DR0–DR3, DR7 and DR6 reads go through the `x86_64` crate's
//! registers (`xcontrol`, `debug`); it has no DR6 write ([`write_dr6`]).

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::debug::{DebugAddressRegister, Dr0, Dr1, Dr2, Dr3, Dr6, Dr7};
use x86_64::registers::xcontrol::XCr0;
use x86_64::PhysAddr;

use crate::arch::cpu;
use crate::mem::kspace;

/// Where the debug registers sit in a state frame (after the XSAVE area),
/// and the guest's XCR0.
const DR_AT: usize = 4096 - 64;
const XCR0_AT: usize = DR_AT + 40;
/// The XSAVE components a guest may have: x87, SSE, AVX, AVX-512 (opmask,
/// ZMM_Hi256, Hi16_ZMM) and PKRU (SDM Vol. 1 13.1). Not MPX (deprecated),
/// nor supervisor states (XSAVES stays off), nor AMX (its tiles need 8 KiB).
const GUEST_COMPONENTS: u64 = 0x2E7;
/// The initial MXCSR (SDM Vol. 1 10.2.3.1): all exceptions masked.
const MXCSR_INIT: u32 = 0x1F80;

/// The components switched: every user component the CPU has, as far as
/// they fit a state frame (QEMU's AMD-V does not intercept XSETBV, so a
/// guest there can enable any); 0 without XSAVE (then FXSAVE).
static MASK: AtomicU64 = AtomicU64::new(0);

/// The components switched.
fn mask() -> u64 {
    MASK.load(Ordering::Relaxed)
}

/// Learns what the CPU can switch (once, on the bootstrap CPU; every CPU
/// of a machine has the same).
pub fn init() {
    let cpuid = raw_cpuid::CpuId::new();
    if !cpuid.get_feature_info().is_some_and(|f| f.has_xsave()) {
        return;
    }
    let leaf = core::arch::x86_64::__cpuid_count(0xD, 0);
    let all = u64::from(leaf.edx) << 32 | u64::from(leaf.eax);
    // Without the AMX tiles (8 KiB) and, if still too big, with x87, SSE
    // and AVX alone (832 bytes).
    let size = |m: u64| {
        (0..63u32).filter(|&i| i >= 2 && m & (1 << i) != 0).fold(576u32, |end, i| {
            let c = core::arch::x86_64::__cpuid_count(0xD, i);
            end.max(c.ebx + c.eax)
        })
    };
    let mut mask = all & !0x6_0000;
    if size(mask) as usize > DR_AT {
        mask &= 0x7;
    }
    MASK.store(mask, Ordering::Relaxed);
}

/// Makes the state frame `pa` of a new vCPU: the initial FPU state (as
/// after reset), XCR0 = x87, debug registers clear.
pub fn init_frame(pa: u64) {
    let va = kspace::phys_to_virt(PhysAddr::new(pa)).as_mut_ptr::<u8>();
    // SAFETY: a fresh frame the caller owns, 4 KiB long, in the direct map.
    unsafe {
        core::ptr::write_bytes(va, 0, 4096);
        core::ptr::write_volatile(va.cast::<u16>(), 0x37F); // FCW (for FXRSTOR)
        core::ptr::write_volatile(va.add(24).cast::<u32>(), MXCSR_INIT);
        core::ptr::write_volatile(va.add(DR_AT + 32).cast::<u64>(), 0xFFFF_0FF0); // DR6
        core::ptr::write_volatile(va.add(XCR0_AT).cast::<u64>(), 1);
    }
}

/// Whether a guest may set XCR0 to `value` (SDM Vol. 1 13.3: x87 always,
/// AVX only with SSE, the three AVX-512 components together and with AVX).
pub fn xcr0_valid(value: u64) -> bool {
    let avx512 = value & 0xE0;
    value & 1 != 0
        && value & !(mask() & GUEST_COMPONENTS) == 0
        && (value & 4 == 0 || value & 2 != 0)
        && (avx512 == 0 || (avx512 == 0xE0 && value & 4 != 0))
}

/// Loads vCPU state frame `pa` into this CPU's (`me`'s) registers if they hold
/// another's, saving that one's first; runs under the kernel lock (so that
/// no frame is freed meanwhile), interrupts off. While a vCPU's state is
/// loaded its registers (XCR0 too) are the truth, its frame stale.
#[inline]
pub fn load(me: &cpu::PerCpu, pa: u64) {
    if me.guest_state.load(Ordering::Relaxed) != pa {
        switch(pa);
    }
}

#[inline(never)]
fn switch(pa: u64) {
    let old = cpu::current().guest_state.swap(pa, Ordering::Relaxed);
    let frame = |pa: u64| kspace::phys_to_virt(PhysAddr::new(pa)).as_mut_ptr::<u8>();
    let mask = mask();
    with_fpu(|| {
        if old != 0 {
            let at = frame(old);
            // SAFETY: `old` is the state frame of a live vCPU (a freed one is
            // forgotten first, under the kernel lock): 4 KiB, 64-byte aligned.
            unsafe {
                if mask != 0 {
                    core::ptr::write_volatile(at.add(XCR0_AT).cast::<u64>(), XCr0::read_raw());
                    xsetbv(mask);
                }
                save_fpu(at, mask);
                save_debug(at.add(DR_AT).cast());
            }
        } else if mask != 0 {
            xsetbv(mask);
        }
        let at = frame(pa);
        // SAFETY: `pa` is the caller's vCPU's state frame, made by
        // `init_frame` or saved here: a valid XSAVE (or FXSAVE) image and
        // an XCR0 that was valid.
        unsafe {
            restore_fpu(at, mask);
            restore_debug(at.add(DR_AT).cast());
            if mask != 0 {
                xsetbv(core::ptr::read_volatile(at.add(XCR0_AT).cast::<u64>()));
            }
        }
    });
}

/// Sets XCR0 to `value` (checked by [`xcr0_valid`]) for the vCPU whose
/// state this CPU holds (the one that just exited here).
pub fn set_xcr0(value: u64) {
    with_fpu(|| xsetbv(value));
}

/// Runs `f` with the FPU and XSAVE enabled for the kernel's own use, and
/// turns them off again before any other code runs.
fn with_fpu(f: impl FnOnce()) {
    let cr0 = Cr0::read_raw();
    let cr4 = Cr4::read_raw();
    let on = if mask() != 0 { Cr4Flags::OSFXSR | Cr4Flags::OSXSAVE } else { Cr4Flags::OSFXSR };
    // SAFETY: only this kernel code runs until both are written back.
    unsafe {
        Cr0::write_raw(cr0 & !(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED).bits());
        Cr4::write_raw(cr4 | on.bits());
    }
    f();
    // SAFETY: back to the host's FPU-less settings.
    unsafe {
        Cr4::write_raw(cr4);
        Cr0::write_raw(cr0);
    }
}

/// A freed vCPU's state frame is no longer any CPU's to save into.
pub fn forget(pa: u64) {
    for c in 0..cpu::MAX_CPUS {
        if let Some(pc) = cpu::cpu(c) {
            let _ = pc.guest_state.compare_exchange(pa, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// DR6 as the guest left it (VT-x keeps it in the CPU): into its frame.
pub fn save_dr6(pa: u64) {
    let at = kspace::phys_to_virt(PhysAddr::new(pa)).as_mut_ptr::<u8>();
    // SAFETY: the frame is the vCPU's own.
    unsafe { core::ptr::write_volatile(at.add(DR_AT + 32).cast::<u64>(), Dr6::read_raw()) };
}

/// Writes DR6 (its status bits: nothing else changes).
pub fn write_dr6(value: u64) {
    // SAFETY: DR6 holds only status bits, which the CPU sets on a #DB and
    // nothing in the host reads.
    unsafe { asm!("mov dr6, {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// After a host #DB (a domain single-stepping), DR6 is reloaded from the
/// frame of the vCPU whose state this CPU holds.
pub fn restore_dr6() {
    let pa = cpu::current().guest_state.load(Ordering::Relaxed);
    if pa != 0 {
        let at = kspace::phys_to_virt(PhysAddr::new(pa)).as_mut_ptr::<u8>();
        // SAFETY: a live vCPU's frame (see `switch`).
        write_dr6(unsafe { core::ptr::read_volatile(at.add(DR_AT + 32).cast::<u64>()) });
    }
}

/// Disables every breakpoint in the host (AMD-V restores the host's DR7
/// only as the save area holds it; a guest's must never stay armed).
pub fn disarm() {
    // DR7 = 0x400 disables all breakpoints (SDM Vol. 3B 18.2.4).
    Dr7::write_raw(0x400);
}

fn xsetbv(value: u64) {
    // SAFETY: CR4.OSXSAVE is set (in `with_fpu`) and `value` enables x87
    // and only components the CPU has ([`mask`], or a valid guest XCR0).
    unsafe { XCr0::write_raw(value) };
}

/// # Safety
/// `at`: a 64-byte aligned, writable area of 4 KiB; the FPU is enabled.
unsafe fn save_fpu(at: *mut u8, mask: u64) {
    if mask != 0 {
        // SAFETY: per the contract; XCR0 is `mask` here.
        unsafe {
            asm!("xsave64 [{}]", in(reg) at, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack, preserves_flags))
        };
    } else {
        // SAFETY: per the contract.
        unsafe { asm!("fxsave64 [{}]", in(reg) at, options(nostack, preserves_flags)) };
    }
}

/// # Safety
/// `at`: a valid image of [`save_fpu`]'s (or [`init_frame`]'s).
unsafe fn restore_fpu(at: *const u8, mask: u64) {
    if mask != 0 {
        // SAFETY: per the contract; XCR0 is `mask` here.
        unsafe {
            asm!("xrstor64 [{}]", in(reg) at, in("eax") mask as u32, in("edx") (mask >> 32) as u32, options(nostack, preserves_flags))
        };
    } else {
        // SAFETY: per the contract.
        unsafe { asm!("fxrstor64 [{}]", in(reg) at, options(nostack, preserves_flags)) };
    }
}

/// # Safety
/// `at`: five writable words.
unsafe fn save_debug(at: *mut u64) {
    for (i, v) in
        [Dr0::read(), Dr1::read(), Dr2::read(), Dr3::read(), Dr6::read_raw()].into_iter().enumerate()
    {
        // SAFETY: per the contract.
        unsafe { core::ptr::write_volatile(at.add(i), v) };
    }
}

/// # Safety
/// `at`: five readable words.
/// Breakpoint addresses are inert while the host's DR7 is 0x400 (a
/// guest's own DR7 comes from its VMCS or VMCB).
unsafe fn restore_debug(at: *const u64) {
    // SAFETY: per the contract.
    let r = |i| unsafe { core::ptr::read_volatile(at.add(i)) };
    Dr0::write(r(0));
    Dr1::write(r(1));
    Dr2::write(r(2));
    Dr3::write(r(3));
    write_dr6(r(4) & 0xFFFF_FFFF);
}
