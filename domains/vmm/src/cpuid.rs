//! What CPUID tells a guest: what the CPU tells the VMM, except that
//! hardware virtualization is hidden (VMX, leaf 1 ecx bit 5; SVM, leaf
//! 0x8000_0001 ecx bit 2, and its feature leaf 0x8000_000A), MONITOR/MWAIT
//! (leaf 1 ecx bit 3) and XSAVE beyond what the kernel switches are hidden, and a
//! hypervisor announces itself (leaf 1 ecx bit 31, and the leaves from
//! 0x4000_0000 with the vendor "RyokanRyokan", as KVM and Xen do). Each
//! vCPU learns its own APIC ID (leaf 1 ebx[31:24], leaf 0xB edx) and that
//! it has an APIC with x2APIC mode ([`crate::apic`]), whatever the host has.
//! Leaf 0xD's sizes (ebx, ecx of sub-leaf 0; ebx of sub-leaf 1, the
//! compacted form XSAVEC writes) are those of every component the guest
//! may enable ([`xsave_size`], [`xsave_compacted_size`]), not what the CPU
//! says for the VMM's own XCR0 and XSS: the guest's XCR0 is the kernel's, never told to the
//! VMM, and Linux enables every component it is offered before it reads
//! them (a size larger than a smaller XCR0 needs is safe: it is the room a
//! guest makes for its state). Also hidden: PDCM (leaf 1 ecx bit 15: no
//! IA32_PERF_CAPABILITIES), TSC-deadline mode (leaf 1 ecx bit 24: not
//! the host's to say; the platform says it as its local APICs offer it,
//! `Platform::on_exit`: passed through while they did not, Linux on an
//! Intel CPU put its timer in that mode and never got a timer
//! interrupt), the thermal monitor (leaf 1 edx bits 22, ACPI,
//! and 29, TM: IA32_THERM_INTERRUPT and its kin are not emulated, and
//! Linux on an Intel CPU reads them unchecked when told they exist, a
//! Call Trace in its log), APERF/MPERF (leaf 6 ecx bit 0) and the
//! energy/performance bias (leaf 6 ecx bit 3: no IA32_ENERGY_PERF_BIAS),
//! MSRs Linux would use unchecked.
//! Shown whatever the host says, but only on a host known to have one
//! ([`host_tsc`]; the VMM starts no guest on another, and says why): an
//! invariant TSC (leaf 0x8000_0007 edx bit 8). The host's CPUID says so,
//! or the host is itself a virtual machine that does not say (QEMU's TCG
//! CPUs, whose TSC is QEMU's virtual clock: constant-rate and the same on
//! every CPU). The guest's TSC is the host's, neither offset nor scaled, and
//! Ryokan keeps that as its own clock, so it must be constant-rate and the
//! same on every CPU (the kernel's timers compare TSCs read on different
//! CPUs). Not told (QEMU's TCG CPUs do not say it), Linux with more than
//! one CPU marked its TSC unstable (`TSCs unsynchronized`), timed itself
//! with jiffies, and calibrated each further CPU's delay loop against
//! them: a 2-vCPU boot took three times as long.
//! Leaf 7 says IA32_TSC_ADJUST (ebx bit 1) whatever the host says: the
//! platform has it ([`crate::msr`]: 0, never moved), and Linux trusts an
//! invariant TSC without its jiffies watchdog only where it is said
//! (`check_system_tsc_reliable`: constant and non-stop TSC, TSC_ADJUST, at
//! most four packages). Not said, a Linux whose ticks a loaded host
//! delivered late marked its TSC unstable and kept time by the PM timer.
//! Of leaf 7's features, one the platform does not give is hidden:
//! INVPCID (ebx bit 10: VT-x raises #UD
//! for it unless the VMM's controls enable it, which the kernel's do not;
//! Linux then flushes global pages by toggling CR4.PGE); and of ecx, LA57
//! (bit 16: 5-level paging, whose 57-bit canonical addresses the kernel's
//! checks of the base MSRs do not know: Linux's WRMSR of GS_BASE with a
//! 5-level address got #GP, and its per-CPU data was lost).

/// The hypervisor's vendor, in ebx, ecx, edx of leaf 0x4000_0000.
pub const VENDOR: &[u8; 12] = b"RyokanRyokan";
/// The first hypervisor leaf, which names the last one ([`TIMING_LEAF`]).
pub const HYPERVISOR_LEAF: u32 = 0x4000_0000;
/// The timing leaf (as KVM's and VMware's): eax = the TSC's rate, ebx =
/// the local APIC timer's, both in kHz.
pub const TIMING_LEAF: u32 = 0x4000_0010;
/// The leaves reserved for hypervisors (Intel SDM Vol. 2A, CPUID).
const HYPERVISOR_LEAVES: core::ops::RangeInclusive<u32> = 0x4000_0000..=0x4FFF_FFFF;

const LEAF1_ECX_VMX: u32 = 1 << 5;
/// MONITOR/MWAIT: the kernel gives the guest #UD for both.
const LEAF1_ECX_MONITOR: u32 = 1 << 3;
/// The XSAVE leaf, and the components the kernel lets XCR0 enable (x87,
/// SSE, AVX, AVX-512, PKRU: `kernel/src/virt/state.rs`).
pub const XSAVE_LEAF: u32 = 0xD;
const XSAVE_COMPONENTS: u32 = 0x2E7;
/// Leaf 0xD sub-leaf 1 eax: XSAVES (supervisor states are not switched).
const XSAVES: u32 = 1 << 3;
const LEAF1_ECX_X2APIC: u32 = 1 << 21;
const LEAF1_ECX_PDCM: u32 = 1 << 15;
const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;
const POWER_LEAF: u32 = 6;
const LEAF6_ECX_EPB: u32 = 1 << 3;
const LEAF6_ECX_APERFMPERF: u32 = 1 << 0;
/// The legacy region and the header of an XSAVE area (Intel SDM Vol. 1
/// 13.4), before the first extended component.
const XSAVE_BASE_SIZE: u32 = 512 + 64;
const LEAF1_EDX_APIC: u32 = 1 << 9;
const LEAF1_EDX_ACPI: u32 = 1 << 22;
const LEAF1_EDX_TM: u32 = 1 << 29;
const TOPOLOGY: u32 = 0xB;
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
const EXT1_ECX_SVM: u32 = 1 << 2;
const SVM_FEATURES: u32 = 0x8000_000A;
const FEATURES7: u32 = 7;
const LEAF7_EBX_TSC_ADJUST: u32 = 1 << 1;
const LEAF7_EBX_INVPCID: u32 = 1 << 10;
const LEAF7_ECX_LA57: u32 = 1 << 16;
const POWER_MGMT_LEAF: u32 = 0x8000_0007;
const EXT7_EDX_INVARIANT_TSC: u32 = 1 << 8;

/// Whether the answer to `leaf` starts from the CPU's: not for the
/// hypervisor's own leaves.
pub fn asks_cpu(leaf: u32) -> bool {
    !HYPERVISOR_LEAVES.contains(&leaf)
}

/// The eax, ebx, ecx, edx of vCPU `vcpu` for `leaf` (sub-leaf `sub`), given what the CPU
/// answered (ignored for the hypervisor's leaves) and the TSC's rate.
pub fn answer(leaf: u32, sub: u32, cpu: [u32; 4], vcpu: u32, tsc_khz: u32) -> [u32; 4] {
    let word = |i: usize| u32::from_le_bytes([VENDOR[i], VENDOR[i + 1], VENDOR[i + 2], VENDOR[i + 3]]);
    let [eax, ebx, ecx, edx] = cpu;
    match leaf {
        HYPERVISOR_LEAF => [TIMING_LEAF, word(0), word(4), word(8)],
        TIMING_LEAF => [tsc_khz, crate::apic::TIMER_KHZ as u32, 0, 0],
        l if HYPERVISOR_LEAVES.contains(&l) => [0; 4],
        1 => [
            eax,
            (ebx & 0x00FF_FFFF) | (vcpu << 24),
            (ecx & !(LEAF1_ECX_VMX | LEAF1_ECX_MONITOR | LEAF1_ECX_PDCM | LEAF1_ECX_TSC_DEADLINE))
                | LEAF1_ECX_HYPERVISOR
                | LEAF1_ECX_X2APIC,
            (edx & !(LEAF1_EDX_ACPI | LEAF1_EDX_TM)) | LEAF1_EDX_APIC,
        ],
        TOPOLOGY => [eax, ebx, ecx, vcpu],
        POWER_LEAF => [eax, ebx, ecx & !(LEAF6_ECX_EPB | LEAF6_ECX_APERFMPERF), edx],
        FEATURES7 if sub == 0 => {
            [eax, (ebx & !LEAF7_EBX_INVPCID) | LEAF7_EBX_TSC_ADJUST, ecx & !LEAF7_ECX_LA57, edx]
        }
        XSAVE_LEAF if sub == 0 => [eax & XSAVE_COMPONENTS, ebx, ecx, 0],
        XSAVE_LEAF if sub == 1 => [eax & !XSAVES, 0, 0, 0],
        0x8000_0001 => [eax, ebx, ecx & !EXT1_ECX_SVM, edx],
        POWER_MGMT_LEAF => [eax, ebx, ecx, edx | EXT7_EDX_INVARIANT_TSC],
        SVM_FEATURES => [0; 4],
        _ => cpu,
    }
}

/// Why the guest may be told its TSC is invariant: the host's CPUID says
/// so, or the host is itself a virtual machine whose CPUID does not say
/// it (QEMU's TCG CPUs never do, and their TSC is constant-rate and the
/// same on every CPU: QEMU's virtual clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostTsc {
    Invariant,
    Hypervisor,
}

/// A host whose TSC is not known to be invariant: on it the guest is not
/// started (a guest told so would be lied to; one not told, with more
/// than one CPU, keeps no time by it, and Ryokan's own timers, which
/// compare TSCs read on different CPUs, would be wrong too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoInvariantTsc;

impl core::fmt::Display for NoInvariantTsc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "this machine's TSC is not invariant (CPUID 0x8000_0007 edx bit 8 clear, and no hypervisor)",
        )
    }
}

/// Whether the guest's TSC (the host's) may be called invariant, by the
/// host's CPUID (`cpu(leaf, subleaf)`).
pub fn host_tsc(cpu: impl Fn(u32, u32) -> [u32; 4]) -> Result<HostTsc, NoInvariantTsc> {
    if cpu(0x8000_0000, 0)[0] >= POWER_MGMT_LEAF && cpu(POWER_MGMT_LEAF, 0)[3] & EXT7_EDX_INVARIANT_TSC != 0 {
        return Ok(HostTsc::Invariant);
    }
    if cpu(1, 0)[2] & LEAF1_ECX_HYPERVISOR != 0 {
        return Ok(HostTsc::Hypervisor);
    }
    Err(NoInvariantTsc)
}

/// The size of an XSAVE area (standard form) holding every component in
/// `components` (an XCR0 value), from the CPU's sub-leaves of leaf 0xD
/// (`cpu(0xD, i)`: eax the size of component i, ebx its offset).
pub fn xsave_size(components: u32, cpu: impl Fn(u32, u32) -> [u32; 4]) -> u32 {
    (2..32)
        .filter(|i| components & (1 << i) != 0)
        .map(|i| {
            let [size, offset, _, _] = cpu(XSAVE_LEAF, i);
            offset.saturating_add(size)
        })
        .fold(XSAVE_BASE_SIZE, u32::max)
}

/// The size of an XSAVE area in the compacted form (XSAVEC) holding
/// every component in `components`: each after the last, on a 64-byte
/// boundary where its sub-leaf says so (ecx bit 1; SDM Vol. 1 13.4.3).
pub fn xsave_compacted_size(components: u32, cpu: impl Fn(u32, u32) -> [u32; 4]) -> u32 {
    (2..32).filter(|i| components & (1 << i) != 0).fold(XSAVE_BASE_SIZE, |at, i| {
        let [size, _, flags, _] = cpu(XSAVE_LEAF, i);
        let at = if flags & 2 != 0 { at.checked_next_multiple_of(64).unwrap_or(u32::MAX) } else { at };
        at.saturating_add(size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [u32; 4] = [u32::MAX; 4];

    #[test]
    fn virtualization_is_hidden_and_the_hypervisor_shown() {
        let [_, _, ecx, _] = answer(1, 0, [0; 4], 0, 0);
        assert_eq!(ecx, (1 << 31) | (1 << 21));
        let [eax, ebx, ecx, edx] = answer(1, 0, ALL, 0, 0);
        assert_eq!(
            (eax, ebx, ecx, edx),
            (u32::MAX, 0x00FF_FFFF, !((1 << 5) | (1 << 3) | (1 << 15) | (1 << 24)), !((1 << 22) | (1 << 29)))
        );
        assert_eq!(answer(6, 0, ALL, 0, 0), [u32::MAX, u32::MAX, !((1 << 3) | 1), u32::MAX], "no EPB, APERF");
        let [_, ebx, ecx, edx] = answer(1, 0, [0; 4], 3, 0);
        assert_eq!(
            (ebx >> 24, ecx & (1 << 21), edx & (1 << 9)),
            (3, 1 << 21, 1 << 9),
            "APIC ID, x2APIC, APIC"
        );
        assert_eq!(answer(0xB, 0, [1, 2, 3, 4], 5, 0), [1, 2, 3, 5], "the x2APIC ID");
        assert_eq!(answer(0x8000_0001, 0, ALL, 0, 0)[2], !(1 << 2));
        assert_eq!(answer(0x8000_000A, 0, ALL, 0, 0), [0; 4]);
        assert_eq!(answer(7, 0, [1, 0, 3, 4], 0, 0), [1, 1 << 1, 3, 4], "leaf 7 and TSC_ADJUST");
        assert_eq!(answer(7, 0, ALL, 0, 0)[1], !(1 << 10), "TSC_ADJUST, no INVPCID");
        assert_eq!(answer(7, 0, ALL, 0, 0)[2], !(1 << 16), "no 5-level paging");
        assert_eq!(answer(7, 1, ALL, 0, 0), ALL, "leaf 7's other sub-leaves pass");
        assert_eq!(answer(6, 0, [1, 2, 3, 4], 0, 0), [1, 2, 2, 4], "leaf 6 but APERF/MPERF");
        assert_eq!(answer(0x8000_0008, 0, [1, 2, 3, 4], 0, 0), [1, 2, 3, 4], "other leaves pass");
        assert_eq!(answer(0x8000_0007, 0, [1, 2, 3, 4], 0, 0), [1, 2, 3, 4 | (1 << 8)], "an invariant TSC");
        assert_eq!(answer(1, 0, ALL, 0, 0)[2] & (1 << 3), 0, "MONITOR/MWAIT hidden");
        assert_eq!(answer(1, 0, ALL, 0, 0)[2] & (1 << 24), 0, "TSC-deadline mode hidden");
        assert_eq!(answer(1, 0, ALL, 0, 0)[3] & ((1 << 22) | (1 << 29)), 0, "no thermal monitor");
        assert_eq!(answer(0xD, 0, ALL, 0, 0), [0x2E7, u32::MAX, u32::MAX, 0], "XCR0 as the kernel allows");
        assert_eq!(answer(0xD, 1, ALL, 0, 0), [!(1 << 3), 0, 0, 0], "no XSAVES");
        assert_eq!(answer(0xD, 2, [1, 2, 3, 4], 0, 0), [1, 2, 3, 4], "component sizes pass");
    }

    #[test]
    fn the_tsc_is_called_invariant_only_on_a_host_that_says_so_or_a_virtual_one() {
        let host = |max_ext: u32, edx7: u32, ecx1: u32| {
            move |leaf: u32, _: u32| match leaf {
                0x8000_0000 => [max_ext, 0, 0, 0],
                0x8000_0007 => [0, 0, 0, edx7],
                1 => [0, 0, ecx1, 0],
                _ => [0; 4],
            }
        };
        assert_eq!(host_tsc(host(0x8000_0008, 1 << 8, 0)), Ok(HostTsc::Invariant));
        assert_eq!(host_tsc(host(0x8000_0008, 1 << 8, 1 << 31)), Ok(HostTsc::Invariant));
        assert_eq!(host_tsc(host(0x8000_0008, 0, 1 << 31)), Ok(HostTsc::Hypervisor), "QEMU's TCG");
        assert_eq!(host_tsc(host(0x8000_0008, !(1 << 8), !(1 << 31))), Err(NoInvariantTsc));
        // Leaf 0x8000_0007 beyond the CPU's last: not read as saying so.
        assert_eq!(host_tsc(host(0x8000_0006, 1 << 8, 0)), Err(NoInvariantTsc));
        assert!(NoInvariantTsc.to_string().contains("not invariant"));
    }

    #[test]
    fn the_xsave_size_covers_every_component_offered() {
        // Skylake-X's layout: AVX at 576 (256), opmask at 1088 (64),
        // ZMM_Hi256 at 1152 (512), Hi16_ZMM at 1664 (1024), PKRU at 2688 (8).
        let cpu = |leaf: u32, sub: u32| {
            assert_eq!(leaf, 0xD);
            match sub {
                2 => [256, 576, 0, 0],
                5 => [64, 1088, 0, 0],
                6 => [512, 1152, 0, 0],
                7 => [1024, 1664, 0, 0],
                9 => [8, 2688, 0, 0],
                _ => [0; 4],
            }
        };
        assert_eq!(xsave_size(0x3, cpu), 576, "x87 and SSE: the legacy area and header");
        assert_eq!(xsave_size(0x7, cpu), 832);
        assert_eq!(xsave_size(0xE7, cpu), 2688);
        assert_eq!(xsave_size(0x2E7, cpu), 2696);
        assert_eq!(xsave_size(1 << 31, |_, _| [u32::MAX, u32::MAX, 0, 0]), u32::MAX, "no overflow");
        assert_eq!(xsave_compacted_size(0x3, cpu), 576);
        assert_eq!(xsave_compacted_size(0xE7, cpu), 576 + 256 + 64 + 512 + 1024);
        assert_eq!(
            xsave_compacted_size(0x205, |_, sub| [8 + sub, 0, 2 * u32::from(sub == 9), 0]),
            640 + 17,
            "AVX at 576, then component 9 on a 64-byte boundary"
        );
        assert_eq!(xsave_compacted_size(!0, |_, _| [u32::MAX, 0, 2, 0]), u32::MAX, "no overflow");
    }

    #[test]
    fn the_hypervisor_leaves_are_ours() {
        let [max, b, c, d] = answer(0x4000_0000, 0, ALL, 0, 0);
        assert_eq!(max, 0x4000_0010);
        assert_eq!(
            answer(0x4000_0010, 0, ALL, 0, 2_600_000),
            [2_600_000, 1_000_000, 0, 0],
            "the timing leaf"
        );
        let mut vendor = Vec::new();
        for w in [b, c, d] {
            vendor.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(vendor, b"RyokanRyokan");
        assert_eq!(answer(0x4000_0001, 0, ALL, 0, 0), [0; 4]);
        assert_eq!(answer(0x4000_0100, 0, ALL, 0, 0), [0; 4]);
        assert!(!asks_cpu(0x4000_0000) && !asks_cpu(0x4FFF_FFFF));
        assert!(asks_cpu(0) && asks_cpu(0x3FFF_FFFF) && asks_cpu(0x5000_0000) && asks_cpu(0x8000_0000));
    }
}
