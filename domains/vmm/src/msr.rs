//! The guest MSRs that are the VMM's policy, not the kernel's: the kernel
//! keeps the MSRs the CPU uses while a guest runs (`ipc::msr`: EFER, the
//! segment bases, the SYSCALL and SYSENTER MSRs, PAT, TSC_AUX) and sends
//! every other RDMSR and WRMSR here. This file answers those that describe
//! the platform as a PC's firmware leaves them, for every vCPU alike:
//!
//! | MSR                        | read                          | write                         |
//! |----------------------------|-------------------------------|-------------------------------|
//! | IA32_MTRRCAP (0xFE)        | 0x508: 8 variable ranges, fixed ranges, WC | #GP (read-only)  |
//! | IA32_MTRR_DEF_TYPE (0x2FF) | 0xC06 at reset: MTRRs and fixed ranges on, default WB | kept, checked |
//! | fixed ranges (0x250, 0x258, 0x259, 0x268-0x26F) | WB in every byte at reset | kept, checked |
//! | variable ranges (0x200-0x20F) | 0 at reset (unused)        | kept, checked                 |
//! | IA32_TSC_ADJUST (0x3B)     | 0: the guest's TSC was never moved | 0 only (#GP for another value) |
//! | IA32_MISC_ENABLE (0x1A0)   | 0x1801: fast strings; BTS and PEBS unavailable | the same value only |
//! | IA32_BIOS_SIGN_ID / PATCH_LEVEL (0x8B) | 0: no microcode update loaded | taken (Intel's CPUID trigger), kept nowhere |
//! | AMD's SYSCFG (0xC001_0010), on an AMD CPU only | 0: no MTRR extensions (MtrrFixDramEn/ModEn, MtrrVarDramEn, TOM2 clear) | 0 only |
//! | AMD's interrupt pending message (0xC001_0055), on an AMD CPU only | 0: no SMI or C1E on a pending interrupt | 0 only |
//!
//! Linux reads the microcode revision on every CPU, and on AMD SYSCFG while
//! it reads the fixed-range MTRRs (`k8_check_syscfg_dram_mod_en`), and on
//! a family 0xF or 0x10 AMD CPU (QEMU's) the interrupt pending message
//! for erratum 400 (C1E); a #GP
//! there would be a warning with a call trace in its log. SYSCFG reads as
//! KVM reports it (0); on an Intel CPU it does not exist, so it is #GP.
//!
//! IA32_TSC_ADJUST is there so that CPUID may say it (`crate::cpuid`):
//! Linux (≥ 5.17) trusts an invariant TSC without a clocksource watchdog
//! only on a CPU that has it, and that watchdog, with no HPET, is jiffies,
//! which lose every tick a busy host delivers more than one period late,
//! until the TSC is judged unstable against them (CI saw jiffies count
//! 540 ms while the TSC counted 995). The guest's TSC is the host's,
//! never offset (`crate::platform`), so its adjustment is 0 and stays 0: a
//! write of another value, which on hardware would move that CPU's TSC,
//! is refused with #GP rather than taken and not honoured. Linux writes it
//! only to undo an adjustment it read, or a warp it measured between CPUs.
//! It reads it again once a second on each idle CPU (an exit to here).
//!
//! The x2APIC's MSRs and APIC_BASE are `apic`'s. Anything else, as on a
//! CPU without it: #GP(0).

use crate::apic::MAX_VCPUS;

pub const MTRRCAP: u32 = 0xFE;
pub const MTRR_DEF_TYPE: u32 = 0x2FF;
pub const MISC_ENABLE: u32 = 0x1A0;
pub const TSC_ADJUST: u32 = 0x3B;
pub const BIOS_SIGN_ID: u32 = 0x8B;
pub const AMD_SYSCFG: u32 = 0xC001_0010;
pub const AMD_INT_PENDING_MSG: u32 = 0xC001_0055;
const VARIABLE_FIRST: u32 = 0x200;
const VARIABLE_LAST: u32 = 0x20F;
/// The fixed-range MTRRs, in order.
const FIXED: [u32; 11] = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F];

/// 8 variable ranges (VCNT), fixed ranges (FIX, bit 8), write-combining
/// (WC, bit 10); no SMRR.
pub const MTRRCAP_VALUE: u64 = 0x508;
/// MTRRs enabled (E, bit 11), fixed ranges enabled (FE, bit 10), default
/// type write-back (6).
pub const DEF_TYPE_RESET: u64 = 0xC06;
/// Fast strings (bit 0), branch trace storage unavailable (bit 11), PEBS
/// unavailable (bit 12), as KVM reports it.
pub const MISC_ENABLE_VALUE: u64 = 0x1801;
const FIXED_RESET: u64 = 0x0606_0606_0606_0606;
/// The guest-physical address width the masks of variable ranges may use.
const PHYS_BITS: u32 = 36;

/// A memory type an MTRR may hold: UC 0, WC 1, WT 4, WP 5, WB 6.
fn mtrr_type(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

#[derive(Clone, Copy, Debug)]
struct Mtrrs {
    def_type: u64,
    fixed: [u64; 11],
    variable: [u64; 16],
}

impl Default for Mtrrs {
    fn default() -> Self {
        Mtrrs { def_type: DEF_TYPE_RESET, fixed: [FIXED_RESET; 11], variable: [0; 16] }
    }
}

/// Every vCPU's policy MSRs.
#[derive(Clone, Debug)]
pub struct Msrs {
    mtrrs: [Mtrrs; MAX_VCPUS],
    /// The CPU is AMD's: it has SYSCFG.
    amd: bool,
}

impl Default for Msrs {
    fn default() -> Self {
        Msrs { mtrrs: [Mtrrs::default(); MAX_VCPUS], amd: false }
    }
}

impl Msrs {
    /// These MSRs after a reset: every vCPU's as at power-on.
    pub fn after_reset(&self) -> Self {
        Msrs::new(self.amd)
    }

    /// The policy of a CPU that is AMD's (`amd`) or not.
    pub fn new(amd: bool) -> Self {
        Msrs { amd, ..Msrs::default() }
    }

    /// RDMSR `msr` on vCPU `v`: the value, or None if this policy has no
    /// such MSR.
    pub fn read(&self, v: usize, msr: u32) -> Option<u64> {
        let m = self.mtrrs.get(v)?;
        match msr {
            MTRRCAP => Some(MTRRCAP_VALUE),
            MTRR_DEF_TYPE => Some(m.def_type),
            MISC_ENABLE => Some(MISC_ENABLE_VALUE),
            BIOS_SIGN_ID | TSC_ADJUST => Some(0),
            AMD_SYSCFG | AMD_INT_PENDING_MSG if self.amd => Some(0),
            VARIABLE_FIRST..=VARIABLE_LAST => Some(m.variable[(msr - VARIABLE_FIRST) as usize]),
            _ => FIXED.iter().position(|&f| f == msr).map(|i| m.fixed[i]),
        }
    }

    /// WRMSR `value` to `msr` on vCPU `v`: Some(true) if taken, Some(false)
    /// if the MSR is this policy's but the value is refused (#GP), None if
    /// the MSR is not this policy's.
    pub fn write(&mut self, v: usize, msr: u32, value: u64) -> Option<bool> {
        let m = self.mtrrs.get_mut(v)?;
        let reserved_phys = !((1u64 << PHYS_BITS) - 1);
        match msr {
            MTRRCAP => Some(false),
            MISC_ENABLE => Some(value == MISC_ENABLE_VALUE),
            BIOS_SIGN_ID => Some(true),
            TSC_ADJUST => Some(value == 0),
            AMD_SYSCFG | AMD_INT_PENDING_MSG if self.amd => Some(value == 0),
            MTRR_DEF_TYPE => {
                let ok = value & !0xCFF == 0 && mtrr_type(value & 0xFF);
                if ok {
                    m.def_type = value;
                }
                Some(ok)
            }
            VARIABLE_FIRST..=VARIABLE_LAST => {
                let i = (msr - VARIABLE_FIRST) as usize;
                // Even: PHYSBASE (type in 7:0, bits 11:8 reserved); odd:
                // PHYSMASK (valid in bit 11, bits 10:0 reserved).
                let ok = if i % 2 == 0 {
                    value & 0xF00 == 0 && value & reserved_phys == 0 && mtrr_type(value & 0xFF)
                } else {
                    value & 0x7FF == 0 && value & reserved_phys == 0
                };
                if ok {
                    m.variable[i] = value;
                }
                Some(ok)
            }
            _ => {
                let i = FIXED.iter().position(|&f| f == msr)?;
                let ok = value.to_le_bytes().iter().all(|&t| mtrr_type(u64::from(t)));
                if ok {
                    m.fixed[i] = value;
                }
                Some(ok)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pc_s_mtrrs_and_misc_enable_are_read() {
        let m = Msrs::default();
        assert_eq!(m.read(0, MTRRCAP), Some(0x508));
        assert_eq!(m.read(0, MTRR_DEF_TYPE), Some(0xC06));
        assert_eq!(m.read(0, MISC_ENABLE), Some(0x1801));
        assert_eq!(m.read(3, 0x250), Some(FIXED_RESET));
        assert_eq!(m.read(3, 0x20F), Some(0));
        // Not this policy's: the kernel's, the APIC's, or nobody's (#GP).
        for other in [0x1B, 0x10, 0x277, 0xC000_0080, 0x3A, 0x251, 0x210] {
            assert_eq!(m.read(0, other), None, "{other:#x}");
        }
        assert_eq!(m.read(MAX_VCPUS, MTRRCAP), None);
    }

    #[test]
    fn writes_are_kept_per_vcpu_and_checked() {
        let mut m = Msrs::default();
        assert_eq!(m.write(0, MTRRCAP, 0), Some(false), "read-only");
        assert_eq!(m.write(0, MISC_ENABLE, 0x1801), Some(true));
        assert_eq!(m.write(0, MISC_ENABLE, 0x1), Some(false));
        assert_eq!(m.write(1, MTRR_DEF_TYPE, 0xC00), Some(true));
        assert_eq!(m.read(1, MTRR_DEF_TYPE), Some(0xC00));
        assert_eq!(m.read(0, MTRR_DEF_TYPE), Some(0xC06), "vCPU 0 keeps its own");
        assert_eq!(m.write(1, MTRR_DEF_TYPE, 0xC02), Some(false), "type 2 is reserved");
        assert_eq!(m.write(1, MTRR_DEF_TYPE, 0x1C06), Some(false), "bit 12 is reserved");
        assert_eq!(m.write(0, 0x200, 0x8000_0006), Some(true));
        assert_eq!(m.write(0, 0x201, 0xF_8000_0800), Some(true));
        assert_eq!(m.write(0, 0x201, 0xF_8000_0801), Some(false));
        assert_eq!(m.write(0, 0x200, 1 << 40), Some(false), "past the address width");
        assert_eq!(m.write(0, 0x250, 0x0606_0606_0606_0600), Some(true));
        assert_eq!(m.write(0, 0x250, 0x0606_0606_0606_0607), Some(false), "UC- is PAT's only");
        assert_eq!(m.write(0, 0x123, 0), None);
    }

    #[test]
    fn the_tsc_adjustment_reads_0_and_cannot_be_moved() {
        let mut m = Msrs::default();
        assert_eq!((m.read(0, TSC_ADJUST), m.read(MAX_VCPUS - 1, TSC_ADJUST)), (Some(0), Some(0)));
        assert_eq!(m.write(1, TSC_ADJUST, 0), Some(true), "0, as it is");
        for moved in [1, u64::MAX, 1 << 63, 2_600_000_000] {
            assert_eq!(m.write(1, TSC_ADJUST, moved), Some(false), "{moved:#x} would move the TSC");
        }
        assert_eq!(m.read(1, TSC_ADJUST), Some(0));
        assert_eq!(m.read(MAX_VCPUS, TSC_ADJUST), None, "no such vCPU");
    }

    #[test]
    fn the_microcode_revision_and_amd_s_syscfg_read_as_a_pc_s() {
        let (intel, mut amd) = (Msrs::new(false), Msrs::new(true));
        assert_eq!((intel.read(0, BIOS_SIGN_ID), amd.read(1, BIOS_SIGN_ID)), (Some(0), Some(0)));
        assert_eq!(intel.read(0, AMD_SYSCFG), None, "an Intel CPU has no SYSCFG: #GP");
        assert_eq!(amd.read(0, AMD_SYSCFG), Some(0));
        assert_eq!(amd.write(0, AMD_SYSCFG, 0), Some(true));
        assert_eq!(amd.write(0, AMD_SYSCFG, 1 << 19), Some(false), "MtrrFixDramModEn refused");
        assert_eq!(amd.read(0, AMD_SYSCFG), Some(0));
        assert_eq!(Msrs::default().write(0, AMD_SYSCFG, 0), None);
        assert_eq!((amd.read(0, AMD_INT_PENDING_MSG), intel.read(0, AMD_INT_PENDING_MSG)), (Some(0), None));
        assert_eq!(amd.write(0, AMD_INT_PENDING_MSG, 1 << 27), Some(false), "C1E on CMP halt refused");
    }
}
