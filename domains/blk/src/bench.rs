//! The device bench's part in `blk` (`cargo xtask bench`,
//! `tests/systems/bench-devices.toml`, under `-icount`: the TSC counts
//! instructions). Given `shared:bench-stamp`, `blk` measures the interrupt
//! path before it serves: `ROUNDS` times it queues a 4 KiB read and waits
//! on the notification its device's MSI-X entry 0 signals; meanwhile
//! `stamper`, on the same CPU, writes the TSC into the region again and
//! again. Woken, `blk` takes the TSC minus `stamper`'s last stamp: the
//! instructions from the device's MSI (within one turn of `stamper`'s
//! loop) to the driver running again (the kernel's interrupt entry, the
//! notification's signal, the switch, the return from `Wait`). A round in
//! which the device finished before `blk` slept (no stamp after it went to
//! wait) is not counted. Under `-icount` QEMU finishes the device's work
//! when the CPU's thread leaves its slice, often at a timer's deadline, so
//! the APIC tick may be taken with the MSI: the fewest of the rounds
//! counted is the path alone (`device_msi_to_driver`), their mean has ticks
//! in it (`device_msi_to_driver_mean`). Then it stops `stamper`, and while it serves,
//! keeps in the region the ticks it spent waiting for its device
//! (`serve.rs`), which `blk-bench` takes off its figures.

use core::sync::atomic::{AtomicU64, Ordering};

use ipc::block::bench::{DEVICE_WAIT, STAMP, STOP, WORDS};
use ryokan_virtio::hal::Dma;
use ryokan_virtio::Transport;
use user::{arch, sys, time, CapSlot, Caps, StartInfo};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};

const ROUNDS: u64 = 300;
const STAMPER_WITHIN_MS: u64 = 10_000;

/// The bench's words, if this system has the region.
pub struct Words(&'static [AtomicU64]);

impl Words {
    pub fn find(start: &StartInfo) -> Option<Self> {
        let r = start.shared("bench-stamp").filter(|r| r.len >= 8 * WORDS as u64)?;
        // SAFETY: mgmt maps the region read-write for this domain's life,
        // 8-aligned (page-aligned), `WORDS` words long (checked); peers
        // and this domain touch it only atomically.
        Some(Words(unsafe { core::slice::from_raw_parts(r.va as *const AtomicU64, WORDS) }))
    }

    pub fn get(&self, i: usize) -> u64 {
        self.0[i].load(Ordering::Acquire)
    }

    pub fn set(&self, i: usize, v: u64) {
        self.0[i].store(v, Ordering::Release);
    }
}

/// Measures the interrupt path (see the module's docs), logs it, stops `stamper`.
pub fn interrupt_path(
    blk: &mut VirtIOBlk<Dma, Transport>,
    (irq, irqs): (CapSlot, ryokan_virtio::Interrupts),
    words: &Words,
) -> Result<(), &'static str> {
    // `stamper` may start after this domain: its first stamp first.
    let deadline = time::deadline_ms(STAMPER_WITHIN_MS);
    while words.get(STAMP) == 0 {
        if time::passed(deadline) {
            return Err("stamper never stamped");
        }
        sys::yield_now();
    }
    let (mut total, mut least, mut counted) = (0u64, u64::MAX, 0u64);
    let mut buf = [0u8; 4096];
    for _ in 0..ROUNDS {
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        let _ = sys::poll(irq);
        let asleep = arch::rdtsc();
        // SAFETY: `req`, `buf` and `resp` are not touched until the
        // request is completed below.
        let token =
            unsafe { blk.read_blocks_nb(0, &mut req, &mut buf, &mut resp) }.map_err(|_| "queueing")?;
        sys::wait(irq).map_err(|_| "waiting for the device's interrupt")?;
        if let ryokan_virtio::Interrupts::Intx(_) = irqs {
            let _ = blk.ack_interrupt();
            irqs.ack()?;
        }
        let (woken, stamp) = (arch::rdtsc(), words.get(STAMP));
        if stamp > asleep {
            let n = woken.wrapping_sub(stamp);
            (total, least, counted) = (total + n, least.min(n), counted + 1);
        }
        while blk.peek_used().is_none() {
            core::hint::spin_loop();
        }
        // SAFETY: the buffers `read_blocks_nb` was given, untouched since.
        unsafe { blk.complete_read_blocks(token, &req, &mut buf, &mut resp) }.map_err(|_| "a read failed")?;
    }
    words.set(STOP, 1);
    words.set(DEVICE_WAIT, 0);
    if counted == 0 {
        return Err("no round of the interrupt path could be counted");
    }
    log::info!("bench: device_msi_to_driver {}", least);
    log::info!("bench: device_msi_to_driver_mean {}", total / counted);
    log::info!("blk: interrupt path: {counted} of {ROUNDS} rounds counted");
    Ok(())
}
