//! `devprobe`: a driver domain given one PCI function (`device:00:04.0`)
//! tries what it may and may not do through its Device capability, and
//! logs each result: its IDs read, BAR 4 (virtio's registers) mapped and
//! read, what the kernel keeps of its BARs refused (a console write
//! from device registers, the MSI-X table's page, a BAR it has not, a port
//! range of a memory BAR, a map over its own stack, a map without the
//! device's capability), its interrupt line written, a move of
//! BAR 0 over the kernel's memory (1 MiB), the expansion ROM and the
//! command register's bus master bit (it was given no DMA) refused or
//! left off. Exits 0 if every answer is the one the kernel owes it.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use user::ipc::syscall::Width;
use user::{sys, CapSlot, Caps, Error, StartInfo};

user::entry!(main, heap_kib = 0);

const DEVICE: &str = "device:00:04.0";

fn main(start: &'static StartInfo) -> u64 {
    let Some(dev) = start.slot(DEVICE) else {
        log::info!("devprobe: FAIL: no {DEVICE} in the start page");
        return 1;
    };
    let mut ok = true;
    let mut check = |what: &str, good: bool| {
        log::info!("devprobe: {what}: {}", if good { "as owed" } else { "FAIL" });
        ok &= good;
    };
    let ids = sys::device_config_read(dev, 0, Width::Dword);
    if let Ok(ids) = ids {
        log::info!("devprobe: {DEVICE} is {:04x}:{:04x}", ids as u16, ids >> 16);
    }
    check("its IDs read", ids == Ok(0x1042_1af4));
    bars(dev, start, &mut check);
    let bar = sys::device_config_read(dev, 0x10, Width::Dword);
    let moved = sys::device_config_write(dev, 0x10, Width::Dword, 0x0010_0000);
    check("BAR 0 moved over the kernel refused", moved == Err(Error::InsufficientRights));
    check("BAR 0 where it was", bar.is_ok() && sys::device_config_read(dev, 0x10, Width::Dword) == bar);
    let rom = sys::device_config_write(dev, 0x30, Width::Dword, 0x0010_0001);
    check("the expansion ROM refused", rom == Err(Error::InsufficientRights));
    let line = sys::device_config_write(dev, 0x3c, Width::Byte, 11);
    check(
        "its interrupt line written",
        line.is_ok() && sys::device_config_read(dev, 0x3c, Width::Byte) == Ok(11),
    );
    let command = sys::device_config_write(dev, 0x04, Width::Word, 0x0006);
    let read = sys::device_config_read(dev, 0x04, Width::Word);
    check("bus mastering left off (no DMA given)", command.is_ok() && read.is_ok_and(|c| c & 0x4 == 0));
    let far = sys::device_config_read(dev, 0x1000, Width::Dword);
    check("a read past its 4 KiB refused", far == Err(Error::InvalidArgument));
    u64::from(!ok)
}

/// Where it maps BARs: its own free range.
const BAR_VA: u64 = user::layout::FREE_BASE;

/// What it may and may not do with the BARs (QEMU's virtio-blk-pci with
/// `disable-legacy=on`: BAR 1 the MSI-X table, 4 KiB; BAR 4 64-bit, 16
/// KiB: common configuration at 0, ISR, device, notify; no BAR 0).
fn bars(dev: CapSlot, start: &StartInfo, check: &mut impl FnMut(&str, bool)) {
    // Memory decoding on: the registers answer.
    let _ = sys::device_config_write(dev, 0x04, Width::Word, 0x0002);
    let mapped = sys::device_map(dev, 4, BAR_VA);
    check("BAR 4 mapped, 16 KiB", mapped == Ok(0x4000));
    if mapped.is_ok() {
        // virtio 1.2 §4.1.4.3: `num_queues` at 0x12 (QEMU gives
        // virtio-blk one per vCPU).
        let regs = BAR_VA as *const u16;
        // SAFETY: BAR 4 is mapped at BAR_VA (16 KiB, uncached); 0x12 is
        // inside its common configuration.
        let queues = unsafe { core::ptr::read_volatile(regs.add(0x12 / 2)) };
        log::info!("devprobe: virtio reports {queues} queue(s)");
        check("virtio's common configuration read through BAR 4", (1..=64).contains(&queues));
        let from_regs = user::ipc::syscall::UserBuf::new(BAR_VA, 16, 4096);
        let console = start.slot("console");
        let written = match (from_regs, console) {
            (Some(buf), Some(console)) => sys::raw_console_write(console, buf),
            _ => Ok(()),
        };
        check("a console write from its registers refused", written == Err(Error::BadAddress));
    }
    let msix = sys::device_map(dev, 1, BAR_VA + 0x10_0000);
    check("BAR 1 (the MSI-X table) mapped without its table's page", msix == Ok(0x1000));
    check("BAR 0 (none) not mapped", sys::device_map(dev, 0, BAR_VA + 0x20_0000) == Err(Error::NotSupported));
    check("BAR 4 is no port range", sys::device_ports(dev, 4) == Err(Error::NotSupported));
    let stack = user::layout::STACK_TOP - 0x1000;
    check("a map over its own stack refused", sys::device_map(dev, 4, stack) == Err(Error::AlreadyMapped));
    let console = start.slot("console").unwrap_or(CapSlot(0));
    let wrong = sys::device_map(console, 4, BAR_VA + 0x30_0000);
    check("a map with no device capability refused", wrong == Err(Error::WrongType));
    // MSI-X: an entry of its table bound, one past it refused, the same
    // entry twice refused.
    let ntfn = start.slot("self").and_then(|me| sys::notification_create(me).ok());
    let ntfn = ntfn.unwrap_or(CapSlot(u32::MAX));
    check("MSI-X entry 0 bound to a notification", sys::device_irq_bind(dev, 0, ntfn, 1).is_ok());
    check("MSI-X entry 0 bound twice refused", sys::device_irq_bind(dev, 0, ntfn, 1) == Err(Error::Busy));
    let past = sys::device_irq_bind(dev, 64, ntfn, 1);
    check("an MSI-X entry past its table refused", past == Err(Error::NotSupported));
    let byte = |at: u16| sys::device_config_read(dev, at, Width::Byte).unwrap_or(0) as u16;
    let mut at = byte(0x34) & 0xfc;
    let mut msix_at = None;
    for _ in 0..48 {
        if at < 0x40 || msix_at.is_some() {
            break;
        }
        msix_at = (byte(at) == 0x11).then_some(at);
        at = byte(at + 1) & 0xfc;
    }
    let own = msix_at.map(|at| sys::device_config_write(dev, at + 2, Width::Word, 0x8000));
    check("its MSI-X capability not writable", own == Some(Err(Error::InsufficientRights)));
}
