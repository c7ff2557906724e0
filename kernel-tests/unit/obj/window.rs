//! Host tests of `obj::window`: a fake backing that owns a page-aligned
//! heap window and a few numbered frames, and checks the shootdown rule on
//! every free; unit tests; and a property test of the pool against a model.

use super::*;
use proptest::prelude::*;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::{BTreeMap, BTreeSet};

/// A window on the heap, `frames` frames to back it, and CPUs that answer
/// shootdowns unless `deaf`.
struct Fake {
    base: *mut u8,
    layout: Layout,
    /// Frames free to back a chunk.
    free: Vec<u64>,
    /// Which frame backs each mapped page of the window.
    mapped: BTreeMap<usize, u64>,
    /// Unmapped since the last completed shootdown: a CPU may still reach
    /// them.
    reachable: BTreeSet<u64>,
    retired: BTreeSet<u64>,
    total: usize,
    deaf: bool,
}

impl Fake {
    fn new(pages: usize, frames: usize) -> Self {
        let layout = Layout::from_size_align(pages.max(1) * PAGE, PAGE).unwrap();
        // SAFETY: a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        assert!(!base.is_null());
        let free = (0..frames as u64).map(|f| 0x1000 * (f + 1)).collect();
        Fake {
            base,
            layout,
            free,
            mapped: BTreeMap::new(),
            reachable: BTreeSet::new(),
            retired: BTreeSet::new(),
            total: frames,
            deaf: false,
        }
    }

    /// Every frame free, mapped or retired, exactly once.
    fn conserved(&self) -> bool {
        let all: BTreeSet<u64> =
            self.free.iter().chain(self.mapped.values()).chain(&self.retired).copied().collect();
        all.len() == self.total && self.free.len() + self.mapped.len() + self.retired.len() == self.total
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base, self.layout) };
    }
}

impl Backing for Fake {
    fn base(&self) -> *mut u8 {
        self.base
    }

    fn back(&mut self, offset: usize, pages: usize) -> bool {
        assert_eq!(offset % PAGE, 0);
        if self.free.len() < pages {
            return false;
        }
        for p in 0..pages {
            let page = offset / PAGE + p;
            assert!(offset + (p + 1) * PAGE <= self.layout.size(), "inside the window");
            let f = self.free.pop().unwrap();
            assert!(self.mapped.insert(page, f).is_none(), "page {page} mapped twice");
            // SAFETY: inside the window (asserted): a fresh frame is zeroed.
            unsafe { self.base.add(page * PAGE).write_bytes(0, PAGE) };
        }
        true
    }

    fn unmap(&mut self, offset: usize, pages: usize, frames: &mut [u64; MAX_CHUNK_PAGES]) {
        for (p, frame) in frames.iter_mut().enumerate().take(pages) {
            let page = offset / PAGE + p;
            *frame = self.mapped.remove(&page).expect("unmapping an unmapped page");
            self.reachable.insert(*frame);
            // Poison: a read through a dangling slot shows up as garbage.
            // SAFETY: inside the window (it was mapped).
            unsafe { self.base.add(page * PAGE).write_bytes(0xa5, PAGE) };
        }
    }

    fn shootdown(&mut self) -> bool {
        if !self.deaf {
            self.reachable.clear();
        }
        !self.deaf
    }

    fn free(&mut self, frames: &[u64]) {
        for f in frames {
            assert!(!self.reachable.contains(f), "frame {f:#x} freed while a CPU may reach it");
            assert!(!self.mapped.values().any(|m| m == f), "frame {f:#x} freed while mapped");
            self.free.push(*f);
        }
    }

    fn retire(&mut self, frames: &[u64]) {
        self.retired.extend(frames);
    }
}

/// 304 bytes, not a divisor of a page: a stride of 512, 8 to a chunk.
#[derive(Debug, PartialEq)]
struct Obj([u64; 37], u32);

impl Obj {
    fn new(v: u32) -> Self {
        Obj([u64::from(v); 37], v)
    }
}

const PER: usize = per_chunk::<Obj>();
const N: usize = 37;
const C: usize = chunks::<Obj>(N);
type P = Pool<Obj, Fake, N, C>;

fn pool(frames: usize) -> P {
    P::new(Fake::new(C * chunk_pages::<Obj>(), frames))
}

fn quota(limit: u64) -> Quota {
    Quota { limit, used: 0 }
}

#[test]
fn the_geometry_is_as_computed() {
    assert_eq!((size_of::<Obj>(), chunk_pages::<Obj>(), stride::<Obj>(), PER, C), (304, 1, 512, 8, 5));
    assert_eq!(
        (chunk_pages::<[u8; 5000]>(), stride::<[u8; 5000]>(), per_chunk::<[u8; 5000]>()),
        (2, 8192, 1)
    );
    assert_eq!((stride::<[u8; 4096]>(), per_chunk::<[u8; 4096]>(), per_chunk::<u64>()), (4096, 1, 512));
}

#[test]
fn an_owners_objects_fill_its_chunk_and_cost_its_quota_alone() {
    let mut p = pool(8);
    let (mut a, mut b) = (quota(1), quota(4));
    let refs: Vec<Ref> = (0..PER as u32).map(|v| p.insert(1, &mut a, Obj::new(v)).unwrap()).collect();
    assert_eq!(a.used, 1, "one page for the chunk");
    assert!(refs.iter().all(|r| usize::from(r.index) < PER), "all in chunk 0");
    let (e, back) = p.insert(1, &mut a, Obj::new(99)).unwrap_err();
    assert_eq!((e, back), (Error::QuotaExceeded, Obj::new(99)), "the value comes back");
    assert_eq!(a.used, 1);
    // Another owner is not affected, and gets its own chunk.
    let rb = p.insert(2, &mut b, Obj::new(7)).unwrap();
    assert_eq!(usize::from(rb.index) / PER, 1);
    assert_eq!((b.used, p.owner(rb), p.owner(refs[0])), (1, Some(2), Some(1)));
    for (v, r) in refs.iter().enumerate() {
        assert_eq!(p.get(*r), Some(&Obj::new(v as u32)));
    }
    assert_eq!((p.used(), p.pages_of(1), p.pages_of(2)), (PER + 1, 1, 1));
}

#[test]
fn stale_references_miss_and_a_freed_chunk_is_refunded() {
    let mut p = pool(8);
    let mut a = quota(2);
    let x = p.insert(0, &mut a, Obj::new(1)).unwrap();
    let y = p.insert(0, &mut a, Obj::new(2)).unwrap();
    let (v, refund) = p.remove(x).unwrap();
    assert_eq!((v, refund), (Obj::new(1), Refund { owner: 0, pages: 0, retired: false }));
    assert!(p.get(x).is_none() && p.remove(x).is_none() && p.discard(x).is_none());
    let z = p.insert(0, &mut a, Obj::new(3)).unwrap();
    assert_eq!(z.index, x.index, "the slot is reused");
    assert_ne!(z.generation, x.generation);
    assert!(p.get(x).is_none(), "a reused slot does not revive the old reference");
    assert_eq!(p.discard(y), Some(Refund { owner: 0, pages: 0, retired: false }));
    let last = p.discard(z).unwrap();
    a.release(last.pages);
    assert_eq!((last, a.used), (Refund { owner: 0, pages: 1, retired: false }, 0));
    assert_eq!((p.chunk(0), p.backing().mapped.len(), p.backing().free.len()), (Some(Chunk::Unbacked), 0, 8));
    assert!(p.get(Ref { index: 9999, generation: 0 }).is_none());
    assert!(p.get(Ref { index: z.index, generation: z.generation | LIVE }).is_none());
}

#[test]
fn a_slot_whose_generation_runs_out_is_never_used_again() {
    let mut p = pool(8);
    let mut a = quota(8);
    // Slot 0 has been reused all but once: its last generation goes.
    p.words[0] = WORN - 1;
    let x = p.insert(0, &mut a, Obj::new(1)).unwrap();
    assert_eq!((x.index, x.generation), (0, WORN - 1));
    let keep = p.insert(0, &mut a, Obj::new(2)).unwrap();
    p.remove(x).unwrap();
    assert_eq!(p.words[0], WORN);
    let y = p.insert(0, &mut a, Obj::new(3)).unwrap();
    assert_ne!(y.index, 0, "a worn slot takes no new object");
    for g in [0, 1, WORN - 1, WORN] {
        assert!(p.get(Ref { index: 0, generation: g }).is_none(), "generation {g:#x} names nothing");
    }
    // A chunk of worn slots alone is never backed again: the next owner's
    // first object goes to a chunk with a usable slot, one page charged.
    p.discard(keep).unwrap();
    let last = p.discard(y).unwrap();
    a.release(last.pages);
    for i in 0..PER {
        p.words[i] = WORN;
    }
    let mut b = quota(8);
    let z = p.insert(5, &mut b, Obj::new(4)).unwrap();
    assert_eq!((usize::from(z.index) / PER, b.used, p.chunk(0)), (1, 1, Some(Chunk::Unbacked)));
    assert!(p.backing().conserved());
}

#[test]
fn an_unanswered_shootdown_retires_the_chunk_and_frees_nothing() {
    let mut p = pool(8);
    let mut a = quota(8);
    let x = p.insert(3, &mut a, Obj::new(1)).unwrap();
    p.backing_mut().deaf = true;
    let (_, refund) = p.remove(x).unwrap();
    assert_eq!(refund, Refund { owner: 3, pages: 0, retired: true });
    assert_eq!(p.chunk(0), Some(Chunk::Retired));
    assert_eq!((p.backing().retired.len(), p.backing().free.len()), (1, 7));
    // The retired chunk is never used again, even once CPUs answer.
    p.backing_mut().deaf = false;
    let y = p.insert(3, &mut a, Obj::new(2)).unwrap();
    assert_eq!(usize::from(y.index) / PER, 1);
    assert!(p.backing().conserved());
}

#[test]
fn a_full_window_or_no_frames_refuses_and_charges_nothing() {
    let mut p = pool(2);
    let mut big = quota(100);
    for owner in 0..2 {
        p.insert(owner, &mut big, Obj::new(0)).unwrap();
    }
    let (e, _) = p.insert(2, &mut big, Obj::new(0)).unwrap_err();
    assert_eq!((e, big.used), (Error::QuotaExceeded, 2), "no frames: nothing charged");
    let mut p = pool(100);
    for owner in 0..C as u16 {
        p.insert(owner, &mut big, Obj::new(0)).unwrap();
    }
    let (e, _) = p.insert(99, &mut big, Obj::new(0)).unwrap_err();
    assert_eq!((e, big.used), (Error::OutOfObjects, 2 + C as u64));
    // The last chunk holds fewer slots: N is no multiple of PER.
    let mut p = pool(100);
    let mut q = quota(100);
    let all: Vec<Ref> = std::iter::from_fn(|| p.insert(0, &mut q, Obj::new(5)).ok()).collect();
    assert_eq!((all.len(), q.used), (N, C as u64));
    assert_eq!(p.iter().count(), N);
    assert_eq!(p.find(|o| o.1 == 5), Some(all[0]));
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(usize),
    Discard(usize),
    /// Looks up a reference that was live once.
    Stale(usize),
    Deaf(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u16, any::<u32>()).prop_map(|(o, v)| Op::Insert(o, v)),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => any::<usize>().prop_map(Op::Discard),
        1 => any::<usize>().prop_map(Op::Stale),
        1 => prop::bool::weighted(0.1).prop_map(Op::Deaf),
    ]
}

proptest! {
    /// The pool against a model: live objects are found with their values,
    /// dead ones never; an owner's objects share only its own chunks; a
    /// new chunk is taken only when the owner's are full, and only if its
    /// quota and the frames pay for it; quotas are never exceeded and match
    /// the chunks held; every frame is free, mapped or retired exactly
    /// once, and none is freed while a CPU may reach it.
    #[test]
    fn the_pool_behaves_as_its_model(ops in prop::collection::vec(op(), 1..300), frames in 2..12usize) {
        let mut p = pool(frames);
        let mut quotas = [quota(1), quota(2), quota(3)];
        let mut live: Vec<(Ref, u16, u32)> = Vec::new();
        let mut dead: Vec<Ref> = Vec::new();
        let mut retired: BTreeSet<usize> = BTreeSet::new();
        let mut retired_pages = [0u64; 3];
        let chunk = |r: &Ref| usize::from(r.index) / PER;
        let cap = |c: usize| if c == C - 1 { N - c * PER } else { PER };
        for op in ops {
            match op {
                Op::Insert(o, v) => {
                    let used: BTreeSet<usize> = live.iter().map(|(r, _, _)| chunk(r)).collect();
                    let mine: Vec<usize> = used.iter().copied()
                        .filter(|&c| live.iter().any(|(r, w, _)| chunk(r) == c && *w == o)).collect();
                    let room: Vec<usize> = mine.iter().copied()
                        .filter(|&c| live.iter().filter(|(r, _, _)| chunk(r) == c).count() < cap(c)).collect();
                    let fresh = C - used.len() - retired.len();
                    let before = quotas[usize::from(o)].used;
                    let free_frames = p.backing().free.len();
                    match p.insert(o, &mut quotas[usize::from(o)], Obj::new(v)) {
                        Ok(r) => {
                            if room.is_empty() {
                                prop_assert!(!used.contains(&chunk(&r)) && !retired.contains(&chunk(&r)), "a fresh chunk");
                                prop_assert_eq!(quotas[usize::from(o)].used, before + 1);
                            } else {
                                prop_assert!(room.contains(&chunk(&r)), "in a chunk of its own with room");
                                prop_assert_eq!(quotas[usize::from(o)].used, before);
                            }
                            prop_assert!(live.iter().all(|(x, _, _)| x.index != r.index));
                            live.push((r, o, v));
                        }
                        Err((e, back)) => {
                            prop_assert_eq!(back, Obj::new(v));
                            prop_assert!(room.is_empty());
                            let q = quotas[usize::from(o)];
                            let want = if fresh == 0 { Error::OutOfObjects } else { Error::QuotaExceeded };
                            prop_assert_eq!(e, want);
                            prop_assert!(fresh == 0 || q.free() == 0 || free_frames == 0);
                            prop_assert_eq!(q.used, before);
                        }
                    }
                }
                Op::Remove(k) | Op::Discard(k) if !live.is_empty() => {
                    let (r, o, v) = live.swap_remove(k % live.len());
                    let last = live.iter().all(|(x, _, _)| chunk(x) != chunk(&r));
                    let refund = if let Op::Remove(_) = op {
                        let (value, refund) = p.remove(r).unwrap();
                        prop_assert_eq!(value, Obj::new(v));
                        refund
                    } else {
                        p.discard(r).unwrap()
                    };
                    prop_assert_eq!(refund.owner, o);
                    match (last, refund.retired) {
                        (false, _) => prop_assert_eq!((refund.pages, refund.retired), (0, false)),
                        (true, false) => prop_assert_eq!(refund.pages, 1),
                        (true, true) => {
                            prop_assert_eq!(refund.pages, 0);
                            retired.insert(chunk(&r));
                            retired_pages[usize::from(o)] += 1;
                        }
                    }
                    quotas[usize::from(o)].release(refund.pages);
                    dead.push(r);
                }
                Op::Remove(_) | Op::Discard(_) => {}
                Op::Stale(k) if !dead.is_empty() => {
                    let r = dead[k % dead.len()];
                    prop_assert!(p.get(r).is_none() && p.owner(r).is_none());
                    prop_assert!(p.remove(r).is_none() && p.discard(r).is_none());
                }
                Op::Stale(_) => {}
                Op::Deaf(d) => p.backing_mut().deaf = d,
            }
            prop_assert_eq!(p.used(), live.len());
            for (r, o, v) in &live {
                prop_assert_eq!(p.get(*r), Some(&Obj::new(*v)));
                prop_assert_eq!(p.owner(*r), Some(*o));
            }
            for o in 0..3u16 {
                let q = quotas[usize::from(o)];
                prop_assert!(q.used <= q.limit);
                prop_assert_eq!(q.used, p.pages_of(o) + retired_pages[usize::from(o)]);
            }
            prop_assert!(p.backing().conserved());
            prop_assert_eq!(p.backing().retired.len(), retired.len());
            prop_assert_eq!(p.iter().count(), live.len());
        }
    }
}
