//! The VMM's end of a disk's channel against a fake `blk` that serves
//! the rings' other ends whenever the VMM sleeps: what reaches the disk,
//! where, and what a lying `blk` gets.

use core::sync::atomic::AtomicU32;

use ipc::block::clients::{Client, Window};
use ipc::block::{Answer, Op, Request, ANSWERS_AT, REGION_BYTES, RING, SECTOR};
use ipc::manifest::{DiskSpec, Name};
use ipc::ring::{Consumer, Producer, Region};
use ipc::Error;
use vq::blk::Disk as _;

use super::{Backing, Bells};

/// How the fake `blk` lies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lie {
    None,
    /// Answers under another tag.
    Tag,
    /// Answers a read with one sector too few.
    Short,
}

/// A `blk` of one client: its window on `disk`, as `blk` serves it.
pub(crate) struct Fake<'a> {
    requests: Consumer<'a>,
    answers: Producer<'a>,
    window: Window,
    pub(crate) disk: Vec<u8>,
    flushes: u32,
    pub(crate) asked: u32,
    lie: Lie,
}

impl Bells for Fake<'_> {
    fn ring(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Serves every request there, as `blk`'s `serve::step` does.
    fn wait(&mut self) -> Result<(), Error> {
        let mut req = [0u8; RING.max_payload()];
        while let Ok((n, _)) = self.requests.pop(&mut req) {
            self.asked += 1;
            let mut data = [0u8; 4096];
            let (tag, result, len) = match Request::decode(&req[..n]) {
                Err((tag, e)) => (tag, Err(e), 0),
                Ok(r) => match self.window.translate(&r) {
                    Err(e) => (r.tag, Err(e), 0),
                    Ok(at) => {
                        let (at, bytes) = (at as usize * SECTOR, r.count as usize * SECTOR);
                        match r.op {
                            Op::Read => {
                                data[..bytes].copy_from_slice(&self.disk[at..at + bytes]);
                                (r.tag, Ok(0), bytes)
                            }
                            Op::Write => {
                                self.disk[at..at + bytes].copy_from_slice(r.data);
                                (r.tag, Ok(0), 0)
                            }
                            Op::Flush => {
                                self.flushes += 1;
                                (r.tag, Ok(0), 0)
                            }
                            Op::Capacity => (r.tag, Ok(self.window.sectors), 0),
                            Op::Close => (r.tag, Ok(0), 0),
                        }
                    }
                },
            };
            let tag = if self.lie == Lie::Tag { tag ^ 1 } else { tag };
            let len = if self.lie == Lie::Short && len > 0 { len - SECTOR } else { len };
            let mut out = [0u8; RING.max_payload()];
            let n = Answer { tag, result, data: &data[..len] }.encode(&mut out).ok_or(Error::Malformed)?;
            let _ = self.answers.push(&out[..n])?;
        }
        Ok(())
    }
}

/// A channel's memory: both rings.
pub(crate) fn region() -> Vec<AtomicU32> {
    (0..REGION_BYTES / 4).map(|_| AtomicU32::new(0)).collect()
}

fn halves(words: &[AtomicU32]) -> (Region<'_>, Region<'_>) {
    let (a, b) = words.split_at(ANSWERS_AT / 4);
    (Region::from_words(a), Region::from_words(b))
}

const DISK_SECTORS: u64 = 256;

fn fake<'a>(words: &'a [AtomicU32], client: &Client, lie: Lie) -> Fake<'a> {
    let (req, ans) = halves(words);
    // The server's ends first, as blk's are made before a VMM runs.
    let requests = Consumer::new(req, RING).unwrap();
    let answers = Producer::new(ans, RING).unwrap();
    let disk = (0..DISK_SECTORS as usize * SECTOR).map(|i| (i / SECTOR) as u8).collect();
    Fake { requests, answers, window: Window::of(client, DISK_SECTORS), disk, flushes: 0, asked: 0, lie }
}

pub(crate) fn client(first_sector: u64, sectors: Option<u64>, read_only: bool) -> Client {
    Client { guest: Name::try_from("g").unwrap(), first_sector, sectors, read_only }
}

fn spec(c: &Client) -> DiskSpec {
    DiskSpec {
        blk: Name::try_from("blk").unwrap(),
        first_sector: c.first_sector,
        sectors: c.sectors,
        read_only: c.read_only,
    }
}

pub(crate) fn connect<'a>(words: &'a [AtomicU32], c: &Client, lie: Lie) -> Backing<'a, Fake<'a>> {
    let f = fake(words, c, lie);
    let (req, ans) = halves(words);
    Backing::connect(req, ans, f, &spec(c)).expect("connects")
}

#[test]
fn reads_and_writes_land_in_the_disks_region_of_blks_disk() {
    let words = region();
    let c = client(100, Some(40), false);
    let mut b = connect(&words, &c, Lie::None);
    assert_eq!((b.sectors(), b.read_only()), (40, false));
    let mut buf = [0u8; 12 * SECTOR];
    assert!(b.read(2, &mut buf), "12 sectors: two requests");
    assert!(buf.chunks(SECTOR).enumerate().all(|(i, s)| s.iter().all(|&x| x == 102 + i as u8)));
    let data = [0xabu8; 3 * SECTOR];
    assert!(b.write(37, &data), "the region's last 3 sectors");
    assert!(b.flush());
    let f = &b.bells;
    assert_eq!(f.flushes, 1, "the flush reached blk");
    assert!(f.disk[137 * SECTOR..140 * SECTOR].iter().all(|&x| x == 0xab));
    assert_eq!(f.disk[140 * SECTOR], 140, "nothing past the region");
    assert_eq!(f.disk[136 * SECTOR], 136);
    assert_eq!(f.asked, 1 + 2 + 1 + 1, "capacity, two reads, a write, a flush");
}

#[test]
fn past_the_end_is_refused_by_the_vmm_and_by_blk() {
    let words = region();
    let c = client(100, Some(40), false);
    let mut b = connect(&words, &c, Lie::None);
    let mut buf = [0u8; SECTOR];
    assert!(!b.read(40, &mut buf));
    assert!(!b.write(39, &[0; 2 * SECTOR]));
    assert!(!b.read(u64::MAX, &mut buf), "wraps");
    assert!(!b.read(0, &mut [0; 100]), "not whole sectors");
    assert_eq!(b.bells.asked, 1, "the VMM asked blk none of these");
    // Asked anyway (a hostile VMM), blk refuses each; the disk is untouched.
    assert_eq!(b.raw(Op::Read, 40, 1), Err(Error::BadAddress));
    assert_eq!(b.raw(Op::Write, 39, 2), Err(Error::BadAddress));
    assert_eq!(b.raw(Op::Write, u64::MAX - 99, 8), Err(Error::BadAddress));
    assert_eq!(b.raw(Op::Read, 0, 9), Err(Error::Malformed), "more than a request moves");
    assert!(!b.broken(), "refusals do not break the channel");
    assert!(b.bells.disk.chunks(SECTOR).enumerate().all(|(i, s)| s.iter().all(|&x| x == i as u8)));
    assert!(b.read(39, &mut buf), "the last sector is the region's");
    assert_eq!(buf[0], 139);
}

#[test]
fn the_size_is_blks_cut_to_the_system_files_and_read_only_holds() {
    let words = region();
    // The rest of the disk from sector 200: blk says 56.
    let mut b = connect(&words, &client(200, None, false), Lie::None);
    assert_eq!(b.sectors(), 56);
    assert!(b.read(55, &mut [0; SECTOR]) && !b.read(56, &mut [0; SECTOR]));
    let words = region();
    // Past the disk's end: cut by blk.
    let mut b = connect(&words, &client(250, Some(100), true), Lie::None);
    assert_eq!((b.sectors(), b.read_only()), (6, true));
    assert!(!b.write(0, &[1; SECTOR]), "the VMM refuses a write to a read-only disk");
    assert_eq!(b.raw(Op::Write, 0, 1), Err(Error::InsufficientRights), "and so does blk");
    assert_eq!(b.bells.disk[250 * SECTOR], 250);
}

#[test]
fn a_lying_blk_breaks_the_channel_not_the_vmm() {
    for lie in [Lie::Tag, Lie::Short] {
        let words = region();
        let c = client(0, Some(16), false);
        let f = fake(&words, &c, lie);
        let (req, ans) = halves(&words);
        let b = Backing::connect(req, ans, f, &spec(&c));
        let mut b = match (lie, b) {
            (Lie::Tag, Err(e)) => {
                assert_eq!(e, Error::PeerMisbehaved, "the capacity's answer under another tag");
                continue;
            }
            (_, b) => b.expect("a capacity carries no data to cut"),
        };
        let mut buf = [0u8; SECTOR * 2];
        assert!(!b.read(0, &mut buf), "a short read");
        assert!(b.broken());
        let asked = b.bells.asked;
        assert!(!b.flush() && !b.write(0, &[0; SECTOR]), "nothing after");
        assert_eq!(b.bells.asked, asked, "nothing more asked");
    }
}

#[test]
fn a_close_is_answered_and_the_rings_hold_a_requests_most() {
    let words = region();
    let mut b = connect(&words, &client(0, None, false), Lie::None);
    assert!(b.write(8, &[7; 4096 * 3]), "4 KiB a request, three of them");
    assert_eq!(b.close(), Ok(()));
    assert_eq!(b.bells.asked, 1 + 3 + 1);
}
