//! The platform a guest sees, exit by exit: what each VM exit gets as its
//! reply, which ones end the guest (and with which [`crate::status`]), and
//! what the VMM says about them.
//!
//! - CPUID: the [`crate::cpuid`] policy.
//! - Port I/O: the UART at 0x3f8–0x3ff ([`crate::uart`]); the exit port
//!   0xf4 as QEMU's isa-debug-exit (a write ends the guest: value 0x10 is
//!   success); the mark port 0xf5 (a write is the guest's mark: the VMM
//!   notes its CPU time, see [`MARK_PORT`]); the doorbell 0xf6
//!   ([`DOORBELL_PORT`], kept by the kernel: its writes never come here);
//!   the ACPI sleep control register ([`crate::acpi::SLEEP_CONTROL_PORT`]:
//!   SLP_EN with the S5 type of the DSDT's `\_S5` powers the guest off, a
//!   clean end with success; another sleep type is ignored and said, as
//!   the DSDT offers none) and its status register (reads 0, writes
//!   ignored); the reset register ([`crate::acpi::RESET_PORT`]: a write
//!   with RST_CPU, bit 2, resets the machine; reads 0) and the keyboard
//!   controller's pulse of the reset line (command 0xFE to
//!   [`KBD_COMMAND_PORT`], Linux's `reboot=k` and its fallback; other
//!   commands are ignored, and reads of the port are the floating bus's,
//!   as no i8042 is there): the step stops the guest with
//!   [`crate::status::RESET`], which the VMM takes as its cue to restart
//!   it ([`crate::reboot`]; [`Platform::reset`] is the platform after);
//!   the ACPI PM timer at 0x608 ([`crate::pmtimer`], 32 bits at 3.579545
//!   MHz of the VMM's virtual time, [`Platform::set_clock`]; its writes
//!   are ignored); the CMOS clock at 0x70–0x71 ([`crate::rtc`], the wall
//!   clock `mgmt` read plus the virtual time, [`Platform::with_rtc`];
//!   its IRQ 8 on I/O APIC pin [`RTC_PIN`], asserted while its IRQF is,
//!   a kernel timer, bit [`RTC_TIMER_BIT`], armed for the line's next rise
//!   only while it is low, [`Platform::rtc_fired`]);
//!   other ports read as all ones and ignore writes (a PC's
//!   floating bus).
//! - RDMSR/WRMSR: the local APIC's in x2APIC mode ([`crate::apic`]: how
//!   a guest starts its other vCPUs); any other MSR #GP(0), as for an MSR
//!   the CPU lacks. VMCALL/VMMCALL: #UD.
//! - The PIT at ports 0x40–0x43 and port 0x61 ([`crate::pit`], on the
//!   same virtual time as the PM timer): channel 0's output is ISA IRQ 0,
//!   I/O APIC pin 2 (the MADT's interrupt source override,
//!   [`crate::acpi`]). The VMM arms one kernel timer for its next rising
//!   edge ([`Step::pit_timer`], bit [`PIT_TIMER_BIT`] of the timer
//!   notification) and calls [`Platform::pit_fired`] when it goes off.
//! - MMIO ([`Platform::mmio`]): the xAPIC page at 0xFEE0_0000
//!   ([`crate::xapic`]) and the I/O APIC's at 0xFEC0_0000
//!   ([`crate::ioapic`]), an access to it decoded from the guest's own
//!   instruction ([`crate::mmio`]) and completed (a load's register
//!   written through `VcpuStateWrite`, rip advanced by its length); one
//!   the decoder refuses, or whose instruction cannot be read, stops the
//!   guest with a note saying why. An instruction fetch from a device's
//!   page, like any access to guest-physical memory no device or RAM is
//!   at, stops it too.
//! - Interrupts from the I/O APIC: a fixed or lowest-priority entry
//!   reaches the vCPUs its destination names ([`Apics::targets`]; lowest
//!   priority: the first of them) the way a fixed IPI does
//!   ([`Platform::irqs`]); a level-triggered one is also put in service on
//!   them ([`Apics::accepted`]) so that the guest's EOI of it is broadcast
//!   back ([`crate::ioapic::IoApic::eoi`]: remote IRR cleared, the line
//!   delivers again if still asserted). The APIC model ends the highest
//!   vector in service at an EOI, and only level ones are tracked there,
//!   so an EOI of an edge vector (a timer's) while a level one is in
//!   service ends the level one early: the line then delivers again once
//!   more than it should, never once less. NMI, SMI, INIT and ExtINT
//!   entries are not delivered and are said ([`Note::IoApic`]).
//! - HLT with interrupts off (nothing can wake the guest; with them on the
//!   kernel idles the vCPU until an interrupt is raised on it, and the
//!   exit never comes here), an access to unmapped
//!   guest-physical memory, a triple fault, a failed entry or an exit of
//!   another kind: the guest is stopped.

use core::fmt;

use ipc::vcpu::{Action, Exit, ExitReason, Reply};

use crate::apic::{ApicAction, Apics};
use crate::msr::Msrs;
use crate::uart::{self, Line, Uart};
use crate::{acpi, cpuid, status};

/// CPUID leaf 1, ecx: the local APIC's TSC-deadline mode.
const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;
/// The time-stamp counter's MSR (read: [`Platform::guest_tsc`]).
const IA32_TSC: u32 = 0x10;

/// The exit port, as QEMU's isa-debug-exit: the value written is the
/// guest's exit code (QEMU's status would be (v << 1) | 1), and 0 means
/// success, as for a process. Anything else fails the guest, and with it
/// the run (`mgmt` judges it by the VMM's [`status`]).
pub const EXIT_PORT: u16 = 0xf4;
pub const EXIT_SUCCESS: u64 = 0;
/// A write here marks a moment in the guest's run: the VMM (not this
/// module, which only lets the write pass without a note) logs the guest's
/// CPU time since the previous mark.
pub const MARK_PORT: u16 = 0xf5;
/// A doorbell: a write here signals bit 0 of the VMM's doorbell
/// notification inside the kernel, without an exit reaching the VMM (the
/// path virtio queue notifications will take; `guest-bench` times it).
/// Nothing waits on that notification yet.
pub const DOORBELL_PORT: u16 = 0xf6;
/// The bit of the timer notification the PIT's timer signals (bits 0–15
/// are the vCPUs' APIC timers, 63 the `bad-entry` watch).
pub const PIT_TIMER_BIT: u64 = 1 << 16;
/// The I/O APIC pin the PIT's channel 0 drives (ISA IRQ 0 on GSI 2).
pub const PIT_PIN: usize = 2;
/// The bit of the timer notification the CMOS clock's timer signals.
pub const RTC_TIMER_BIT: u64 = 1 << 17;
/// The I/O APIC pin of the CMOS clock's interrupt: ISA IRQ 8 (no
/// override: GSI 8), as the DSDT's `RTC` device says ([`acpi::RTC_IRQ`]).
/// The pin is asserted while the clock's IRQF is set ([`crate::rtc`]).
pub const RTC_PIN: usize = 8;
/// The i8042 keyboard controller's command port; command
/// [`KBD_RESET`] pulses the CPU's reset line.
pub const KBD_COMMAND_PORT: u16 = 0x64;
pub const KBD_RESET: u8 = 0xFE;
/// The I/O APIC pin of the UART's interrupt: ISA IRQ 4, as COM1's on a PC
/// (no override: GSI 4), edge-triggered as ISA's are. The pin sees the
/// chip's output ([`Uart::interrupt`]) rise after each access that raised
/// it ([`Platform::uart_edge`]).
pub const UART_PIN: usize = 4;
/// How many notes of each kind ([`Kind`]: refused MSR accesses,
/// hypercalls, ignored ports, IPIs, sleep states, I/O APIC modes) are said,
/// the last being [`Note::Enough`]; an ignored port is said once for each
/// port and direction, so that a guest probing one port many times (PCI's
/// 0xCF8/0xCFC) leaves room for the others.
pub const NOTES_MAX: u32 = 8;

/// The kinds of repeatable notes, each counted on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Msr,
    Hypercall,
    Port,
    Ipi,
    Sleep,
    IoApic,
}

impl Kind {
    const ALL: usize = 6;

    fn of(note: &Note) -> Option<Kind> {
        Some(match note {
            Note::Msr { .. } => Kind::Msr,
            Note::Hypercall { .. } => Kind::Hypercall,
            Note::Port { .. } => Kind::Port,
            Note::Ipi { .. } => Kind::Ipi,
            Note::Sleep { .. } => Kind::Sleep,
            Note::IoApic { .. } => Kind::IoApic,
            _ => return None,
        })
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Msr => "refused MSR accesses",
            Kind::Hypercall => "hypercalls",
            Kind::Port => "ignored ports",
            Kind::Ipi => "undelivered IPIs",
            Kind::Sleep => "sleep requests",
            Kind::IoApic => "undelivered I/O APIC modes",
        }
    }
}

const UD: u8 = 6;
const GP: u8 = 13;

/// Something the VMM says about its guest: `[vmm] <guest>: <note>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    ExitPort {
        value: u64,
    },
    Halted,
    /// vCPU `vcpu` halted with interrupts off while others run: it stops.
    VcpuHalted {
        vcpu: u8,
    },
    Unmapped {
        gpa: u64,
        access: u64,
        rip: u64,
    },
    TripleFault {
        rip: u64,
    },
    /// The kernel reads nothing back from a refused entry (rip 0); the
    /// registers are the guest's as the kernel entered it with them.
    EntryFailed {
        reason: u64,
        rip: u64,
        regs: [u64; 4],
    },
    Unknown {
        reason: ExitReason,
        code: u64,
        rip: u64,
    },
    Msr {
        msr: u64,
        write: bool,
        rip: u64,
    },
    Hypercall {
        rip: u64,
    },
    Port {
        port: u16,
        write: bool,
        rip: u64,
    },
    /// An exception that faults in its own delivery, forever.
    ExceptionLoop {
        vector: u64,
        rip: u64,
    },
    /// A string port instruction (INS/OUTS), which is not emulated.
    StringPort {
        port: u16,
        write: bool,
        rep: bool,
        rip: u64,
    },
    /// An IPI the APIC model does not deliver.
    Ipi {
        icr: u64,
        rip: u64,
    },
    /// The guest powered its machine off (ACPI S5).
    PowerOff,
    /// The guest reset its machine, through the reset register (or the
    /// keyboard controller, `keyboard`).
    Reset {
        rip: u64,
        keyboard: bool,
    },
    /// A sleep state the platform does not have.
    Sleep {
        value: u8,
        rip: u64,
    },
    /// An MMIO access the VMM cannot complete: its instruction could not be
    /// read or decoded, or the vCPU's state not read (`state`).
    MmioRefused {
        gpa: u64,
        rip: u64,
        why: MmioWhy,
    },
    /// An I/O APIC entry whose delivery mode is not modelled.
    IoApic {
        line: u8,
        mode: crate::ioapic::Mode,
    },
    /// The last of [`NOTES_MAX`] notes of a kind.
    Enough(Kind),
}

/// Why an MMIO access was not completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioWhy {
    /// The decoder's reason.
    Refused(crate::mmio::Refused),
    /// `VcpuStateRead` failed (the error's code).
    State(u64),
}

fn access(q: u64) -> &'static str {
    if q & 4 != 0 {
        "execute"
    } else if q & 2 != 0 {
        "write"
    } else {
        "read"
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Note::ExitPort { value } => write!(f, "exit port {EXIT_PORT:#x}: exit code {value}"),
            Note::Halted => write!(f, "halted"),
            Note::VcpuHalted { vcpu } => {
                write!(f, "vCPU {vcpu} halted with interrupts off: it stops, the others run on")
            }
            Note::Unmapped { gpa, access: q, rip } => write!(
                f,
                "access to unmapped guest-physical {gpa:#x} ({}) at rip {rip:#x}: stopped",
                access(q)
            ),
            Note::MmioRefused { gpa, rip, why } => {
                write!(f, "MMIO at guest-physical {gpa:#x} from rip {rip:#x} not emulated (")?;
                match why {
                    MmioWhy::Refused(r) => write!(f, "{r:?}")?,
                    MmioWhy::State(e) => write!(f, "its vCPU's state unreadable: error {e}")?,
                }
                write!(f, "): stopped")
            }
            Note::TripleFault { rip } => write!(f, "triple fault at rip {rip:#x}: stopped"),
            Note::EntryFailed { reason, rip, regs: [a, b, c, d] } => write!(
                f,
                "the CPU refused to enter the guest (reason {reason:#x}) at rip {rip:#x}, \
                 rax {a:#x} rbx {b:#x} rcx {c:#x} rdx {d:#x}: stopped"
            ),
            Note::Unknown { reason, code, rip } => {
                write!(f, "unhandled exit {reason:?} (code {code:#x}) at rip {rip:#x}: stopped")
            }
            Note::Msr { msr, write, rip } => {
                let op = if write { "wrmsr" } else { "rdmsr" };
                write!(f, "{op} of MSR {msr:#x} at rip {rip:#x}: #GP(0) injected")
            }
            Note::Hypercall { rip } => write!(f, "hypercall at rip {rip:#x}: #UD injected"),
            Note::Port { port, write, rip } => {
                let op = if write { "write to" } else { "read of" };
                write!(f, "{op} port {port:#x} at rip {rip:#x} ignored")
            }
            Note::ExceptionLoop { vector, rip } => {
                let name = match vector {
                    1 => "#DB",
                    17 => "#AC",
                    _ => "exception",
                };
                write!(f, "endless {name} delivery (vector {vector}) at rip {rip:#x}: stopped")
            }
            Note::StringPort { port, write, rep, rip } => {
                let op = match (write, rep) {
                    (true, false) => "outs",
                    (true, true) => "rep outs",
                    (false, false) => "ins",
                    (false, true) => "rep ins",
                };
                write!(f, "{op} on port {port:#x} at rip {rip:#x}: string port I/O is not emulated: stopped")
            }
            Note::Ipi { icr, rip } => {
                write!(f, "IPI {icr:#x} at rip {rip:#x} not delivered (not modelled yet)")
            }
            Note::PowerOff => write!(f, "powered off (ACPI S5)"),
            Note::Reset { rip, keyboard: false } => {
                write!(f, "reset (reset register {:#x}) at rip {rip:#x}", acpi::RESET_PORT)
            }
            Note::Reset { rip, keyboard: true } => write!(
                f,
                "reset (keyboard controller {KBD_COMMAND_PORT:#x}, command {KBD_RESET:#x}) at rip {rip:#x}"
            ),
            Note::Sleep { value, rip } => write!(
                f,
                "sleep control {value:#x} at rip {rip:#x}: no such sleep state (only S5, soft-off): ignored"
            ),
            Note::IoApic { line, mode } => {
                write!(f, "I/O APIC pin {line}: delivery mode {mode:?} not delivered (not modelled)")
            }
            Note::Enough(kind) => write!(f, "(further {} are not logged)", kind.plural()),
        }
    }
}

/// What to do about one exit. Kept small, as it is made and moved on
/// every exit: the step's line of output and its interrupts from the I/O
/// APIC stay in the [`Platform`] ([`Platform::line`], [`Platform::irqs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub reply: Reply,
    /// Stop the guest; the VMM exits with this status.
    pub stop: Option<u64>,
    /// The byte the guest sent out of its UART (for its console).
    pub tx: Option<u8>,
    pub note: Option<Note>,
    /// Start vCPU `.0` in real mode at 0x1000 × `.1` (a start-up IPI).
    pub start: Option<(u8, u8)>,
    /// Interrupt `.1` on each vCPU whose bit is set in `.0` (a fixed IPI).
    pub ipi: Option<(u16, u8)>,
    /// Arm vCPU `.0`'s timer: in `.1` ns, then every `.2` ns if not 0; or
    /// disarm it if `.1` is 0.
    pub timer: Option<(u8, u64, u64)>,
    /// A register to write before the reply (`VcpuStateWrite`): an MMIO
    /// load's destination, its index and value
    /// ([`crate::emulate::completion`]).
    pub write: Option<(u8, u64)>,
    /// Arm the PIT's timer ([`PIT_TIMER_BIT`]) to go off in this many ns,
    /// or disarm it for 0.
    pub pit_timer: Option<u64>,
    /// The same for the CMOS clock's timer ([`RTC_TIMER_BIT`]).
    pub rtc_timer: Option<u64>,
    /// The guest kicked queue `.1` of disk `.0`: serve it
    /// ([`Platform::serve_disk`]).
    pub kick: Option<(u8, u16)>,
}

impl Step {
    fn reply(actions: Action) -> Self {
        Step {
            reply: Reply::only(actions),
            stop: None,
            tx: None,
            note: None,
            start: None,
            ipi: None,
            timer: None,
            write: None,
            pit_timer: None,
            rtc_timer: None,
            kick: None,
        }
    }
}

/// What a plain OUT to the UART did ([`Platform::uart_out`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UartWrite {
    /// The byte it sends out (for the guest's console), if it sends one.
    pub tx: Option<u8>,
    /// It raised the UART's interrupt: its step is [`Platform::uart_rose`]'s.
    pub rose: bool,
}

/// The guest's devices and the VMM's bookkeeping of one guest.
#[derive(Clone, Debug)]
pub struct Platform {
    uart: Uart,
    apics: Apics,
    msrs: Msrs,
    /// Notes said of each [`Kind`].
    notes: [u32; Kind::ALL],
    /// The ports (and directions) an ignored access was said for.
    ports_said: heapless::Vec<(u16, bool), { NOTES_MAX as usize }>,
    /// The TSC's rate, told in CPUID 0x4000_0010.
    tsc_khz: u32,
    pmtimer: crate::pmtimer::PmTimer,
    /// The guest's virtual time, in ns, as last set ([`Platform::set_clock`]).
    now_ns: u64,
    ioapic: crate::ioapic::IoApic,
    pit: crate::pit::Pit,
    /// When the PIT's next IRQ 0 is due (ns), if its timer is armed.
    pit_due: Option<u64>,
    rtc: crate::rtc::Rtc,
    /// Whether the I/O APIC was told the clock's line is asserted.
    rtc_line: bool,
    /// When the clock's line will next rise (virtual ns), if its timer is
    /// armed for then.
    rtc_due: Option<u64>,
    /// The wall-clock time (Unix, ns) at virtual time 0.
    wall_ns: u64,
    /// The guest's TSC at virtual time 0 ([`Platform::with_tsc_deadline`]).
    tsc_base: u64,
    /// The vCPUs stopped for good by a halt with interrupts off, a bit each.
    halted: u16,
    /// The last step's finished line of guest output ([`Platform::line`]).
    line: Option<Line>,
    /// The last step's interrupts from the I/O APIC and MSI-X ([`Platform::irqs`]).
    irqs: heapless::Vec<(u16, u8), { crate::ioapic::LINES }>,
    /// The PCI bus with the guest's disks, if it has any ([`Platform::with_disks`]).
    disks: Option<crate::disks::Disks>,
}

impl Platform {
    /// The platform of a guest with `vcpus` vCPUs, on a TSC of `tsc_khz`.
    pub fn new(vcpus: usize, tsc_khz: u32) -> Self {
        Platform {
            uart: Uart::default(),
            apics: Apics::new(vcpus),
            msrs: Msrs::default(),
            notes: [0; Kind::ALL],
            ports_said: heapless::Vec::new(),
            tsc_khz,
            pmtimer: crate::pmtimer::PmTimer::default(),
            now_ns: 0,
            ioapic: crate::ioapic::IoApic::new(),
            pit: crate::pit::Pit::new(),
            pit_due: None,
            rtc: crate::rtc::Rtc::new(crate::rtc::Machine { vcpus: vcpus as u8, ..Default::default() }),
            rtc_line: false,
            rtc_due: None,
            wall_ns: 0,
            tsc_base: 0,
            halted: 0,
            line: None,
            irqs: heapless::Vec::new(),
            disks: None,
        }
    }

    /// The platform with a PCI bus and one virtio-blk function for each
    /// of `disks` ([`crate::disks`]); none without disks, so that a guest
    /// without them sees the platform it saw before.
    pub fn with_disks(mut self, disks: &[crate::virtio_blk::Disk]) -> Self {
        self.disks = (!disks.is_empty()).then(|| crate::disks::Disks::new(disks));
        self
    }

    /// Serves queue `q` of disk `f` after the guest kicked it ([`Step::kick`])
    /// from `disk`, over guest RAM `ram`; the interrupt it sends, if any,
    /// is in [`Platform::irqs`]. How many chains it took.
    pub fn serve_disk(
        &mut self,
        f: u8,
        q: u16,
        ram: &impl vq::GuestMemory,
        disk: &mut impl vq::blk::Disk,
    ) -> u32 {
        self.begin();
        let Some(d) = &mut self.disks else { return 0 };
        let served = d.serve(usize::from(f), q, ram, disk);
        if let Some(m) = served.irq {
            self.deliver_msi(m);
        }
        served.chains
    }

    /// An MSI-X message for the local APICs (fixed or lowest-priority;
    /// `msix::Message` decoded nothing else).
    fn deliver_msi(&mut self, m: crate::msix::Message) {
        let mut targets = self.apics.targets(u32::from(m.dest), m.logical);
        if m.lowest_priority {
            targets &= targets.wrapping_neg(); // the first of them
        }
        if targets != 0 && !self.irqs.contains(&(targets, m.vector)) {
            // Full only with 24 different messages in one step: dropped
            // then, as a message to a busy bus would be retried by nobody.
            let _ = self.irqs.push((targets, m.vector));
        }
    }

    /// A new step: the last one's line and interrupts are gone (setting
    /// them empty writes a tag and a length, not the buffers).
    fn begin(&mut self) {
        self.line = None;
        self.irqs.clear();
    }

    /// The finished line of guest output the last step made, if any.
    pub fn line(&self) -> Option<&Line> {
        self.line.as_ref()
    }

    /// The last step's interrupts from the I/O APIC: vector `.1` on each
    /// vCPU whose bit is set in `.0`, as for [`Step::ipi`].
    pub fn irqs(&self) -> &[(u16, u8)] {
        &self.irqs
    }

    /// This platform offering the local APICs' TSC-deadline mode (and
    /// saying so in CPUID leaf 1, ecx bit 24, whatever the host's CPU
    /// says), the guest's TSC reading `start_tsc` at virtual time 0 (the
    /// kernel gives a guest the host's TSC, unoffset); not without a TSC
    /// rate. Made before anything else is asked of the APICs.
    pub fn with_tsc_deadline(mut self, start_tsc: u64) -> Self {
        if self.tsc_khz != 0 {
            self.apics = Apics::with_tsc_deadline(self.apics.vcpus(), u64::from(self.tsc_khz));
            self.tsc_base = start_tsc;
        }
        self
    }

    /// This platform with its CMOS clock ([`crate::rtc`]) saying `machine`
    /// in its memory and the wall-clock time `wall_ns` (Unix, ns) at
    /// virtual time 0, from which it runs on with the virtual time.
    pub fn with_rtc(mut self, machine: crate::rtc::Machine, wall_ns: u64) -> Self {
        self.rtc = crate::rtc::Rtc::new(machine);
        self.wall_ns = wall_ns;
        self
    }

    /// Whether an access to `port` reads the clock (the PM timer): the VMM
    /// then sets it first ([`Platform::set_clock`]), and only then, so that
    /// other exits pay nothing for the time.
    /// The PIT's ports (0x40–0x43, 0x61) and the CMOS clock's (0x70–0x71)
    /// read and write the clock.
    pub fn clock_port(port: u16) -> bool {
        port.wrapping_sub(crate::pmtimer::PORT) < crate::pmtimer::PORTS
            || crate::pit::Pit::owns(port)
            || crate::rtc::owns(port)
    }

    /// The guest's virtual time is now `now_ns` (never set backwards: a
    /// smaller value is ignored, so the PM timer never runs back).
    ///
    /// The local APICs count on it too ([`Apics::set_time`]): their
    /// timers' current count, and the moment an initial count arms one.
    pub fn set_clock(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let tsc = u128::from(self.now_ns) * u128::from(self.tsc_khz) / 1_000_000;
        let tsc = u64::try_from(tsc).unwrap_or(u64::MAX).saturating_add(self.tsc_base);
        self.apics.set_time(self.now_ns, tsc);
    }

    /// Whether an access to MSR `msr` needs the clock set first
    /// ([`Platform::set_clock`]): the x2APIC registers (the timer's counts
    /// among them), IA32_TSC_DEADLINE and IA32_TSC. (Every MMIO exit sets
    /// it.)
    pub fn clock_msr(msr: u32) -> bool {
        (0x800..=0x8FF).contains(&msr) || msr == 0x6E0 || msr == IA32_TSC
    }

    /// The guest's TSC now (the host's, as its TSC-deadline timer counts
    /// it: [`Platform::with_tsc_deadline`]), which a RDMSR of IA32_TSC
    /// reads (Linux's msr driver; the TSC's RDTSC does not exit); None
    /// without a TSC rate. A WRMSR of it gets #GP: the guest's TSC is the
    /// host's, never offset.
    fn guest_tsc(&self) -> Option<u64> {
        let tsc = u128::from(self.now_ns) * u128::from(self.tsc_khz) / 1_000_000;
        (self.tsc_khz != 0).then(|| u64::try_from(tsc).unwrap_or(u64::MAX).saturating_add(self.tsc_base))
    }

    /// This platform on an AMD CPU (`amd`) or another: the MSRs that only
    /// AMD's CPUs have ([`crate::msr::Msrs::new`]).
    pub fn on_amd(mut self, amd: bool) -> Self {
        self.msrs = Msrs::new(amd);
        self
    }

    /// The PIT's timer ([`PIT_TIMER_BIT`]) went off, the clock set: IRQ 0's
    /// edge on I/O APIC pin [`PIT_PIN`] if it is due (edges missed while
    /// the VMM was late are one edge: ticks are lost, as on a busy PC), and
    /// the timer re-armed for the next one ([`Step::pit_timer`]).
    pub fn pit_fired(&mut self) -> Step {
        self.begin();
        let mut s = Step::reply(Action::empty());
        match self.pit_due {
            Some(due) if due <= self.now_ns => {
                let d = self.ioapic.raise(PIT_PIN);
                self.ioapic.lower(PIT_PIN);
                self.pit_due = None;
                if let Some(d) = d {
                    self.deliver(&mut s, d);
                }
                s.pit_timer = Some(self.pit_arm());
            }
            // Early (or a stale timer): the remainder.
            Some(due) => s.pit_timer = Some(due - self.now_ns),
            None => {}
        }
        s
    }

    /// The delay until the PIT's next IRQ 0, noted as due; 0 (disarm) if
    /// none is coming.
    fn pit_arm(&mut self) -> u64 {
        self.pit_due = self.pit.next_irq0(self.now_ns);
        self.pit_due.map_or(0, |due| due - self.now_ns)
    }

    /// The CMOS clock's timer ([`RTC_TIMER_BIT`]) went off, the clock set:
    /// its line as the clock now says (an edge on pin [`RTC_PIN`] if it
    /// rose), and the timer armed again if a rise is still to come.
    pub fn rtc_fired(&mut self) -> Step {
        self.begin();
        let mut s = Step::reply(Action::empty());
        self.rtc_due = None;
        self.rtc_sync(&mut s);
        s
    }

    /// After the CMOS clock was accessed or its timer went off: pin
    /// [`RTC_PIN`] asserted or withdrawn as its IRQ line now is (a rise
    /// delivering into `s`), and its timer set for the line's next rise if
    /// that moved ([`Step::rtc_timer`]; disarmed if none is coming).
    fn rtc_sync(&mut self, s: &mut Step) {
        let wall = self.wall_ns.saturating_add(self.now_ns);
        let line = self.rtc.irq(wall);
        if line != self.rtc_line {
            self.rtc_line = line;
            if !line {
                self.ioapic.lower(RTC_PIN);
            } else if let Some(d) = self.ioapic.raise(RTC_PIN) {
                self.deliver(s, d);
            }
        }
        let due = self.rtc.next_irq(wall).map(|w| w.saturating_sub(self.wall_ns));
        if due != self.rtc_due {
            self.rtc_due = due;
            s.rtc_timer = Some(due.map_or(0, |d| d.saturating_sub(self.now_ns).max(1)));
        }
    }

    /// The UART's interrupt output went from `was` to what it is now: at
    /// its rising edge, IRQ 4's edge on pin [`UART_PIN`], into `s`.
    fn uart_edge(&mut self, s: &mut Step, was: bool) {
        if !was && self.uart.interrupt() {
            let d = self.ioapic.raise(UART_PIN);
            self.ioapic.lower(UART_PIN);
            if let Some(d) = d {
                self.deliver(s, d);
            }
        }
    }

    /// Whether `port` is one of the UART's.
    pub fn uart_port(port: u16) -> bool {
        port.wrapping_sub(uart::BASE) < uart::PORTS
    }

    /// Gives the UART input through `f` (a console's, as the receive FIFO
    /// has room: `crate::console_link`); what `f` returns, and the step
    /// with the receive interrupt's edge, if the input raised it (only
    /// its `irqs` and `note` are meant).
    pub fn receive<R>(&mut self, f: impl FnOnce(&mut Uart) -> R) -> (R, Step) {
        self.begin();
        let mut s = Step::reply(Action::empty());
        let was = self.uart.interrupt();
        let r = f(&mut self.uart);
        self.uart_edge(&mut s, was);
        (r, s)
    }

    /// An interrupt the I/O APIC hands over, into `s`.
    fn deliver(&mut self, s: &mut Step, d: crate::ioapic::Delivery) {
        use crate::ioapic::Mode;
        let mut targets = match d.mode {
            Mode::Fixed | Mode::LowestPriority => self.apics.targets(u32::from(d.dest), d.logical),
            mode => {
                if let Some(n) = self.note(Note::IoApic { line: d.line, mode }) {
                    s.note = Some(n);
                }
                return;
            }
        };
        if d.mode == Mode::LowestPriority {
            targets &= targets.wrapping_neg(); // the first of them
        }
        if targets == 0 || d.vector < 16 {
            return; // nobody takes it (or an illegal vector: dropped, as APICs do)
        }
        if d.level {
            for v in (0..16).filter(|v| targets & (1 << v) != 0) {
                self.apics.accepted(v, d.vector, true);
            }
        }
        // At most one delivery per line per step: never full.
        let _ = self.irqs.push((targets, d.vector));
    }

    /// vCPU `vcpu`'s APIC timer went off: the vector to raise on it, if any.
    pub fn timer_fired(&mut self, vcpu: usize) -> Option<u8> {
        self.apics.timer_fired(vcpu)
    }

    /// The reply to a CPUID exit of vCPU `vcpu` for `leaf` (the guest's
    /// eax) and `sub` (its ecx); `cpu(leaf, subleaf)` asks the real CPU.
    /// A CPUID exit needs nothing else: no device, clock or note, so the
    /// VMM answers it with this alone (as [`Platform::on_exit`] does).
    pub fn cpuid(&self, vcpu: usize, (leaf, sub): (u32, u32), cpu: impl Fn(u32, u32) -> [u32; 4]) -> Reply {
        let real = if cpuid::asks_cpu(leaf) { cpu(leaf, sub) } else { [0; 4] };
        let mut regs = cpuid::answer(leaf, sub, real, vcpu as u32, self.tsc_khz);
        if (leaf, sub) == (cpuid::XSAVE_LEAF, 0) {
            let size = cpuid::xsave_size(regs[0], &cpu);
            (regs[1], regs[2]) = (size, size);
        } else if (leaf, sub) == (cpuid::XSAVE_LEAF, 1) {
            let offered = cpuid::answer(leaf, 0, cpu(leaf, 0), vcpu as u32, self.tsc_khz)[0];
            regs[1] = cpuid::xsave_compacted_size(offered, &cpu);
        } else if leaf == 1 {
            // TSC-deadline mode as the APICs offer it.
            regs[2] &= !LEAF1_ECX_TSC_DEADLINE;
            if self.apics.tsc_deadline() {
                regs[2] |= LEAF1_ECX_TSC_DEADLINE;
            }
        }
        let actions = Action::ADVANCE | Action::SET_RAX | Action::SET_RBX | Action::SET_RCX | Action::SET_RDX;
        Reply { regs: regs.map(u64::from), ..Reply::only(actions) }
    }

    /// Whether `exit` is a plain OUT to the UART (not a string one), which
    /// [`Platform::uart_out`] answers.
    pub fn is_uart_out(exit: &Exit) -> bool {
        exit.reason == ExitReason::PortOut
            && Self::uart_port((exit.qualification & 0xFFFF) as u16)
            && exit.qualification & ipc::vcpu::PORT_STRING == 0
    }

    /// Carries out a plain OUT to the UART ([`Platform::is_uart_out`]),
    /// answered with ADVANCE alone: the byte it sends out, if it sends one
    /// (its finished line in [`Platform::line`]), and whether it raised the
    /// UART's interrupt: then [`Platform::uart_rose`] makes its step. The
    /// VMM answers the common case without a [`Step`] (as
    /// [`Platform::on_exit`] does it, through both).
    pub fn uart_out(&mut self, exit: &Exit) -> UartWrite {
        self.begin();
        // The UART's registers are a byte wide: a wider OUT writes its
        // low byte (the other bytes go to ports the UART does not own).
        let (reg, value) =
            (((exit.qualification & 0xFFFF) as u16).wrapping_sub(uart::BASE), exit.regs[0] as u8);
        let was = self.uart.interrupt();
        let tx = self.uart.transmits(reg).then_some(value);
        // Stored only when a line is done: moving the empty Option in
        // costs a copy of the whole line buffer.
        if let Some(line) = self.uart.write(reg, value) {
            self.line = Some(line);
        }
        UartWrite { tx, rose: !was && self.uart.interrupt() }
    }

    /// The step of the UART write [`Platform::uart_out`] just carried out
    /// when it raised the UART's interrupt (`rose`): sending `tx`, the
    /// interrupt's edge on I/O APIC pin [`UART_PIN`] ([`Platform::irqs`]),
    /// or a note if the pin's programming is one the VMM does not deliver.
    pub fn uart_rose(&mut self, tx: Option<u8>) -> Step {
        let mut s = Step { tx, ..Step::reply(Action::ADVANCE) };
        self.uart_edge(&mut s, false);
        s
    }

    /// Answers `exit` of vCPU `vcpu`; `cpu(leaf, subleaf)` asks the real CPU.
    pub fn on_exit(&mut self, vcpu: usize, exit: &Exit, cpu: impl Fn(u32, u32) -> [u32; 4]) -> Step {
        self.begin();
        let rip = exit.rip;
        match exit.reason {
            ExitReason::Cpuid => {
                let mut s = Step::reply(Action::empty());
                s.reply = self.cpuid(vcpu, (exit.regs[0] as u32, exit.regs[2] as u32), cpu);
                s
            }
            ExitReason::PortOut | ExitReason::PortIn => self.port(exit),
            ExitReason::MsrRead | ExitReason::MsrWrite => self.msr(vcpu, exit),
            ExitReason::Hypercall => self.inject(UD, None, Note::Hypercall { rip }),
            ExitReason::Hlt => self.halt(vcpu),
            ExitReason::MemoryFault => {
                self.stop(status::UNMAPPED, Note::Unmapped { gpa: exit.gpa, access: exit.qualification, rip })
            }
            ExitReason::TripleFault => self.stop(status::TRIPLE_FAULT, Note::TripleFault { rip }),
            ExitReason::EntryFailed => {
                let note = Note::EntryFailed { reason: exit.qualification, rip, regs: exit.regs };
                self.stop(status::UNHANDLED, note)
            }
            ExitReason::ExceptionLoop => {
                self.stop(status::STUCK, Note::ExceptionLoop { vector: exit.qualification, rip })
            }
            ExitReason::Other => self.stop(
                status::UNHANDLED,
                Note::Unknown { reason: exit.reason, code: exit.qualification, rip },
            ),
        }
    }

    /// Whether guest-physical `gpa` is a device's (an MMIO fault there is
    /// for [`Platform::mmio`]; elsewhere [`Platform::on_exit`] stops the
    /// guest as having touched memory nothing is at).
    pub fn mmio_device(&self, gpa: u64) -> bool {
        gpa.wrapping_sub(crate::xapic::BASE) < crate::xapic::SIZE
            || gpa.wrapping_sub(crate::ioapic::BASE) < crate::ioapic::SIZE
            || self.disks.as_ref().is_some_and(|d| d.owns_gpa(gpa))
    }

    /// Completes the MMIO exit `exit` of vCPU `vcpu` (at a device's address,
    /// [`Platform::mmio_device`]) as `decoded` says, its general registers
    /// `regs` as read at the exit (or why it could not be decoded); `ram`
    /// is the guest's RAM, where a disk's queues must lie.
    pub fn mmio(
        &mut self,
        vcpu: usize,
        exit: &Exit,
        decoded: Result<crate::emulate::Decoded, MmioWhy>,
        ram: &impl vq::GuestMemory,
    ) -> Step {
        self.begin();
        let (gpa, rip) = (exit.gpa, exit.rip);
        if exit.qualification & 4 != 0 || !self.mmio_device(gpa) {
            return self.stop(status::UNMAPPED, Note::Unmapped { gpa, access: exit.qualification, rip });
        }
        let crate::emulate::Decoded { access, regs, next_rip } = match decoded {
            Ok(d) => d,
            Err(why) => return self.stop(status::UNHANDLED, Note::MmioRefused { gpa, rip, why }),
        };
        // The exit gives no instruction length for a fault: the decoder's.
        let mut s = Step::reply(Action::SET_RIP);
        s.reply.rip = next_rip;
        if let Some(d) = self.disks.as_mut().filter(|d| d.owns_gpa(gpa)) {
            match access.op {
                crate::mmio::Op::Read { .. } => {
                    let value = d.mmio_read(gpa, access.size);
                    s.write = crate::emulate::completion(&access, &regs, value);
                }
                crate::mmio::Op::Write { value } => {
                    for m in d.mmio_write(gpa, access.size, value, ram) {
                        self.deliver_msi(m);
                    }
                }
            }
            return s;
        }
        let io = gpa.wrapping_sub(crate::ioapic::BASE);
        if io < crate::ioapic::SIZE {
            // An access crossing the page's end reaches only its bytes.
            match access.op {
                crate::mmio::Op::Read { .. } => {
                    let value = self.ioapic.read(io, access.size);
                    s.write = crate::emulate::completion(&access, &regs, value);
                }
                crate::mmio::Op::Write { value } => {
                    if let Some(d) = self.ioapic.write(io, access.size, value) {
                        self.deliver(&mut s, d);
                    }
                }
            }
            return s;
        }
        let offset = gpa - crate::xapic::BASE;
        match access.op {
            crate::mmio::Op::Read { .. } => {
                let value = self.apics.mmio_read(vcpu, offset, access.size);
                s.write = crate::emulate::completion(&access, &regs, value);
            }
            crate::mmio::Op::Write { value } => {
                let action = self.apics.mmio_write(vcpu, offset, access.size, value);
                self.apic_action(&mut s, action, rip);
            }
        }
        s
    }

    /// What an APIC register write asks of the VMM, into `s`.
    fn apic_action(&mut self, s: &mut Step, action: ApicAction, rip: u64) {
        match action {
            ApicAction::None => {}
            ApicAction::Start { vcpu, vector } => s.start = Some((vcpu, vector)),
            ApicAction::Ipi { targets, vector } => s.ipi = Some((targets, vector)),
            ApicAction::Timer { vcpu, delay_ns, period_ns } => s.timer = Some((vcpu, delay_ns, period_ns)),
            ApicAction::Unsupported { icr } => s.note = self.note(Note::Ipi { icr, rip }),
            // Only after `Apics::accepted` of a level-triggered interrupt
            // from the I/O APIC: its remote IRR ends.
            ApicAction::Eoi { vector } => {
                for d in self.ioapic.eoi(vector) {
                    self.deliver(s, d);
                }
            }
        }
    }

    /// What is left of the guest's last line of output.
    pub fn flush(&mut self) -> Option<Line> {
        self.uart.flush()
    }

    /// vCPU `vcpu` halted with interrupts off (the kernel keeps a halt with
    /// them on): only an NMI, INIT or SMI could wake it, and this platform
    /// sends none to a started vCPU, so it stops. The guest stops with it,
    /// as halted, once none of its started vCPUs runs; until then the
    /// others run on (Linux's `poweroff` halts every CPU so but the one
    /// that then powers the machine off).
    fn halt(&mut self, vcpu: usize) -> Step {
        self.halted |= 1 << vcpu.min(15);
        if self.apics.started() & !self.halted == 0 {
            return self.stop(status::HALTED, Note::Halted);
        }
        let mut s = Step::reply(Action::STOP);
        s.note = Some(Note::VcpuHalted { vcpu: vcpu as u8 });
        s
    }

    /// The platform after the guest reset its machine ([`Note::Reset`]),
    /// as a PC's after a reset: every device as at power-on (the UART, the
    /// local APICs, their MSRs, the I/O APIC, the PIT, the PM timer; no
    /// vCPU started or halted, no timer due) but the CMOS clock, which
    /// keeps what a PC's battery keeps ([`crate::rtc::Rtc::reset`]: the
    /// guest's date, its memory 0x0E–0x7F). The virtual time runs on (it
    /// never goes back), and the notes said stay counted: a guest that
    /// reboots says no more than one that does not. The VMM disarms the
    /// timers it armed for the old boot ([`Platform::timers_to_disarm`]).
    pub fn reset(&mut self) {
        let n = self.apics.vcpus();
        self.apics = if self.apics.tsc_deadline() {
            Apics::with_tsc_deadline(n, u64::from(self.tsc_khz))
        } else {
            Apics::new(n)
        };
        self.uart = Uart::default();
        self.msrs = self.msrs.after_reset();
        self.pmtimer = crate::pmtimer::PmTimer::default();
        self.ioapic = crate::ioapic::IoApic::new();
        self.pit = crate::pit::Pit::new();
        self.rtc.reset();
        if let Some(d) = &mut self.disks {
            d.reset();
        }
        (self.pit_due, self.rtc_line, self.rtc_due, self.halted) = (None, false, None, 0);
        self.begin();
    }

    /// The bits of the timer notification a reset disarms: every vCPU's
    /// APIC timer, the PIT's and the CMOS clock's.
    pub fn timers_to_disarm(&self) -> u64 {
        ((1u64 << self.apics.vcpus()) - 1) | PIT_TIMER_BIT | RTC_TIMER_BIT
    }

    /// vCPU `vcpu`, started by the guest, could not be made: it never
    /// runs, and the guest stops as halted once the others have halted
    /// (not wait for it for ever).
    pub fn never_runs(&mut self, vcpu: usize) {
        self.halted |= 1 << vcpu.min(15);
    }

    fn stop(&mut self, code: u64, note: Note) -> Step {
        let mut s = Step::reply(Action::STOP);
        (s.stop, s.note) = (Some(code), Some(note));
        self.line = self.uart.flush();
        s
    }

    fn inject(&mut self, vector: u8, error: Option<u32>, note: Note) -> Step {
        let mut s = Step::reply(Action::INJECT);
        s.reply.inject = Some((vector, error));
        s.note = self.note(note);
        s
    }

    /// `note`, while fewer than [`NOTES_MAX`] of its kind were said (an
    /// ignored port only the first time for that port and direction).
    fn note(&mut self, note: Note) -> Option<Note> {
        let Some(kind) = Kind::of(&note) else { return Some(note) };
        if let Note::Port { port, write, .. } = note {
            if self.ports_said.contains(&(port, write)) {
                return None;
            }
            // Full once NOTES_MAX were said: no more are said then.
            let _ = self.ports_said.push((port, write));
        }
        let n = &mut self.notes[kind as usize];
        *n = n.saturating_add(1);
        match *n {
            n if n < NOTES_MAX => Some(note),
            NOTES_MAX => Some(Note::Enough(kind)),
            _ => None,
        }
    }

    /// RDMSR and WRMSR: the platform's MSRs (`msr`), the APIC's registers,
    /// else #GP(0).
    fn msr(&mut self, vcpu: usize, exit: &Exit) -> Step {
        let rip = exit.rip;
        let msr = (exit.regs[2] & 0xFFFF_FFFF) as u32;
        let [rax, _, _, rdx] = exit.regs;
        let write = exit.reason == ExitReason::MsrWrite;
        let refused = Note::Msr { msr: u64::from(msr), write, rip };
        if !write {
            let value = match msr {
                IA32_TSC => self.guest_tsc(),
                _ => self.msrs.read(vcpu, msr).or_else(|| self.apics.read(vcpu, msr)),
            };
            let Some(value) = value else { return self.inject(GP, Some(0), refused) };
            let mut s = Step::reply(Action::ADVANCE | Action::SET_RAX | Action::SET_RDX);
            // RDMSR writes edx:eax (clearing both registers' top halves).
            s.reply.regs[0] = value & 0xFFFF_FFFF;
            s.reply.regs[3] = value >> 32;
            return s;
        }
        let value = (rdx << 32) | (rax & 0xFFFF_FFFF);
        match self.msrs.write(vcpu, msr, value) {
            Some(true) => return Step::reply(Action::ADVANCE),
            Some(false) => return self.inject(GP, Some(0), refused),
            None => {}
        }
        match self.apics.write(vcpu, msr, value) {
            None => self.inject(GP, Some(0), refused),
            Some(action) => {
                let mut s = Step::reply(Action::ADVANCE);
                self.apic_action(&mut s, action, rip);
                s
            }
        }
    }

    /// A write of `value` to the sleep or reset registers: the step, or
    /// None for another port.
    fn power(&mut self, port: u16, value: u8, rip: u64) -> Option<Step> {
        const SLP_EN: u8 = 1 << 5;
        const RST_CPU: u8 = 1 << 2;
        match port {
            acpi::SLEEP_CONTROL_PORT if value & SLP_EN != 0 => {
                if (value >> 2) & 7 == acpi::S5_SLP_TYP {
                    return Some(self.stop(status::PASSED, Note::PowerOff));
                }
                let mut s = Step::reply(Action::ADVANCE);
                s.note = self.note(Note::Sleep { value, rip });
                Some(s)
            }
            acpi::SLEEP_CONTROL_PORT | acpi::SLEEP_STATUS_PORT => Some(Step::reply(Action::ADVANCE)),
            acpi::RESET_PORT if value & RST_CPU != 0 => {
                Some(self.stop(status::RESET, Note::Reset { rip, keyboard: false }))
            }
            acpi::RESET_PORT => Some(Step::reply(Action::ADVANCE)),
            KBD_COMMAND_PORT if value == KBD_RESET => {
                Some(self.stop(status::RESET, Note::Reset { rip, keyboard: true }))
            }
            _ => None,
        }
    }

    fn port(&mut self, exit: &Exit) -> Step {
        let port = (exit.qualification & 0xFFFF) as u16;
        let size = (exit.qualification >> 16) & 0xFF;
        let mask = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        };
        let write = exit.reason == ExitReason::PortOut;
        if exit.qualification & ipc::vcpu::PORT_STRING != 0 {
            // Done as one IN or OUT it would leave rcx, rsi/rdi and memory
            // as they were: a guest that relies on it must not go on wrong.
            let rep = exit.qualification & ipc::vcpu::PORT_REP != 0;
            return self.stop(status::UNHANDLED, Note::StringPort { port, write, rep, rip: exit.rip });
        }
        if let Some(d) = self.disks.as_mut().filter(|d| d.owns_port(port)) {
            return if write {
                let (irqs, kick) = d.port_out(port, size as u8, (exit.regs[0] & mask) as u32);
                let mut s = Step::reply(Action::ADVANCE);
                s.kick = kick.map(|(f, q)| (f as u8, q));
                for m in irqs {
                    self.deliver_msi(m);
                }
                s
            } else {
                let mut s = Step::reply(Action::ADVANCE | Action::SET_RAX);
                let value = u64::from(d.port_in(port, size as u8));
                s.reply.regs[0] = if size == 4 { value } else { (exit.regs[0] & !mask) | (value & mask) };
                s
            };
        }
        let uart = port.wrapping_sub(uart::BASE);
        if write {
            let value = exit.regs[0] & mask;
            if port == EXIT_PORT {
                let code = if value == EXIT_SUCCESS { status::PASSED } else { status::FAILED };
                return self.stop(code, Note::ExitPort { value });
            }
            let mut s = Step::reply(Action::ADVANCE);
            if uart < uart::PORTS {
                let w = self.uart_out(exit);
                return if w.rose { self.uart_rose(w.tx) } else { Step { tx: w.tx, ..s } };
            } else if let Some(power) = self.power(port, value as u8, exit.rip) {
                return power;
            } else if crate::pit::Pit::owns(port) {
                // A wider OUT writes its bytes to consecutive ports.
                for (i, p) in (0..size).zip(port..) {
                    if crate::pit::Pit::owns(p) {
                        self.pit.write(self.now_ns, p, (value >> (8 * i)) as u8);
                    }
                }
                s.pit_timer = Some(self.pit_arm());
            } else if crate::rtc::owns(port) {
                let wall = self.wall_ns.saturating_add(self.now_ns);
                for (i, p) in (0..size).zip(port..) {
                    self.rtc.write(wall, p, (value >> (8 * i)) as u8);
                }
                self.rtc_sync(&mut s);
            } else if port != MARK_PORT && !Self::clock_port(port) {
                s.note = self.note(Note::Port { port, write, rip: exit.rip });
            }
            return s;
        }
        let mut s = Step::reply(Action::ADVANCE | Action::SET_RAX);
        let timer = self.pmtimer.read(self.now_ns, port, size as u8);
        let was = self.uart.interrupt();
        let value = if uart < uart::PORTS {
            u64::from(self.uart.read(uart))
        } else if [acpi::SLEEP_CONTROL_PORT, acpi::SLEEP_STATUS_PORT, acpi::RESET_PORT].contains(&port) {
            0
        } else if let Some(t) = timer {
            u64::from(t)
        } else if crate::pit::Pit::owns(port) {
            // A wider IN reads its bytes from consecutive ports.
            (0..size).zip(port..).fold(0, |v, (i, p)| {
                let b = if crate::pit::Pit::owns(p) { self.pit.read(self.now_ns, p) } else { 0xFF };
                v | u64::from(b) << (8 * i)
            })
        } else if crate::rtc::owns(port) {
            let wall = self.wall_ns.saturating_add(self.now_ns);
            let v =
                (0..size).zip(port..).fold(0, |v, (i, p)| v | u64::from(self.rtc.read(wall, p)) << (8 * i));
            self.rtc_sync(&mut s);
            v
        } else {
            s.note = self.note(Note::Port { port, write, rip: exit.rip });
            mask
        };
        if uart < uart::PORTS {
            self.uart_edge(&mut s, was);
        }
        // IN writes only al, ax or eax (and eax's write clears the top half).
        let rax = if size == 4 { value } else { (exit.regs[0] & !mask) | (value & mask) };
        s.reply.regs[0] = rax;
        s
    }
}

#[cfg(test)]
mod tests;
