//! A single-threaded driver for `ipc::ring`, shared by the property tests and
//! the fuzz target (`fuzz/fuzz_targets/ring.rs` includes this file): an honest
//! producer and consumer, a hostile peer that scribbles on the shared region,
//! and a model of what the honest sides must see.
//!
//! What it asserts, whatever the peer writes: no panic; the guard words around
//! the region are untouched; only the documented errors occur; a popped message
//! fits the slot and the caller's buffer, leaves the rest of the buffer alone,
//! and, unless the peer wrote into that slot, is exactly what the honest
//! producer last put there. While the peer has not touched the indices, the
//! ring behaves exactly like a bounded FIFO (a `VecDeque`); while it has not
//! touched the header at all, signals and sleeps are exactly as documented.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use ipc::ring::{Consumer, Producer, Region, RingLayout, Sleep, HEADER_BYTES};
use ipc::Error;

/// Words of guard on each side of the region.
const GUARD: usize = 16;
const GUARD_VALUE: u32 = 0x6a09_e667;
/// What the consumer's buffer holds beyond the message.
const SENTINEL: u8 = 0xa5;

// Word offsets of the header fields (see the layout in `ipc::ring`).
const PRODUCER_INDEX: usize = 0;
const PRODUCER_WAITING: usize = 1;
const CONSUMER_INDEX: usize = 16;
const CONSUMER_WAITING: usize = 17;

#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// The producer pushes `len` bytes (beyond `max_payload` at times).
    Push {
        len: usize,
        seed: u8,
    },
    /// The consumer pops into a buffer of `room` bytes.
    Pop {
        room: usize,
    },
    ProducerSleep,
    ConsumerSleep,
    /// The peer writes `value` to word `word` (modulo the region's size).
    Scribble {
        word: usize,
        value: u32,
    },
}

#[derive(Debug, Default)]
pub struct Tally {
    pub pushed: usize,
    pub popped: usize,
    pub signals: usize,
    pub misbehaved: usize,
}

/// A payload that differs between pushes.
pub fn payload(len: usize, seed: u8, nth: usize) -> Vec<u8> {
    (0..len).map(|i| seed ^ (nth as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7)).collect()
}

/// Reads a layout, a start index and operations from fuzzer bytes.
pub fn decode(data: &[u8]) -> (RingLayout, u32, Vec<Op>) {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next().unwrap_or(0);
    let shape = next();
    let layout =
        RingLayout::new(1 << (shape & 3), 8 * (1 + u32::from(shape >> 4 & 7))).expect("valid layout");
    let start = u32::from_le_bytes([next(), next(), next(), next()]);
    let mut ops = Vec::new();
    while ops.len() < 1024 {
        let Some(tag) = bytes.next() else { break };
        let mut next = || bytes.next().unwrap_or(0);
        ops.push(match tag % 6 {
            0 | 1 => Op::Push { len: usize::from(next()), seed: next() },
            2 => Op::Pop { room: usize::from(next()) },
            3 => Op::ProducerSleep,
            4 => Op::ConsumerSleep,
            _ => Op::Scribble {
                word: usize::from(next()),
                value: u32::from_le_bytes([next(), next(), next(), next()]),
            },
        });
    }
    (layout, start, ops)
}

/// Runs `ops` on a fresh ring and checks everything the module doc lists.
pub fn run(layout: RingLayout, start: u32, ops: &[Op]) -> Tally {
    let n = layout.bytes() / 4;
    let words: Vec<AtomicU32> = (0..n + 2 * GUARD)
        .map(|i| AtomicU32::new(if (GUARD..GUARD + n).contains(&i) { 0 } else { GUARD_VALUE }))
        .collect();
    let region = Region::from_words(&words[GUARD..GUARD + n]);
    let mut producer = Producer::starting_at(region, layout, start).expect("region fits");
    let mut consumer = Consumer::starting_at(region, layout, start).expect("region fits");

    let cap = layout.capacity() as usize;
    let mask = layout.capacity() - 1;
    let max = layout.max_payload();
    let slot_words = layout.slot_size() as usize / 4;
    let mut tally = Tally::default();
    // What the producer last wrote to each slot, and whether the peer wrote
    // there since.
    let mut written: Vec<Vec<u8>> = vec![Vec::new(); cap];
    let mut tainted = vec![false; cap];
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let (mut indices_honest, mut header_honest) = (true, true);
    let (mut producer_waiting, mut consumer_waiting) = (false, false);
    // The honest sides' own positions, which no scribble may move.
    let (mut produced, mut consumed) = (start, start);
    let mut out = vec![SENTINEL; max + 8];

    for op in ops {
        match *op {
            Op::Push { len, seed } => {
                let msg = payload(len % (max + 2), seed, tally.pushed);
                let r = producer.push(&msg);
                match r {
                    _ if msg.len() > max => assert_eq!(r, Err(Error::Malformed)),
                    Ok(signal) => {
                        if indices_honest {
                            assert!(model.len() < cap, "pushed into a full ring");
                        }
                        if header_honest {
                            assert_eq!(
                                signal.is_needed(),
                                consumer_waiting && model.is_empty(),
                                "push signal"
                            );
                        }
                        let slot = (produced & mask) as usize;
                        written[slot].clone_from(&msg);
                        tainted[slot] = false;
                        produced = produced.wrapping_add(1);
                        producer_waiting = false;
                        model.push_back(msg);
                        tally.pushed += 1;
                        tally.signals += usize::from(signal.is_needed());
                    }
                    Err(Error::WouldBlock) => assert!(!indices_honest || model.len() == cap, "full but not"),
                    Err(Error::PeerMisbehaved) if !indices_honest => tally.misbehaved += 1,
                    Err(e) => panic!("push: unexpected {e:?}"),
                }
            }
            Op::Pop { room } => {
                let room = room.min(out.len());
                out.fill(SENTINEL);
                let slot = (consumed & mask) as usize;
                let r = consumer.pop(&mut out[..room]);
                match r {
                    Ok((len, signal)) => {
                        assert!(len <= max && len <= room, "length {len} beyond {max} or {room}");
                        assert!(out[len..].iter().all(|&b| b == SENTINEL), "wrote beyond the message");
                        if !tainted[slot] {
                            assert_eq!(&out[..len], &written[slot][..], "not what the producer wrote");
                        }
                        let was_full = model.len() == cap;
                        if indices_honest {
                            let front = model.pop_front().expect("popped from an empty ring");
                            assert!(tainted[slot] || front == out[..len], "out of order");
                        }
                        if header_honest {
                            assert_eq!(signal.is_needed(), producer_waiting && was_full, "pop signal");
                        }
                        consumed = consumed.wrapping_add(1);
                        consumer_waiting = false;
                        tally.popped += 1;
                        tally.signals += usize::from(signal.is_needed());
                    }
                    Err(Error::WouldBlock) => assert!(!indices_honest || model.is_empty(), "empty but not"),
                    Err(Error::PeerMisbehaved) if !indices_honest || tainted[slot] => tally.misbehaved += 1,
                    Err(Error::Malformed) => {
                        assert!(room < max, "{room} bytes always suffice");
                        if indices_honest && !tainted[slot] {
                            assert!(room < model[0].len(), "message fits yet Malformed");
                        }
                    }
                    Err(e) => panic!("pop: unexpected {e:?}"),
                }
            }
            Op::ProducerSleep => {
                let r = producer.prepare_to_sleep();
                producer_waiting = true;
                if indices_honest {
                    assert_eq!(r, Ok(if model.len() == cap { Sleep::Wait } else { Sleep::Retry }));
                } else if let Err(e) = r {
                    assert_eq!(e, Error::PeerMisbehaved);
                    tally.misbehaved += 1;
                }
            }
            Op::ConsumerSleep => {
                let r = consumer.prepare_to_sleep();
                consumer_waiting = true;
                if indices_honest {
                    assert_eq!(r, Ok(if model.is_empty() { Sleep::Wait } else { Sleep::Retry }));
                } else if let Err(e) = r {
                    assert_eq!(e, Error::PeerMisbehaved);
                    tally.misbehaved += 1;
                }
            }
            Op::Scribble { word, value } => {
                let word = word % n;
                region_word(&words, word).store(value, Relaxed);
                match word {
                    PRODUCER_INDEX | CONSUMER_INDEX => (indices_honest, header_honest) = (false, false),
                    PRODUCER_WAITING | CONSUMER_WAITING => header_honest = false,
                    w if w >= HEADER_BYTES / 4 => tainted[(w - HEADER_BYTES / 4) / slot_words] = true,
                    _ => {} // Padding: nobody reads it.
                }
            }
        }
    }
    let guards = words[..GUARD].iter().chain(&words[GUARD + n..]);
    assert!(guards.into_iter().all(|w| w.load(Relaxed) == GUARD_VALUE), "wrote outside the region");
    tally
}

fn region_word(words: &[AtomicU32], word: usize) -> &AtomicU32 {
    &words[GUARD + word]
}
