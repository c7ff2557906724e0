//! Serving the vCPU's exits: each is a call on the exit endpoint, answered
//! by the reply [`Platform::on_exit`] makes, until one stops the guest.

use ipc::guest::CONSOLE_INPUT_BIT;
use ipc::msg::Message;
use ipc::vcpu::{Action, Exit, ExitReason, Reply};
use ipc::{CapSlot, Rights};
use user::sys::Incoming;
use user::{arch, sys, time};
use vmm::platform::{MmioWhy, Platform, Step, MARK_PORT, PIT_TIMER_BIT, RTC_TIMER_BIT};
use vmm::status;

use crate::console::{say, Console};
use crate::link::Link;
use crate::setup::Guest;
use crate::{bad_entry, hostile};

/// The exits that need more than the exit message: an IN or OUT of the
/// clock's ports (the PM timer's, the PIT's: the time set first; the
/// x2APIC MSRs get it in line) and MMIO at a device's address (the vCPU's
/// state read, its instruction decoded). Out of line, so that the other
/// exits' path stays as short as it was.
#[inline(never)]
fn timed_or_mmio(
    platform: &mut Platform,
    guest: &Guest,
    thread: Option<CapSlot>,
    vcpu: usize,
    exit: &Exit,
    start_tsc: u64,
) -> Step {
    let port = matches!(exit.reason, ExitReason::PortIn | ExitReason::PortOut);
    if port && Platform::clock_port((exit.qualification & 0xFFFF) as u16) {
        platform.set_clock(virtual_ns(start_tsc));
    }
    if exit.reason == ExitReason::MemoryFault && platform.mmio_device(exit.gpa) {
        // The xAPIC page's timer registers count on the clock.
        platform.set_clock(virtual_ns(start_tsc));
        let decoded = match thread.map(sys::vcpu_state_read) {
            Some(Ok(state)) => vmm::emulate::decode(&guest.ram, &state, exit.gpa).map_err(MmioWhy::Refused),
            Some(Err(e)) => Err(MmioWhy::State(e.code())),
            None => Err(MmioWhy::State(ipc::Error::InvalidCapability.code())),
        };
        return platform.mmio(vcpu, exit, decoded, &guest.ram);
    }
    platform.on_exit(vcpu, exit, |_, _| [0; 4])
}

/// The guest's virtual time: ns since `start_tsc`, by the TSC.
pub fn virtual_ns(start_tsc: u64) -> u64 {
    let ticks = u128::from(time::now().wrapping_sub(start_tsc));
    let per_ms = u128::from(time::tsc_per_ms().max(1));
    u64::try_from(ticks * 1_000_000 / per_ms).unwrap_or(u64::MAX)
}

/// What the CPU answers CPUID `leaf`, `subleaf` with, in the VMM.
fn cpu(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// The platform of `guest` with `vcpus` vCPUs, and the TSC at its virtual
/// time 0 (now): it lives across the guest's reboots.
pub fn platform(guest: &Guest, vcpus: usize) -> (Platform, u64) {
    let tsc_khz = u32::try_from(time::tsc_per_ms()).unwrap_or(u32::MAX);
    // "AuthenticAMD": ebx of leaf 0 is "Auth", edx "enti", ecx "cAMD".
    let [_, ebx, ecx, edx] = cpu(0, 0);
    let amd = (ebx, edx, ecx) == (0x6874_7541, 0x6974_6E65, 0x444D_4163);
    let start_tsc = time::now();
    let machine = vmm::rtc::Machine { below_4g: guest.ram.end, above_4g: 0, vcpus: vcpus as u8 };
    let wall = guest.wall.map_or(0, |w| vmm::rtc::wall_ns(&w, start_tsc, u64::from(tsc_khz)));
    let platform =
        Platform::new(vcpus, tsc_khz).with_tsc_deadline(start_tsc).on_amd(amd).with_rtc(machine, wall);
    (platform, start_tsc)
}

/// Answers the exits of the guest's `vcpus` vCPUs on `platform` (its
/// virtual time 0 at `start_tsc`) until it stops; returns the VMM's exit
/// status ([`status::RESET`]: the guest reset its machine, for the caller
/// to restart it, [`vmm::reboot`]). With `hostile`, first tries replies
/// the kernel must refuse; with `bad_entry`, has the CPU refuse an entry
/// ([`bad_entry`]). The timer notification is bound to this thread.
///
/// Every vCPU calls the one exit endpoint, vCPU `i` with badge `i`, so one
/// thread serves them all, one exit at a time (those of the others queue
/// meanwhile), and the platform needs no lock. The first vCPU runs from the
/// start; the others when the guest starts them (INIT and start-up IPIs,
/// [`vmm::apic`]), vCPU `i` on CPU `i` if there is one, else on the VMM's.
/// Their APIC timers are kernel timers on one notification bound to this
/// thread (bit `i` for vCPU `i`), so a timer ends its wait for exits too.
///
/// The guest's console (`link`, if `mgmt` gave one): its input is given to
/// the UART when the guest touches the UART and when `mgmt` says input
/// came ([`ipc::guest::CONSOLE_INPUT_BIT`]); each byte it sends goes out,
/// pushed at a newline, a full message, or its first exit that is not a
/// UART access.
pub fn serve(
    guest: &Guest,
    (platform, start_tsc): (&mut Platform, u64),
    console: &Console,
    mut link: Option<&mut Link>,
    (hostile, bad_entry): (bool, bool),
    vcpus: usize,
) -> u64 {
    let mut marks = Marks::default();
    // Each started vCPU's thread, for its interrupts.
    let mut threads: [Option<CapSlot>; vmm::apic::MAX_VCPUS] = [None; vmm::apic::MAX_VCPUS];
    threads[0] = Some(guest.vcpu0);
    let mut next = match sys::recv_any(guest.exits) {
        Ok(got) => got,
        Err(e) => {
            say!(console, "waiting for the first exit failed: {e:?}: stopped");
            return status::UNHANDLED;
        }
    };
    if hostile {
        if let Err(code) = hostile::probe(console) {
            return code;
        }
        if let Err(code) = hostile::state_probe(console, guest.vcpu0, guest.domain) {
            return code;
        }
    }
    loop {
        // Looked at where it lies: moving the message out copies it.
        let (badge, msg) = match next {
            Incoming::Call { badge, ref msg } => (badge, msg),
            Incoming::Notified(bits) => {
                for v in (0..vcpus).filter(|v| bits & (1 << v) != 0) {
                    if let Some(vector) = platform.timer_fired(v) {
                        interrupt(&threads, 1 << v, vector, console);
                    }
                }
                if let Some(l) = link.as_deref_mut() {
                    l.flush();
                    if bits & CONSOLE_INPUT_BIT != 0 {
                        if let Some(step) = l.feed(platform, console) {
                            irqs(guest, &threads, platform, &step, console);
                        }
                    }
                }
                for (bit, fired) in [
                    (PIT_TIMER_BIT, Platform::pit_fired as fn(&mut Platform) -> Step),
                    (RTC_TIMER_BIT, Platform::rtc_fired),
                ] {
                    if bits & bit != 0 {
                        platform.set_clock(virtual_ns(start_tsc));
                        let step = fired(platform);
                        irqs(guest, &threads, platform, &step, console);
                        if let Some(note) = &step.note {
                            say!(console, "{note}");
                        }
                    }
                }
                // No exit awaits an answer: only receive.
                next = match sys::recv_any(guest.exits) {
                    Ok(got) => got,
                    Err(e) => {
                        say!(console, "waiting for an exit failed: {e:?}: stopped");
                        return status::UNHANDLED;
                    }
                };
                continue;
            }
        };
        let Some(vcpu) = usize::try_from(badge).ok().filter(|&v| v < vcpus) else {
            say!(console, "an exit from an unknown vCPU (badge {badge:#x}): stopped");
            stop(console);
            return status::UNHANDLED;
        };
        if let Some(leaf) = Exit::cpuid_of(msg) {
            // CPUID wants its answer alone (Platform::cpuid), from its leaf
            // and sub-leaf alone: no device, clock, console input, note or
            // step to carry out; only the console's output is pushed, as
            // at every exit but a UART's.
            if let Some(l) = link.as_deref_mut() {
                l.flush();
            }
            let reply = platform.cpuid(vcpu, leaf, cpu).to_message();
            let Some(got) = answer_and_wait(guest, console, &reply) else { return status::UNHANDLED };
            next = got;
            continue;
        }
        let Some(exit) = Exit::from_message(msg) else {
            say!(console, "an exit with the unknown label {:#x}: stopped", msg.label);
            stop(console);
            return status::UNHANDLED;
        };
        if exit.reason == ExitReason::PortOut && (exit.qualification & 0xFFFF) as u16 == MARK_PORT {
            marks.mark(guest, console);
        }
        let port = (exit.qualification & 0xFFFF) as u16;
        let uart =
            matches!(exit.reason, ExitReason::PortIn | ExitReason::PortOut) && Platform::uart_port(port);
        if let Some(l) = link.as_deref_mut() {
            if uart {
                if let Some(step) = l.feed(platform, console) {
                    irqs(guest, &threads, platform, &step, console);
                }
            } else {
                l.flush();
            }
        }
        let thread = || threads.get(vcpu).copied().flatten();
        let clock_out =
            exit.reason == ExitReason::PortOut && Platform::clock_port((exit.qualification & 0xFFFF) as u16);
        let mut step = if Platform::is_uart_out(&exit) {
            // A byte to the UART wants ADVANCE alone (Platform::uart_out),
            // but where it raised the UART's interrupt: then its step.
            let w = platform.uart_out(&exit);
            if w.rose {
                platform.uart_rose(w.tx)
            } else {
                if let Some(line) = platform.line() {
                    console.guest(line);
                }
                if let (Some(l), Some(b)) = (link.as_deref_mut(), w.tx) {
                    l.output(b);
                }
                let reply = Reply::only(Action::ADVANCE).to_message();
                let Some(got) = answer_and_wait(guest, console, &reply) else { return status::UNHANDLED };
                next = got;
                continue;
            }
        } else if clock_out || matches!(exit.reason, ExitReason::MemoryFault | ExitReason::PortIn) {
            timed_or_mmio(platform, guest, thread(), vcpu, &exit, start_tsc)
        } else {
            if matches!(exit.reason, ExitReason::MsrRead | ExitReason::MsrWrite)
                && Platform::clock_msr(exit.regs[2] as u32)
            {
                platform.set_clock(virtual_ns(start_tsc));
            }
            platform.on_exit(vcpu, &exit, cpu)
        };
        if let Some(w) = step.write {
            let done = thread().ok_or(ipc::Error::InvalidCapability);
            if let Err(e) = done.and_then(|t| sys::vcpu_state_write(t, &vmm::emulate::write_of(w))) {
                say!(console, "completing an MMIO load failed: {e:?}: stopped");
                stop(console);
                return status::UNHANDLED;
            }
        }
        if let Some(r) = bad_entry::answer(&exit).filter(|_| bad_entry) {
            (step.reply, step.note) = (r, None);
        }
        if let Some((ap, vector)) = step.start {
            if let Some(slot) = threads.get_mut(usize::from(ap)) {
                *slot = start_ap(guest, console, ap, vector);
                if slot.is_none() {
                    platform.never_runs(usize::from(ap));
                }
            }
        }
        if let Some((targets, vector)) = step.ipi {
            interrupt(&threads, targets, vector, console);
        }
        irqs(guest, &threads, platform, &step, console);
        if let Some((v, delay_ns, period_ns)) = step.timer {
            // Microseconds, rounded up: a timer never fires early. A delay
            // of 0 disarms it. A period shorter than the kernel keeps is
            // lengthened to it, as KVM lengthens one under 200 us.
            let us = |ns: u64| ns.div_ceil(1000);
            let period = match us(period_ns) {
                0 => 0,
                p => p.max(ipc::syscall::TIMER_MIN_PERIOD_US),
            };
            if let Err(e) = sys::timer_set(guest.timers, 1 << v, us(delay_ns), period) {
                say!(console, "cannot set vCPU {v}'s timer: {e:?}");
            }
        }
        if let Some(line) = platform.line() {
            console.guest(line);
        }
        if let (Some(l), Some(b)) = (link.as_deref_mut(), step.tx) {
            l.output(b);
        }
        if let Some(note) = &step.note {
            say!(console, "{note}");
        }
        let reply = step.reply.to_message();
        if let Some(code) = step.stop {
            if let Some(l) = link.as_deref_mut() {
                l.flush();
            }
            if bad_entry && exit.reason == ExitReason::EntryFailed {
                return bad_entry::watch(guest, console).err().unwrap_or(code);
            }
            answer(console, &reply);
            return code;
        }
        let Some(got) = answer_and_wait(guest, console, &reply) else { return status::UNHANDLED };
        next = got;
    }
}

/// Answers the exit received with `reply` and waits for what comes next;
/// None (said) if that failed.
fn answer_and_wait(guest: &Guest, console: &Console, reply: &Message) -> Option<Incoming> {
    match sys::reply_recv_any(guest.exits, reply) {
        Ok(got) => Some(got),
        Err(e) => {
            say!(console, "answering an exit failed: {e:?}: stopped");
            None
        }
    }
}

/// The guest's marks (writes to [`MARK_PORT`]): how many, and the guest's
/// CPU time and the TSC at the last one.
#[derive(Default)]
struct Marks {
    count: u32,
    cpu_us: u64,
    tsc: u64,
}

impl Marks {
    /// Notes a mark; from the second on, says the guest's CPU time and the
    /// wall-clock time since the previous one:
    /// `cpu time between marks <n-1> and <n>: <us> us in <us> us`.
    fn mark(&mut self, guest: &Guest, console: &Console) {
        let tsc = arch::rdtsc();
        let cpu_us = match sys::domain_info(guest.domain) {
            Ok(info) => info.cpu_us,
            Err(e) => {
                say!(console, "mark: cannot read the guest's CPU time: {e:?}");
                return;
            }
        };
        self.count += 1;
        if self.count > 1 {
            let wall_us = tsc.saturating_sub(self.tsc).saturating_mul(1000) / time::tsc_per_ms();
            say!(
                console,
                "cpu time between marks {} and {}: {} us in {wall_us} us",
                self.count - 1,
                self.count,
                cpu_us.saturating_sub(self.cpu_us)
            );
        }
        (self.cpu_us, self.tsc) = (cpu_us, tsc);
    }
}

/// Starts vCPU `ap` as a start-up IPI with `vector` asks: in real mode at
/// 0x1000 × `vector`, its exits on the exit endpoint with badge `ap`, on
/// CPU `ap` if there is one, else on this thread's. A vCPU that cannot be
/// made is said and never runs, as a broken processor would not.
fn start_ap(guest: &Guest, console: &Console, ap: u8, vector: u8) -> Option<CapSlot> {
    let exits = match sys::cap_mint(guest.exits, Rights::WRITE, u64::from(ap)) {
        Ok(e) => e,
        Err(e) => {
            say!(console, "cannot make vCPU {ap}'s exit capability: {e:?}: it stays stopped");
            return None;
        }
    };
    let at = u64::from(vector) << 12;
    let started = |place: core::fmt::Arguments<'_>| {
        say!(console, "vCPU {ap} started at {at:#x} (start-up IPI {vector:#x}) on {place}");
    };
    let made = match sys::vcpu_create_ap(guest.domain, exits, vector, Some(u16::from(ap))) {
        Ok(t) => {
            started(format_args!("cpu {ap}"));
            Ok(t)
        }
        Err(ipc::Error::NotSupported) => {
            sys::vcpu_create_ap(guest.domain, exits, vector, None).inspect(|_| {
                started(format_args!("the VMM's cpu"));
            })
        }
        Err(e) => Err(e),
    };
    made.map_err(|e| say!(console, "cannot start vCPU {ap}: {e:?}: it stays stopped")).ok()
}

/// Raises `vector` on each started vCPU whose bit is set in `targets`; an
/// IPI to a vCPU not started is lost, as on a PC.
fn interrupt(threads: &[Option<CapSlot>], targets: u16, vector: u8, console: &Console) {
    for (i, t) in threads.iter().enumerate().filter(|&(i, _)| targets & (1 << i) != 0) {
        if let Some(t) = t {
            if let Err(e) = sys::vcpu_interrupt(*t, vector) {
                say!(console, "interrupt {vector:#x} to vCPU {i} failed: {e:?}");
            }
        }
    }
}

/// The I/O APIC's interrupts of `step` (kept in `platform`), and the PIT's
/// and the CMOS clock's timers it arms
/// (microseconds, rounded up: never early; 0 disarms). Looked at in line,
/// done out of line: most exits have neither, and a call on each cost a
/// CPUID round trip 24 instructions.
#[inline(always)]
fn irqs(guest: &Guest, threads: &[Option<CapSlot>], platform: &Platform, step: &Step, console: &Console) {
    if !platform.irqs().is_empty() || step.pit_timer.is_some() || step.rtc_timer.is_some() {
        raise(guest, threads, platform, step, console);
    }
}

#[inline(never)]
fn raise(guest: &Guest, threads: &[Option<CapSlot>], platform: &Platform, step: &Step, console: &Console) {
    for &(targets, vector) in platform.irqs() {
        interrupt(threads, targets, vector, console);
    }
    for (ns, bit, what) in
        [(step.pit_timer, PIT_TIMER_BIT, "the PIT's"), (step.rtc_timer, RTC_TIMER_BIT, "the CMOS clock's")]
    {
        if let Some(ns) = ns {
            if let Err(e) = sys::timer_set(guest.timers, bit, ns.div_ceil(1000), 0) {
                say!(console, "cannot set {what} timer: {e:?}");
            }
        }
    }
}

/// Tells the vCPU to stop for good.
fn stop(console: &Console) {
    let reply = Reply::only(Action::STOP);
    answer(console, &reply.to_message());
}

fn answer(console: &Console, reply: &Message) {
    if let Err(e) = sys::reply(reply) {
        say!(console, "the last reply failed: {e:?}");
    }
}
