//! Host tests of what each exit gets, and of the lines the system tests read.

use super::*;

fn exit(reason: ExitReason, qualification: u64, gpa: u64, regs: [u64; 4]) -> Exit {
    Exit { reason, rip: 0x10_0040, len: 1, qualification, gpa, regs }
}

fn out(port: u16, size: u64, value: u64) -> Exit {
    exit(ExitReason::PortOut, u64::from(port) | size << 16, 0, [value, 0, 0, 0])
}

fn inp(port: u16, size: u64, rax: u64) -> Exit {
    exit(ExitReason::PortIn, u64::from(port) | size << 16, 0, [rax, 0, 0, 0])
}

fn no_cpu(_: u32, _: u32) -> [u32; 4] {
    panic!("the CPU was asked")
}

#[test]
fn serial_output_becomes_lines_and_the_exit_port_ends_the_guest() {
    let mut p = Platform::new(1, 0);
    let mut lines = Vec::new();
    for b in b"hi\n" {
        let s = p.on_exit(0, &out(0x3f8, 1, u64::from(*b) | 0xAB00), no_cpu);
        assert_eq!((s.reply.actions, s.stop), (Action::ADVANCE, None));
        lines.extend(p.line().cloned());
    }
    assert_eq!(lines, ["hi"]);
    p.on_exit(0, &out(0x3f8, 1, u64::from(b'x')), no_cpu);
    let s = p.on_exit(0, &out(0xf4, 1, 0xAB00), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::STOP, Some(status::PASSED)), "only al is written");
    assert_eq!(p.line().map(|l| l.as_str()), Some("x"), "the unfinished line is kept");
    assert_eq!(s.note.unwrap().to_string(), "exit port 0xf4: exit code 0");
    let s = p.on_exit(0, &out(0xf4, 4, 0x1_0000_0003), no_cpu);
    assert_eq!((s.stop, s.note), (Some(status::FAILED), Some(Note::ExitPort { value: 3 })));
    assert_eq!(s.note.unwrap().to_string(), "exit port 0xf4: exit code 3");
    let s = p.on_exit(0, &out(0xf4, 1, 0x10), no_cpu);
    assert_eq!(s.stop, Some(status::FAILED), "QEMU's own success value 0x10 is exit code 16 here");
}

#[test]
fn port_reads_merge_into_rax() {
    let mut p = Platform::new(1, 0);
    let s = p.on_exit(0, &inp(0x3fd, 1, 0xDEAD_BEEF_1234_5678), no_cpu);
    assert_eq!(s.reply.actions, Action::ADVANCE | Action::SET_RAX);
    assert_eq!(s.reply.regs[0], 0xDEAD_BEEF_1234_5660, "only al changes");
    let s = p.on_exit(0, &inp(0x60, 2, 0xFFFF_0000_0000_0000), no_cpu);
    assert_eq!(s.reply.regs[0], 0xFFFF_0000_0000_FFFF, "nothing there: all ones");
    assert_eq!(s.note.unwrap().to_string(), "read of port 0x60 at rip 0x100040 ignored");
    let s = p.on_exit(0, &inp(0x3fd, 4, u64::MAX), no_cpu);
    assert_eq!(s.reply.regs[0], 0x60, "a 32-bit IN clears the upper half");
}

#[test]
fn cpuid_follows_the_policy() {
    let mut p = Platform::new(1, 0);
    let s = p.on_exit(0, &exit(ExitReason::Cpuid, 0, 0, [1, 0, 0, 0]), |leaf, sub| {
        assert_eq!((leaf, sub), (1, 0));
        [0x906, 0x800, 1 << 5, 0x1]
    });
    let all = Action::ADVANCE | Action::SET_RAX | Action::SET_RBX | Action::SET_RCX | Action::SET_RDX;
    assert_eq!(s.reply.actions, all);
    assert_eq!(s.reply.regs, [0x906, 0x800, (1 << 31) | (1 << 21), 0x201], "VMX hidden; hypervisor, x2APIC");
    let s = p.on_exit(0, &exit(ExitReason::Cpuid, 0, 0, [0xFFFF_FFFF_4000_0000, 0, 0, 0]), no_cpu);
    assert_eq!(s.reply.regs[0], 0x4000_0010, "the leaf is eax, not rax: the last hypervisor leaf");
}

#[test]
fn refused_instructions_get_exceptions_and_bounded_notes() {
    let mut p = Platform::new(1, 0);
    let s = p.on_exit(0, &exit(ExitReason::MsrRead, 0, 0, [0, 0, 0x3A, 0]), no_cpu);
    assert_eq!((s.reply.actions, s.reply.inject), (Action::INJECT, Some((13, Some(0)))));
    assert_eq!(s.note.unwrap().to_string(), "rdmsr of MSR 0x3a at rip 0x100040: #GP(0) injected");
    let s = p.on_exit(0, &exit(ExitReason::Hypercall, 0, 0, [0; 4]), no_cpu);
    assert_eq!((s.reply.actions, s.reply.inject), (Action::INJECT, Some((6, None))));
    assert_eq!(ipc::vcpu::Reply::decode(&s.reply.to_message()), Ok(s.reply), "the kernel accepts it");
    let notes: Vec<_> =
        (0..20).map(|_| p.on_exit(0, &exit(ExitReason::MsrWrite, 0, 0, [0; 4]), no_cpu).note).collect();
    assert_eq!(notes.iter().flatten().count(), (NOTES_MAX - 1) as usize, "the first MSR note was the rdmsr");
    assert_eq!(notes.iter().flatten().last(), Some(&Note::Enough(Kind::Msr)));
    assert_eq!(Note::Enough(Kind::Msr).to_string(), "(further refused MSR accesses are not logged)");
    // Hypercalls keep their own count: the MSRs' used up theirs.
    let s = p.on_exit(0, &exit(ExitReason::Hypercall, 0, 0, [0; 4]), no_cpu);
    assert_eq!(s.note, Some(Note::Hypercall { rip: 0x100040 }));
}

/// An ignored port is said once per port and direction, and ports have
/// their own count: a guest hammering PCI's 0xCF8/0xCFC leaves room for
/// the notes that matter.
#[test]
fn ignored_ports_are_said_once_each_and_counted_apart() {
    let mut p = Platform::new(1, 0);
    let port = |p: &mut Platform, reason, port: u64| {
        p.on_exit(0, &exit(reason, (1 << 16) | port, 0, [0; 4]), no_cpu).note
    };
    let mut said = Vec::new();
    for _ in 0..10 {
        said.extend(port(&mut p, ExitReason::PortOut, 0xCF8));
        said.extend(port(&mut p, ExitReason::PortIn, 0xCFC));
    }
    assert_eq!(
        said,
        [
            Note::Port { port: 0xCF8, write: true, rip: 0x100040 },
            Note::Port { port: 0xCFC, write: false, rip: 0x100040 }
        ]
    );
    assert!(port(&mut p, ExitReason::PortIn, 0xCF8).is_some(), "a read of 0xCF8 is another");
    let more: Vec<_> = (0x300..0x310).filter_map(|q| port(&mut p, ExitReason::PortIn, q)).collect();
    assert_eq!(more.len() as u32, NOTES_MAX - 3);
    assert_eq!(more.last(), Some(&Note::Enough(Kind::Port)));
    let s = p.on_exit(0, &exit(ExitReason::MsrRead, 0, 0, [0, 0, 0x3A, 0]), no_cpu);
    assert!(matches!(s.note, Some(Note::Msr { .. })), "MSRs keep their own count");
}

#[test]
fn fatal_exits_stop_the_guest_with_their_status() {
    let mut p = Platform::new(1, 0);
    let cases = [
        (exit(ExitReason::Hlt, 0, 0, [0; 4]), status::HALTED, "halted"),
        (
            exit(ExitReason::MemoryFault, 1, 0x4000_0000, [0; 4]),
            status::UNMAPPED,
            "access to unmapped guest-physical 0x40000000 (read) at rip 0x100040: stopped",
        ),
        (
            exit(ExitReason::MemoryFault, 2, 0xFEE0_0000, [0; 4]),
            status::UNMAPPED,
            "access to unmapped guest-physical 0xfee00000 (write) at rip 0x100040: stopped",
        ),
        (
            exit(ExitReason::TripleFault, 0, 0, [0; 4]),
            status::TRIPLE_FAULT,
            "triple fault at rip 0x100040: stopped",
        ),
        (
            exit(ExitReason::EntryFailed, 0x21, 0, [1, 0x2b, 3, 0xd4]),
            status::UNHANDLED,
            "the CPU refused to enter the guest (reason 0x21) at rip 0x100040, \
             rax 0x1 rbx 0x2b rcx 0x3 rdx 0xd4: stopped",
        ),
        (
            exit(ExitReason::Other, 0x7f, 0, [0; 4]),
            status::UNHANDLED,
            "unhandled exit Other (code 0x7f) at rip 0x100040: stopped",
        ),
        (
            exit(ExitReason::ExceptionLoop, 17, 0, [0; 4]),
            status::STUCK,
            "endless #AC delivery (vector 17) at rip 0x100040: stopped",
        ),
        (
            exit(
                ExitReason::PortOut,
                0x3f8 | 1 << 16 | ipc::vcpu::PORT_STRING | ipc::vcpu::PORT_REP,
                0,
                [0; 4],
            ),
            status::UNHANDLED,
            "rep outs on port 0x3f8 at rip 0x100040: string port I/O is not emulated: stopped",
        ),
        (
            exit(ExitReason::PortIn, 0x60 | 1 << 16 | ipc::vcpu::PORT_STRING, 0, [0; 4]),
            status::UNHANDLED,
            "ins on port 0x60 at rip 0x100040: string port I/O is not emulated: stopped",
        ),
    ];
    for (e, code, line) in cases {
        let s = p.on_exit(0, &e, no_cpu);
        assert_eq!((s.reply.actions, s.stop), (Action::STOP, Some(code)), "{line}");
        assert_eq!(s.note.unwrap().to_string(), line);
    }
    let exec = p.on_exit(0, &exit(ExitReason::MemoryFault, 4, 0x1_0000_0000, [0; 4]), no_cpu);
    assert!(exec.note.unwrap().to_string().contains("0x100000000 (execute)"));
}

#[test]
fn the_apic_msrs_start_a_second_vcpu() {
    let mut p = Platform::new(2, 0);
    let wrmsr =
        |msr: u64, value: u64| exit(ExitReason::MsrWrite, 0, 0, [value & 0xFFFF_FFFF, 0, msr, value >> 32]);
    let rdmsr =
        |msr: u64| exit(ExitReason::MsrRead, 0, 0, [0xAAAA_AAAA_0000_0000, 0, msr, 0xBBBB_BBBB_0000_0000]);
    let s = p.on_exit(0, &rdmsr(0x1B), no_cpu);
    assert_eq!(s.reply.actions, Action::ADVANCE | Action::SET_RAX | Action::SET_RDX);
    assert_eq!((s.reply.regs[0], s.reply.regs[3]), (0xFEE0_0900, 0), "edx:eax, top halves cleared");
    let s = p.on_exit(0, &wrmsr(0x1B, 0xFEE0_0D00), no_cpu);
    assert_eq!((s.reply.actions, s.note), (Action::ADVANCE, None), "x2APIC mode on");
    assert_eq!(p.on_exit(0, &rdmsr(0x802), no_cpu).reply.regs[0], 0, "the BSP's ID");
    assert_eq!(p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4500), no_cpu).start, None, "INIT");
    let s = p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4608), no_cpu);
    assert_eq!((s.reply.actions, s.start), (Action::ADVANCE, Some((1, 8))), "SIPI starts vCPU 1 at 0x8000");
    let s = p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x40), no_cpu);
    assert_eq!((s.reply.actions, s.ipi, s.note), (Action::ADVANCE, Some((0b10, 0x40)), None), "a fixed IPI");
    let s = p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x440), no_cpu);
    assert!(matches!(s.note, Some(Note::Ipi { icr: 0x1_0000_0440, .. })), "an NMI IPI is said, not done");
    let s = p.on_exit(1, &rdmsr(0x802), no_cpu);
    assert_eq!(s.reply.inject, Some((13, Some(0))), "vCPU 1 is not in x2APIC mode yet");
    let s = p.on_exit(1, &exit(ExitReason::Cpuid, 0, 0, [1, 0, 0, 0]), |_, _| [0; 4]);
    assert_eq!(s.reply.regs[1] >> 24, 1, "vCPU 1's initial APIC ID");
}

/// A halt with interrupts off stops only its vCPU while another runs
/// (Linux's `poweroff` so parks every CPU but the one powering off); the
/// guest stops, halted, when its last running vCPU halts so.
#[test]
fn a_vcpu_halting_for_good_stops_alone_until_it_is_the_last() {
    let wrmsr =
        |msr: u64, value: u64| exit(ExitReason::MsrWrite, 0, 0, [value & 0xFFFF_FFFF, 0, msr, value >> 32]);
    let hlt = exit(ExitReason::Hlt, 0, 0, [0; 4]);
    // Two vCPUs, the second never started: the first halting ends the guest.
    let mut p = Platform::new(2, 0);
    assert_eq!(p.on_exit(0, &hlt, no_cpu).stop, Some(status::HALTED));
    let mut p = Platform::new(2, 0);
    p.on_exit(0, &wrmsr(0x1B, 0xFEE0_0D00), no_cpu);
    p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4500), no_cpu);
    assert_eq!(p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4608), no_cpu).start, Some((1, 8)));
    let s = p.on_exit(1, &hlt, no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::STOP, None), "vCPU 1 stops, the guest runs on");
    assert_eq!(
        s.note.map(|n| n.to_string()).as_deref(),
        Some("vCPU 1 halted with interrupts off: it stops, the others run on")
    );
    // vCPU 0 runs on; an INIT and start-up IPI do not restart vCPU 1.
    assert_eq!(p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4500), no_cpu).start, None);
    assert_eq!(p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4608), no_cpu).start, None);
    let s = p.on_exit(0, &hlt, no_cpu);
    assert_eq!(
        (s.reply.actions, s.stop),
        (Action::STOP, Some(status::HALTED)),
        "the last one ends the guest"
    );
    assert_eq!(s.note, Some(Note::Halted));
    // A vCPU started by the guest but never made (`never_runs`) is not
    // waited for.
    let mut p = Platform::new(2, 0);
    p.on_exit(0, &wrmsr(0x1B, 0xFEE0_0D00), no_cpu);
    p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4500), no_cpu);
    assert_eq!(p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4608), no_cpu).start, Some((1, 8)));
    p.never_runs(1);
    assert_eq!(p.on_exit(0, &hlt, no_cpu).stop, Some(status::HALTED));
}

#[test]
fn acpi_power_off_ends_the_guest_cleanly_and_reset_stops_it() {
    let mut p = Platform::new(1, 0);
    // Linux's hardware-reduced sleep: clear the wake status, then SLP_TYP | SLP_EN.
    let s = p.on_exit(0, &out(0x601, 1, 0x80), no_cpu);
    assert_eq!((s.reply.actions, s.stop, s.note), (Action::ADVANCE, None, None));
    let s = p.on_exit(0, &inp(0x601, 1, 0xFF), no_cpu);
    assert_eq!((s.reply.regs[0], s.note), (0, None), "the status register reads 0");
    let s = p.on_exit(0, &out(0x600, 1, 5 << 2), no_cpu);
    assert_eq!((s.stop, s.note), (None, None), "no SLP_EN: nothing happens");
    let s = p.on_exit(0, &out(0x600, 1, 3 << 2 | 0x20), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::ADVANCE, None), "S3 is not there");
    let said = s.note.unwrap().to_string();
    assert!(said.contains("sleep control 0x2c") && said.contains("ignored"), "{said}");
    p.on_exit(0, &out(0x3f8, 1, u64::from(b'z')), no_cpu);
    let s = p.on_exit(0, &out(0x600, 1, 0xFF00 | 5 << 2 | 0x20), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::STOP, Some(status::PASSED)), "S5: off, with success");
    assert_eq!(
        (s.note.unwrap().to_string().as_str(), p.line().map(|l| l.as_str())),
        ("powered off (ACPI S5)", Some("z"))
    );

    let mut p = Platform::new(1, 0);
    let s = p.on_exit(0, &out(0xCF9, 1, 2), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::ADVANCE, None), "SYS_RST alone does not reset");
    assert_eq!(p.on_exit(0, &inp(0xCF9, 1, 0xFF), no_cpu).reply.regs[0], 0);
    let s = p.on_exit(0, &out(0xCF9, 1, 6), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::STOP, Some(status::RESET)));
    assert_eq!(s.note.unwrap().to_string(), "reset (reset register 0xcf9) at rip 0x100040");
    // The keyboard controller's reset pulse; its other commands are ignored.
    let mut p = Platform::new(1, 0);
    assert_eq!(p.on_exit(0, &inp(0x64, 1, 0), no_cpu).reply.regs[0], 0xFF, "no i8042: the floating bus");
    let s = p.on_exit(0, &out(0x64, 1, 0xAD), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::ADVANCE, None));
    let s = p.on_exit(0, &out(0x64, 1, 0xFE), no_cpu);
    assert_eq!((s.reply.actions, s.stop), (Action::STOP, Some(status::RESET)));
    assert_eq!(s.note.unwrap().to_string(), "reset (keyboard controller 0x64, command 0xfe) at rip 0x100040");
    // A triple fault is no reset: a failure.
    let s = p.on_exit(0, &exit(ExitReason::TripleFault, 0, 0, [0; 4]), no_cpu);
    assert_eq!(s.stop, Some(status::TRIPLE_FAULT));
}

#[test]
fn a_reset_puts_the_devices_back_but_the_cmos_clock_keeps_its_date_and_memory() {
    let wrmsr =
        |msr: u64, value: u64| exit(ExitReason::MsrWrite, 0, 0, [value & 0xFFFF_FFFF, 0, msr, value >> 32]);
    let rdmsr = |msr: u64| exit(ExitReason::MsrRead, 0, 0, [0, 0, msr, 0]);
    let mut p = Platform::new(2, 1_000_000).with_tsc_deadline(0).with_rtc(Default::default(), 1 << 40);
    p.set_clock(1_000_000);
    // The guest's CMOS memory and clock (the year 1999 in BCD), its
    // vCPU 1 started, the PIT's channel 0 counting, an MTRR changed, an
    // APIC timer armed, a line half-written on the UART.
    for (index, value) in [(0x40, 0xA5), (0x7F, 0x5A), (0x09, 0x99)] {
        p.on_exit(0, &out(0x70, 1, index), no_cpu);
        p.on_exit(0, &out(0x71, 1, value), no_cpu);
    }
    p.on_exit(0, &wrmsr(0x1B, 0xFEE0_0D00), no_cpu);
    p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4500), no_cpu);
    assert_eq!(p.on_exit(0, &wrmsr(0x830, (1 << 32) | 0x4608), no_cpu).start, Some((1, 8)));
    p.on_exit(0, &out(0x43, 1, 0x34), no_cpu);
    p.on_exit(0, &out(0x40, 1, 0x00), no_cpu);
    assert!(p.on_exit(0, &out(0x40, 1, 0x10), no_cpu).pit_timer.is_some_and(|ns| ns > 0));
    p.on_exit(0, &wrmsr(0x2FF, 0), no_cpu);
    p.on_exit(0, &wrmsr(0x832, 0x30), no_cpu);
    assert!(p.on_exit(0, &wrmsr(0x838, 1000), no_cpu).timer.is_some());
    assert_eq!(p.on_exit(0, &rdmsr(0x838), no_cpu).reply.regs[0], 1000);
    p.on_exit(0, &out(0x3f8, 1, u64::from(b'x')), no_cpu);
    p.on_exit(0, &out(0x3f9, 1, 1), no_cpu); // IER: the receive interrupt
    let s = p.on_exit(0, &out(0xCF9, 1, 6), no_cpu);
    assert_eq!((s.stop, p.line().map(|l| l.as_str())), (Some(status::RESET), Some("x")), "the line flushed");

    p.reset();
    p.set_clock(2_000_000);
    assert_eq!(p.timers_to_disarm(), 0b11 | PIT_TIMER_BIT | RTC_TIMER_BIT);
    let cmos = |p: &mut Platform, index: u64| {
        p.on_exit(0, &out(0x70, 1, index), no_cpu);
        p.on_exit(0, &inp(0x71, 1, 0), no_cpu).reply.regs[0]
    };
    assert_eq!(
        [0x40, 0x7F, 0x09, 0x0B].map(|i| cmos(&mut p, i)),
        [0xA5, 0x5A, 0x99, 0x02],
        "kept; status B reset"
    );
    assert_eq!(p.on_exit(0, &rdmsr(0x2FF), no_cpu).reply.regs[0], crate::msr::DEF_TYPE_RESET, "MTRRs reset");
    let s = p.on_exit(0, &rdmsr(0x838), no_cpu);
    assert_eq!(s.reply.actions, Action::INJECT, "the APIC back in xAPIC mode: x2APIC MSRs #GP");
    p.on_exit(0, &wrmsr(0x1B, 0xFEE0_0D00), no_cpu);
    assert_eq!(p.on_exit(0, &rdmsr(0x838), no_cpu).reply.regs[0], 0, "the APIC timer reset");
    assert_eq!(p.on_exit(0, &inp(0x3f9, 1, 0), no_cpu).reply.regs[0], 0, "the UART's IER reset");
    assert_eq!(p.pit_fired().pit_timer, None, "the PIT's channel 0 idle");
    // vCPU 1 waits for INIT and start-up again: a halt of vCPU 0 is the last.
    let s = p.on_exit(0, &exit(ExitReason::Hlt, 0, 0, [0; 4]), no_cpu);
    assert_eq!(s.stop, Some(status::HALTED), "vCPU 1 is not started after the reset");
}

#[test]
fn the_xsave_leaf_says_the_size_of_what_the_guest_may_enable() {
    let mut p = Platform::new(1, 0);
    // The CPU offers x87, SSE and AVX, and says 0 for the VMM's own XCR0.
    let cpu = |leaf: u32, sub: u32| match (leaf, sub) {
        (0xD, 0) => [0x7, 0, 0x340, 0],
        (0xD, 2) => [256, 576, 0, 0],
        _ => [0; 4],
    };
    let s = p.on_exit(0, &exit(ExitReason::Cpuid, 0, 0, [0xD, 0, 0, 0]), cpu);
    assert_eq!(&s.reply.regs, &[0x7, 832, 832, 0]);
    let s = p.on_exit(0, &exit(ExitReason::Cpuid, 0, 0, [0xD, 0, 1, 0]), cpu);
    assert_eq!(s.reply.regs[1], 832, "the compacted size too");
}

/// Guest RAM for the MMIO tests: `bytes` at guest-physical `at`.
struct Mem {
    at: u64,
    bytes: Vec<u8>,
}

impl crate::mmio::GuestMemory for Mem {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        // Its page from `at` on: the bytes, then zeros.
        let Some(from) = gpa.checked_sub(self.at).and_then(|o| usize::try_from(o).ok()) else { return false };
        if self.bytes.is_empty() || from + buf.len() > 0x100 {
            return false;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.bytes.get(from + i).copied().unwrap_or(0);
        }
        true
    }
}

/// A 32-bit flat guest without paging at rip 0x10_0040, its registers `gprs`.
fn flat(gprs: [u64; 16]) -> ipc::vstate::State {
    let mut s = ipc::vstate::State { gprs, rip: 0x10_0040, cr0: ipc::vstate::CR0_PE, ..Default::default() };
    s.segments[ipc::vstate::seg::CS].attrib = ipc::vstate::Segment::DB | ipc::vstate::Segment::PRESENT;
    s
}

fn mmio_exit(gpa: u64, access: u64) -> Exit {
    exit(ExitReason::MemoryFault, access, gpa, [0; 4])
}

#[test]
fn xapic_loads_and_stores_complete_through_the_decoder() {
    let mut p = Platform::new(2, 0);
    // mov ecx, [eax + 0x30]: the version register into ecx.
    let mem = Mem { at: 0x10_0040, bytes: vec![0x8B, 0x48, 0x30] };
    let mut gprs = [0u64; 16];
    gprs[0] = 0xfee0_0000;
    gprs[1] = 0xFFFF_FFFF_0000_0000;
    let state = flat(gprs);
    let d = crate::emulate::decode(&mem, &state, 0xfee0_0030);
    let s = p.mmio(0, &mmio_exit(0xfee0_0030, 1), d.map_err(MmioWhy::Refused), &NO_RAM);
    assert_eq!((s.reply.actions, s.reply.rip, s.stop), (Action::SET_RIP, 0x10_0043, None));
    assert_eq!(s.write, Some((1, 0x0006_0014)), "the version, ecx's top cleared");
    // mov dword [0xfee000b0], 0: an EOI, a store (no register written).
    let mem = Mem { at: 0x10_0040, bytes: vec![0xC7, 0x05, 0xB0, 0x00, 0xE0, 0xFE, 0, 0, 0, 0] };
    let d = crate::emulate::decode(&mem, &state, 0xfee0_00b0);
    let s = p.mmio(0, &mmio_exit(0xfee0_00b0, 2), d.map_err(MmioWhy::Refused), &NO_RAM);
    assert_eq!((s.reply.actions, s.reply.rip, s.write, s.stop), (Action::SET_RIP, 0x10_004a, None, None));
    // The ICR's high half then its low: an INIT IPI to vCPU 1 (asks to start nothing yet).
    assert!(p.mmio_device(0xfee0_0fff) && !p.mmio_device(0xfee0_1000) && !p.mmio_device(0xfedf_ffff));
}

#[test]
fn mmio_the_vmm_cannot_complete_stops_the_guest_saying_why() {
    let mut p = Platform::new(1, 0);
    // rep movsd: a string instruction, refused by the decoder.
    let mem = Mem { at: 0x10_0040, bytes: vec![0xF3, 0xA5] };
    let mut gprs = [0u64; 16];
    gprs[6] = 0xfee0_0000;
    let d = crate::emulate::decode(&mem, &flat(gprs), 0xfee0_0000);
    let s = p.mmio(0, &mmio_exit(0xfee0_0000, 1), d.map_err(MmioWhy::Refused), &NO_RAM);
    assert_eq!((s.reply.actions, s.stop), (Action::STOP, Some(status::UNHANDLED)));
    let note = s.note.expect("a note").to_string();
    assert_eq!(note, "MMIO at guest-physical 0xfee00000 from rip 0x100040 not emulated (String): stopped");
    // The instruction's page is not RAM.
    let empty = Mem { at: 0, bytes: Vec::new() };
    let d = crate::emulate::decode(&empty, &flat(gprs), 0xfee0_0000);
    let s = p.mmio(0, &mmio_exit(0xfee0_0000, 1), d.map_err(MmioWhy::Refused), &NO_RAM);
    assert_eq!(s.stop, Some(status::UNHANDLED));
    assert!(s.note.expect("note").to_string().contains("NotMapped { linear: 1048640 }"));
    // The state unreadable; an instruction fetch from the device's page.
    let s = p.mmio(0, &mmio_exit(0xfee0_0000, 1), Err(MmioWhy::State(18)), &NO_RAM);
    assert_eq!(s.stop, Some(status::UNHANDLED));
    assert!(s.note.expect("note").to_string().contains("state unreadable: error 18"));
    let s = p.mmio(0, &mmio_exit(0xfee0_0000, 4), Err(MmioWhy::State(0)), &NO_RAM);
    assert_eq!(s.stop, Some(status::UNMAPPED), "no code runs from a device");
}

#[test]
fn the_pm_timer_reads_the_clock_as_set_never_backwards() {
    let mut p = Platform::new(1, 0);
    assert!(Platform::clock_port(0x608) && Platform::clock_port(0x60b) && !Platform::clock_port(0x60c));
    p.set_clock(1_000_000_000);
    let s = p.on_exit(0, &inp(0x608, 4, 0xFFFF_FFFF_0000_0000), no_cpu);
    assert_eq!((s.reply.regs[0], s.note), (3_579_545, None), "a second of ticks, eax's top cleared");
    p.set_clock(5);
    let s = p.on_exit(0, &inp(0x608, 2, 0xAB_0000), no_cpu);
    assert_eq!(s.reply.regs[0], 0xAB_0000 | (3_579_545 & 0xFFFF), "not back in time; ax alone");
    let s = p.on_exit(0, &out(0x608, 4, 7), no_cpu);
    assert_eq!((s.reply.actions, s.note), (Action::ADVANCE, None), "writes ignored, unsaid");
}

/// A 32-bit store of `value` at I/O APIC page offset `offset` from vCPU
/// `vcpu` (`mov [eax], ecx`): its step.
fn ioapic_store(p: &mut Platform, vcpu: usize, offset: u64, value: u32) -> Step {
    let gpa = crate::ioapic::BASE + offset;
    let mem = Mem { at: 0x10_0040, bytes: vec![0x89, 0x08] };
    let mut gprs = [0u64; 16];
    (gprs[0], gprs[1]) = (gpa, u64::from(value));
    let d = crate::emulate::decode(&mem, &flat(gprs), gpa);
    let s = p.mmio(vcpu, &mmio_exit(gpa, 2), d.map_err(MmioWhy::Refused), &NO_RAM);
    assert_eq!((s.reply.actions, s.reply.rip, s.stop), (Action::SET_RIP, 0x10_0042, None));
    s
}

/// A 32-bit load at I/O APIC page offset `offset` (`mov ecx, [eax]`).
fn ioapic_load(p: &mut Platform, offset: u64) -> u64 {
    let gpa = crate::ioapic::BASE + offset;
    let mem = Mem { at: 0x10_0040, bytes: vec![0x8B, 0x08] };
    let mut gprs = [0u64; 16];
    gprs[0] = gpa;
    let d = crate::emulate::decode(&mem, &flat(gprs), gpa);
    let s = p.mmio(0, &mmio_exit(gpa, 1), d.map_err(MmioWhy::Refused), &NO_RAM);
    assert_eq!(s.stop, None);
    s.write.expect("a load writes ecx").1
}

/// Writes I/O APIC register `index` through IOREGSEL and IOWIN.
fn ioapic_set(p: &mut Platform, index: u32, value: u32) -> Step {
    ioapic_store(p, 0, 0, index);
    ioapic_store(p, 0, 0x10, value)
}

/// vCPU `vcpu`'s EOI through its xAPIC page.
fn xapic_eoi(p: &mut Platform, vcpu: usize) -> Step {
    let mem = Mem { at: 0x10_0040, bytes: vec![0xC7, 0x05, 0xB0, 0x00, 0xE0, 0xFE, 0, 0, 0, 0] };
    let d = crate::emulate::decode(&mem, &flat([0; 16]), 0xfee0_00b0);
    p.mmio(vcpu, &mmio_exit(0xfee0_00b0, 2), d.map_err(MmioWhy::Refused), &NO_RAM)
}

#[test]
fn the_ioapic_page_is_dispatched_and_its_registers_read_back() {
    let mut p = Platform::new(2, 0);
    assert!(p.mmio_device(0xfec0_0000) && p.mmio_device(0xfec0_0fff));
    assert!(!p.mmio_device(0xfec0_1000) && !p.mmio_device(0xfebf_ffff));
    ioapic_store(&mut p, 0, 0, 1);
    assert_eq!(ioapic_load(&mut p, 0x10), 0x0017_0011, "version 0x11, 24 entries");
    assert_eq!(ioapic_load(&mut p, 0), 1, "IOREGSEL reads back");
    ioapic_set(&mut p, 0x10 + 2 * 3, 0x0000_A035);
    ioapic_store(&mut p, 0, 0, 0x10 + 2 * 3);
    assert_eq!(ioapic_load(&mut p, 0x10), 0x0000_A035, "entry 3's low half, level, active low");
    ioapic_store(&mut p, 0, 0, 0x10 + 2 * 4);
    assert_eq!(ioapic_load(&mut p, 0x10), 0x0001_0000, "entries start masked");
}

#[test]
fn an_edge_pin_delivers_its_vector_to_its_destination_and_the_pit_drives_pin_2() {
    let mut p = Platform::new(2, 0);
    // Pin 2: vector 0x30, fixed, physical, edge, to APIC 1.
    ioapic_set(&mut p, 0x15, 1 << 24);
    ioapic_set(&mut p, 0x14, 0x30);
    assert!(p.irqs().is_empty(), "unmasking an edge pin delivers nothing");
    // PIT channel 0, lo/hi, mode 2, count 1193: 1193 ticks of 1.193182 MHz.
    p.set_clock(1_000_000);
    assert!(Platform::clock_port(0x40) && Platform::clock_port(0x43) && Platform::clock_port(0x61));
    for (port, v) in [(0x43, 0x34), (0x40, 1193 & 0xFF), (0x40, 1193 >> 8)] {
        let s = p.on_exit(0, &out(port, 1, v), no_cpu);
        assert_eq!((s.reply.actions, s.note), (Action::ADVANCE, None));
        if port == 0x43 {
            assert_eq!(s.pit_timer, Some(0), "no count yet: no IRQ 0 coming");
        } else if v == 1193 >> 8 {
            let delay = s.pit_timer.expect("armed");
            assert!((999_000..=1_001_000).contains(&delay), "about 1 ms: {delay}");
        }
    }
    let s = p.pit_fired();
    assert!(p.irqs().is_empty() && s.pit_timer.is_some(), "early: re-armed for the rest");
    p.set_clock(2_000_200);
    let s = p.pit_fired();
    assert_eq!(p.irqs(), &[(0b10, 0x30)], "vector 0x30 on vCPU 1");
    let next = s.pit_timer.expect("re-armed");
    assert!(next > 0 && next <= 1_000_000, "the next period: {next}");
    assert!(
        {
            p.pit_fired();
            p.irqs().is_empty()
        },
        "one edge per period"
    );
    // Masked: the edge is lost.
    ioapic_set(&mut p, 0x14, 0x1_0030);
    p.set_clock(3_100_000);
    assert!({
        p.pit_fired();
        p.irqs().is_empty()
    });
    // The counter reads back (the latch command), below the count.
    p.on_exit(0, &out(0x43, 1, 0x00), no_cpu);
    let lo = p.on_exit(0, &inp(0x40, 1, 0), no_cpu).reply.regs[0];
    let hi = p.on_exit(0, &inp(0x40, 1, 0), no_cpu).reply.regs[0];
    assert!(hi << 8 | lo < 1193);
    // Port 0x61: channel 2's gate as written.
    p.on_exit(0, &out(0x61, 1, 0x01), no_cpu);
    assert_eq!(p.on_exit(0, &inp(0x61, 1, 0), no_cpu).reply.regs[0] & 0x0F, 0x01);
}

#[test]
fn a_level_pin_waits_for_the_eoi_and_delivers_again_while_asserted() {
    let mut p = Platform::new(2, 0);
    // Pin 5: vector 0x41, level, logical destination 0xFF (every APIC whose
    // LDR says so: none set yet, so nobody), then physical to APIC 0.
    ioapic_set(&mut p, 0x1B, 0);
    ioapic_set(&mut p, 0x1A, 0x8041);
    let d = p.ioapic.raise(5).expect("asserted and unmasked");
    let mut s = Step::reply(Action::empty());
    p.deliver(&mut s, d);
    assert_eq!(p.irqs(), &[(0b01, 0x41)]);
    ioapic_store(&mut p, 0, 0, 0x1A);
    assert_ne!(ioapic_load(&mut p, 0x10) & (1 << 14), 0, "remote IRR set");
    assert!(p.ioapic.raise(5).is_none(), "held until the EOI");
    xapic_eoi(&mut p, 0);
    assert_eq!(p.irqs(), &[(0b01, 0x41)], "still asserted: again at the EOI");
    p.ioapic.lower(5);
    xapic_eoi(&mut p, 0);
    assert!(p.irqs().is_empty(), "withdrawn: nothing more");
    ioapic_store(&mut p, 0, 0, 0x1A);
    assert_eq!(ioapic_load(&mut p, 0x10) & (1 << 14), 0, "remote IRR clear");
    assert!(
        {
            xapic_eoi(&mut p, 0);
            p.irqs().is_empty()
        },
        "an EOI with nothing in service does nothing"
    );
    // Asserted while masked, delivered at the unmasking.
    ioapic_set(&mut p, 0x1A, 0x1_8041);
    assert!(p.ioapic.raise(5).is_none());
    ioapic_set(&mut p, 0x1A, 0x8041);
    assert_eq!(p.irqs(), &[(0b01, 0x41)]);
}

#[test]
fn hostile_ioapic_programming_is_refused_without_harm() {
    let mut p = Platform::new(2, 0);
    // Writes to read-only and absent registers change nothing.
    ioapic_set(&mut p, 0x01, 0xFFFF_FFFF);
    ioapic_set(&mut p, 0xFF, 0xFFFF_FFFF);
    ioapic_store(&mut p, 0, 0, 1);
    assert_eq!(ioapic_load(&mut p, 0x10), 0x0017_0011);
    ioapic_store(&mut p, 0, 0, 0x40);
    assert_eq!(ioapic_load(&mut p, 0x10), 0, "past entry 23: nothing");
    assert_eq!(ioapic_load(&mut p, 0x20), 0, "no register at +0x20");
    ioapic_store(&mut p, 0, 0, 0x1_0001);
    assert_eq!(ioapic_load(&mut p, 0), 1, "IOREGSEL keeps 8 bits");
    // Delivery status and remote IRR are read-only.
    ioapic_set(&mut p, 0x10 + 2 * 7, 0x0001_5031);
    ioapic_store(&mut p, 0, 0, 0x10 + 2 * 7);
    assert_eq!(ioapic_load(&mut p, 0x10), 0x0001_0031);
    // An illegal vector, a destination no vCPU has, and NMI mode: nothing
    // delivered; NMI is said.
    let deliver = |p: &mut Platform, low: u32, high: u32| {
        ioapic_set(p, 0x15, high);
        ioapic_set(p, 0x14, low);
        p.ioapic.lower(2);
        let d = p.ioapic.raise(2).expect("an unmasked edge");
        let mut s = Step::reply(Action::empty());
        p.deliver(&mut s, d);
        s
    };
    assert!(
        {
            deliver(&mut p, 0x05, 0);
            p.irqs().is_empty()
        },
        "vector 5"
    );
    assert!(
        {
            deliver(&mut p, 0x30, 7 << 24);
            p.irqs().is_empty()
        },
        "APIC 7 is no vCPU's"
    );
    let s = deliver(&mut p, 0x430, 0);
    assert!(p.irqs().is_empty());
    assert_eq!(
        s.note.expect("said").to_string(),
        "I/O APIC pin 2: delivery mode Nmi not delivered (not modelled)"
    );
    assert_eq!(
        {
            deliver(&mut p, 0x30, 0xFF << 24);
            p.irqs()
        },
        &[(0b11, 0x30)],
        "broadcast"
    );
    assert_eq!(
        {
            deliver(&mut p, 0x130, 0xFF << 24);
            p.irqs()
        },
        &[(0b01, 0x30)],
        "lowest priority: one"
    );
    // An execute access of the page stops the guest.
    let s = p.mmio(0, &mmio_exit(crate::ioapic::BASE, 4), Err(MmioWhy::State(0)), &NO_RAM);
    assert_eq!(s.stop, Some(status::UNMAPPED));
}

#[test]
fn the_apic_timer_counts_down_on_the_platform_clock() {
    let mut p = Platform::new(1, 1_000_000);
    assert!(Platform::clock_msr(0x839) && Platform::clock_msr(0x838) && !Platform::clock_msr(0x1B));
    let wrmsr = |msr: u64, v: u64| exit(ExitReason::MsrWrite, 0, 0, [v, 0, msr, 0]);
    let rdmsr = |msr: u64| exit(ExitReason::MsrRead, 0, 0, [0, 0, msr, 0]);
    p.on_exit(0, &wrmsr(0x1B, 0xFEE0_0D00), no_cpu); // x2APIC mode, BSP
    p.on_exit(0, &wrmsr(0x83E, 0xB), no_cpu); // divide by 1
    p.set_clock(1_000_000);
    let s = p.on_exit(0, &wrmsr(0x838, 1 << 30), no_cpu);
    assert!(s.timer.is_some(), "armed");
    let before = p.on_exit(0, &rdmsr(0x839), no_cpu).reply.regs[0];
    assert_eq!(before, 1 << 30, "no time has passed");
    p.set_clock(2_000_000);
    let after = p.on_exit(0, &rdmsr(0x839), no_cpu).reply.regs[0];
    assert!(after < before, "a millisecond later the count is lower: {after:#x}");
}

/// The UART's transmitter interrupt reaches the guest as ISA IRQ 4 on I/O
/// APIC pin 4, at each rising edge of the chip's output: what Linux's 8250
/// driver waits for before it sends what user space writes.
#[test]
fn the_uart_interrupts_on_pin_4_at_each_rising_edge() {
    let mut p = Platform::new(1, 0);
    // Pin 4: vector 0x24, fixed, physical, edge, to APIC 0.
    ioapic_set(&mut p, 0x10 + 2 * UART_PIN as u32 + 1, 0);
    ioapic_set(&mut p, 0x10 + 2 * UART_PIN as u32, 0x24);
    let ier = 0x3f8 + 1;
    p.on_exit(0, &out(ier, 1, 0x02), no_cpu);
    assert_eq!(p.irqs(), &[(0b1, 0x24)], "the enable set while empty: an edge");
    p.on_exit(0, &out(0x3f8, 1, u64::from(b'a')), no_cpu);
    assert!(p.irqs().is_empty(), "still high (not yet reported): no new edge");
    let s = p.on_exit(0, &inp(0x3f8 + 2, 1, 0), no_cpu);
    assert_eq!(
        (s.reply.regs[0] & 0x0F, p.irqs().len()),
        (0x02, 0),
        "the transmitter's, and the read lowers it"
    );
    p.on_exit(0, &out(0x3f8, 1, u64::from(b'b')), no_cpu);
    assert_eq!(p.irqs(), &[(0b1, 0x24)], "the next byte: empty again, a new edge");
    p.on_exit(0, &out(ier, 1, 0x00), no_cpu);
    p.on_exit(0, &out(0x3f8, 1, u64::from(b'c')), no_cpu);
    assert!(p.irqs().is_empty(), "the enable cleared: no interrupt");
    // Masked, the edge is lost, as an ISA line's is.
    ioapic_set(&mut p, 0x10 + 2 * UART_PIN as u32, 0x1_0024);
    p.on_exit(0, &out(ier, 1, 0x02), no_cpu);
    assert!(p.irqs().is_empty());
}

/// Console input reaches the guest as a received-data interrupt on pin 4
/// when the guest enabled it, with priority over the transmitter's in the
/// interrupt identification; each byte the guest sends is the step's `tx`.
#[test]
fn console_input_interrupts_on_pin_4_and_output_is_each_byte_sent() {
    let mut p = Platform::new(1, 0);
    ioapic_set(&mut p, 0x10 + 2 * UART_PIN as u32 + 1, 0);
    ioapic_set(&mut p, 0x10 + 2 * UART_PIN as u32, 0x24);
    assert!(Platform::uart_port(0x3f8) && Platform::uart_port(0x3ff) && !Platform::uart_port(0x400));
    let (took, _) = p.receive(|u| u.receive(b"hi"));
    assert_eq!((took, p.irqs().len()), (2, 0), "taken, but the receive interrupt is off");
    p.on_exit(0, &inp(0x3f8, 1, 0), no_cpu);
    p.on_exit(0, &inp(0x3f8, 1, 0), no_cpu);
    p.on_exit(0, &out(0x3f8 + 1, 1, 0x03), no_cpu);
    assert_eq!(p.irqs(), &[(0b1, 0x24)], "the transmitter's: empty at once");
    p.receive(|u| u.receive(b"x"));
    assert!(p.irqs().is_empty(), "the output is still high: no new edge");
    let s = p.on_exit(0, &inp(0x3f8 + 2, 1, 0), no_cpu);
    assert_eq!(s.reply.regs[0] & 0x0F, 0x04, "received data first");
    let s = p.on_exit(0, &inp(0x3f8, 1, 0), no_cpu);
    assert_eq!(s.reply.regs[0], u64::from(b'x'));
    let s = p.on_exit(0, &inp(0x3f8 + 2, 1, 0), no_cpu);
    assert_eq!(s.reply.regs[0] & 0x0F, 0x02, "then the transmitter's");
    p.receive(|u| u.receive(b"y"));
    assert_eq!(p.irqs(), &[(0b1, 0x24)], "the output was low: input raises it");
    let s = p.on_exit(0, &out(0x3f8, 1, u64::from(b'!')), no_cpu);
    assert_eq!(s.tx, Some(b'!'));
    p.on_exit(0, &out(0x3f8 + 4, 1, 0x10), no_cpu);
    assert_eq!(p.on_exit(0, &out(0x3f8, 1, u64::from(b'l')), no_cpu).tx, None, "loopback sends nothing");
    assert_eq!(p.on_exit(0, &out(0x3f8 + 7, 1, 1), no_cpu).tx, None, "nor does the scratch register");
}

/// The VMM's short way for a byte to the UART (`uart_out`) does what
/// `on_exit` does with it: the byte sent, the line, the interrupt's edge
/// (then the whole step); and it takes no OUTS, IN or other port.
#[test]
fn a_uart_out_alone_is_what_on_exit_makes_of_it() {
    let string = exit(ExitReason::PortOut, 0x3f8 | 1 << 16 | ipc::vcpu::PORT_STRING, 0, [0; 4]);
    assert!(!Platform::is_uart_out(&string) && !Platform::is_uart_out(&inp(0x3f8, 1, 0)));
    assert!(!Platform::is_uart_out(&out(0x400, 1, 0)) && !Platform::is_uart_out(&out(0x3f7, 1, 0)));
    assert!(Platform::is_uart_out(&out(0x3f8, 1, 0)) && Platform::is_uart_out(&out(0x3ff, 4, 0)));
    let (mut short, mut full) = (Platform::new(1, 0), Platform::new(1, 0));
    for p in [&mut short, &mut full] {
        ioapic_set(p, 0x10 + 2 * UART_PIN as u32 + 1, 0);
        ioapic_set(p, 0x10 + 2 * UART_PIN as u32, 0x24);
    }
    let ier = 0x3f8 + 1;
    // (0, 0): the guest reads the interrupt identification (lowering it).
    let writes = [(0x3f8, u64::from(b'h')), (ier, 0x02), (0x3f8, 0xAB00 | u64::from(b'i')), (0x3f8, 0x0a)];
    let writes = writes.into_iter().chain([(0, 0), (0x3f8, u64::from(b'!')), (ier, 0), (0x3f8, 0x0a)]);
    let mut edges = 0;
    for (port, value) in writes {
        if port == 0 {
            for p in [&mut short, &mut full] {
                assert_eq!(p.on_exit(0, &inp(0x3f8 + 2, 1, 0), no_cpu).reply.regs[0] & 0x0F, 0x02);
            }
            continue;
        }
        let e = out(port, 1, value);
        let want = full.on_exit(0, &e, no_cpu);
        let w = short.uart_out(&e);
        assert!(short.irqs().is_empty(), "no interrupt without its step");
        let got = if w.rose {
            edges += 1;
            short.uart_rose(w.tx)
        } else {
            Step { tx: w.tx, ..Step::reply(Action::ADVANCE) }
        };
        assert_eq!((got.reply, got.tx, got.note, got.stop), (want.reply, want.tx, want.note, want.stop));
        assert_eq!(
            (short.irqs(), short.line()),
            (full.irqs(), full.line()),
            "port {port:#x} value {value:#x}"
        );
    }
    assert_eq!(edges, 2, "the enable set while empty, and the byte after the identification read");
    let w = short.uart_out(&out(0x3f8, 4, 0xFFFF_FF00 | u64::from(b'x')));
    assert_eq!(w, UartWrite { tx: Some(b'x'), rose: false }, "al only");
}

#[test]
fn the_cmos_clock_is_the_wall_clock_plus_the_virtual_time() {
    // 2026-12-03 07:02:54.5 UTC at virtual time 0, 8 MiB of RAM, 2 vCPUs.
    let wall = 1_796_281_374 * 1_000_000_000 + 500_000_000;
    let machine = crate::rtc::Machine { below_4g: 8 << 20, above_4g: 0, vcpus: 2 };
    let mut p = Platform::new(2, 1_000_000).with_rtc(machine, wall);
    assert!(Platform::clock_port(0x70) && Platform::clock_port(0x71) && !Platform::clock_port(0x72));
    let reg = |p: &mut Platform, r: u8| {
        let s = p.on_exit(0, &out(0x70, 1, u64::from(r)), no_cpu);
        assert_eq!((s.reply.actions, s.note), (Action::ADVANCE, None));
        let s = p.on_exit(0, &inp(0x71, 1, 0xAB00), no_cpu);
        assert_eq!((s.reply.actions, s.note), (Action::ADVANCE | Action::SET_RAX, None));
        assert_eq!(s.reply.regs[0] & !0xFF, 0xAB00, "only al changes");
        s.reply.regs[0] as u8
    };
    let date = |p: &mut Platform| [0x32, 0x09, 0x08, 0x07, 0x04, 0x02, 0x00].map(|r| reg(p, r));
    assert_eq!(date(&mut p), [0x20, 0x26, 0x12, 0x03, 0x07, 0x02, 0x54], "BCD");
    p.set_clock(61_000_000_000);
    assert_eq!(date(&mut p), [0x20, 0x26, 0x12, 0x03, 0x07, 0x03, 0x55], "61 s of virtual time on");
    assert_eq!(reg(&mut p, 0x5F), 1, "the vCPUs less one, in the CMOS memory");
    assert_eq!(reg(&mut p, 0x15), 0x80, "640 KiB of base memory, low byte");
    // A 16-bit OUT to 0x70 writes the index, then the data port: the
    // guest's own time, which runs on from there.
    p.on_exit(0, &out(0x70, 2, 0x0B | 0x86 << 8), no_cpu); // status B: SET, binary, 24-hour
    p.on_exit(0, &out(0x70, 2, 7 << 8), no_cpu); // index 0 (the seconds), second 7
    p.on_exit(0, &out(0x70, 2, 0x0B | 0x06 << 8), no_cpu); // SET cleared
    p.set_clock(63_000_000_000);
    assert_eq!(reg(&mut p, 0x00), 9, "7 written, 2 s since");
    let mut none = Platform::new(1, 1_000_000);
    assert_eq!(date(&mut none), [0x19, 0x70, 0x01, 0x01, 0x00, 0x00, 0x00], "no wall clock: 1970");
}

#[test]
fn tsc_deadline_mode_is_offered_on_the_guests_own_tsc_and_cpuid_says_so() {
    let leaf1 = |p: &mut Platform, host_ecx: u32| {
        p.on_exit(0, &exit(ExitReason::Cpuid, 0, 0, [1, 0, 0, 0]), |_, _| [0x906, 0, host_ecx, 0]).reply.regs
            [2]
    };
    let wrmsr = |p: &mut Platform, msr: u32, value: u64| {
        p.on_exit(
            0,
            &exit(ExitReason::MsrWrite, 0, 0, [value & 0xFFFF_FFFF, 0, u64::from(msr), value >> 32]),
            no_cpu,
        )
    };
    // Without it, a host's bit 24 is not passed on, and the mode is #GP.
    let mut p = Platform::new(1, 1_000_000);
    assert_eq!(leaf1(&mut p, 1 << 24) & (1 << 24), 0, "not offered: hidden");
    assert_eq!(wrmsr(&mut p, 0x1B, 0xFEE0_0D00).reply.inject, None, "x2APIC on");
    assert_eq!(wrmsr(&mut p, 0x832, 0x40 | 2 << 17).reply.inject, Some((13, Some(0))));
    // Offered: said in CPUID whatever the host says; the guest's TSC is
    // the host's (1 GHz here), 5e9 at virtual time 0.
    let mut p = Platform::new(1, 1_000_000).with_tsc_deadline(5_000_000_000);
    assert_eq!(leaf1(&mut p, 0) & (1 << 24), 1 << 24);
    assert_eq!(wrmsr(&mut p, 0x1B, 0xFEE0_0D00).reply.inject, None, "x2APIC on");
    assert_eq!(wrmsr(&mut p, 0x832, 0x40 | 2 << 17).reply.inject, None);
    p.set_clock(1_000_000); // 1 ms in: the guest's TSC is 5_001_000_000
    let s = wrmsr(&mut p, 0x6E0, 5_003_000_000);
    assert_eq!((s.reply.inject, s.timer), (None, Some((0, 2_000_000, 0))), "2 ms after the guest's TSC now");
    assert_eq!(p.timer_fired(0), Some(0x40));
    let s = wrmsr(&mut p, 0x6E0, 4_000_000_000);
    assert_eq!(s.timer, Some((0, 1, 0)), "a deadline passed fires at once");
    // No TSC rate: not offered.
    let mut p = Platform::new(1, 0).with_tsc_deadline(5);
    assert_eq!(leaf1(&mut p, 1 << 24) & (1 << 24), 0);
}

#[test]
fn rdmsr_of_the_tsc_reads_the_guests_tsc_and_wrmsr_is_refused() {
    let rdmsr = |p: &mut Platform| {
        let s =
            p.on_exit(0, &exit(ExitReason::MsrRead, 0, 0, [0xAAAA_AAAA_0000_0000, 0, 0x10, 7 << 32]), no_cpu);
        (s.reply.inject, s.reply.regs[3] << 32 | s.reply.regs[0])
    };
    assert!(Platform::clock_msr(0x10), "the clock is set first");
    let mut p = Platform::new(1, 2_000_000).with_tsc_deadline(5_000_000_000);
    assert_eq!(rdmsr(&mut p), (None, 5_000_000_000), "the host's TSC at the start");
    p.set_clock(1_500_000);
    assert_eq!(rdmsr(&mut p), (None, 5_003_000_000), "1.5 ms on at 2 GHz, edx:eax");
    p.set_clock(0x1_0000_0000_0000);
    let (_, tsc) = rdmsr(&mut p);
    assert!(tsc >> 32 != 0, "both halves: {tsc:#x}");
    let w = exit(ExitReason::MsrWrite, 0, 0, [0, 0, 0x10, 0]);
    assert_eq!(
        p.on_exit(0, &w, no_cpu).reply.inject,
        Some((13, Some(0))),
        "the TSC is not the guest's to set"
    );
    // Without a TSC rate the VMM cannot say it: #GP, as for an unknown MSR.
    let mut p = Platform::new(1, 0);
    assert_eq!(rdmsr(&mut p).0, Some((13, Some(0))));
}

/// CMOS register `r` = `v` through ports 0x70 and 0x71: the data write's step.
fn cmos_put(p: &mut Platform, r: u8, v: u8) -> Step {
    p.on_exit(0, &out(0x70, 1, u64::from(r)), no_cpu);
    p.on_exit(0, &out(0x71, 1, u64::from(v)), no_cpu)
}

/// CMOS register `r` read through ports 0x70 and 0x71, and the read's step.
fn cmos_get(p: &mut Platform, r: u8) -> (u8, Step) {
    p.on_exit(0, &out(0x70, 1, u64::from(r)), no_cpu);
    let s = p.on_exit(0, &inp(0x71, 1, 0), no_cpu);
    (s.reply.regs[0] as u8, s)
}

#[test]
fn the_cmos_clocks_interrupts_come_on_pin_8_timed_by_its_own_timer() {
    // 2026-12-03 07:02:54.0 at virtual time 0.
    let wall = 1_796_281_374 * 1_000_000_000;
    let mut p = Platform::new(2, 1_000_000).with_rtc(crate::rtc::Machine::default(), wall);
    // Pin 8: vector 0x38, edge, to APIC 1.
    ioapic_set(&mut p, 0x10 + 2 * RTC_PIN as u32 + 1, 1 << 24);
    ioapic_set(&mut p, 0x10 + 2 * RTC_PIN as u32, 0x38);
    assert_eq!(cmos_put(&mut p, 0x0A, 0x2F).rtc_timer, None, "2 Hz, not enabled: no timer");
    let s = cmos_put(&mut p, 0x0B, 0x42); // PIE, 24-hour
    assert_eq!((s.rtc_timer, p.irqs()), (Some(500_000_000), &[][..]), "armed for 0.5 s");
    assert_eq!(cmos_get(&mut p, 0x00).1.rtc_timer, None, "a read that moves nothing sets no timer");
    p.set_clock(499_999_999);
    let s = p.rtc_fired();
    assert_eq!((s.rtc_timer, p.irqs()), (Some(1), &[][..]), "early: armed again for the rest");
    p.set_clock(500_000_000);
    let s = p.rtc_fired();
    assert_eq!((s.rtc_timer, p.irqs()), (None, &[(0b10, 0x38)][..]), "the edge; pending: no timer");
    p.set_clock(3_000_000_000);
    assert!(p.rtc_fired().rtc_timer.is_none() && p.irqs().is_empty(), "none more until C is read");
    let (c, s) = cmos_get(&mut p, 0x0C);
    assert_eq!((c, s.rtc_timer, p.irqs()), (0xC0 | 0x10, Some(500_000_000), &[][..]), "read: armed again");
    // Nothing enabled: the timer disarmed. The update-ended interrupt
    // enabled with UF pending: at once.
    p.set_clock(3_200_000_000);
    assert_eq!(cmos_put(&mut p, 0x0B, 0x02).rtc_timer, Some(0), "disarmed");
    p.set_clock(4_100_000_000);
    let s = cmos_put(&mut p, 0x0B, 0x12);
    assert_eq!((s.rtc_timer, p.irqs()), (None, &[(0b10, 0x38)][..]), "UF of 4.0 s pending");
    // A level-triggered entry: asserted until C is read, so the EOI
    // delivers again while it is, not after.
    let (c, s) = cmos_get(&mut p, 0x0C);
    assert_eq!((c, s.rtc_timer), (0x90 | 0x40, Some(900_000_000)), "UF and PF; the next second");
    ioapic_set(&mut p, 0x10 + 2 * RTC_PIN as u32 + 1, 0);
    ioapic_set(&mut p, 0x10 + 2 * RTC_PIN as u32, 0x8039);
    p.set_clock(5_000_000_000);
    p.rtc_fired();
    assert_eq!(p.irqs(), &[(0b01, 0x39)]);
    xapic_eoi(&mut p, 0);
    assert_eq!(p.irqs(), &[(0b01, 0x39)], "still asserted: again at the EOI");
    cmos_get(&mut p, 0x0C);
    xapic_eoi(&mut p, 0);
    assert_eq!(p.irqs(), &[], "lowered by the read: nothing at the EOI");
}

/// The hostile twin: 8192 Hz, PIE on, Status C never read. One interrupt,
/// then no timer and no delivery for the rest of it.
#[test]
fn a_guest_that_never_reads_status_c_costs_one_interrupt() {
    let mut p = Platform::new(1, 1_000_000).with_rtc(crate::rtc::Machine::default(), 0);
    ioapic_set(&mut p, 0x10 + 2 * RTC_PIN as u32, 0x38);
    cmos_put(&mut p, 0x0A, 0x23);
    let first = cmos_put(&mut p, 0x0B, 0x42).rtc_timer.expect("armed");
    assert_eq!(first, 122_071);
    let (mut delivered, mut timers) = (0, 0);
    for t in (first..2_000_000_000).step_by(122_071) {
        p.set_clock(t);
        let s = p.rtc_fired();
        delivered += p.irqs().len();
        timers += usize::from(s.rtc_timer.is_some());
        let s = cmos_get(&mut p, 0x00).1; // the guest goes on reading the time
        delivered += p.irqs().len();
        timers += usize::from(s.rtc_timer.is_some());
    }
    assert_eq!((delivered, timers), (1, 0), "one interrupt, no timer after it");
}

/// No guest RAM: the platforms of the MMIO tests have no disks, whose
/// queues would lie in it.
struct NoRam;

impl vq::GuestMemory for NoRam {
    fn contains(&self, _: u64, _: u64) -> bool {
        false
    }
    fn read(&self, _: u64, _: &mut [u8]) -> bool {
        false
    }
    fn write(&self, _: u64, _: &[u8]) -> bool {
        false
    }
}

const NO_RAM: NoRam = NoRam;

/// A guest with a disk: the PCI configuration ports and the notify
/// register are the bus's (a kick is a step's `kick`), and a reset puts the
/// bus back as firmware left it.
#[test]
fn a_guest_with_disks_has_a_pci_bus() {
    let disk = crate::virtio_blk::Disk { sectors: 64, read_only: true };
    let mut p = Platform::new(2, 0).with_disks(&[disk]);
    let s = p.on_exit(0, &out(0xCF8, 4, 0x8000_0800), no_cpu);
    assert_eq!((s.reply.actions, s.note), (Action::ADVANCE, None));
    let s = p.on_exit(0, &inp(0xCFC, 4, 0xDEAD_0000_0000), no_cpu);
    assert_eq!(s.reply.regs[0], 0x1042_1af4, "00:01.0 is virtio-blk");
    let s = p.on_exit(0, &inp(0xCFE, 2, 0xFFFF_FFFF_FFFF_0000), no_cpu);
    assert_eq!(s.reply.regs[0], 0xFFFF_FFFF_FFFF_1042, "a 16-bit IN keeps rax's top");
    // Move BAR 0, then reset: back where firmware put it.
    p.on_exit(0, &out(0xCF8, 4, 0x8000_0810), no_cpu);
    p.on_exit(0, &out(0xCFC, 4, 0xD000_0000), no_cpu);
    assert!(p.mmio_device(0xD000_0000) && !p.mmio_device(0xC000_0000));
    // Not live: the notify register kicks nothing.
    assert_eq!(p.on_exit(0, &out(0xC000, 2, 0), no_cpu).kick, None);
    p.reset();
    assert!(p.mmio_device(0xC000_0000) && !p.mmio_device(0xD000_0000));
    struct Nothing;
    impl vq::blk::Disk for Nothing {
        fn sectors(&self) -> u64 {
            0
        }
        fn read_only(&self) -> bool {
            true
        }
        fn read(&mut self, _: u64, _: &mut [u8]) -> bool {
            false
        }
        fn write(&mut self, _: u64, _: &[u8]) -> bool {
            false
        }
        fn flush(&mut self) -> bool {
            false
        }
        fn id(&self) -> &[u8] {
            b""
        }
    }
    assert_eq!(p.serve_disk(0, 0, &NO_RAM, &mut Nothing), 0, "no live queue");
    assert!(p.irqs().is_empty());
    // Without disks, no bus (as before).
    let mut plain = Platform::new(1, 0).with_disks(&[]);
    assert!(plain.on_exit(0, &out(0xCF8, 4, 0x8000_0800), no_cpu).note.is_some(), "an ignored port");
}
