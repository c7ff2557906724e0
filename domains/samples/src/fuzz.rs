//! The argument generator of `hostile`'s random syscalls: which call, and
//! arguments shaped like that call's, mostly valid or nearly so (slots of
//! objects the fuzzer holds, page-aligned addresses, CPUs that exist or just
//! do not, vectors at the edge of the allowed range), sometimes anything.
//! Forged numbers fail `Call::decode` at once and test little of the kernel;
//! near-valid ones reach the objects' own checks. Pure logic: the host
//! tests below check every syscall is drawn and most draws decode.

use ipc::syscall::{Nr, ANY_CPU, NO_SIPI};
use ipc::{msg, CapSlot, ObjectType};

use crate::rng::XorShift;

/// What an argument is, for generating one near its valid values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    /// A capability slot, best of this type (`None`: of any).
    Slot(Option<ObjectType>),
    /// A set of rights (any of the bits `Rights` defines).
    Rights,
    /// `MemoryMap`'s rights: READ, WRITE, EXEC, never W+X.
    MapRights,
    /// A page-aligned address (a mapping's, or a guest-physical one).
    Page,
    /// A user address of any alignment.
    Addr,
    /// A buffer the kernel writes (`VcpuStateRead`): in a page of
    /// [`Hints::scratch`], whose contents do not matter, or where nothing
    /// writable is (the kernel must refuse it), never the fuzzer's own
    /// image, stack or data.
    OutBuf,
    /// A stack pointer (16-byte aligned).
    Stack,
    /// A console write's length.
    Len,
    /// A count of pages (memory, quota).
    Pages,
    /// A CPU, or `ANY_CPU`.
    Cpu,
    /// `VcpuCreate`'s start-up IPI vector, or `NO_SIPI`.
    Sipi,
    /// A 32-bit guest address or argument.
    Word32,
    /// An interrupt vector.
    Vector,
    /// An I/O port.
    Port,
    /// A port count.
    Count,
    /// A port access width.
    Width,
    /// An offset into a PCI function's configuration space.
    Config,
    /// A BAR's number (0..6 valid).
    Bar,
    /// Bits to signal, a badge.
    Value,
    /// A value to write to a port.
    Datum,
    /// A boolean word.
    Bool,
    /// A scheduling weight.
    Weight,
    /// A cap in percent.
    Percent,
    /// A timer's delay or period, in microseconds.
    Micros,
    /// An exit reason's number (`GuestExits`).
    Reason,
    /// Anything: a code, a badge, a thread's argument.
    Any,
}

use Arg::*;

const ANY: Arg = Slot(None);
const DOMAIN: Arg = Slot(Some(ObjectType::Domain));
const THREAD: Arg = Slot(Some(ObjectType::Thread));
const MEMORY: Arg = Slot(Some(ObjectType::Memory));
const PORTS: Arg = Slot(Some(ObjectType::IoPorts));
const IRQ: Arg = Slot(Some(ObjectType::Irq));
const CONSOLE: Arg = Slot(Some(ObjectType::Console));
const ENDPOINT: Arg = Slot(Some(ObjectType::Endpoint));
const NOTIFICATION: Arg = Slot(Some(ObjectType::Notification));
const VIRQ: Arg = Slot(Some(ObjectType::VirqLine));
const DEVICE: Arg = Slot(Some(ObjectType::Device));

/// The arguments of each syscall, in order (the rest are drawn as `Any`).
fn shape(nr: Nr) -> &'static [Arg] {
    match nr {
        Nr::ConsoleWrite => &[CONSOLE, Addr, Len],
        Nr::Exit => &[Any],
        Nr::Yield | Nr::Stats => &[],
        Nr::CapDerive => &[ANY, Rights],
        Nr::CapGrant => &[DOMAIN, ANY, Rights],
        Nr::CapDelete | Nr::CapRevoke | Nr::CapInfo => &[ANY],
        Nr::DomainDestroy | Nr::DomainInfo => &[DOMAIN],
        Nr::GuestExits => &[DOMAIN, Reason],
        Nr::DomainCreate | Nr::GuestCreate => &[Pages],
        Nr::DomainWait => &[Bool],
        Nr::DomainPause => &[DOMAIN, Bool],
        Nr::MemoryCreate => &[DOMAIN, Pages],
        Nr::MemoryMap => &[MEMORY, DOMAIN, Page, MapRights],
        Nr::MemoryUnmap => &[MEMORY, DOMAIN, Page],
        Nr::ThreadCreate => &[DOMAIN, Addr, Stack, Any, Cpu],
        Nr::VcpuCreate => &[DOMAIN, ENDPOINT, Word32, Word32, Sipi, Cpu],
        Nr::VirqCreate => &[DOMAIN, Vector],
        Nr::VcpuInterrupt => &[THREAD, Vector],
        Nr::VcpuStateRead | Nr::VcpuStateWrite => &[THREAD, OutBuf],
        Nr::VirqRaise => &[VIRQ],
        Nr::IrqWait => &[IRQ],
        Nr::EndpointCreate | Nr::NotificationCreate => &[DOMAIN],
        Nr::Wait | Nr::Poll | Nr::NotificationBind => &[NOTIFICATION],
        Nr::DoorbellCreate => &[DOMAIN, Port, NOTIFICATION, Value],
        Nr::IoPortRead => &[PORTS, Port, Width],
        Nr::IoPortWrite => &[PORTS, Port, Width, Datum],
        Nr::IoPortsCreate => &[PORTS, Port, Count],
        Nr::Signal => &[NOTIFICATION, Value],
        Nr::IrqBind => &[IRQ, NOTIFICATION, Value],
        Nr::DomainNotify => &[DOMAIN, NOTIFICATION, Value],
        Nr::CapMint => &[ANY, Rights, Any],
        Nr::SchedSet => &[DOMAIN, Weight, Percent],
        Nr::ThreadSetCpu => &[THREAD, Cpu],
        Nr::TimerSet => &[NOTIFICATION, Value, Micros, Micros],
        Nr::DeviceCreate => &[DEVICE, DOMAIN, Any, Bool],
        Nr::DeviceConfigRead => &[DEVICE, Width, Config],
        Nr::DeviceConfigWrite => &[DEVICE, Width, Config, Datum],
        Nr::DeviceMap => &[DEVICE, Bar, Page],
        Nr::DevicePorts => &[DEVICE, Bar],
        Nr::DeviceIrqBind => &[DEVICE, Count, NOTIFICATION, Value],
        Nr::DeviceDma => &[DEVICE, MEMORY],
    }
}

/// What the generator draws slots, ports and addresses near.
pub struct Hints<'a> {
    /// Slots of objects the fuzzer holds (made or given), with their types.
    pub slots: &'a [(u64, Option<ObjectType>)],
    /// Addresses worth hitting: pages the fuzzer maps and unmaps, its code.
    pub pages: &'a [u64],
    /// Ports worth hitting: the ranges it was given.
    pub ports: &'a [u16],
    /// Pages whose contents do not matter to the fuzzer (those it maps and
    /// unmaps at random), for buffers the kernel writes into.
    pub scratch: &'a [u64],
}

/// The message verbs (`ipc::msg::nr`), drawn with the others.
pub const MESSAGE_NRS: [u64; 4] = [msg::nr::CALL, msg::nr::REPLY_RECV, msg::nr::RECV, msg::nr::REPLY];

/// A syscall number: each of `Nr::ALL` and [`MESSAGE_NRS`] alike, and 1 in
/// 32 any number below 256 (most unknown).
pub fn number(rng: &mut XorShift) -> u64 {
    let n = Nr::ALL.len() as u64;
    match rng.below(32) {
        0 => rng.below(256),
        _ => match rng.below(n + MESSAGE_NRS.len() as u64) {
            i if i < n => Nr::ALL[i as usize] as u64,
            i => MESSAGE_NRS[(i - n) as usize],
        },
    }
}

/// The registers of a message verb (`ipc::msg`): an endpoint slot, a label,
/// mostly no capability, and words small or anything (what a VMM's reply to
/// a vCPU's exit, which the fuzzer may receive, is made of).
pub fn message(rng: &mut XorShift, hints: &Hints<'_>) -> [u64; msg::REGS] {
    let mut r = [0u64; msg::REGS];
    r[0] = argument(ENDPOINT, rng, hints);
    r[1] = argument(Any, rng, hints);
    r[2] = match rng.below(8) {
        0..=4 => msg::NO_CAP,
        5 | 6 => argument(ANY, rng, hints),
        _ => rng.next_u64(),
    };
    for w in &mut r[3..] {
        *w = argument(Any, rng, hints);
    }
    r
}

/// Which arguments of syscall `nr` name capability slots.
pub fn slot_arguments(nr: u64) -> [bool; 6] {
    let shape = Nr::ALL.iter().find(|&&n| n as u64 == nr).map_or(&[][..], |&n| shape(n));
    let mut slots = [false; 6];
    for (s, kind) in slots.iter_mut().zip(shape) {
        *s = matches!(kind, Slot(_));
    }
    slots
}

/// Arguments for syscall `nr`, shaped as its arguments are.
pub fn arguments(nr: u64, rng: &mut XorShift, hints: &Hints<'_>) -> [u64; 6] {
    let shape = Nr::ALL.iter().find(|&&n| n as u64 == nr).map_or(&[][..], |&n| shape(n));
    let mut a = [0u64; 6];
    for (i, v) in a.iter_mut().enumerate() {
        // 1 in 16 arguments is anything at all.
        let kind = shape.get(i).copied().filter(|_| rng.below(16) != 0).unwrap_or(Any);
        *v = argument(kind, rng, hints);
    }
    a
}

fn pick<T: Copy + Into<u64>>(rng: &mut XorShift, xs: &[T]) -> Option<u64> {
    (!xs.is_empty()).then(|| xs[rng.below(xs.len() as u64) as usize].into())
}

fn pick_slot(rng: &mut XorShift, xs: &[(u64, Option<ObjectType>)]) -> Option<u64> {
    (!xs.is_empty()).then(|| xs[rng.below(xs.len() as u64) as usize].0)
}

fn argument(kind: Arg, rng: &mut XorShift, h: &Hints<'_>) -> u64 {
    let r = rng.below(8);
    match kind {
        Slot(kind) => match r {
            0..=4 => {
                // Of the type wanted, if one is held; else any held.
                let of = |s: &&(u64, Option<ObjectType>)| kind.is_none() || s.1 == kind;
                let n = h.slots.iter().filter(of).count() as u64;
                let i = rng.below(n.max(1)) as usize;
                match h.slots.iter().filter(of).nth(i).or(h.slots.first()) {
                    Some(&(s, _)) if r > 0 || kind.is_none() => s,
                    _ => pick_slot(rng, h.slots).unwrap_or(0),
                }
            }
            // A low index at a near generation: a slot the table may have.
            5 | 6 => {
                u64::from(CapSlot::new(rng.below(ipc::cap::SLOTS as u64 + 4) as usize, rng.below(3) as u32).0)
            }
            _ => [0, u64::from(u32::MAX), 1 << 32, rng.next_u64()][rng.below(4) as usize],
        },
        Rights => match r {
            0..=6 => rng.below(1 << 6),
            _ => rng.next_u64(),
        },
        // Empty, R, W, RW, X, RX; W+X (refused) and wider ones otherwise.
        MapRights => match r {
            0..=6 => rng.below(6),
            _ => rng.below(1 << 7),
        },
        Page => match r {
            0..=3 => pick(rng, h.pages).unwrap_or(0x1000) + 0x1000 * rng.below(4),
            4 => 0x1000 * rng.below(0x400),
            5 => 0x1000 * rng.below(1 << 35),
            6 => [0, ipc::syscall::USER_END - 0x1000, ipc::syscall::USER_END][rng.below(3) as usize],
            _ => rng.next_u64(),
        },
        Addr => match r {
            0..=4 => pick(rng, h.pages).unwrap_or(0x1000) + rng.below(0x2000),
            5 => rng.below(0x1_0000),
            6 => ipc::syscall::USER_END - rng.below(0x100),
            _ => rng.next_u64(),
        },
        OutBuf => match r {
            0..=4 => pick(rng, h.scratch).unwrap_or(0) + rng.below(0x2000),
            // Unmapped, the kernel's half, the null page.
            5 => ipc::syscall::USER_END - rng.below(0x100),
            6 => [0, 8, 1 << 63][rng.below(3) as usize],
            _ => ipc::syscall::USER_END + rng.below(1 << 40),
        },
        Stack => match r {
            0..=5 => (pick(rng, h.pages).unwrap_or(0x1000) + rng.below(0x2000)) & !0xf,
            6 => rng.below(0x1_0000) & !0x7,
            _ => rng.next_u64(),
        },
        Len => match r {
            0..=5 => rng.below(64),
            6 => ipc::syscall::CONSOLE_MAX + rng.below(2),
            _ => rng.next_u64(),
        },
        Pages => match r {
            0..=5 => rng.below(12),
            6 => ipc::syscall::MEMORY_MAX_PAGES + rng.below(2) - 1,
            _ => rng.next_u64(),
        },
        Cpu => match r {
            0..=2 => ANY_CPU,
            3..=5 => rng.below(4),
            6 => [0xffff, 0x1_0000, 255, 256][rng.below(4) as usize],
            _ => rng.next_u64(),
        },
        Sipi => match r {
            0..=4 => NO_SIPI,
            5 | 6 => rng.below(0x101),
            _ => rng.next_u64(),
        },
        Word32 => match r {
            0..=3 => 0,
            4 | 5 => 0x1000 * rng.below(0x800),
            6 => (1 << 32) - rng.below(2),
            _ => rng.next_u64(),
        },
        Vector => match r {
            0..=5 => 30 + rng.below(230),
            _ => rng.next_u64(),
        },
        Port => match r {
            0..=4 => pick(rng, h.ports).unwrap_or(0) + rng.below(20),
            5 | 6 => rng.below(0x1_0000),
            _ => rng.next_u64(),
        },
        Count => match r {
            0..=5 => rng.below(20),
            6 => 0x1_0000 - rng.below(2),
            _ => rng.next_u64(),
        },
        Config => match r {
            0..=5 => rng.below(0x400) & !3,
            6 => 0x1000 - rng.below(8),
            _ => rng.next_u64(),
        },
        Bar => match r {
            0..=6 => rng.below(8),
            _ => rng.next_u64(),
        },
        Width => match r {
            0..=6 => [1, 2, 4, 3][rng.below(4) as usize],
            _ => rng.next_u64(),
        },
        Value => match r {
            0..=4 => 1 << rng.below(64),
            5 => rng.below(0x100),
            6 => 0,
            _ => rng.next_u64(),
        },
        Datum => match r {
            0..=5 => rng.below(0x100),
            6 => [0xffff, 0x1_0000, 0xffff_ffff, 1 << 32][rng.below(4) as usize],
            _ => rng.next_u64(),
        },
        Bool => rng.below(3),
        Weight => match r {
            0..=6 => [0, 1, 256, 0xffff, 0x1_0000][rng.below(5) as usize],
            _ => rng.next_u64(),
        },
        Percent => match r {
            0..=6 => rng.below(102),
            _ => rng.next_u64(),
        },
        // 1..=12 mostly, else 0 or just past the last.
        Reason => match r {
            0..=5 => 1 + rng.below(ipc::vcpu::EXIT_REASONS as u64),
            6 => [0, ipc::vcpu::EXIT_REASONS as u64 + 1][rng.below(2) as usize],
            _ => rng.next_u64(),
        },
        Micros => match r {
            0..=2 => 0,
            3..=5 => 100 * rng.below(20),
            6 => (1 << 40) + rng.below(2),
            _ => rng.next_u64(),
        },
        Any => match r {
            0..=3 => rng.below(16),
            _ => rng.next_u64(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::syscall::Call;
    use ipc::Error;

    const SLOTS: [(u64, Option<ObjectType>); 3] =
        [(3, Some(ObjectType::Domain)), (4 | 1 << 12, Some(ObjectType::Memory)), (40, None)];
    const HINTS: Hints<'static> = Hints {
        slots: &SLOTS,
        pages: &[0x2000_0000_0000, 0x40_1000],
        ports: &[0x2f8],
        scratch: &[0x2000_0000_0000],
    };

    /// Every syscall is drawn, about as often as the others.
    #[test]
    fn draws_every_syscall() {
        let mut rng = XorShift::new(7);
        let mut seen = [0u32; 256];
        for _ in 0..400_000 {
            seen[number(&mut rng) as usize] += 1;
        }
        for nr in Nr::ALL {
            // Three quarters of an even share of the draws, at least.
            let share = 400_000 / (Nr::ALL.len() + MESSAGE_NRS.len()) as u32 * 3 / 4;
            assert!(seen[nr as usize] > share, "{nr:?} drawn {} times", seen[nr as usize]);
        }
        assert!(seen[0] > 0 && seen[255] > 0, "unknown numbers too");
    }

    /// Most arguments decode, for every syscall: the calls reach the
    /// kernel's objects, not only `Call::decode`'s checks. Some do not, so
    /// the checks are hit too.
    #[test]
    fn most_draws_decode() {
        let mut rng = XorShift::new(9);
        for nr in Nr::ALL {
            let n = nr as u64;
            let ok = (0..10_000).filter(|_| Call::decode(n, arguments(n, &mut rng, &HINTS)).is_ok()).count();
            assert!(ok > 2_500, "{nr:?}: {ok} of 10000 decode");
            let errs = (0..10_000)
                .filter(|_| {
                    Call::decode(n, arguments(n, &mut rng, &HINTS)) == Err((Error::InvalidArgument, 1))
                })
                .count();
            let takes_args =
                !matches!(nr, Nr::Yield | Nr::Stats | Nr::Exit | Nr::DomainCreate | Nr::GuestCreate);
            if takes_args {
                assert!(errs > 0, "{nr:?}: a bad first argument is drawn too");
            }
        }
    }

    /// Message verbs are drawn too, and mostly decode.
    #[test]
    fn messages_are_drawn_and_decode() {
        let mut rng = XorShift::new(13);
        assert!((0..1000).filter(|_| MESSAGE_NRS.contains(&number(&mut rng))).count() > 40);
        for nr in MESSAGE_NRS {
            let ok = (0..1000)
                .filter(|_| msg::IpcCall::decode(nr, &message(&mut rng, &HINTS)).is_some_and(|r| r.is_ok()))
                .count();
            assert!(ok > 700, "{nr}: {ok}");
        }
    }

    #[test]
    fn slot_arguments_are_the_slots() {
        assert_eq!(slot_arguments(Nr::MemoryMap as u64), [true, true, false, false, false, false]);
        assert_eq!(slot_arguments(Nr::DoorbellCreate as u64), [true, false, true, false, false, false]);
        assert_eq!(slot_arguments(Nr::Exit as u64), [false; 6]);
        assert_eq!(slot_arguments(0), [false; 6]);
    }

    /// Slots come mostly from the hints.
    #[test]
    fn slots_are_mostly_held_ones() {
        let mut rng = XorShift::new(11);
        let held =
            (0..10_000).filter(|_| SLOTS.iter().any(|s| s.0 == argument(MEMORY, &mut rng, &HINTS))).count();
        assert!((5_000..7_500).contains(&held), "{held}");
        let typed = (0..10_000).filter(|_| argument(MEMORY, &mut rng, &HINTS) == SLOTS[1].0).count();
        assert!(typed > 4_000, "memory slots are drawn for memory: {typed}");
    }
}
