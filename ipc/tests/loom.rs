//! The ring's waking protocol, model-checked: loom runs a producer and a
//! consumer that sleep on a full or an empty ring through every interleaving
//! with up to three preemptions (and the weak-memory outcomes it models), and
//! fails on a lost, reordered or torn message, or a lost wake-up (which is a
//! deadlock: both asleep). Dropping any of the ring's four SeqCst fences, or
//! weakening the producer index to `Relaxed`, makes it fail.
//!
//! Run with (about 15 s on two cores, after a first build of a minute):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p ryokan-ipc --release --test loom
//! ```
//!
//! Under `cfg(loom)` the ring's atomics and fences are loom's. Without the
//! cfg this file is empty, so `cargo test -p ryokan-ipc` skips it. Loom does
//! not model a load reading a later store, so the `Release`/`Acquire` on the
//! consumer index (the producer reuses a slot only after it was read) rests
//! on the argument in `ipc::ring`, not on this test.

#![allow(unexpected_cfgs)] // `cfg(loom)` is set by hand, see above.
#![cfg(loom)]

use ipc::ring::{Consumer, Producer, Region, RingLayout, Sleep};
use ipc::Error;
use loom::sync::atomic::AtomicU32;
use loom::sync::{Arc, Notify};

const PREEMPTIONS: usize = 3;

/// Sends `messages` one-word messages through a ring of `capacity` slots.
/// A `Notify` is a latched notification like the kernel's: a signal sent
/// before the wait is kept, and a waiter may wake for nothing.
fn transfer(capacity: u32, messages: u32) {
    let mut model = loom::model::Builder::new();
    // Bounding preemptions keeps the search to seconds; bugs of this kind
    // need few (LOOM_MAX_PREEMPTIONS overrides it).
    model.preemption_bound = model.preemption_bound.or(Some(PREEMPTIONS));
    model.check(move || {
        let layout = RingLayout::new(capacity, 8).unwrap();
        // Leaked so that the handles, made before the threads, are 'static.
        let words: &'static [AtomicU32] =
            Vec::leak((0..layout.bytes() / 4).map(|_| AtomicU32::new(0)).collect());
        let mut p = Producer::new(Region::from_words(words), layout).unwrap();
        let mut c = Consumer::new(Region::from_words(words), layout).unwrap();
        let (to_producer, to_consumer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));

        let producer = {
            let (to_producer, to_consumer) = (to_producer.clone(), to_consumer.clone());
            loom::thread::spawn(move || {
                let mut i = 0;
                while i < messages {
                    match p.push(&i.to_le_bytes()) {
                        Ok(signal) => {
                            i += 1;
                            if signal.is_needed() {
                                to_consumer.notify();
                            }
                        }
                        Err(Error::WouldBlock) => {
                            if p.prepare_to_sleep().unwrap() == Sleep::Wait {
                                to_producer.wait();
                            }
                        }
                        Err(e) => panic!("push: {e:?}"),
                    }
                }
            })
        };

        let mut i = 0;
        while i < messages {
            let mut out = [0; 4];
            match c.pop(&mut out) {
                Ok((len, signal)) => {
                    assert_eq!((len, u32::from_le_bytes(out)), (4, i), "lost, reordered or torn");
                    i += 1;
                    if signal.is_needed() {
                        to_producer.notify();
                    }
                }
                Err(Error::WouldBlock) => {
                    if c.prepare_to_sleep().unwrap() == Sleep::Wait {
                        to_consumer.wait();
                    }
                }
                Err(e) => panic!("pop: {e:?}"),
            }
        }
        producer.join().unwrap();
    });
}

/// Both sides sleep: the consumer on an empty ring, the producer on a full one.
#[test]
fn two_slots_three_messages() {
    transfer(2, 3);
}

/// One slot: every message fills the ring and empties it again.
#[test]
fn one_slot_three_messages() {
    transfer(1, 3);
}
