//! The block service over `ipc::ring` (`ipc::block`): each client's
//! region holds its request ring and its answer ring; every request is
//! decoded (checked) and put through the client's window (its region of
//! the disk, `ipc::block::clients::Window`) before it is served: one past
//! the window's end is answered `BadAddress` and touches nothing, a write
//! to a read-only window `InsufficientRights`, one `blk` has no bounce
//! memory left for `QuotaExceeded`. A client that breaks a ring
//! (`PeerMisbehaved`) is served no more; the others are not disturbed. The
//! service ends when every client has closed or been dropped.
//!
//! The clients: those the system file names ([`CLIENTS`], each given
//! the whole disk, if its region is there), and the guests' disks `mgmt`
//! wired to this domain, learnt at start from the page `mgmt` grants as
//! `blk-clients` (`ipc::block::clients`: trusted, from `mgmt`, never from
//! a VMM), each only its region. All ring `notification:blk-req`.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use heapless::String;
use ipc::block::bench::DEVICE_WAIT;
use ipc::block::clients::{self as guests, Clients, Window, CLIENTS_CAP, CLIENTS_MAX, MAX_CLIENTS};
use ipc::block::{Answer, Op, Request, ANSWERS_AT, MAX_SECTORS, REGION_BYTES, RING, SECTOR};
use ipc::ring::{Consumer, Producer, Region, Sleep};
use ipc::{CapSlot, Error, Rights};
use user::{arch, layout, sys, Caps, StartInfo};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};

use ryokan_virtio::hal::{self, Dma};
use ryokan_virtio::Transport;

use crate::bench::Words;

/// The TSC ticks spent waiting for the device to finish what it was given.
static WAITED: AtomicU64 = AtomicU64::new(0);

fn waited() -> u64 {
    WAITED.load(Ordering::Relaxed)
}

/// Waits (spinning, as `virtio-drivers`' own blocking calls do) until the
/// device has used a request, the wait counted in `WAITED`.
fn until_used(blk: &mut VirtIOBlk<Dma, Transport>) {
    let t0 = arch::rdtsc();
    while blk.peek_used().is_none() {
        core::hint::spin_loop();
    }
    WAITED.fetch_add(arch::rdtsc().wrapping_sub(t0), Ordering::Relaxed);
}

/// `VirtIOBlk::read_blocks`, the device's time counted apart.
fn read(blk: &mut VirtIOBlk<Dma, Transport>, sector: usize, buf: &mut [u8]) -> virtio_drivers::Result {
    let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
    // SAFETY: `req`, `buf` and `resp` are not touched until the request
    // is completed, just below.
    let token = unsafe { blk.read_blocks_nb(sector, &mut req, buf, &mut resp) }?;
    until_used(blk);
    // SAFETY: the buffers `read_blocks_nb` was given, untouched since.
    unsafe { blk.complete_read_blocks(token, &req, buf, &mut resp) }
}

/// `VirtIOBlk::write_blocks`, the device's time counted apart.
fn write(blk: &mut VirtIOBlk<Dma, Transport>, sector: usize, buf: &[u8]) -> virtio_drivers::Result {
    let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
    // SAFETY: as in `read`.
    let token = unsafe { blk.write_blocks_nb(sector, &mut req, buf, &mut resp) }?;
    until_used(blk);
    // SAFETY: as in `read`.
    unsafe { blk.complete_write_blocks(token, &req, buf, &mut resp) }
}

/// The clients the system file may name: each one's region (`shared:<name>`)
/// and the doorbell it waits on (`notification:<name>-ans`); each rings
/// this domain's `notification:blk-req`.
const CLIENTS: [(&str, &str); 2] = [("blk-client", "blk-client-ans"), ("blk-hostile", "blk-hostile-ans")];

/// Where the `blk-clients` page is mapped.
const CLIENTS_VA: u64 = layout::FREE2_BASE + (1 << 40);

struct Client {
    name: String<32>,
    requests: Consumer<'static>,
    answers: Producer<'static>,
    bell: CapSlot,
    /// The part of the disk it may reach.
    window: Window,
    /// An answer the full ring did not take yet: its bytes.
    pending: Option<([u8; RING.max_payload()], usize)>,
    done: bool,
}

/// The client whose region is `shared:<region>` and who waits on `bell`.
fn attach(
    start: &StartInfo,
    name: &str,
    region: &str,
    bell: CapSlot,
    window: Window,
) -> Result<Client, &'static str> {
    let shared = start.shared(region).ok_or("a client's region is missing")?;
    if (shared.len as usize) < REGION_BYTES {
        return Err("a client's region is too small");
    }
    // SAFETY: mgmt maps the region read-write for this domain's life; only
    // these two rings use it, each in its own half.
    let (req, ans) = unsafe {
        let va = shared.va as *mut u8;
        (Region::from_raw(va, ANSWERS_AT), Region::from_raw(va.add(ANSWERS_AT), REGION_BYTES - ANSWERS_AT))
    };
    let requests = Consumer::new(req.map_err(|_| "a request ring")?, RING).map_err(|_| "a request ring")?;
    let answers = Producer::new(ans.map_err(|_| "an answer ring")?, RING).map_err(|_| "an answer ring")?;
    let name = String::try_from(name).map_err(|_| "a client's name")?;
    Ok(Client { name, requests, answers, bell, window, pending: None, done: false })
}

/// The guests' disks `mgmt` wired here (none without `blk-clients`).
fn guest_clients(start: &StartInfo) -> Result<Clients, &'static str> {
    let Some(cap) = start.cap(CLIENTS_CAP) else { return Ok(Clients::new()) };
    let len =
        usize::try_from(cap.size).ok().filter(|&l| l <= CLIENTS_MAX).ok_or("blk-clients is too large")?;
    let me = start.slot("self").ok_or("no self capability")?;
    sys::memory_map(CapSlot(cap.slot), me, CLIENTS_VA, Rights::READ).map_err(|_| "cannot map blk-clients")?;
    let mut bytes = [0u8; CLIENTS_MAX];
    for (i, b) in bytes[..len].iter_mut().enumerate() {
        // SAFETY: the page is mapped readable at CLIENTS_VA (a memory
        // object holds at least a page; CLIENTS_MAX < 4096), read byte by
        // byte, volatile: mgmt made it and could change it.
        *b = unsafe { ((CLIENTS_VA as *const u8).add(i)).read_volatile() };
    }
    Clients::decode(&bytes[..len]).map_err(|_| "blk-clients does not decode")
}

/// Every client: the system file's present, then the guests' disks.
fn clients(
    start: &StartInfo,
    capacity: u64,
) -> Result<heapless::Vec<Client, { 2 + MAX_CLIENTS }>, &'static str> {
    let mut all = heapless::Vec::new();
    for (name, bell) in CLIENTS {
        if start.shared(name).is_none() {
            continue;
        }
        let bell = start.prefixed("notification:", bell).ok_or("a client's doorbell is missing")?;
        let _ = all.push(attach(start, name, name, bell, Window::whole(capacity))?);
    }
    for (n, g) in guest_clients(start)?.list.iter().enumerate() {
        let window = Window::of(g, capacity);
        let mut name = String::<32>::new();
        let _ = write!(name, "{}:{n}", g.guest);
        let region = guests::blk_region(n);
        let region = region.strip_prefix("shared:").ok_or("a guest disk's region")?;
        let bell = start.slot(&guests::blk_bell(n)).ok_or("a guest disk's doorbell is missing")?;
        log::info!(
            "blk: guest disk {name}: sectors {}..{} of the disk{}",
            window.first,
            window.first + window.sectors,
            if window.read_only { ", read-only" } else { "" }
        );
        let _ = all.push(attach(start, &name, region, bell, window)?);
    }
    Ok(all)
}

/// Serves every client until each has closed or been dropped; with the
/// device bench's words, keeps in them the ticks spent waiting for the
/// device (`bench.rs`).
pub fn serve(
    start: &'static StartInfo,
    blk: &mut VirtIOBlk<Dma, Transport>,
    bench: Option<&Words>,
) -> Result<(), &'static str> {
    let mine = start.slot(guests::BLK_REQUESTS).ok_or("no notification:blk-req")?;
    let capacity = blk.capacity();
    let mut clients = clients(start, capacity)?;
    let mut req = [0u8; RING.max_payload()];
    loop {
        let mut moved = false;
        for c in clients.iter_mut().filter(|c| !c.done) {
            match step(c, blk, &mut req) {
                Ok(m) => {
                    moved |= m;
                    if let Some(w) = bench {
                        w.set(DEVICE_WAIT, waited());
                    }
                }
                Err(e) => {
                    log::info!("blk: client {} broke its ring ({e:?}): no longer served", c.name);
                    c.done = true;
                }
            }
        }
        if clients.iter().all(|c| c.done) {
            log::info!("blk: every client closed or dropped");
            return Ok(());
        }
        if !moved && clients.iter_mut().filter(|c| !c.done).all(sleepy) {
            sys::wait(mine).map_err(|_| "waiting")?;
        }
    }
}

/// Whether `c` gives nothing to do now, its side ready to sleep.
fn sleepy(c: &mut Client) -> bool {
    let answers = c.pending.is_none() || c.answers.prepare_to_sleep() == Ok(Sleep::Wait);
    answers && c.requests.prepare_to_sleep() == Ok(Sleep::Wait)
}

/// Moves `c` on by one request (or its pending answer); whether anything moved.
fn step(c: &mut Client, blk: &mut VirtIOBlk<Dma, Transport>, req: &mut [u8]) -> Result<bool, Error> {
    if let Some((bytes, n)) = c.pending {
        match c.answers.push(&bytes[..n]) {
            Ok(s) => {
                if s.is_needed() {
                    sys::signal(c.bell, 1)?;
                }
                c.pending = None;
            }
            Err(Error::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    let (n, signal) = match c.requests.pop(req) {
        Ok(got) => got,
        Err(Error::WouldBlock) => return Ok(false),
        Err(e) => return Err(e),
    };
    if signal.is_needed() {
        sys::signal(c.bell, 1)?;
    }
    let mut out = [0u8; RING.max_payload()];
    let mut data = [0u8; MAX_SECTORS as usize * SECTOR];
    // Decoded, then put through the client's window: `at` is where on
    // the disk a read or write lands, inside the client's region.
    let decoded = Request::decode(&req[..n])
        .and_then(|r| c.window.translate(&r).map(|at| (r, at)).map_err(|e| (r.tag, e)));
    let (tag, result, len) = match decoded {
        Err((tag, e)) => (tag, Err(e), 0),
        // No room to bounce it: refused, the disk untouched, blk going on.
        Ok((r, _))
            if matches!(r.op, Op::Read | Op::Write | Op::Flush)
                && !hal::bounce_room_for(r.count as usize * SECTOR) =>
        {
            log::info!("blk: client {}: no bounce memory for request {}: refused", c.name, r.tag);
            (r.tag, Err(Error::QuotaExceeded), 0)
        }
        Ok((r, at)) => {
            let bytes = r.count as usize * SECTOR;
            let done = match r.op {
                Op::Read => read(blk, at as usize, &mut data[..bytes]).map(|_| (0, bytes)),
                Op::Write => write(blk, at as usize, r.data).map(|_| (0, 0)),
                Op::Flush => blk.flush().map(|_| (0, 0)),
                Op::Capacity => Ok((c.window.sectors, 0)),
                Op::Close => {
                    c.done = true;
                    Ok((0, 0))
                }
            };
            match done {
                Ok((value, len)) => (r.tag, Ok(value), len),
                Err(_) => (r.tag, Err(Error::NotSupported), 0),
            }
        }
    };
    let answer = Answer { tag, result, data: &data[..len] };
    let n = answer.encode(&mut out).ok_or(Error::Malformed)?;
    match c.answers.push(&out[..n]) {
        Ok(s) => {
            if s.is_needed() {
                sys::signal(c.bell, 1)?;
            }
        }
        Err(Error::WouldBlock) => c.pending = Some((out, n)),
        Err(e) => return Err(e),
    }
    Ok(true)
}
