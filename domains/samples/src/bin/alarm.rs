//! `alarm`: notifications as the one way to wait for anything asynchronous:
//! a periodic timer, an interrupt line bound to the notification (the RTC,
//! line 8), and the death of a domain it supervises; and a notification
//! bound to its thread, which ends its receive on an endpoint (signalled
//! before the receive, then by a timer during it).

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::event::Event;
use ipc::syscall::Width;
use ipc::{Error, Rights};
use user::{sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const TIMER: u64 = 1 << 1;
const IRQ: u64 = 1 << 2;
const CHILD: u64 = 1 << 3;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("alarm: {e:?}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Error> {
    let me = start.self_domain().ok_or(Error::InvalidCapability)?;
    let n = sys::notification_create(me)?;
    // 1. A periodic timer: 10 signals, 5 ms apart.
    let t0 = time::now();
    sys::timer_set(n, TIMER, 5_000, 5_000)?;
    let mut signals = 0;
    while signals < 10 {
        if sys::wait(n)? & TIMER != 0 {
            signals += 1;
        }
    }
    sys::timer_set(n, TIMER, 0, 0)?;
    let ms = (time::now() - t0) / time::tsc_per_ms().max(1);
    log::info!("alarm: {signals} timer signals in {ms} ms");
    // 2. The RTC's periodic interrupt, delivered as a bit on the notification.
    let (Some(ports), Some(irq)) = (start.slot("ioports"), start.slot("irq:8")) else {
        return Err(Error::InvalidCapability);
    };
    let reg = |r: u32| -> Result<u32, Error> {
        sys::ioport_write(ports, 0x70, Width::Byte, 0x80 | r)?;
        sys::ioport_read(ports, 0x71, Width::Byte)
    };
    let set = |r: u32, v: u32| -> Result<(), Error> {
        sys::ioport_write(ports, 0x70, Width::Byte, 0x80 | r)?;
        sys::ioport_write(ports, 0x71, Width::Byte, v)
    };
    sys::irq_bind(irq, n, IRQ)?;
    let (a, b) = (reg(0x0A)?, reg(0x0B)?);
    set(0x0A, (a & 0xF0) | 0x0A)?;
    set(0x0B, b | 0x40)?;
    reg(0x0C)?;
    let mut irqs = 0;
    while irqs < 5 {
        if sys::wait(n)? & IRQ != 0 {
            reg(0x0C)?; // acknowledge at the device,
            sys::irq_wait(irq)?; // then the line (returns at once: it fired)
            irqs += 1;
        }
    }
    set(0x0B, b & !0x40)?;
    log::info!("alarm: {irqs} interrupts through the notification");
    // 3. A child that executes ud2: its death arrives as a bit.
    let (child, _) = sys::domain_create(16)?;
    sys::domain_notify(child, n, CHILD)?;
    let code = sys::memory_create(child, 1)?;
    let scratch = 0x2000_0000_0000u64;
    sys::memory_map(code, me, scratch, Rights::READ | Rights::WRITE)?;
    // SAFETY: `scratch` maps the page just made, ours alone.
    unsafe { core::ptr::write_volatile(scratch as *mut [u8; 2], [0x0F, 0x0B]) };
    // SAFETY: the page is mapped only here and nothing of ours is in it.
    unsafe { sys::memory_unmap(code, me, scratch)? };
    sys::memory_map(code, child, 0x40_0000, Rights::READ | Rights::EXEC)?;
    // SAFETY: the thread runs in the child, not in this domain.
    unsafe { sys::thread_create(child, 0x40_0000, 0x50_0000, 0, None)? };
    let deadline = time::deadline_ms(5_000);
    while sys::wait(n)? & CHILD == 0 {
        if time::passed(deadline) {
            return Err(Error::WouldBlock);
        }
    }
    match sys::domain_wait(false)? {
        Event::Faulted { fault, .. } => log::info!("alarm: child death signalled: {}", fault.name()),
        other => log::info!("alarm: child event {other:?}"),
    }
    sys::domain_destroy(child)?;
    // 4. A notification bound to this thread ends its receives.
    let ep = sys::endpoint_create(me)?;
    let bound = sys::notification_create(me)?;
    sys::notification_bind(bound)?;
    sys::signal(bound, 1)?;
    let before = sys::recv_any(ep)?;
    sys::timer_set(bound, 2, 2_000, 0)?;
    let during = sys::recv_any(ep)?;
    match (before, during) {
        (sys::Incoming::Notified(1), sys::Incoming::Notified(2)) => {
            log::info!(
                "alarm: a bound notification ended 2 receives: 0x1 signalled before, 0x2 by a timer during"
            )
        }
        other => log::info!("alarm: FAIL receives with a bound notification gave {other:?}"),
    }
    Ok(())
}
