//! Each vCPU's local APIC, as far as starting processors needs it, in
//! x2APIC mode only (its registers are MSRs, so an access is a RDMSR or
//! WRMSR exit with the register and value in hand; the xAPIC's MMIO page
//! at 0xFEE0_0000 stays unmapped, and touching it stops the guest).
//!
//! - IA32_APIC_BASE (0x1B): 0xFEE0_0000, enabled, BSP on vCPU 0; the guest
//!   may switch x2APIC mode on (bits 10 and 11), and nothing else.
//! - In x2APIC mode: the ID (0x802, the vCPU's index), the version (0x803),
//!   TPR (0x808), EOI (0x80B), LDR (0x80D, derived from the ID), SVR
//!   (0x80F), the LVT and timer registers (kept, masked, inert) and the ICR
//!   (0x830): INIT and start-up IPIs to another vCPU by x2APIC ID, which
//!   are all a guest needs to start its application processors (Intel SDM
//!   Vol. 3A 10.12, "INIT-SIPI-SIPI"). An INIT makes the target wait for a
//!   start-up IPI; the first start-up IPI after it starts that vCPU in real
//!   mode at 0x1000 × vector ([`ApicAction::Start`]); later ones are
//!   ignored, as by a started processor. Fixed IPIs (vectors 32 and up,
//!   physical destination or a shorthand) go to the vCPUs they name
//!   ([`ApicAction::Ipi`]); other kinds (logical destinations, NMI, SMI,
//!   lowest priority) are not delivered yet ([`ApicAction::Unsupported`]).
//! - The timer: one-shot and periodic modes (LVT timer 0x832, divide
//!   0x83E, initial count 0x838), counting at [`TIMER_KHZ`] before the
//!   divider (a guest learns the rate from CPUID 0x4000_0010, as from KVM
//!   and VMware). Writing the initial count arms it ([`ApicAction::Timer`]:
//!   the VMM sets a kernel timer); when that fires, [`Apics::timer_fired`]
//!   names the vector to raise unless the guest masked it. The current
//!   count reads as the initial count while armed and 0 after (there is no
//!   clock in this model); TSC-deadline mode is not offered. The other LVT
//!   entries are kept masked: nothing else interrupts.
//! - Any other access gets #GP, as on a CPU without the register.
//!
//! Decision (DESIGN.md leaves interrupt controllers to the VMM): x2APIC
//! only, because it needs no instruction decoding and every kernel since
//! Linux 2.6.32 can use it; the xAPIC page comes with MMIO emulation.

/// The most vCPUs a guest has (as `ipc::guest::GuestConfig::vcpus`).
pub const MAX_VCPUS: usize = 16;
/// The APIC timer's rate before the divider: 1 GHz, a tick a nanosecond.
pub const TIMER_KHZ: u64 = 1_000_000;
const LVT_TIMER: u32 = 0x832;
const LVT_PERIODIC: u64 = 1 << 17;
const LVT_MODE: u64 = 3 << 17;

pub const APIC_BASE_MSR: u32 = 0x1B;
const APIC_BASE: u64 = 0xFEE0_0000;
const BASE_BSP: u64 = 1 << 8;
const BASE_X2APIC: u64 = 1 << 10;
const BASE_ENABLE: u64 = 1 << 11;

const X2APIC_FIRST: u32 = 0x800;
const X2APIC_LAST: u32 = 0x8FF;
const ID: u32 = 0x802;
const VERSION: u32 = 0x803;
const TPR: u32 = 0x808;
const PPR: u32 = 0x80A;
const EOI: u32 = 0x80B;
const LDR: u32 = 0x80D;
const SVR: u32 = 0x80F;
const ESR: u32 = 0x828;
const ICR: u32 = 0x830;
/// LVT CMCI, timer, thermal, performance, LINT0, LINT1, error.
const LVT: [u32; 7] = [0x82F, 0x832, 0x833, 0x834, 0x835, 0x836, 0x837];
const TIMER_INITIAL: u32 = 0x838;
const TIMER_CURRENT: u32 = 0x839;
const TIMER_DIVIDE: u32 = 0x83E;
/// Version 0x14 (an integrated APIC), 7 LVT entries (max index 6).
const VERSION_VALUE: u64 = 0x0006_0014;
const LVT_MASKED: u64 = 1 << 16;

const DELIVERY_FIXED: u64 = 0;
const DELIVERY_INIT: u64 = 5;
/// The x2APIC ID that means every APIC.
const BROADCAST: u64 = 0xFFFF_FFFF;
const DELIVERY_STARTUP: u64 = 6;

/// What a write asks of the VMM beyond its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicAction {
    None,
    /// Start vCPU `vcpu` in real mode at 0x1000 × `vector`.
    Start {
        vcpu: u8,
        vector: u8,
    },
    /// Interrupt `vector` on each vCPU whose bit is set in `targets`.
    Ipi {
        targets: u16,
        vector: u8,
    },
    /// Arm vCPU `vcpu`'s timer: first in `delay_ns`, then every
    /// `period_ns` if that is not 0; or disarm it if `delay_ns` is 0.
    Timer {
        vcpu: u8,
        delay_ns: u64,
        period_ns: u64,
    },
    /// An IPI this model does not deliver (its ICR value): said, not done.
    Unsupported {
        icr: u64,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Apic {
    x2apic: bool,
    /// An INIT arrived and no start-up IPI yet.
    waiting: bool,
    started: bool,
    tpr: u64,
    svr: u64,
    lvt: [u64; 7],
    timer_divide: u64,
    timer_initial: u64,
    /// Armed and not yet expired (one-shot) or stopped.
    timer_armed: bool,
}

/// The local APICs of a guest's vCPUs.
#[derive(Clone, Debug)]
pub struct Apics {
    n: usize,
    apic: [Apic; MAX_VCPUS],
}

impl Apics {
    /// The APICs of `n` vCPUs (1..=MAX_VCPUS); vCPU 0 is running.
    pub fn new(n: usize) -> Self {
        let mut apic = [Apic { svr: 0xFF, lvt: [LVT_MASKED; 7], ..Apic::default() }; MAX_VCPUS];
        apic[0].started = true;
        Apics { n: n.clamp(1, MAX_VCPUS), apic }
    }

    /// How many vCPUs the guest has.
    pub fn vcpus(&self) -> usize {
        self.n
    }

    /// RDMSR `msr` on vCPU `v`: the value, or None for #GP.
    pub fn read(&self, v: usize, msr: u32) -> Option<u64> {
        let a = self.apic.get(v).filter(|_| v < self.n)?;
        if msr == APIC_BASE_MSR {
            let bsp = if v == 0 { BASE_BSP } else { 0 };
            let x2 = if a.x2apic { BASE_X2APIC } else { 0 };
            return Some(APIC_BASE | BASE_ENABLE | bsp | x2);
        }
        if !(X2APIC_FIRST..=X2APIC_LAST).contains(&msr) || !a.x2apic {
            return None;
        }
        Some(match msr {
            ID => v as u64,
            VERSION => VERSION_VALUE,
            TPR => a.tpr,
            PPR => a.tpr,
            LDR => ldr(v),
            SVR => a.svr,
            ESR => 0,
            ICR => 0, // idle: delivery status 0
            TIMER_INITIAL => a.timer_initial,
            TIMER_CURRENT if a.timer_armed => a.timer_initial,
            TIMER_CURRENT => 0,
            TIMER_DIVIDE => a.timer_divide,
            m => match LVT.iter().position(|&l| l == m) {
                Some(i) => a.lvt[i],
                None => return None,
            },
        })
    }

    /// WRMSR `value` to `msr` on vCPU `v`: what it asks for, or None for #GP.
    pub fn write(&mut self, v: usize, msr: u32, value: u64) -> Option<ApicAction> {
        if v >= self.n {
            return None;
        }
        if msr == APIC_BASE_MSR {
            // Only x2APIC mode may change (and the BSP bit be written as read).
            let bsp = if v == 0 { BASE_BSP } else { 0 };
            let fixed = APIC_BASE | BASE_ENABLE | bsp;
            if value & !BASE_X2APIC != fixed {
                return None;
            }
            self.apic[v].x2apic = value & BASE_X2APIC != 0;
            return Some(ApicAction::None);
        }
        if !(X2APIC_FIRST..=X2APIC_LAST).contains(&msr) || !self.apic[v].x2apic {
            return None;
        }
        let a = &mut self.apic[v];
        match msr {
            TPR => a.tpr = value & 0xFF,
            EOI if value == 0 => {}
            SVR => a.svr = value & 0x1FFF,
            ESR if value == 0 => {}
            TIMER_INITIAL => {
                a.timer_initial = value & 0xFFFF_FFFF;
                return Some(self.arm(v));
            }
            TIMER_DIVIDE => a.timer_divide = value & 0xB,
            ICR => return Some(self.ipi(v, value)),
            // TSC-deadline mode (and the reserved one) is not offered.
            LVT_TIMER if value & LVT_MODE > LVT_PERIODIC => return None,
            LVT_TIMER => a.lvt[1] = value & 0x0003_10FF,
            m => match LVT.iter().position(|&l| l == m) {
                // Kept masked: no other LVT interrupt is delivered yet.
                Some(i) => a.lvt[i] = (value & 0x0001_F7FF) | LVT_MASKED,
                None => return None,
            },
        }
        Some(ApicAction::None)
    }

    /// The timer of vCPU `v` after a write of its initial count.
    fn arm(&mut self, v: usize) -> ApicAction {
        let a = &mut self.apic[v];
        let delay_ns = a.timer_initial * divisor(a.timer_divide) * 1_000_000 / TIMER_KHZ;
        a.timer_armed = delay_ns != 0;
        let period_ns = if a.lvt[1] & LVT_PERIODIC != 0 { delay_ns } else { 0 };
        ApicAction::Timer { vcpu: v as u8, delay_ns, period_ns }
    }

    /// vCPU `v`'s timer went off: the vector to raise, unless the guest
    /// masked it or the timer was disarmed meanwhile (a one-shot one
    /// disarms as it fires).
    pub fn timer_fired(&mut self, v: usize) -> Option<u8> {
        let a = self.apic.get_mut(v).filter(|_| v < self.n)?;
        if !a.timer_armed {
            return None;
        }
        let lvt = a.lvt[1];
        if lvt & LVT_PERIODIC == 0 {
            a.timer_armed = false;
        }
        (lvt & LVT_MASKED == 0).then_some((lvt & 0xFF) as u8)
    }

    /// An ICR write from vCPU `from`.
    fn ipi(&mut self, from: usize, icr: u64) -> ApicAction {
        let delivery = (icr >> 8) & 7;
        let shorthand = (icr >> 18) & 3;
        let dest = icr >> 32;
        let target = usize::try_from(dest).ok().filter(|&t| t < self.n);
        match (delivery, shorthand, target) {
            // INIT or start-up to itself: a reset, which this model lacks.
            (DELIVERY_INIT | DELIVERY_STARTUP, 0, Some(t)) if t == from => ApicAction::Unsupported { icr },
            (DELIVERY_INIT, 0, Some(t)) => {
                // INIT level de-assert (bit 14 clear, trigger level) is a
                // no-op on modern CPUs, as here.
                if icr & (1 << 14) != 0 && !self.apic[t].started {
                    self.apic[t].waiting = true;
                }
                ApicAction::None
            }
            (DELIVERY_STARTUP, 0, Some(t)) => {
                let a = &mut self.apic[t];
                if a.waiting && !a.started {
                    a.waiting = false;
                    a.started = true;
                    ApicAction::Start { vcpu: t as u8, vector: (icr & 0xFF) as u8 }
                } else {
                    ApicAction::None
                }
            }
            // To a vCPU that does not exist: lost, as on hardware.
            (DELIVERY_INIT | DELIVERY_STARTUP, 0, None) => ApicAction::None,
            (DELIVERY_FIXED, _, _) if icr & (1 << 11) == 0 && icr & 0xFF >= 32 => {
                let all = ((1u32 << self.n) - 1) as u16;
                let me = 1u16 << from;
                let targets = match shorthand {
                    0 if dest == BROADCAST => all,
                    0 => target.map_or(0, |t| 1 << t),
                    1 => me,
                    2 => all,
                    _ => all & !me,
                };
                ApicAction::Ipi { targets, vector: (icr & 0xFF) as u8 }
            }
            _ => ApicAction::Unsupported { icr },
        }
    }
}

/// The divisor a divide configuration register value selects (SDM Vol.
/// 3A 10.5.4): bits 0, 1 and 3 make 2, 4, 8, …, 128, then 1.
fn divisor(dcr: u64) -> u64 {
    let n = ((dcr & 8) >> 1) | (dcr & 3);
    if n == 7 {
        1
    } else {
        2 << n
    }
}

/// The x2APIC logical ID of x2APIC ID `id` (SDM Vol. 3A 10.12.10.2).
fn ldr(id: usize) -> u64 {
    (((id >> 4) as u64) << 16) | (1 << (id & 0xF))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: u64 = APIC_BASE | BASE_ENABLE | BASE_X2APIC;

    fn x2(n: usize) -> Apics {
        let mut a = Apics::new(n);
        for v in 0..n {
            let bsp = if v == 0 { BASE_BSP } else { 0 };
            assert_eq!(a.write(v, APIC_BASE_MSR, ON | bsp), Some(ApicAction::None));
        }
        a
    }

    #[test]
    fn x2apic_mode_is_the_only_change_and_opens_the_registers() {
        let mut a = Apics::new(2);
        assert_eq!(a.read(0, APIC_BASE_MSR), Some(APIC_BASE | BASE_ENABLE | BASE_BSP));
        assert_eq!(a.read(1, APIC_BASE_MSR), Some(APIC_BASE | BASE_ENABLE));
        assert_eq!(a.read(0, ID), None, "xAPIC mode: no x2APIC registers");
        assert_eq!(
            a.write(0, APIC_BASE_MSR, 0xFEE0_1000 | BASE_ENABLE | BASE_BSP | BASE_X2APIC),
            None,
            "base"
        );
        assert_eq!(a.write(0, APIC_BASE_MSR, APIC_BASE | BASE_X2APIC | BASE_BSP), None, "disabled");
        assert_eq!(a.write(1, APIC_BASE_MSR, ON | BASE_BSP), None, "not the BSP");
        assert_eq!(a.write(0, APIC_BASE_MSR, ON | BASE_BSP), Some(ApicAction::None));
        assert_eq!(a.read(0, APIC_BASE_MSR), Some(ON | BASE_BSP));
        assert_eq!(
            (a.read(0, ID), a.read(0, VERSION), a.read(0, LDR)),
            (Some(0), Some(VERSION_VALUE), Some(1))
        );
        assert_eq!(a.read(1, ID), None, "vCPU 1 is still in xAPIC mode");
        assert_eq!(a.read(2, APIC_BASE_MSR), None, "no vCPU 2");
        assert_eq!(a.read(0, 0x10), None, "not an APIC register");
        assert_eq!(a.read(0, 0x8FF), None, "reserved");
        assert_eq!(a.write(0, ID, 5), None, "read-only");
    }

    #[test]
    fn registers_keep_what_is_written_and_lvts_stay_masked() {
        let mut a = x2(1);
        assert_eq!(a.write(0, TPR, 0x1_20), Some(ApicAction::None));
        assert_eq!(a.read(0, TPR), Some(0x20));
        assert_eq!(a.write(0, SVR, 0x1FF), Some(ApicAction::None));
        assert_eq!(a.read(0, SVR), Some(0x1FF));
        assert_eq!(a.write(0, 0x833, 0x20), Some(ApicAction::None));
        assert_eq!(a.read(0, 0x833), Some(0x20 | LVT_MASKED), "other LVTs stay masked");
        assert_eq!(a.write(0, 0x832, 0x20), Some(ApicAction::None));
        assert_eq!(a.read(0, 0x832), Some(0x20), "the timer's is the guest's");
        assert_eq!(a.write(0, EOI, 0), Some(ApicAction::None));
        assert_eq!(a.write(0, EOI, 1), None, "EOI takes only 0");
        assert_eq!(ldr(17), (1 << 16) | 2);
    }

    #[test]
    fn init_then_startup_starts_a_vcpu_once() {
        let mut a = x2(3);
        let init = |id: u64| (id << 32) | (DELIVERY_INIT << 8) | (1 << 14);
        let sipi = |id: u64, v: u64| (id << 32) | (DELIVERY_STARTUP << 8) | v;
        assert_eq!(a.write(0, ICR, sipi(1, 8)), Some(ApicAction::None), "no INIT yet");
        assert_eq!(a.write(0, ICR, init(1)), Some(ApicAction::None));
        assert_eq!(a.write(0, ICR, (1 << 32) | (DELIVERY_INIT << 8)), Some(ApicAction::None), "de-assert");
        assert_eq!(a.write(0, ICR, sipi(1, 8)), Some(ApicAction::Start { vcpu: 1, vector: 8 }));
        assert_eq!(a.write(0, ICR, sipi(1, 8)), Some(ApicAction::None), "the second SIPI");
        assert_eq!(a.write(0, ICR, init(1)), Some(ApicAction::None), "a started one ignores INIT");
        assert_eq!(a.write(0, ICR, sipi(1, 9)), Some(ApicAction::None));
        assert_eq!(a.write(0, ICR, init(7)), Some(ApicAction::None), "no such vCPU: lost");
        assert_eq!(a.write(0, ICR, init(0)), Some(ApicAction::Unsupported { icr: init(0) }), "itself");
        assert_eq!(
            a.write(0, ICR, init(2) | (3 << 18)),
            Some(ApicAction::Unsupported { icr: init(2) | (3 << 18) })
        );
        let fixed = |icr: u64| Some(ApicAction::Unsupported { icr });
        assert_eq!(a.write(0, ICR, (2 << 32) | 0x1F), fixed((2 << 32) | 0x1F), "vectors below 32");
        assert_eq!(a.write(0, ICR, (2 << 32) | 0x830), fixed((2 << 32) | 0x830), "logical destination");
        assert_eq!(a.write(0, ICR, (2 << 32) | 0x430), fixed((2 << 32) | 0x430), "NMI");
        let ipi = |targets, vector| Some(ApicAction::Ipi { targets, vector });
        assert_eq!(a.write(0, ICR, (2 << 32) | 0x30), ipi(0b100, 0x30));
        assert_eq!(a.write(0, ICR, (9 << 32) | 0x30), ipi(0, 0x30), "no such vCPU: lost");
        assert_eq!(a.write(1, ICR, (1 << 18) | 0x31), ipi(0b010, 0x31), "self");
        assert_eq!(a.write(1, ICR, (2 << 18) | 0x32), ipi(0b111, 0x32), "all");
        assert_eq!(a.write(1, ICR, (3 << 18) | 0x33), ipi(0b101, 0x33), "all but self");
        assert_eq!(a.write(2, ICR, (BROADCAST << 32) | 0x34), ipi(0b111, 0x34), "broadcast");
        assert_eq!(a.write(1, ICR, init(2)), Some(ApicAction::None), "an AP may start another");
        assert_eq!(a.write(1, ICR, sipi(2, 0x9f)), Some(ApicAction::Start { vcpu: 2, vector: 0x9f }));
    }

    #[test]
    fn the_timer_arms_fires_and_masks() {
        let mut a = x2(2);
        assert_eq!([0, 1, 2, 3, 8, 9, 10, 11].map(divisor), [2, 4, 8, 16, 32, 64, 128, 1]);
        assert_eq!(a.write(1, 0x832, 0x50 | LVT_PERIODIC), Some(ApicAction::None));
        assert_eq!(a.write(1, 0x83E, 0xB), Some(ApicAction::None), "divide by 1");
        let armed = ApicAction::Timer { vcpu: 1, delay_ns: 1_000_000, period_ns: 1_000_000 };
        assert_eq!(a.write(1, 0x838, 1_000_000), Some(armed), "1 ms at 1 GHz");
        assert_eq!(a.read(1, 0x839), Some(1_000_000));
        assert_eq!((a.timer_fired(1), a.timer_fired(1)), (Some(0x50), Some(0x50)), "periodic");
        assert_eq!(a.timer_fired(0), None, "vCPU 0's is not armed");
        assert_eq!(a.write(1, 0x832, 0x50 | LVT_MASKED | LVT_PERIODIC), Some(ApicAction::None));
        assert_eq!(a.timer_fired(1), None, "masked");
        assert_eq!(a.write(0, 0x832, 0x51), Some(ApicAction::None));
        assert_eq!(a.write(0, 0x83E, 0x3), Some(ApicAction::None), "divide by 16");
        let once = ApicAction::Timer { vcpu: 0, delay_ns: 16_000, period_ns: 0 };
        assert_eq!(a.write(0, 0x838, 1000), Some(once));
        assert_eq!((a.timer_fired(0), a.timer_fired(0)), (Some(0x51), None), "one-shot");
        assert_eq!(a.read(0, 0x839), Some(0));
        let off = ApicAction::Timer { vcpu: 0, delay_ns: 0, period_ns: 0 };
        assert_eq!(a.write(0, 0x838, 0), Some(off), "a zero count stops it");
        assert_eq!(a.write(0, 0x832, 2 << 17), None, "no TSC-deadline mode");
    }
}
