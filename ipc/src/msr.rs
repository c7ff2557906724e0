//! The guest MSRs the kernel keeps, the same for Intel VT-x and AMD-V: the
//! state the CPU itself uses while a guest runs (long mode, segment bases,
//! system calls, memory types, RDTSCP's TSC_AUX). The kernel answers a
//! guest's RDMSR and WRMSR of these without its VMM, keeps each vCPU's
//! values in its VMCS or VMCB (or in a list the CPU switches at entry and
//! exit, on VT-x) and refuses a write the hardware would refuse with #GP,
//! by [`check_write`]. Every other MSR is the VMM's policy: it reaches the
//! VMM as `ExitReason::MsrRead` or `MsrWrite`, whose default answer is #GP.

/// The MSRs the kernel keeps, by number (SDM Vol. 4 chapter 2; APM Vol. 2
/// appendix A).
pub mod index {
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const PAT: u32 = 0x277;
    pub const EFER: u32 = 0xC000_0080;
    pub const STAR: u32 = 0xC000_0081;
    pub const LSTAR: u32 = 0xC000_0082;
    pub const CSTAR: u32 = 0xC000_0083;
    pub const SFMASK: u32 = 0xC000_0084;
    pub const FS_BASE: u32 = 0xC000_0100;
    pub const GS_BASE: u32 = 0xC000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xC000_0102;
    pub const TSC_AUX: u32 = 0xC000_0103;
}

/// A guest MSR the kernel keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    Efer,
    FsBase,
    GsBase,
    KernelGsBase,
    Star,
    Lstar,
    Cstar,
    Sfmask,
    SysenterCs,
    SysenterEsp,
    SysenterEip,
    Pat,
    TscAux,
}

impl Kept {
    /// Every kept MSR.
    pub const ALL: [Kept; 13] = [
        Kept::Efer,
        Kept::FsBase,
        Kept::GsBase,
        Kept::KernelGsBase,
        Kept::Star,
        Kept::Lstar,
        Kept::Cstar,
        Kept::Sfmask,
        Kept::SysenterCs,
        Kept::SysenterEsp,
        Kept::SysenterEip,
        Kept::Pat,
        Kept::TscAux,
    ];

    /// The kept MSR numbered `msr` (ECX of a RDMSR or WRMSR: its upper half
    /// is ignored, as the CPU does), if the kernel keeps it.
    #[inline]
    pub fn of(msr: u64) -> Option<Kept> {
        use index::*;
        Some(match msr as u32 {
            EFER => Kept::Efer,
            FS_BASE => Kept::FsBase,
            GS_BASE => Kept::GsBase,
            KERNEL_GS_BASE => Kept::KernelGsBase,
            STAR => Kept::Star,
            LSTAR => Kept::Lstar,
            CSTAR => Kept::Cstar,
            SFMASK => Kept::Sfmask,
            SYSENTER_CS => Kept::SysenterCs,
            SYSENTER_ESP => Kept::SysenterEsp,
            SYSENTER_EIP => Kept::SysenterEip,
            PAT => Kept::Pat,
            TSC_AUX => Kept::TscAux,
            _ => return None,
        })
    }

    /// Its number.
    pub const fn index(self) -> u32 {
        use index::*;
        match self {
            Kept::Efer => EFER,
            Kept::FsBase => FS_BASE,
            Kept::GsBase => GS_BASE,
            Kept::KernelGsBase => KERNEL_GS_BASE,
            Kept::Star => STAR,
            Kept::Lstar => LSTAR,
            Kept::Cstar => CSTAR,
            Kept::Sfmask => SFMASK,
            Kept::SysenterCs => SYSENTER_CS,
            Kept::SysenterEsp => SYSENTER_ESP,
            Kept::SysenterEip => SYSENTER_EIP,
            Kept::Pat => PAT,
            Kept::TscAux => TSC_AUX,
        }
    }
}

/// EFER's bits a guest may hold: SCE (system calls), LME (long mode
/// enable), LMA (long mode active: the CPU's to set, a write cannot change
/// it) and NXE (no-execute). Not SVME (a guest has no SVM: its CPUID
/// hides it) nor AMD's LMSLE, FFXSR and TCE, which Intel lacks: each of
/// those is #GP, as on a CPU without it.
pub mod efer {
    pub const SCE: u64 = 1 << 0;
    pub const LME: u64 = 1 << 8;
    pub const LMA: u64 = 1 << 10;
    pub const NXE: u64 = 1 << 11;
    pub const ALLOWED: u64 = SCE | LME | LMA | NXE;
}

/// The PAT at reset (SDM Vol. 3A 11.12.4): WB, WT, UC-, UC, twice.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;

/// The guest state a write of EFER is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// The guest's EFER now.
    pub efer: u64,
    /// CR0.PG.
    pub paging: bool,
}

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// Whether every byte of `pat` is a memory type (UC 0, WC 1, WT 4, WP 5,
/// WB 6, UC- 7; 2 and 3 are reserved and more is #GP).
pub fn valid_pat(pat: u64) -> bool {
    pat.to_le_bytes().iter().all(|&t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

/// The value a guest's WRMSR of `value` to `msr` stores, or None where the
/// CPU raises #GP: an EFER bit not in [`efer::ALLOWED`], or a change of
/// LME with paging on (LMA is kept as it is: the CPU sets it); a
/// non-canonical address (the segment bases, LSTAR, CSTAR, SYSENTER_ESP
/// and _EIP); SFMASK or TSC_AUX past 32 bits; a PAT with a reserved memory
/// type. SYSENTER_CS keeps its low 32 bits (its VMCS field's width), as
/// KVM does; STAR takes any value.
pub fn check_write(msr: Kept, value: u64, mode: Mode) -> Option<u64> {
    match msr {
        Kept::Efer => {
            let lme_changes = (value ^ mode.efer) & efer::LME != 0;
            if value & !efer::ALLOWED != 0 || (mode.paging && lme_changes) {
                return None;
            }
            Some((value & !efer::LMA) | (mode.efer & efer::LMA))
        }
        Kept::FsBase
        | Kept::GsBase
        | Kept::KernelGsBase
        | Kept::Lstar
        | Kept::Cstar
        | Kept::SysenterEsp
        | Kept::SysenterEip => canonical(value).then_some(value),
        Kept::Sfmask | Kept::TscAux => (value >> 32 == 0).then_some(value),
        Kept::SysenterCs => Some(value & 0xFFFF_FFFF),
        Kept::Star => Some(value),
        Kept::Pat => valid_pat(value).then_some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: Mode = Mode { efer: 0, paging: false };

    #[test]
    fn every_kept_msr_is_found_by_its_number() {
        for m in Kept::ALL {
            assert_eq!(Kept::of(u64::from(m.index())), Some(m));
            // ECX's upper half is not part of the number.
            assert_eq!(Kept::of(u64::from(m.index()) | 0xdead_0000_0000), Some(m));
        }
        for other in [0x10u64, 0xFE, 0x1A0, 0x2FF, 0x1B, 0x802, 0xC001_0114, 0xC000_0104] {
            assert_eq!(Kept::of(other), None, "{other:#x}");
        }
    }

    #[test]
    fn efer_takes_what_a_cpu_takes() {
        use efer::*;
        assert_eq!(check_write(Kept::Efer, LME | SCE, REAL), Some(LME | SCE));
        assert_eq!(check_write(Kept::Efer, LME | SCE | NXE, REAL), Some(LME | SCE | NXE));
        // SVME, LMSLE, FFXSR, TCE, a reserved bit: #GP.
        for bit in [12, 13, 14, 15, 1, 9, 63] {
            assert_eq!(check_write(Kept::Efer, 1 << bit, REAL), None, "bit {bit}");
        }
        // LMA is the CPU's: a write neither sets nor clears it.
        assert_eq!(check_write(Kept::Efer, LMA, REAL), Some(0));
        let long = Mode { efer: LME | LMA, paging: true };
        assert_eq!(check_write(Kept::Efer, LME | SCE, long), Some(LME | LMA | SCE));
        assert_eq!(check_write(Kept::Efer, LME, long), Some(LME | LMA));
        // LME cannot change under paging.
        assert_eq!(check_write(Kept::Efer, SCE, long), None);
        assert_eq!(check_write(Kept::Efer, LME, Mode { efer: 0, paging: true }), None);
    }

    #[test]
    fn addresses_must_be_canonical_and_the_rest_fit() {
        for m in [Kept::FsBase, Kept::GsBase, Kept::KernelGsBase, Kept::Lstar, Kept::Cstar, Kept::SysenterEip]
        {
            assert_eq!(check_write(m, 0xffff_8000_0000_1000, REAL), Some(0xffff_8000_0000_1000));
            assert_eq!(check_write(m, 0x0000_8000_0000_0000, REAL), None, "{m:?}");
        }
        assert_eq!(check_write(Kept::Sfmask, 0x4700, REAL), Some(0x4700));
        assert_eq!(check_write(Kept::Sfmask, 1 << 32, REAL), None);
        assert_eq!(check_write(Kept::TscAux, 7, REAL), Some(7));
        assert_eq!(check_write(Kept::TscAux, 1 << 40, REAL), None);
        assert_eq!(check_write(Kept::SysenterCs, 0x1_0000_0008, REAL), Some(8));
        assert_eq!(check_write(Kept::Star, u64::MAX, REAL), Some(u64::MAX));
    }

    #[test]
    fn pat_types_are_checked() {
        assert_eq!(check_write(Kept::Pat, PAT_RESET, REAL), Some(PAT_RESET));
        assert_eq!(check_write(Kept::Pat, 0x0101_0101_0505_0606, REAL), Some(0x0101_0101_0505_0606));
        assert_eq!(check_write(Kept::Pat, (PAT_RESET & !0xFF00) | 2 << 8, REAL), None);
        assert_eq!(check_write(Kept::Pat, PAT_RESET | 3 << 56, REAL), None);
        assert_eq!(check_write(Kept::Pat, 0x08, REAL), None);
    }

    proptest! {
        #[test]
        fn a_stored_efer_keeps_only_allowed_bits_and_lma(v in any::<u64>(), now in any::<u64>(), paging in any::<bool>()) {
            let mode = Mode { efer: now & efer::ALLOWED, paging };
            if let Some(stored) = check_write(Kept::Efer, v, mode) {
                prop_assert_eq!(stored & !efer::ALLOWED, 0);
                prop_assert_eq!(stored & efer::LMA, mode.efer & efer::LMA);
            }
        }
    }
}
