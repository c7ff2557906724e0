//! The load `blk_restart`'s first `blk` instance puts on its device until
//! it is killed (#12, must-show 5): batch after batch, two reads (sectors
//! 0..24, into memory the device writes) and two writes (`pattern::load`
//! at sectors 1024..1072, from memory the device reads), all four queued
//! at once, each 12 KiB, in buffers lent to the device from the domain's
//! DMA memory (`hal::buffer`: the device reaches them as they lie, not
//! through the bounce area). The test's disk is throttled (256 KiB/s), so
//! a batch keeps the device's DMA in flight for some 190 ms and the gap
//! between two batches is a few microseconds: a kill finds requests the
//! device has taken and not finished, whose buffers are in the memory
//! the kernel frees.

use core::convert::Infallible;

use ipc::block::pattern;
use ryokan_virtio::hal::{self, Dma};
use ryokan_virtio::Transport;
use user::time;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};

/// The requests queued at once, their bytes, and where the writes go.
pub const REQUESTS: usize = 4;
pub const BYTES: usize = 12 * 1024;
pub const WRITES_AT: usize = 1024;
const SECTORS: usize = BYTES / 512;

/// Request `k`: a read (`k` < 2) of sectors 0.., or a write at its place.
fn is_read(k: usize) -> bool {
    k < REQUESTS / 2
}

/// Runs the load until the domain is killed; returns only if the device fails.
pub fn run(blk: &mut VirtIOBlk<Dma, Transport>) -> Result<Infallible, &'static str> {
    let mut bufs: [&'static mut [u8]; REQUESTS] = [&mut [], &mut [], &mut [], &mut []];
    for (k, b) in bufs.iter_mut().enumerate() {
        *b = hal::buffer(BYTES).ok_or("no DMA memory left for the load's buffers")?;
        if !is_read(k) {
            for (i, x) in b.iter_mut().enumerate() {
                *x = pattern::load((k - REQUESTS / 2) * BYTES + i);
            }
        }
    }
    let mut reqs = [BlkReq::default(), BlkReq::default(), BlkReq::default(), BlkReq::default()];
    let mut resps = [BlkResp::default(), BlkResp::default(), BlkResp::default(), BlkResp::default()];
    for batch in 0u64.. {
        let mut tokens = [None; REQUESTS];
        for (k, t) in tokens.iter_mut().enumerate() {
            let (req, resp, buf) = (&mut reqs[k], &mut resps[k], &mut *bufs[k]);
            let at = WRITES_AT + k.saturating_sub(REQUESTS / 2) * SECTORS;
            // SAFETY: `req`, `resp` and `buf` are not touched again until
            // the request is completed below (or the domain dies).
            let token = unsafe {
                if is_read(k) {
                    blk.read_blocks_nb(0, req, buf, resp)
                } else {
                    blk.write_blocks_nb(at, req, buf, resp)
                }
            };
            *t = Some(token.map_err(|_| "the device's queue took no request")?);
        }
        while tokens.iter().any(Option::is_some) {
            let Some(used) = blk.peek_used() else {
                time::delay_ms(1);
                continue;
            };
            let k =
                tokens.iter().position(|&t| t == Some(used)).ok_or("the device used no request of ours")?;
            let (req, resp, buf) = (&reqs[k], &mut resps[k], &mut *bufs[k]);
            // SAFETY: the buffers `read_blocks_nb`/`write_blocks_nb` were given, untouched since.
            let done = unsafe {
                if is_read(k) {
                    blk.complete_read_blocks(used, req, buf, resp)
                } else {
                    blk.complete_write_blocks(used, req, buf, resp)
                }
            };
            done.map_err(|_| "a request of the load failed")?;
            tokens[k] = None;
        }
        if batch == 0 {
            log::info!(
                "blk: load: {REQUESTS} requests of {} KiB at once (2 reads, 2 writes at sectors {WRITES_AT}..{}), batch after batch, until killed",
                BYTES / 1024,
                WRITES_AT + 2 * SECTORS
            );
        }
    }
    Err("the load's batches ran out")
}
