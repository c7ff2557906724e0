//! The fuzzed control channel: [`FRAMES`] frames straight onto the socket —
//! random bytes, valid requests (`Create` and upload pieces among them) cut
//! short, frames longer than `MAX_REQUEST`, requests of other versions —
//! none of which is a request `mgmt` could carry out (each is checked here
//! with the protocol's own decoder first). Every one must get exactly one
//! answer, an error, while the domains run on.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use ipc::control::{Body, FrameEvent, Framer, Request, Response, Verb, MAX_REQUEST, MAX_RESPONSE, VERSION};

use super::{ensure, field, Session};

/// How many frames are sent.
pub const FRAMES: usize = 100_000;

/// xorshift64*: repeatable frames from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One hostile frame (without its 0x00): never a request that decodes.
pub fn frame(rng: &mut Rng) -> Vec<u8> {
    loop {
        let f = match rng.below(20) {
            // Random bytes, short (most), no zero inside.
            0..=15 => (0..1 + rng.below(16)).map(|_| 1 + rng.below(255) as u8).collect(),
            // A valid request's frame, cut short.
            16 | 17 => {
                let mut buf = [0u8; MAX_REQUEST + 1];
                let create = Verb::Create {
                    piece: 0,
                    pieces: 1 + rng.below(4) as u16,
                    sum: rng.next() as u32,
                    bytes: (0..1 + rng.below(96)).map(|_| rng.next() as u8).collect(),
                };
                let begin = Verb::UploadBegin {
                    image: ipc::control::Name::try_from("fuzzed").unwrap_or_default(),
                    size: rng.next() as u32,
                    sha256: [rng.next() as u8; 32],
                };
                let piece = Verb::UploadPiece {
                    offset: rng.next() as u32,
                    bytes: (0..1 + rng.below(112)).map(|_| rng.next() as u8).collect(),
                };
                let verb = [Verb::List, Verb::Shutdown, Verb::Stats { name: None }, create, begin, piece]
                    [rng.below(6) as usize]
                    .clone();
                let len = Request::new(rng.next() as u32, verb).encode(&mut buf).map_or(0, |f| f.len() - 1);
                buf[..rng.below(len.max(1) as u64) as usize].to_vec()
            }
            // Longer than a request may be.
            18 => (0..MAX_REQUEST as u64 + 1 + rng.below(64)).map(|_| 1 + rng.below(255) as u8).collect(),
            // Another version's request: shutdown, even.
            _ => {
                let r =
                    Request { version: VERSION + 1 + rng.below(100) as u16, seq: 1, verb: Verb::Shutdown };
                let mut buf = [0u8; MAX_REQUEST + 1];
                ipc::control::encode(&r, &mut buf, MAX_REQUEST)
                    .map_or(Vec::new(), |f| f[..f.len() - 1].to_vec())
            }
        };
        let mut probe = f.clone();
        if !f.is_empty() && (f.len() > MAX_REQUEST || Request::decode(&mut probe).is_err()) {
            return f;
        }
    }
}

/// Sends [`FRAMES`] frames, counts the answers; then checks that mgmt
/// still serves and the spinner still runs.
pub fn check(s: &Session) -> Result<(), String> {
    let cpu0 = field(&s.info("spin-a")?, "cpu_us")?;
    let mut tx = UnixStream::connect(&s.socket)
        .map_err(|e| format!("cannot connect to {}: {e}", s.socket.display()))?;
    let mut rx = tx.try_clone().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let reader = thread::spawn(move || {
        let mut framer = Framer::<MAX_RESPONSE>::new();
        let (mut errors, mut other) = (0usize, 0usize);
        let _ = rx.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = [0u8; 4096];
        while errors + other < FRAMES {
            let Ok(n) = rx.read(&mut buf) else { break };
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if let Some(FrameEvent::Frame(f)) = framer.push(b) {
                    match Response::decode(f) {
                        Ok(Response { seq: 0, body: Body::Error(_), .. }) => errors += 1,
                        _ => other += 1,
                    }
                }
            }
        }
        (errors, other)
    });
    let mut rng = Rng::new(0x5eed_c0de);
    let mut out = Vec::with_capacity(64 * 1024);
    out.push(0);
    for sent in 1..=FRAMES {
        out.extend_from_slice(&frame(&mut rng));
        out.push(0);
        if out.len() >= 16 * 1024 {
            tx.write_all(&out).map_err(|e| format!("writing frames failed after {sent}: {e}"))?;
            out.clear();
        }
    }
    tx.write_all(&out).map_err(|e| format!("writing the last frames failed: {e}"))?;
    let (errors, other) = reader.join().map_err(|_| "the reader panicked".to_string())?;
    let took = start.elapsed();
    drop(tx);
    eprintln!("control_cli: {FRAMES} fuzzed frames answered in {:.1} s", took.as_secs_f64());
    ensure(other == 0, || format!("{other} answers to fuzzed frames were not errors"))?;
    let stats = s.json(&["stats"])?;
    ensure(errors == FRAMES, || {
        format!("{errors} error answers to {FRAMES} fuzzed frames (in {took:?}); mgmt says: {stats}")
    })?;
    let cpu1 = field(&s.info("spin-a")?, "cpu_us")?;
    ensure(cpu1 > cpu0, || format!("spin-a did not run while the channel was fuzzed ({cpu0} -> {cpu1} µs)"))
}

/// How many bad `Create` pieces [`bad_creates`] sends.
pub const BAD_CREATES: usize = 300;

/// [`BAD_CREATES`] `Create` requests that decode but must be refused: a
/// piece with no upload under way (`OutOfOrder`), a lone piece whose
/// checksum is wrong (`BadChecksum`), and random bytes with the right
/// checksum (`BadEntry`, not a manifest); each is answered with its own
/// error while the domains run on, and mgmt serves on.
pub fn bad_creates(s: &Session) -> Result<(), String> {
    use ipc::control::{checksum, ControlError, ENTRY_MAX, PIECE_MAX};
    let cpu0 = field(&s.info("spin-a")?, "cpu_us")?;
    let mut line = UnixStream::connect(&s.socket)
        .map_err(|e| format!("cannot connect to {}: {e}", s.socket.display()))?;
    let _ = line.set_read_timeout(Some(Duration::from_secs(10)));
    let mut rng = Rng::new(0xbad_c4ea7e);
    let mut framer = Framer::<MAX_RESPONSE>::new();
    let most = ENTRY_MAX.div_ceil(PIECE_MAX) as u64;
    for i in 0..BAD_CREATES {
        let seq = 1000 + i as u32;
        let bytes: Vec<u8> = (0..1 + rng.below(PIECE_MAX as u64)).map(|_| rng.next() as u8).collect();
        let (verb, want) = match i % 3 {
            0 => {
                let pieces = 2 + rng.below(most - 1) as u16;
                let piece = 1 + rng.below(u64::from(pieces) - 1) as u16;
                let sum = checksum(&bytes);
                (
                    Verb::Create { piece, pieces, sum, bytes: bytes.iter().copied().collect() },
                    ControlError::OutOfOrder,
                )
            }
            1 => {
                let sum = checksum(&bytes) ^ (1 + rng.below(u64::from(u32::MAX)) as u32);
                (
                    Verb::Create { piece: 0, pieces: 1, sum, bytes: bytes.iter().copied().collect() },
                    ControlError::BadChecksum,
                )
            }
            _ => {
                let sum = checksum(&bytes);
                (
                    Verb::Create { piece: 0, pieces: 1, sum, bytes: bytes.iter().copied().collect() },
                    ControlError::BadEntry,
                )
            }
        };
        let mut buf = [0u8; MAX_REQUEST + 1];
        let frame = Request::new(seq, verb).encode(&mut buf).map_err(|e| format!("cannot encode: {e:?}"))?;
        line.write_all(frame).map_err(|e| format!("writing bad create {i} failed: {e}"))?;
        let got = loop {
            let mut b = [0u8; 1];
            match line.read(&mut b) {
                Ok(1) => {}
                _ => return Err(format!("no answer to bad create {i}")),
            }
            if let Some(FrameEvent::Frame(f)) = framer.push(b[0]) {
                if let Ok(r) = Response::decode(f) {
                    if r.seq == seq {
                        break r.body;
                    }
                }
            }
        };
        ensure(got == Body::Error(want), || format!("bad create {i} was answered {got:?}, not {want:?}"))?;
    }
    drop(line);
    let cpu1 = field(&s.info("spin-a")?, "cpu_us")?;
    ensure(cpu1 > cpu0, || format!("spin-a did not run during the bad creates ({cpu0} -> {cpu1} µs)"))?;
    eprintln!("control_cli: {BAD_CREATES} bad creates, each refused with its error");
    Ok(())
}
