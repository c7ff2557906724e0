//! `ipc::ring` by example: push and pop, counter wrap-around, raw regions,
//! each way a peer can misbehave, how few signals a stream needs, and two real
//! threads sleeping on the waiting-flag protocol.

#![allow(unexpected_cfgs)] // `cfg(loom)`: see loom.rs.
#![cfg(not(loom))] // Std atomics; the ring's are loom's then.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use ipc::ring::{Consumer, Producer, Region, RingLayout, Signal, Sleep, HEADER_BYTES};
use ipc::Error;

// Word offsets of the header fields (see the layout in `ipc::ring`).
const PRODUCER_INDEX: usize = 0;
const CONSUMER_INDEX: usize = 16;

fn memory(layout: RingLayout) -> Vec<AtomicU32> {
    (0..layout.bytes() / 4).map(|_| AtomicU32::new(0)).collect()
}

fn pair(words: &[AtomicU32], layout: RingLayout, start: u32) -> (Producer<'_>, Consumer<'_>) {
    let region = Region::from_words(words);
    (
        Producer::starting_at(region, layout, start).unwrap(),
        Consumer::starting_at(region, layout, start).unwrap(),
    )
}

fn pop(c: &mut Consumer<'_>) -> Result<Vec<u8>, Error> {
    let mut out = [0; 256];
    c.pop(&mut out).map(|(n, _)| out[..n].to_vec())
}

#[test]
fn layouts_are_checked() {
    for (capacity, slot_size) in [(0, 64), (3, 64), (4, 0), (4, 4), (4, 12), (4, 65)] {
        assert_eq!(RingLayout::new(capacity, slot_size), Err(Error::Malformed), "{capacity} x {slot_size}");
    }
    let l = RingLayout::new(8, 64).unwrap();
    assert_eq!((l.capacity(), l.slot_size(), l.max_payload(), l.bytes()), (8, 64, 60, 128 + 8 * 64));
    assert_eq!(RingLayout::new(1, 8).map(|l| l.bytes()), Ok(136));
    let largest = RingLayout::new(1 << 31, u32::MAX - 7).unwrap();
    assert_eq!(largest.bytes(), HEADER_BYTES + (1 << 31) * (u32::MAX as usize - 7));
}

#[test]
fn fields_sit_where_the_layout_says() {
    let layout = RingLayout::new(2, 16).unwrap();
    let words: Vec<AtomicU32> = (0..layout.bytes() / 4).map(|_| AtomicU32::new(0xdead)).collect();
    let (mut p, mut c) = pair(&words, layout, 7);
    let at = |byte: usize| words[byte / 4].load(Relaxed);
    assert_eq!((at(0), at(4), at(64), at(68)), (7, 0, 7, 0));
    assert!(p.push(b"hello").is_ok());
    // Index 7 is slot 1: its length at 128 + 16, the payload after it.
    assert_eq!((at(0), at(144), at(148), at(152)), (8, 5, u32::from_le_bytes(*b"hell"), u32::from(b'o')));
    assert_eq!(c.prepare_to_sleep(), Ok(Sleep::Retry));
    assert_eq!(at(68), 1);
    assert_eq!(pop(&mut c), Ok(b"hello".to_vec()));
    assert_eq!((at(64), at(68)), (8, 0));
    assert_eq!(p.prepare_to_sleep(), Ok(Sleep::Retry));
    assert_eq!(at(4), 1);
    assert!(p.push(b"").is_ok());
    assert_eq!((at(0), at(4), at(128)), (9, 0, 0));
}

#[test]
fn push_pop_empty_full_and_sizes() {
    let layout = RingLayout::new(2, 16).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 0);
    assert_eq!(pop(&mut c), Err(Error::WouldBlock));
    assert_eq!(p.push(&[0; 13]), Err(Error::Malformed));
    assert!(p.push(b"").is_ok());
    assert!(p.push(&[7; 12]).is_ok());
    assert_eq!(p.push(b"x"), Err(Error::WouldBlock));
    assert_eq!(pop(&mut c), Ok(vec![]));
    // Too little room: refused, and the message stays.
    assert_eq!(c.pop(&mut [0; 11]), Err(Error::Malformed));
    assert_eq!(pop(&mut c), Ok(vec![7; 12]));
    assert_eq!(pop(&mut c), Err(Error::WouldBlock));
}

#[test]
fn counters_wrap_around() {
    let layout = RingLayout::new(4, 16).unwrap();
    let words = memory(layout);
    let start = u32::MAX - 5;
    let (mut p, mut c) = pair(&words, layout, start);
    for round in 0..5u8 {
        for i in 0..3u8 {
            assert!(p.push(&[round, i]).is_ok());
        }
        for i in 0..3u8 {
            assert_eq!(pop(&mut c), Ok(vec![round, i]));
        }
    }
    assert_eq!(words[PRODUCER_INDEX].load(Relaxed), start.wrapping_add(15));
    assert_eq!(words[CONSUMER_INDEX].load(Relaxed), 9);
}

#[test]
fn raw_regions_are_checked() {
    #[repr(C, align(4096))]
    struct Page([AtomicU32; 1024]);
    let page = Page([const { AtomicU32::new(0) }; 1024]);
    let base = page.0.as_ptr().cast::<u8>().cast_mut();
    // SAFETY: `page` is 4096 live bytes, outlives the regions, and is only
    // accessed atomically.
    let region = unsafe { Region::from_raw(base, 4096) }.unwrap();
    // SAFETY: as above; these are refused before any access.
    unsafe {
        assert_eq!(Region::from_raw(base.wrapping_add(4), 64).map(|_| ()), Err(Error::Misaligned));
        assert_eq!(Region::from_raw(core::ptr::null_mut(), 64).map(|_| ()), Err(Error::Misaligned));
    }
    assert_eq!(region.bytes(), 4096);
    let too_big = RingLayout::new(64, 64).unwrap();
    assert_eq!(Producer::new(region, too_big).map(|_| ()), Err(Error::Malformed));
    let layout = RingLayout::new(16, 248).unwrap();
    assert_eq!(layout.bytes(), 4096);
    let (mut p, mut c) = (Producer::new(region, layout).unwrap(), Consumer::new(region, layout).unwrap());
    assert!(p.push(b"over a page").is_ok());
    assert_eq!(pop(&mut c), Ok(b"over a page".to_vec()));
}

#[test]
fn a_consumer_index_that_lies_is_refused_until_it_is_valid() {
    let layout = RingLayout::new(2, 8).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 100);
    assert!(p.push(b"a").is_ok());
    assert!(p.push(b"b").is_ok());
    let cons = &words[CONSUMER_INDEX];
    for lie in [99, 103, 0, u32::MAX] {
        cons.store(lie, Relaxed); // Backwards, or past what was produced.
        assert_eq!(p.push(b"c"), Err(Error::PeerMisbehaved));
        assert_eq!(p.prepare_to_sleep(), Err(Error::PeerMisbehaved));
    }
    cons.store(100, Relaxed);
    assert_eq!(p.push(b"c"), Err(Error::WouldBlock));
    assert_eq!(pop(&mut c), Ok(b"a".to_vec()));
    assert!(p.push(b"c").is_ok());
    // The producer trusts 101 now, so 100 is backwards.
    cons.store(100, Relaxed);
    assert_eq!(p.push(b"d"), Err(Error::PeerMisbehaved));
}

#[test]
fn a_producer_index_that_lies_is_refused_until_it_is_valid() {
    let layout = RingLayout::new(4, 8).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, u32::MAX - 1);
    assert!(p.push(b"a").is_ok());
    assert_eq!(pop(&mut c), Ok(b"a".to_vec()));
    let prod = &words[PRODUCER_INDEX];
    // Backwards, and more than `capacity` ahead of the consumer (at u32::MAX).
    for lie in [u32::MAX - 1, 4, 1 << 31] {
        prod.store(lie, Relaxed);
        assert_eq!(pop(&mut c), Err(Error::PeerMisbehaved));
        assert_eq!(c.prepare_to_sleep(), Err(Error::PeerMisbehaved));
    }
    // Back by one, yet not behind the consumer: still backwards.
    assert!(p.push(b"b").is_ok() && p.push(b"c").is_ok());
    assert_eq!(c.prepare_to_sleep(), Ok(Sleep::Retry)); // Saw index 1.
    prod.store(0, Relaxed);
    assert_eq!(c.prepare_to_sleep(), Err(Error::PeerMisbehaved));
    assert_eq!(pop(&mut c), Ok(b"b".to_vec())); // What it trusted stands.
                                                // Exactly `capacity` ahead of the consumer (at 0) is a full ring:
                                                // stale slots, but in bounds.
    prod.store(4, Relaxed);
    for _ in 0..4 {
        assert!(pop(&mut c).is_ok());
    }
    assert_eq!(pop(&mut c), Err(Error::WouldBlock));
}

#[test]
fn a_slot_length_that_lies_is_refused_and_the_slot_kept() {
    let layout = RingLayout::new(2, 16).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 0);
    assert!(p.push(b"hello").is_ok());
    let len = &words[128 / 4];
    for lie in [13, u32::MAX] {
        len.store(lie, Relaxed);
        assert_eq!(pop(&mut c), Err(Error::PeerMisbehaved));
    }
    len.store(12, Relaxed); // In bounds: the consumer takes what is there.
    assert_eq!(pop(&mut c).map(|m| m.len()), Ok(12));
}

#[test]
fn own_index_is_never_read_back() {
    let layout = RingLayout::new(4, 8).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 0);
    assert!(p.push(b"a").is_ok());
    assert!(p.push(b"b").is_ok());
    words[CONSUMER_INDEX].store(1, Relaxed); // Looks as if "a" was consumed.
    assert_eq!(pop(&mut c), Ok(b"a".to_vec()));
    words[PRODUCER_INDEX].store(0, Relaxed); // Cannot take "b" back.
    assert!(p.push(b"c").is_ok());
    assert_eq!(words[PRODUCER_INDEX].load(Relaxed), 3);
}

#[test]
fn bursts_need_one_signal_each() {
    let layout = RingLayout::new(16, 16).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 0);
    let mut signals = 0;
    for burst in 0..100u8 {
        // The consumer drained the ring and sleeps.
        assert_eq!(pop(&mut c), Err(Error::WouldBlock));
        assert_eq!(c.prepare_to_sleep(), Ok(Sleep::Wait));
        for i in 0..10 {
            signals += usize::from(p.push(&[burst, i]).unwrap().is_needed());
        }
        while pop(&mut c).is_ok() {}
    }
    assert_eq!(signals, 100, "one per wake-up, not one per message");
}

#[test]
fn a_consumer_that_keeps_up_needs_no_signal() {
    let layout = RingLayout::new(4, 16).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 0);
    for i in 0..1000u32 {
        assert_eq!(p.push(&i.to_le_bytes()), Ok(Signal::Suppressed));
        let mut out = [0; 12];
        assert_eq!(c.pop(&mut out), Ok((4, Signal::Suppressed)));
    }
}

#[test]
fn a_full_ring_wakes_its_producer_once() {
    let layout = RingLayout::new(8, 16).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, 0);
    for round in 0..10 {
        while p.push(&[round]).is_ok() {}
        assert_eq!(p.prepare_to_sleep(), Ok(Sleep::Wait));
        let mut out = [0; 12];
        let signals: Vec<Signal> = (0..8).map(|_| c.pop(&mut out).unwrap().1).collect();
        assert_eq!(signals[0], Signal::Needed);
        assert!(signals[1..].iter().all(|s| *s == Signal::Suppressed));
    }
}

/// A notification as Ryokan's kernel provides: a signal sent before the
/// wait is kept. The timeout turns a lost wake-up into a failure.
#[derive(Default)]
struct Notification {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Notification {
    fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }

    fn wait(&self) {
        let pending = self.pending.lock().unwrap();
        let (mut pending, timeout) =
            self.cv.wait_timeout_while(pending, Duration::from_secs(20), |p| !*p).unwrap();
        assert!(!timeout.timed_out(), "lost wake-up");
        *pending = false;
    }
}

#[test]
fn two_threads_stream_without_losing_a_wake_up() {
    const MESSAGES: u32 = 100_000;
    let layout = RingLayout::new(8, 32).unwrap();
    let words = memory(layout);
    let (mut p, mut c) = pair(&words, layout, u32::MAX - 1000);
    let (to_producer, to_consumer) = (Notification::default(), Notification::default());
    let message =
        |i: u32| -> Vec<u8> { i.to_le_bytes().iter().copied().cycle().take(i as usize % 29).collect() };
    let (sent, received) = std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let (mut signals, mut sleeps, mut i) = (0, 0, 0);
            while i < MESSAGES {
                match p.push(&message(i)) {
                    Ok(signal) => {
                        i += 1;
                        if signal.is_needed() {
                            signals += 1;
                            to_consumer.signal();
                        }
                    }
                    Err(Error::WouldBlock) => {
                        if p.prepare_to_sleep().unwrap() == Sleep::Wait {
                            sleeps += 1;
                            to_producer.wait();
                        }
                    }
                    Err(e) => panic!("push: {e:?}"),
                }
            }
            (signals, sleeps)
        });
        let (mut signals, mut sleeps, mut i) = (0, 0, 0);
        let mut out = [0; 28];
        while i < MESSAGES {
            match c.pop(&mut out) {
                Ok((n, signal)) => {
                    assert_eq!(out[..n], message(i)[..], "message {i}");
                    i += 1;
                    if signal.is_needed() {
                        signals += 1;
                        to_producer.signal();
                    }
                }
                Err(Error::WouldBlock) => {
                    if c.prepare_to_sleep().unwrap() == Sleep::Wait {
                        sleeps += 1;
                        to_consumer.wait();
                    }
                }
                Err(e) => panic!("pop: {e:?}"),
            }
        }
        (producer.join().unwrap(), (signals, sleeps))
    });
    // How many signals depends on scheduling; `bursts_need_one_signal_each`
    // and its neighbours pin the counts down. Here: nothing lost, in order.
    eprintln!("{MESSAGES} messages: producer (signals, sleeps) {sent:?}, consumer {received:?}");
}
