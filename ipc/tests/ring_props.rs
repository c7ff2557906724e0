//! Property tests of `ipc::ring` against a `VecDeque` model, with and without
//! a hostile peer scribbling on the shared region (checks in `common`).

#![allow(unexpected_cfgs)] // `cfg(loom)`: see loom.rs.
#![cfg(not(loom))] // Std atomics; the ring's are loom's then.

mod common;

use common::{decode, run, Op};
use ipc::ring::RingLayout;
use proptest::prelude::*;

fn layout() -> impl Strategy<Value = RingLayout> {
    (0..4u32, 1..9u32).prop_map(|(shift, eighths)| RingLayout::new(1 << shift, 8 * eighths).unwrap())
}

/// Start indices that wrap soon, at once, or never.
fn start() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), (0..40u32).prop_map(|d| u32::MAX - d), any::<u32>()]
}

fn honest_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..80usize, any::<u8>()).prop_map(|(len, seed)| Op::Push { len, seed }),
        4 => prop_oneof![9 => Just(usize::MAX), 1 => 0..80usize].prop_map(|room| Op::Pop { room }),
        1 => Just(Op::ProducerSleep),
        1 => Just(Op::ConsumerSleep),
    ]
}

/// A write by the peer: mostly to the header fields, with values near the
/// truth (to move an index a little, either way) or anything at all.
fn scribble() -> impl Strategy<Value = Op> {
    let word = prop_oneof![Just(0usize), Just(1), Just(16), Just(17), 0..20usize, any::<usize>()];
    let value = prop_oneof![0..80u32, (0..40u32).prop_map(|d| u32::MAX - d), any::<u32>()];
    (word, value).prop_map(|(word, value)| Op::Scribble { word, value })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn behaves_like_a_bounded_fifo(layout in layout(), start in start(), ops in prop::collection::vec(honest_op(), 0..300)) {
        let tally = run(layout, start, &ops);
        prop_assert_eq!(tally.misbehaved, 0);
    }

    #[test]
    fn survives_a_hostile_peer(
        layout in layout(),
        start in start(),
        ops in prop::collection::vec(prop_oneof![4 => honest_op(), 1 => scribble()], 0..300),
    ) {
        run(layout, start, &ops);
    }

    /// The fuzz target's input format, on stable.
    #[test]
    fn survives_fuzzer_input(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let (layout, start, ops) = decode(&data);
        run(layout, start, &ops);
    }
}
