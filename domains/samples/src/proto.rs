//! The labels of the sample servers' message protocols: `pong` (and the
//! doomed `victim-server`) and `bench-srv`; and the shared words through
//! which `pinger` and `interactive` agree ([`wakeup`]).

use ipc::msg::Message;

/// A call whose first word the server answers plus one.
pub const PING: u64 = 1;
/// The answer to `PING`.
pub const PONG: u64 = 2;
/// The last call: the server answers it, then exits with 0.
pub const DONE: u64 = 3;
/// `bench-srv`: answer, then `words[0]` times wait on our doorbell and ring
/// the caller's.
pub const BELLS: u64 = 10;
/// `bench-srv`: answer, then receive `words[0]` messages from the ring.
pub const RING: u64 = 11;
/// `bench-srv`: answer with the sum of the wake-up latencies of the last
/// `BELLS` run.
pub const REPORT: u64 = 12;
/// `witness`: make a guest, a VirqLine and a notification in it and a
/// timer, destroy them, and answer with each one's error code (0: made):
/// [guest, VirqLine, notification, timer]. Another domain's account is
/// then shown to have room whatever `hostile` holds.
pub const MAKE: u64 = 20;
/// `bench-srv`: the request cannot be served here.
pub const REFUSED: u64 = 0xff;

/// A message of `label` carrying `word` first.
pub fn msg(label: u64, word: u64) -> Message {
    let mut words = [0; ipc::msg::WORDS];
    words[0] = word;
    Message { label, words, cap: None }
}

/// Where `bench` writes the wake-up stamp in the region `bring`, past the
/// ring at its start.
pub const BENCH_STAMP_OFFSET: u64 = 12 * 1024;

/// `pinger` and `interactive`: the words of their shared region `stamp`.
pub mod wakeup {
    /// Wake-ups `pinger` sends and `interactive` expects.
    pub const WAKEUPS: u64 = 50;
    /// When the signal was sent (TSC).
    pub const STAMP: usize = 0;
    /// Which wake-up it is.
    pub const ROUND: usize = 1;
    /// The last one `interactive` acknowledged.
    pub const ACK: usize = 2;
    /// Non-zero once `interactive` is waiting.
    pub const READY: usize = 3;
}

/// `handoff-a` and `handoff-b`: the words of their shared region `flags`.
pub mod handoff {
    /// Signals `handoff-a` sends and `handoff-b` expects.
    pub const ROUNDS: u64 = 30;
    /// The round signalled.
    pub const ROUND: usize = 0;
    /// The last round after whose signal `handoff-a` went on.
    pub const WENT_ON: usize = 1;
    /// The last round `handoff-b` finished.
    pub const DONE: usize = 2;
    /// The TSC just before the last signal.
    pub const SENT: usize = 3;

    /// The first rounds, signalled 200 µs before a tick (whose latency is
    /// the one without a tick met).
    pub const QUIET: u64 = 5;
    /// How long before a tick `handoff-a` signals in `round`, in ns: after
    /// the quiet ones, swept over 100..400, well inside the kernel's signal
    /// path (under QEMU's instruction counting, leads from 60 to 720 ns
    /// have the tick raised during the hand-over).
    pub fn lead_ns(round: u64) -> u64 {
        if round <= QUIET {
            200_000
        } else {
            100 + round * 10 % 300
        }
    }
    /// A wake-up this much later than the quiet rounds' latest met the
    /// tick, in ns (about 0.7 µs without it, 1.3 µs with it under QEMU's
    /// instruction counting).
    pub const MET_TICK_NS: u64 = 300;
}
