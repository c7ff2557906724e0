//! `blk`: the disk driver domain. It drives the virtio-blk PCI function
//! it was given (`device:00:04.0`) with `virtio-drivers`: its
//! configuration space through the kernel, its BARs mapped into this
//! domain, its DMA into one memory object whose device address the kernel
//! tells (all three `ryokan_virtio`, which `net` shares). It checks the pattern the test harness wrote at
//! sectors 0..8, writes its own at sectors 100..108 and flushes; then it
//! serves the block service (`serve.rs`) until every client is done (the
//! system file's clients, with the whole disk, and the guests' disks
//! `mgmt` wired to it, each with only its region), and exits 0 if all
//! went as it should. As `blk-restart` (`blk_restart`),
//! its first instance loads the device instead until it is killed
//! (`load.rs`), and the instances its supervisor starts after serve.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

mod bench;
mod load;
mod serve;

use ipc::block::pattern;
use ryokan_virtio::{self as virtio, hal::Dma};
use user::{sys, Caps, StartInfo};
use virtio_drivers::device::blk::VirtIOBlk;

// A stack of 256 KiB: each client keeps an answer the full ring did not
// take yet (4 KiB), up to 6 clients.
user::entry!(main, heap_kib = 0, stack_kib = 256);

const DEVICE: &str = "device:00:04.0";
/// Its INTx line, if the system file gave one (`intx`): the fallback of a
/// function without MSI-X.
const INTX: &str = "intx:00:04.0";
const SECTOR: usize = 512;
/// The name under which its first instance loads the device until it is
/// killed, instead of serving (`blk_restart`: `load.rs`); its later
/// instances serve.
const LOADED: &str = "blk-restart";

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::info!("blk: FAIL: {why}");
            1
        }
    }
}

fn run(start: &'static StartInfo) -> Result<(), &'static str> {
    let me = start.slot("self").ok_or("no self capability")?;
    let (dev, transport) = virtio::open(start, DEVICE, 4, 0)?;
    let mut blk = VirtIOBlk::<Dma, _>::new(transport).map_err(|_| "virtio-blk setup")?;
    if !virtio::transport::accepted() {
        return Err("the device refused the features offered (FEATURES_OK)");
    }
    log::info!("blk: virtio-blk of {} sectors", blk.capacity());
    let irq = sys::notification_create(me).map_err(|_| "no notification")?;
    let irqs = virtio::interrupts_to_notification(dev, irq, &[0], start.slot(INTX))?;
    let mut buf = [0u8; 8 * SECTOR];
    blk.read_blocks(0, &mut buf).map_err(|_| "reading sectors 0..8")?;
    if buf.iter().enumerate().any(|(i, &b)| b != pattern::harness(i)) {
        return Err("sectors 0..8 are not the harness's pattern");
    }
    log::info!("blk: read the harness's pattern at sectors 0..8");
    if !interrupted(irq, irqs.bit()) {
        return Err("no interrupt for the read's completion reached the notification");
    }
    match irqs {
        virtio::Interrupts::Msix => {
            log::info!("blk: the read's completion raised MSI-X entry 0, which reached its notification")
        }
        virtio::Interrupts::Intx(_) => {
            // Level-triggered: the ISR's read lowers the line, then the
            // kernel unmasks it; a second read raises it again.
            let _ = blk.ack_interrupt();
            irqs.ack()?;
            blk.read_blocks(0, &mut buf).map_err(|_| "reading sectors 0..8 again")?;
            if !interrupted(irq, irqs.bit()) {
                return Err("no INTx interrupt for the second read's completion (the line not unmasked)");
            }
            let _ = blk.ack_interrupt();
            irqs.ack()?;
            log::info!("blk: no MSI-X: the reads' completions raised its INTx line, twice, which reached its notification")
        }
    }
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern::blk(i);
    }
    blk.write_blocks(100, &buf).map_err(|_| "writing sectors 100..108")?;
    blk.flush().map_err(|_| "flushing")?;
    let mut back = [0u8; 8 * SECTOR];
    blk.read_blocks(100, &mut back).map_err(|_| "reading sectors 100..108 back")?;
    if back != buf {
        return Err("sectors 100..108 read back otherwise");
    }
    log::info!("blk: wrote its pattern at sectors 100..108, flushed, read it back");
    if start.name() == LOADED && start.generation == 0 {
        load::run(&mut blk)?;
    }
    let words = bench::Words::find(start);
    if let Some(w) = &words {
        bench::interrupt_path(&mut blk, (irq, irqs), w)?;
    }
    serve::serve(start, &mut blk, words.as_ref())
}

/// Whether the device's interrupt (`bit`) reached notification `irq`,
/// polled a while: the used ring can show a completion before the
/// interrupt that says so is taken (an emulator delivers it at its next
/// block of instructions; an I/O APIC line later than an MSI).
fn interrupted(irq: user::CapSlot, bit: u64) -> bool {
    (0..10_000).any(|_| {
        let word = sys::poll(irq).unwrap_or(0);
        if word & bit == 0 {
            sys::yield_now();
        }
        word & bit != 0
    })
}
