//! Each vCPU's local APIC: one register state, reached two ways, as on
//! hardware (Intel SDM Vol. 3A 10.12.1.2): as MSRs in x2APIC mode (a
//! RDMSR or WRMSR exit with the register and value in hand; [`Apics::read`]
//! and [`Apics::write`]) and as the xAPIC's MMIO page at 0xFEE0_0000 in
//! xAPIC mode ([`crate::xapic`], which also holds IA32_APIC_BASE's mode
//! rules). The registers are numbered by their index: x2APIC MSR 0x800 + i
//! is the xAPIC page's offset 16 × i.
//!
//! - IA32_APIC_BASE (0x1B): 0xFEE0_0000, enabled, BSP on vCPU 0; the guest
//!   may move between disabled, xAPIC and x2APIC mode as the SDM's state
//!   diagram allows ([`crate::xapic::transition`]); disabling resets the
//!   APIC's registers. Relocating the page is refused (#GP).
//! - The ID (the vCPU's index; bits 24–31 in xAPIC mode), the version,
//!   TPR, PPR (from TPR and the highest in-service vector), EOI, LDR
//!   (derived from the ID in x2APIC mode, the guest's in xAPIC mode, with
//!   DFR), SVR, ISR/TMR/IRR (ISR and TMR as far as the VMM reports what it
//!   delivered, [`Apics::accepted`]; IRR reads 0: pending interrupts wait in
//!   the kernel), ESR (errors latched by a write: "send illegal vector" and,
//!   in xAPIC mode, "illegal register address"), the LVT and timer
//!   registers, the ICR and (x2APIC) SELF IPI.
//! - The ICR: INIT and start-up IPIs to another vCPU by APIC ID, which are
//!   all a guest needs to start its application processors (SDM Vol. 3A
//!   10.12, "INIT-SIPI-SIPI"). An INIT makes the target wait for a start-up
//!   IPI; the first start-up IPI after it starts that vCPU in real mode at
//!   0x1000 × vector ([`ApicAction::Start`]); later ones are ignored, as by
//!   a started processor. Fixed IPIs (vectors 32 and up, to a physical
//!   destination or a shorthand, and in xAPIC mode to a logical one, flat
//!   or cluster) go to the vCPUs they name ([`ApicAction::Ipi`]); other
//!   kinds (x2APIC logical destinations, NMI, SMI, lowest priority) are not
//!   delivered yet ([`ApicAction::Unsupported`]).
//! - An EOI ends the highest in-service interrupt; if it was
//!   level-triggered the EOI is broadcast ([`ApicAction::Eoi`]) for the I/O
//!   APIC's remote IRR.
//! - The timer: one-shot and periodic modes (LVT timer, divide, initial
//!   count), counting at [`TIMER_KHZ`] before the divider (a guest learns
//!   the rate from CPUID 0x4000_0010, as from KVM and VMware). Writing the
//!   initial count arms it ([`ApicAction::Timer`]: the VMM sets a kernel
//!   timer); when that fires, [`Apics::timer_fired`] names the vector to
//!   raise unless the guest masked it. The current count counts down in
//!   the virtual time the VMM reports ([`Apics::set_time`]; without it, it
//!   reads as the initial count while armed) and reads 0 once expired.
//!   TSC-deadline mode (IA32_TSC_DEADLINE, MSR 0x6E0) exactly when the
//!   APICs are made with a TSC rate ([`Apics::with_tsc_deadline`]), as
//!   CPUID must then say (leaf 1 ecx bit 24); switching into or out of it
//!   disarms the timer (SDM Vol. 3A 10.5.4.1). The other LVT entries are
//!   kept masked: nothing else interrupts.
//! - Any other access gets #GP in x2APIC mode, as on a CPU without the
//!   register; in xAPIC mode reads 0, ignores the write and sets ESR bit 7.
//!
//! Decision (DESIGN.md leaves interrupt controllers to the VMM): the
//! APIC model decides, the VMM delivers. It does not see when the kernel
//! injects an interrupt, so "in service" means "delivered by the VMM".

use crate::xapic::{self, Mode};

/// The most vCPUs a guest has (as `ipc::guest::GuestConfig::vcpus`).
pub const MAX_VCPUS: usize = 16;
/// The APIC timer's rate before the divider: 1 GHz, a tick a nanosecond.
pub const TIMER_KHZ: u64 = 1_000_000;
const LVT_TIMER: u32 = 0x832;
const LVT_PERIODIC: u64 = 1 << 17;
const LVT_DEADLINE: u64 = 2 << 17;
const LVT_MODE: u64 = 3 << 17;

pub const APIC_BASE_MSR: u32 = 0x1B;
/// IA32_TSC_DEADLINE.
pub const TSC_DEADLINE_MSR: u32 = 0x6E0;
pub(crate) const APIC_BASE: u64 = 0xFEE0_0000;
pub(crate) const BASE_BSP: u64 = 1 << 8;
pub(crate) const BASE_X2APIC: u64 = 1 << 10;
pub(crate) const BASE_ENABLE: u64 = 1 << 11;

const X2APIC_FIRST: u32 = 0x800;
const X2APIC_LAST: u32 = 0x8FF;
const ID: u32 = 0x802;
const VERSION: u32 = 0x803;
const APR: u32 = 0x809;
const TPR: u32 = 0x808;
const PPR: u32 = 0x80A;
const EOI: u32 = 0x80B;
const RRD: u32 = 0x80C;
const LDR: u32 = 0x80D;
const DFR: u32 = 0x80E;
const SVR: u32 = 0x80F;
const ISR: u32 = 0x810;
const TMR: u32 = 0x818;
const IRR: u32 = 0x820;
const ESR: u32 = 0x828;
const ICR: u32 = 0x830;
const ICR_HIGH: u32 = 0x831;
/// LVT CMCI, timer, thermal, performance, LINT0, LINT1, error.
const LVT: [u32; 7] = [0x82F, 0x832, 0x833, 0x834, 0x835, 0x836, 0x837];
const TIMER_INITIAL: u32 = 0x838;
const TIMER_CURRENT: u32 = 0x839;
const TIMER_DIVIDE: u32 = 0x83E;
const SELF_IPI: u32 = 0x83F;
/// Version 0x14 (an integrated APIC), 7 LVT entries (max index 6).
const VERSION_VALUE: u64 = 0x0006_0014;
const LVT_MASKED: u64 = 1 << 16;

const DELIVERY_FIXED: u64 = 0;
const DELIVERY_INIT: u64 = 5;
/// The x2APIC ID that means every APIC.
const BROADCAST: u64 = 0xFFFF_FFFF;
const DELIVERY_STARTUP: u64 = 6;
/// ESR: a fixed IPI with a vector below 16; an access to no register.
const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
pub(crate) const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

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
    /// The EOI of a level-triggered `vector`: for the I/O APIC
    /// ([`crate::ioapic::IoApic::eoi`]).
    Eoi {
        vector: u8,
    },
}

/// Which register form an access uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// RDMSR/WRMSR 0x800 + index, 64 bits, #GP for what x2APIC mode lacks.
    X2Apic,
    /// The MMIO page, 32 bits at 16 × index.
    XApic,
}

#[derive(Clone, Copy, Debug)]
struct Apic {
    mode: Mode,
    /// An INIT arrived and no start-up IPI yet.
    waiting: bool,
    started: bool,
    tpr: u64,
    svr: u64,
    lvt: [u64; 7],
    timer_divide: u64,
    timer_initial: u64,
    /// Armed and not yet expired (one-shot) or stopped; since when (ns).
    timer_armed: bool,
    armed_at: u64,
    /// IA32_TSC_DEADLINE while armed in TSC-deadline mode (else 0).
    deadline: u64,
    /// xAPIC mode's logical ID (bits 24–31) and destination format.
    ldr: u32,
    dfr: u32,
    /// xAPIC mode's ICR, as last written.
    icr_low: u32,
    icr_high: u32,
    /// ESR as last latched, and errors since.
    esr: u32,
    esr_pending: u32,
    /// In service and level-triggered, by vector.
    isr: [u64; 4],
    tmr: [u64; 4],
}

impl Apic {
    /// The power-up state (SDM Vol. 3A 10.12.5.1), which a disabled APIC
    /// returns to as well.
    const RESET: Apic = Apic {
        mode: Mode::XApic,
        waiting: false,
        started: false,
        tpr: 0,
        svr: 0xFF,
        lvt: [LVT_MASKED; 7],
        timer_divide: 0,
        timer_initial: 0,
        timer_armed: false,
        armed_at: 0,
        deadline: 0,
        ldr: 0,
        dfr: 0xFFFF_FFFF,
        icr_low: 0,
        icr_high: 0,
        esr: 0,
        esr_pending: 0,
        isr: [0; 4],
        tmr: [0; 4],
    };

    fn highest_isr(&self) -> Option<u8> {
        (0..4)
            .rev()
            .find(|&i| self.isr[i] != 0)
            .map(|i| (i * 64 + 63 - self.isr[i].leading_zeros() as usize) as u8)
    }

    /// Whether this APIC (with ID `id`) is named by logical destination
    /// `dest` (8 bits in xAPIC mode, 32 in x2APIC mode: SDM Vol. 3A
    /// 10.6.2.2 and 10.12.10.2).
    fn logical_match(&self, id: usize, dest: u32) -> bool {
        match self.mode {
            Mode::X2Apic => {
                let ldr = ldr(id) as u32;
                dest >> 16 == ldr >> 16 && dest & ldr & 0xFFFF != 0
            }
            Mode::XApic => {
                let (mine, dest) = (self.ldr >> 24, dest & 0xFF);
                if self.dfr >> 28 == 0xF {
                    mine & dest != 0 // flat
                } else {
                    mine >> 4 == dest >> 4 && mine & dest & 0xF != 0 // cluster
                }
            }
            Mode::Disabled => false,
        }
    }
}

/// The local APICs of a guest's vCPUs.
#[derive(Clone, Debug)]
pub struct Apics {
    n: usize,
    apic: [Apic; MAX_VCPUS],
    /// The TSC's rate if TSC-deadline mode is offered (else 0).
    tsc_khz: u64,
    /// The virtual time and the guest's TSC, as the VMM last said.
    now_ns: u64,
    now_tsc: u64,
}

impl Apics {
    /// The APICs of `n` vCPUs (1..=MAX_VCPUS); vCPU 0 is running.
    pub fn new(n: usize) -> Self {
        let mut apic = [Apic::RESET; MAX_VCPUS];
        apic[0].started = true;
        Apics { n: n.clamp(1, MAX_VCPUS), apic, tsc_khz: 0, now_ns: 0, now_tsc: 0 }
    }

    /// The same, offering TSC-deadline mode on a TSC of `tsc_khz` (not 0).
    pub fn with_tsc_deadline(n: usize, tsc_khz: u64) -> Self {
        Apics { tsc_khz, ..Self::new(n) }
    }

    /// Whether TSC-deadline mode is offered.
    pub fn tsc_deadline(&self) -> bool {
        self.tsc_khz != 0
    }

    /// How many vCPUs the guest has.
    pub fn vcpus(&self) -> usize {
        self.n
    }

    /// The vCPUs started so far (vCPU 0 from the first), a bit each.
    pub fn started(&self) -> u16 {
        (0..self.n).filter(|&v| self.apic[v].started).fold(0, |m, v| m | 1 << v)
    }

    /// The virtual time (ns since the guest started) and the guest's TSC
    /// now: what the current count and TSC deadlines are measured against.
    pub fn set_time(&mut self, now_ns: u64, now_tsc: u64) {
        (self.now_ns, self.now_tsc) = (now_ns, now_tsc);
    }

    /// vCPU `v`'s mode (None if there is no such vCPU).
    pub fn mode(&self, v: usize) -> Option<Mode> {
        self.apic.get(v).filter(|_| v < self.n).map(|a| a.mode)
    }

    /// RDMSR `msr` on vCPU `v`: the value, or None for #GP.
    pub fn read(&self, v: usize, msr: u32) -> Option<u64> {
        let a = self.apic.get(v).filter(|_| v < self.n)?;
        match msr {
            APIC_BASE_MSR => Some(xapic::base(a.mode, v == 0)),
            TSC_DEADLINE_MSR if self.tsc_khz != 0 => Some(a.deadline),
            X2APIC_FIRST..=X2APIC_LAST if a.mode == Mode::X2Apic => self.register(v, msr, Form::X2Apic),
            _ => None,
        }
    }

    /// WRMSR `value` to `msr` on vCPU `v`: what it asks for, or None for #GP.
    pub fn write(&mut self, v: usize, msr: u32, value: u64) -> Option<ApicAction> {
        if v >= self.n {
            return None;
        }
        match msr {
            APIC_BASE_MSR => {
                let mode = xapic::transition(self.apic[v].mode, value, v == 0)?;
                if mode == Mode::Disabled && self.apic[v].mode != Mode::Disabled {
                    // Disabling loses every register but the ID (SDM Vol. 3A 10.4.3).
                    let armed = self.apic[v].timer_armed;
                    self.apic[v] = Apic { mode, started: self.apic[v].started, ..Apic::RESET };
                    if armed {
                        return Some(ApicAction::Timer { vcpu: v as u8, delay_ns: 0, period_ns: 0 });
                    }
                }
                self.apic[v].mode = mode;
                Some(ApicAction::None)
            }
            TSC_DEADLINE_MSR if self.tsc_khz != 0 => Some(self.set_deadline(v, value)),
            X2APIC_FIRST..=X2APIC_LAST if self.apic[v].mode == Mode::X2Apic => {
                self.set_register(v, msr, value, Form::X2Apic)
            }
            _ => None,
        }
    }

    /// Register `reg` (as its x2APIC MSR number) of vCPU `v` in `form`:
    /// None if the form has no such register.
    pub(crate) fn register(&self, v: usize, reg: u32, form: Form) -> Option<u64> {
        let a = &self.apic[v];
        let x2 = form == Form::X2Apic;
        Some(match reg {
            ID if x2 => v as u64,
            ID => (v as u64) << 24,
            VERSION => VERSION_VALUE,
            TPR => a.tpr,
            APR | RRD if !x2 => 0,
            PPR => ppr(a.tpr, a.highest_isr()),
            LDR if x2 => ldr(v),
            LDR => u64::from(a.ldr),
            DFR if !x2 => u64::from(a.dfr),
            SVR => a.svr,
            r if (ISR..ISR + 8).contains(&r) => {
                (a.isr[((r - ISR) / 2) as usize] >> (32 * (r & 1))) & 0xFFFF_FFFF
            }
            r if (TMR..TMR + 8).contains(&r) => {
                (a.tmr[((r - TMR) / 2) as usize] >> (32 * (r & 1))) & 0xFFFF_FFFF
            }
            r if (IRR..IRR + 8).contains(&r) => 0,
            ESR => u64::from(a.esr),
            ICR if x2 => 0, // idle: delivery status 0
            ICR => u64::from(a.icr_low & !(1 << 12)),
            ICR_HIGH if !x2 => u64::from(a.icr_high),
            TIMER_INITIAL => a.timer_initial,
            TIMER_CURRENT => self.current_count(v),
            TIMER_DIVIDE => a.timer_divide,
            EOI if !x2 => 0,
            m => a.lvt[LVT.iter().position(|&l| l == m)?],
        })
    }

    /// A write of `value` to register `reg` of vCPU `v` in `form`: what it
    /// asks for, or None if the form has no such (writable) register.
    pub(crate) fn set_register(&mut self, v: usize, reg: u32, value: u64, form: Form) -> Option<ApicAction> {
        let x2 = form == Form::X2Apic;
        let a = &mut self.apic[v];
        match reg {
            TPR => a.tpr = value & 0xFF,
            EOI if !x2 || value == 0 => return Some(self.eoi(v)),
            LDR if !x2 => a.ldr = (value as u32) & 0xFF00_0000,
            DFR if !x2 => a.dfr = (value as u32) | 0x0FFF_FFFF,
            SVR => a.svr = value & 0x1FFF,
            ESR if !x2 || value == 0 => a.esr = core::mem::take(&mut a.esr_pending),
            TIMER_INITIAL if a.lvt[1] & LVT_MODE == LVT_DEADLINE => {} // ignored in TSC-deadline mode
            TIMER_INITIAL => {
                a.timer_initial = value & 0xFFFF_FFFF;
                return Some(self.arm(v));
            }
            TIMER_DIVIDE => a.timer_divide = value & 0xB,
            ICR if x2 => return Some(self.ipi(v, value, true)),
            ICR => {
                a.icr_low = value as u32;
                let icr = (u64::from(a.icr_high) << 32) | u64::from(a.icr_low);
                return Some(self.ipi(v, icr, false));
            }
            ICR_HIGH if !x2 => a.icr_high = (value as u32) & 0xFF00_0000,
            SELF_IPI if x2 => return Some(self.ipi(v, (1 << 18) | (value & 0xFF), true)),
            LVT_TIMER => return self.set_lvt_timer(v, value),
            m => match LVT.iter().position(|&l| l == m) {
                // Kept masked: no other LVT interrupt is delivered yet.
                Some(i) => a.lvt[i] = (value & 0x0001_F7FF) | LVT_MASKED,
                None => return None,
            },
        }
        Some(ApicAction::None)
    }

    fn set_lvt_timer(&mut self, v: usize, value: u64) -> Option<ApicAction> {
        let deadline_offered = self.tsc_khz != 0;
        let a = &mut self.apic[v];
        let (old, new) = (a.lvt[1] & LVT_MODE, value & LVT_MODE);
        // TSC-deadline mode only if offered; the fourth mode is reserved.
        if new == LVT_MODE || new == LVT_DEADLINE && !deadline_offered {
            return None;
        }
        a.lvt[1] = value & 0x0007_10FF;
        if (old == LVT_DEADLINE) != (new == LVT_DEADLINE) && (a.timer_armed || a.deadline != 0) {
            (a.timer_armed, a.deadline) = (false, 0);
            return Some(ApicAction::Timer { vcpu: v as u8, delay_ns: 0, period_ns: 0 });
        }
        Some(ApicAction::None)
    }

    /// IA32_TSC_DEADLINE written: armed for then (at once if it passed),
    /// disarmed by 0, ignored outside TSC-deadline mode.
    fn set_deadline(&mut self, v: usize, value: u64) -> ApicAction {
        let (now, khz) = (self.now_tsc, self.tsc_khz);
        let a = &mut self.apic[v];
        if a.lvt[1] & LVT_MODE != LVT_DEADLINE {
            return ApicAction::None;
        }
        a.deadline = value;
        a.timer_armed = value != 0;
        let delay_ns = match value {
            0 => 0,
            d => u64::try_from((u128::from(d.saturating_sub(now)) * 1_000_000).div_ceil(u128::from(khz)))
                .unwrap_or(u64::MAX)
                .max(1),
        };
        ApicAction::Timer { vcpu: v as u8, delay_ns, period_ns: 0 }
    }

    /// The timer of vCPU `v` after a write of its initial count.
    fn arm(&mut self, v: usize) -> ApicAction {
        let now = self.now_ns;
        let a = &mut self.apic[v];
        let delay_ns = a.timer_initial * divisor(a.timer_divide) * 1_000_000 / TIMER_KHZ;
        a.timer_armed = delay_ns != 0;
        a.armed_at = now;
        let period_ns = if a.lvt[1] & LVT_PERIODIC != 0 { delay_ns } else { 0 };
        ApicAction::Timer { vcpu: v as u8, delay_ns, period_ns }
    }

    /// The current count: the initial count less the ticks since it was
    /// armed (modulo it, when periodic), 0 once a one-shot expired.
    fn current_count(&self, v: usize) -> u64 {
        let a = &self.apic[v];
        if !a.timer_armed || a.lvt[1] & LVT_MODE == LVT_DEADLINE || a.timer_initial == 0 {
            return 0;
        }
        let elapsed = u128::from(self.now_ns.saturating_sub(a.armed_at));
        let ticks = (elapsed * u128::from(TIMER_KHZ) / 1_000_000) as u64 / divisor(a.timer_divide);
        if a.lvt[1] & LVT_PERIODIC != 0 {
            a.timer_initial - ticks % a.timer_initial
        } else {
            a.timer_initial.saturating_sub(ticks)
        }
    }

    /// vCPU `v`'s timer went off: the vector to raise, unless the guest
    /// masked it or the timer was disarmed meanwhile (a one-shot or
    /// TSC-deadline one disarms as it fires).
    pub fn timer_fired(&mut self, v: usize) -> Option<u8> {
        let a = self.apic.get_mut(v).filter(|_| v < self.n)?;
        if !a.timer_armed {
            return None;
        }
        let lvt = a.lvt[1];
        if lvt & LVT_PERIODIC == 0 {
            (a.timer_armed, a.deadline) = (false, 0);
        }
        (lvt & LVT_MASKED == 0).then_some((lvt & 0xFF) as u8)
    }

    /// The VMM delivered `vector` to vCPU `v` (`level`: level-triggered,
    /// from the I/O APIC): it is in service until the guest's EOI.
    pub fn accepted(&mut self, v: usize, vector: u8, level: bool) {
        if let Some(a) = self.apic.get_mut(v).filter(|_| v < self.n) {
            let (i, bit) = (usize::from(vector / 64), 1u64 << (vector % 64));
            a.isr[i] |= bit;
            a.tmr[i] = if level { a.tmr[i] | bit } else { a.tmr[i] & !bit };
        }
    }

    /// An EOI on vCPU `v`: the highest in-service vector ends, and is
    /// broadcast if it was level-triggered.
    fn eoi(&mut self, v: usize) -> ApicAction {
        let a = &mut self.apic[v];
        let Some(vector) = a.highest_isr() else { return ApicAction::None };
        let (i, bit) = (usize::from(vector / 64), 1u64 << (vector % 64));
        a.isr[i] &= !bit;
        if a.tmr[i] & bit != 0 {
            a.tmr[i] &= !bit;
            return ApicAction::Eoi { vector };
        }
        ApicAction::None
    }

    /// The vCPUs an interrupt for `dest` reaches (physical: an APIC ID, or
    /// every APIC for 0xFF, the I/O APIC's broadcast; logical: as each
    /// APIC's LDR and DFR say), as a bit set. Disabled APICs take nothing.
    pub fn targets(&self, dest: u32, logical: bool) -> u16 {
        let mut set = 0u16;
        for v in 0..self.n {
            let a = &self.apic[v];
            let hit = match (logical, a.mode) {
                (_, Mode::Disabled) => false,
                (false, _) => dest == 0xFF || dest as usize == v,
                (true, _) => a.logical_match(v, dest),
            };
            if hit {
                set |= 1 << v;
            }
        }
        set
    }

    /// Errors of vCPU `v` for ESR's next latch.
    pub(crate) fn error(&mut self, v: usize, bits: u32) {
        self.apic[v].esr_pending |= bits;
    }

    /// An ICR write from vCPU `from`, x2APIC form (`x2`: destination in
    /// bits 32–63) or xAPIC form (bits 56–63).
    fn ipi(&mut self, from: usize, icr: u64, x2: bool) -> ApicAction {
        let delivery = (icr >> 8) & 7;
        let shorthand = (icr >> 18) & 3;
        let logical = icr & (1 << 11) != 0;
        let (dest, broadcast) = if x2 { (icr >> 32, BROADCAST) } else { (icr >> 56, 0xFF) };
        let target = usize::try_from(dest).ok().filter(|&t| t < self.n && !logical);
        let vector = icr & 0xFF;
        if delivery == DELIVERY_FIXED && vector < 16 {
            self.error(from, ESR_SEND_ILLEGAL_VECTOR);
        }
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
                    ApicAction::Start { vcpu: t as u8, vector: vector as u8 }
                } else {
                    ApicAction::None
                }
            }
            // To a vCPU that does not exist: lost, as on hardware.
            (DELIVERY_INIT | DELIVERY_STARTUP, 0, None) if !logical => ApicAction::None,
            (DELIVERY_FIXED, _, _) if vector >= 32 && !(logical && x2) => {
                let all = ((1u32 << self.n) - 1) as u16;
                let me = 1u16 << from;
                let targets = match shorthand {
                    0 if logical => self.targets(dest as u32, true),
                    0 if dest == broadcast => all,
                    0 => target.map_or(0, |t| 1 << t),
                    1 => me,
                    2 => all,
                    _ => all & !me,
                };
                ApicAction::Ipi { targets, vector: vector as u8 }
            }
            _ => ApicAction::Unsupported { icr },
        }
    }
}

/// PPR from TPR and the highest in-service vector (SDM Vol. 3A 10.8.3.1).
fn ppr(tpr: u64, isr: Option<u8>) -> u64 {
    let isrv = u64::from(isr.unwrap_or(0));
    if tpr & 0xF0 >= isrv & 0xF0 {
        tpr
    } else {
        isrv & 0xF0
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
