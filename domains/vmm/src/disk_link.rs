//! The guest's disks, each a client of the `blk` domain it lies on over
//! the channel `mgmt` made (`ipc::block::clients`: `shared:disk:<k>`, the
//! notification `notification:disk:<k>` this VMM waits on for answers,
//! `blk`'s `notification:disk-req:<k>` it rings): [`vmm::backing`] over
//! those capabilities.

use ipc::block::clients::{vmm_bell, vmm_blk_bell, vmm_region};
use ipc::block::{ANSWERS_AT, REGION_BYTES};
use ipc::guest::GuestConfig;
use ipc::manifest::MAX_GUEST_DISKS;
use ipc::ring::Region;
use ipc::{CapSlot, Error};
use user::{sys, Caps, StartInfo};
use vmm::backing::{Backing, Bells};

/// The VMM's doorbells of one disk: its own (waited on) and `blk`'s.
pub struct SysBells {
    mine: CapSlot,
    blk: CapSlot,
}

impl Bells for SysBells {
    fn ring(&mut self) -> Result<(), Error> {
        sys::signal(self.blk, 1)
    }

    fn wait(&mut self) -> Result<(), Error> {
        sys::wait(self.mine).map(drop)
    }
}

pub type Disk = Backing<'static, SysBells>;
pub type Disks = heapless::Vec<Disk, MAX_GUEST_DISKS>;

/// Connects every disk of `config`, in order; the first that cannot be
/// connected is said, and none is given.
pub fn open(start: &StartInfo, config: &GuestConfig) -> Result<Disks, (usize, &'static str)> {
    let mut disks = Disks::new();
    for (k, spec) in config.disks.iter().enumerate() {
        let region = vmm_region(k);
        let name = region.strip_prefix("shared:").unwrap_or_default();
        let shared = start.shared(name).ok_or((k, "no channel to its blk domain"))?;
        if (shared.len as usize) < REGION_BYTES {
            return Err((k, "its channel's region is too small"));
        }
        let mine = start.slot(&vmm_bell(k)).ok_or((k, "no notification for its answers"))?;
        let blk = start.slot(&vmm_blk_bell(k)).ok_or((k, "no notification of its blk domain"))?;
        // SAFETY: mgmt maps the region read-write for this domain's life
        // (it is mgmt's; the VMM never unmaps it); only these two rings
        // use it, each in its own half.
        let (req, ans) = unsafe {
            let va = shared.va as *mut u8;
            (
                Region::from_raw(va, ANSWERS_AT),
                Region::from_raw(va.add(ANSWERS_AT), REGION_BYTES - ANSWERS_AT),
            )
        };
        let (req, ans) = (req.map_err(|_| (k, "its region"))?, ans.map_err(|_| (k, "its region"))?);
        let disk = Backing::connect(req, ans, SysBells { mine, blk }, spec)
            .map_err(|_| (k, "its blk domain did not answer a capacity request"))?;
        // At most MAX_GUEST_DISKS in a configuration.
        let _ = disks.push(disk);
    }
    Ok(disks)
}

/// The command-line word of the hostile disk test (`guest_disk_hostile`):
/// before the guest runs, the VMM asks `blk` what its disks' regions
/// forbid, past its own checks ([`attack`]).
pub const ATTACK: &str = "ryokan.disk-attack";

/// Asks `blk`, on each disk, for sectors past its region's end (a read, a
/// write, one straddling the end, one whose end wraps) and, on a
/// read-only one, a write; says each answer. Whether `blk` refused them
/// all and the disk's size is unchanged after.
pub fn attack(disks: &mut Disks, console: &crate::console::Console) -> bool {
    use crate::console::say;
    use ipc::block::Op;
    use vq::blk::Disk as _;
    let mut all = true;
    for (k, d) in disks.iter_mut().enumerate() {
        let n = d.sectors();
        let mut asks = heapless::Vec::<(&str, Op, u64, u32, Error), 5>::new();
        let _ = asks.push(("a read past the end", Op::Read, n, 1, Error::BadAddress));
        let _ = asks.push(("a write past the end", Op::Write, n, 8, Error::BadAddress));
        let _ = asks.push(("a write across the end", Op::Write, n.saturating_sub(1), 2, Error::BadAddress));
        let _ = asks.push(("a write whose end wraps", Op::Write, u64::MAX - 3, 8, Error::BadAddress));
        if d.read_only() {
            let _ = asks.push(("a write to a read-only disk", Op::Write, 0, 1, Error::InsufficientRights));
        }
        for (what, op, sector, count, want) in asks {
            match d.raw(op, sector, count) {
                Err(e) if e == want => say!(console, "disk {k}: {what}: refused ({e:?}), as owed"),
                got => {
                    all = false;
                    say!(console, "disk {k}: {what}: answered {got:?}, not {want:?}");
                }
            }
        }
        match d.raw(Op::Capacity, 0, 0) {
            Ok(c) if c >= n => say!(console, "disk {k}: still {n} sectors after"),
            got => {
                all = false;
                say!(console, "disk {k}: its size after: {got:?}");
            }
        }
    }
    all
}
