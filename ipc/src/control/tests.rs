//! The control protocol on the host: every message round-trips; random,
//! truncated, oversized and wrong-version frames are errors, never panics.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn name() -> impl Strategy<Value = Name> {
    "[!-~]{1,24}".prop_map(|s| Name::try_from(s.as_str()).unwrap())
}

fn verb() -> impl Strategy<Value = Verb> {
    prop_oneof![
        Just(Verb::List),
        Just(Verb::Shutdown),
        name().prop_map(|name| Verb::Info { name }),
        name().prop_map(|name| Verb::Pause { name }),
        name().prop_map(|name| Verb::Resume { name }),
        name().prop_map(|name| Verb::Kill { name }),
        name().prop_map(|name| Verb::Restart { name }),
        name().prop_map(|name| Verb::Destroy { name }),
        proptest::option::of(name()).prop_map(|name| Verb::Stats { name }),
        (name(), proptest::option::of(1u16..), proptest::option::of(0u8..=100))
            .prop_map(|(name, weight, cap_percent)| Verb::Set { name, weight, cap_percent }),
        (
            1u16..=(ENTRY_MAX.div_ceil(PIECE_MAX) as u16),
            any::<prop::sample::Index>(),
            any::<u32>(),
            vec(any::<u8>(), 1..=PIECE_MAX)
        )
            .prop_map(|(pieces, i, sum, bytes)| Verb::Create {
                piece: i.index(usize::from(pieces)) as u16,
                pieces,
                sum,
                bytes: Vec::from_slice(&bytes).unwrap(),
            }),
        (name(), any::<u64>(), vec(any::<u8>(), 0..=CONSOLE_INPUT_MAX)).prop_map(|(name, from, input)| {
            Verb::Console { name, from, input: Vec::from_slice(&input).unwrap() }
        }),
        (name(), 1u32.., any::<[u8; 32]>()).prop_map(|(image, size, sha256)| Verb::UploadBegin {
            image,
            size,
            sha256
        }),
        (any::<u32>(), vec(any::<u8>(), 1..=UPLOAD_PIECE_MAX)).prop_map(|(offset, bytes)| {
            Verb::UploadPiece { offset, bytes: Vec::from_slice(&bytes).unwrap() }
        }),
        Just(Verb::UploadEnd),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let state = prop_oneof![
        Just(State::Running),
        Just(State::Paused),
        Just(State::Stopped),
        any::<u64>().prop_map(|in_ms| State::Restarting { in_ms }),
    ];
    (name(), any::<bool>(), state, any::<u64>(), any::<u32>(), 1u32.., 1u8.., 1u16.., 0u8..=100)
        .prop_flat_map(|(name, guest, state, id, memory_kib, gmem, vcpus, weight, cap_percent)| {
            (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(move |(restarts, cpu_us, iommu_faults)| {
                Entry {
                    name: name.clone(),
                    kind: if guest { Kind::Guest } else { Kind::Domain },
                    state,
                    id,
                    memory_kib,
                    guest_memory_kib: if guest { gmem } else { 0 },
                    vcpus: if guest { vcpus } else { 0 },
                    weight,
                    cap_percent,
                    restarts,
                    cpu_us,
                    iommu_faults,
                }
            })
        })
}

fn usage() -> impl Strategy<Value = Usage> {
    let exits = proptest::option::of(any::<[u64; EXIT_REASONS]>());
    (name(), any::<u64>(), any::<u64>(), any::<u32>(), exits).prop_map(
        |(name, cpu_us, guest_cpu_us, memory_kib, exits)| Usage {
            name,
            cpu_us,
            guest_cpu_us,
            memory_kib,
            exits: exits.map(|e| Vec::from_slice(&e).unwrap()).unwrap_or_default(),
        },
    )
}

/// `usage`s with exits on the first [`MAX_GUESTS`] that have them only.
fn usages(u: std::vec::Vec<Usage>) -> Vec<Usage, MAX_ENTRIES> {
    let mut guests = 0;
    u.into_iter()
        .map(|mut u| {
            guests += usize::from(!u.exits.is_empty());
            if guests > MAX_GUESTS {
                u.exits.clear();
            }
            u
        })
        .collect()
}

fn control_error() -> impl Strategy<Value = ControlError> {
    prop_oneof![
        Just(ControlError::Malformed),
        Just(ControlError::TooLong),
        Just(ControlError::NoSuchName),
        Just(ControlError::NotRunning),
        Just(ControlError::AlreadyInState),
        Just(ControlError::NothingToSet),
        Just(ControlError::StartFailed),
        Just(ControlError::OutOfOrder),
        Just(ControlError::BadChecksum),
        Just(ControlError::BadEntry),
        Just(ControlError::NameInUse),
        Just(ControlError::UnknownImage),
        Just(ControlError::NoMemory),
        Just(ControlError::NotAGuest),
        Just(ControlError::ConsoleBroken),
        Just(ControlError::NotUploading),
        any::<u32>().prop_map(|expected| ControlError::UploadOffset { expected }),
        any::<u32>().prop_map(|size| ControlError::PastTheEnd { size }),
        (0u32..u32::MAX).prop_map(|have| ControlError::Truncated { have, want: have + 1 }),
        any::<u32>().prop_map(|max| ControlError::TooLarge { max }),
        (any::<u16>(), any::<u16>())
            .prop_filter("unequal", |(a, b)| a != b)
            .prop_map(|(ours, theirs)| ControlError::WrongVersion { ours, theirs }),
        proptest::sample::select(Error::ALL.to_vec()).prop_map(ControlError::kernel),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Done),
        entry().prop_map(Body::Info),
        vec(entry(), 0..=MAX_ENTRIES).prop_map(|e| Body::List(e.into_iter().collect())),
        (any::<[u64; 5]>(), vec(usage(), 0..=MAX_ENTRIES)).prop_map(
            |([free_frames, objects, uptime_ms, frames, dropped], u)| Body::Stats(Stats {
                free_frames,
                objects,
                uptime_ms,
                frames,
                dropped,
                entries: usages(u)
            })
        ),
        control_error().prop_map(Body::Error),
        (
            0..u64::MAX / 2,
            vec(any::<u8>(), 0..=CONSOLE_OUTPUT_MAX),
            0..=CONSOLE_INPUT_MAX as u16,
            any::<bool>()
        )
            .prop_map(|(start, output, taken, running)| Body::Console {
                start,
                output: Vec::from_slice(&output).unwrap(),
                taken,
                running
            }),
    ]
}

/// Every frame of `stream`, decoded as requests (errors included).
fn requests(stream: &[u8]) -> std::vec::Vec<Result<Request, ControlError>> {
    let mut framer = Framer::<MAX_REQUEST>::new();
    let mut out = std::vec::Vec::new();
    for &b in stream {
        match framer.push(b) {
            None => {}
            Some(FrameEvent::TooLong) => out.push(Err(ControlError::TooLong)),
            Some(FrameEvent::Frame(f)) => out.push(Request::decode(f).map_err(ControlError::from)),
        }
    }
    out
}

proptest! {
    #[test]
    fn every_request_round_trips(seq in any::<u32>(), verb in verb()) {
        let r = Request::new(seq, verb);
        let mut buf = [0u8; MAX_REQUEST + 1];
        let frame = r.encode(&mut buf).expect("every request fits a frame");
        prop_assert_eq!(frame.last(), Some(&0));
        prop_assert!(!frame[..frame.len() - 1].contains(&0), "COBS leaves no zero inside");
        prop_assert_eq!(requests(frame), vec![Ok(r)]);
    }

    #[test]
    fn every_response_round_trips(seq in any::<u32>(), body in body()) {
        let r = Response::new(seq, body);
        let mut buf = [0u8; MAX_RESPONSE + 1];
        let frame = r.encode(&mut buf).expect("every response fits a frame");
        let n = frame.len() - 1;
        prop_assert_eq!(Response::decode(&mut frame[..n]), Ok(r));
    }

    /// Random bytes, cut into frames at their zeros: every frame is an
    /// answer (an error or a valid request), and nothing panics.
    #[test]
    fn random_streams_decode_to_errors_or_valid_requests(stream in vec(any::<u8>(), 0..2048)) {
        for req in requests(&stream).into_iter().flatten() {
            prop_assert_eq!(req.validate(), Ok(()));
        }
    }

    #[test]
    fn random_response_frames_never_panic(mut bytes in vec(1u8.., 0..MAX_RESPONSE)) {
        if let Ok(r) = Response::decode(&mut bytes) {
            prop_assert_eq!(r.validate(), Ok(()));
        }
    }

    /// Every proper prefix of a request's frame, ended early, is refused
    /// (postcard needs every byte it encoded), and the frame after it still
    /// decodes: one bad frame loses nothing else.
    #[test]
    fn truncated_frames_are_refused_and_lose_nothing(seq in any::<u32>(), verb in verb(), cut in any::<prop::sample::Index>()) {
        let r = Request::new(seq, verb);
        let mut buf = [0u8; MAX_REQUEST + 1];
        let frame = r.encode(&mut buf).unwrap().to_vec();
        let cut = 1 + cut.index(frame.len() - 2);
        let mut stream = frame[..cut].to_vec();
        stream.push(0);
        stream.extend_from_slice(&frame);
        let got = requests(&stream);
        prop_assert_eq!(got.len(), 2);
        prop_assert!(got[0].is_err(), "a truncated frame decoded: {:?}", got[0]);
        prop_assert_eq!(&got[1], &Ok(r));
    }

    #[test]
    fn oversized_frames_are_too_long_and_lose_nothing(extra in 1usize..4096, fill in 1u8..) {
        let mut stream = vec![fill; MAX_REQUEST + extra];
        stream.push(0);
        let r = Request::new(7, Verb::List);
        let mut buf = [0u8; MAX_REQUEST + 1];
        stream.extend_from_slice(r.encode(&mut buf).unwrap());
        prop_assert_eq!(requests(&stream), vec![Err(ControlError::TooLong), Ok(r)]);
    }

    #[test]
    fn other_versions_are_named(version in any::<u16>(), seq in any::<u32>(), verb in verb()) {
        prop_assume!(version != VERSION);
        let r = Request { version, seq, verb };
        let mut buf = [0u8; MAX_REQUEST + 1];
        let frame = encode(&r, &mut buf, MAX_REQUEST).unwrap();
        prop_assert_eq!(requests(frame), vec![Err(ControlError::WrongVersion { ours: VERSION, theirs: version })]);
    }
}

/// [`Verb`]'s shape, variant for variant, with the fields the tests fill
/// by hand unchecked (values the checked types would refuse). Each test
/// that uses it also decodes a good frame made with it, so a drift from
/// `Verb`'s order fails there.
#[derive(Serialize)]
enum RawVerb<'a> {
    _List,
    Info { name: &'a str },
    _Pause,
    _Resume,
    _Kill,
    _Restart,
    _Destroy,
    Set { name: &'a str, weight: Option<u16>, cap_percent: Option<u8> },
    _Stats,
    _Shutdown,
    _Create,
    Console { name: &'a str, from: u64, input: &'a [u8] },
    UploadBegin { image: &'a str, size: u32, sha256: [u8; 32] },
    UploadPiece { offset: u32, bytes: &'a [u8] },
}

/// Encodes any serializable value as a frame, unchecked.
fn raw_frame<T: Serialize>(v: &T) -> std::vec::Vec<u8> {
    let mut buf = [0u8; 2 * MAX_RESPONSE];
    postcard::to_slice_cobs(v, &mut buf).unwrap().to_vec()
}

#[test]
fn out_of_range_fields_are_refused() {
    // The same shapes as Request/Verb, built by hand with values the
    // checked types would refuse.
    #[derive(Serialize)]
    struct Raw<'a> {
        version: u16,
        seq: u32,
        verb: RawVerb<'a>,
    }
    let bad = [
        Raw { version: VERSION, seq: 1, verb: RawVerb::Info { name: "" } },
        Raw { version: VERSION, seq: 1, verb: RawVerb::Info { name: "a b" } },
        Raw { version: VERSION, seq: 1, verb: RawVerb::Info { name: "new\nline" } },
        Raw { version: VERSION, seq: 1, verb: RawVerb::Info { name: "abcdefghijklmnopqrstuvwxyz" } },
        Raw {
            version: VERSION,
            seq: 1,
            verb: RawVerb::Set { name: "x", weight: Some(0), cap_percent: None },
        },
        Raw {
            version: VERSION,
            seq: 1,
            verb: RawVerb::Set { name: "x", weight: None, cap_percent: Some(101) },
        },
    ];
    for raw in &bad {
        let frame = raw_frame(raw);
        assert_eq!(requests(&frame), vec![Err(ControlError::Malformed)], "{frame:?}");
    }
    let upload_bad = [
        RawVerb::UploadBegin { image: "", size: 1, sha256: [0; 32] },
        RawVerb::UploadBegin { image: "up", size: 0, sha256: [0; 32] },
        RawVerb::UploadPiece { offset: 0, bytes: &[] },
        RawVerb::UploadPiece { offset: 0, bytes: &[1; UPLOAD_PIECE_MAX + 1] },
    ];
    for verb in upload_bad {
        let frame = raw_frame(&Raw { version: VERSION, seq: 1, verb });
        assert_eq!(requests(&frame), vec![Err(ControlError::Malformed)], "{frame:?}");
    }
    // A size past UPLOAD_MAX decodes: mgmt refuses it, saying what it takes.
    let large = RawVerb::UploadBegin { image: "up", size: UPLOAD_MAX + 1, sha256: [0; 32] };
    assert!(matches!(&requests(&raw_frame(&Raw { version: VERSION, seq: 1, verb: large }))[..], [Ok(_)]));
    let good = raw_frame(&Raw { version: VERSION, seq: 1, verb: RawVerb::Info { name: "hello" } });
    assert!(matches!(&requests(&good)[..], [Ok(_)]), "the same shape with good values decodes");
    // A variant past the last, and a byte after a whole message.
    assert_eq!(requests(&raw_frame(&(VERSION, 1u32, 15u8))), vec![Err(ControlError::Malformed)]);
    assert_eq!(requests(&raw_frame(&(VERSION, 1u32, 0u8, 0u8))), vec![Err(ControlError::Malformed)]);
    assert!(matches!(&requests(&raw_frame(&(VERSION, 1u32, 0u8)))[..], [Ok(_)]));
}

#[test]
fn responses_with_bad_fields_are_refused() {
    let mut e = Entry {
        name: Name::try_from("g").unwrap(),
        kind: Kind::Domain,
        state: State::Running,
        id: 1,
        memory_kib: 1024,
        guest_memory_kib: 0,
        vcpus: 0,
        weight: 256,
        cap_percent: 0,
        restarts: 0,
        cpu_us: 0,
        iommu_faults: 0,
    };
    let check = |e: &Entry| {
        let mut f = raw_frame(&Response::new(1, Body::Info(e.clone())));
        f.pop();
        Response::decode(&mut f)
    };
    assert!(check(&e).is_ok());
    e.vcpus = 1;
    assert!(check(&e).is_err(), "a domain with vCPUs");
    e.kind = Kind::Guest;
    assert!(check(&e).is_ok());
    e.vcpus = 0;
    assert!(check(&e).is_err(), "a guest without");
    e.vcpus = 1;
    e.weight = 0;
    assert!(check(&e).is_err(), "weight 0");
    let mut f = raw_frame(&Response::new(1, Body::Error(ControlError::Kernel { code: 999 })));
    f.pop();
    assert!(Response::decode(&mut f).is_err(), "an unknown kernel error");
    let mut f = raw_frame(&Response::new(1, Body::Error(ControlError::Kernel { code: 0 })));
    f.pop();
    assert!(Response::decode(&mut f).is_err(), "success is no error");
}

#[test]
fn stats_with_bad_exit_lists_are_refused() {
    let usage = |n: usize| Usage {
        name: Name::try_from("g").unwrap(),
        cpu_us: 0,
        guest_cpu_us: 0,
        memory_kib: 0,
        exits: (0..n as u64).collect(),
    };
    let check = |entries: std::vec::Vec<Usage>| {
        let stats = Stats {
            free_frames: 0,
            objects: 0,
            uptime_ms: 0,
            frames: 0,
            dropped: 0,
            entries: entries.into_iter().collect(),
        };
        // Encoded as a raw postcard value: `encode` would not check.
        let mut f = raw_frame(&Response::new(1, Body::Stats(stats)));
        f.pop();
        Response::decode(&mut f).map(drop)
    };
    assert_eq!(check(vec![usage(0), usage(EXIT_REASONS)]), Ok(()));
    assert!(check(vec![usage(3)]).is_err(), "some reasons only");
    assert!(check(vec![usage(EXIT_REASONS); MAX_GUESTS]).is_ok());
    assert!(check(vec![usage(EXIT_REASONS); MAX_GUESTS + 1]).is_err(), "more guests than there can be");
}

#[test]
fn framer_reports_empty_frames_as_nothing() {
    let mut f = Framer::<8>::new();
    assert_eq!(f.push(0), None);
    assert_eq!(f.push(0), None);
    for b in 1..=8 {
        assert_eq!(f.push(b), None);
    }
    assert_eq!(f.pending(), 8);
    assert!(matches!(f.push(0), Some(FrameEvent::Frame(b)) if b == [1, 2, 3, 4, 5, 6, 7, 8]));
    for b in 1..=9 {
        assert_eq!(f.push(b), None);
    }
    assert_eq!(f.push(0), Some(FrameEvent::TooLong));
    assert_eq!(f.push(0), None, "reported once");
}

#[test]
fn the_largest_list_fits_a_response() {
    let long = Name::try_from("abcdefghijklmnopqrstuvwx").unwrap();
    let e = Entry {
        name: long.clone(),
        kind: Kind::Guest,
        state: State::Restarting { in_ms: u64::MAX },
        id: u64::MAX,
        memory_kib: u32::MAX,
        guest_memory_kib: u32::MAX,
        vcpus: u8::MAX,
        weight: u16::MAX,
        cap_percent: 100,
        restarts: u32::MAX,
        cpu_us: u64::MAX,
        iommu_faults: u64::MAX,
    };
    let list = Body::List((0..MAX_ENTRIES).map(|_| e.clone()).collect());
    let mut buf = [0u8; MAX_RESPONSE + 1];
    assert!(Response::new(u32::MAX, list).encode(&mut buf).is_ok());
    let exits = Vec::from_slice(&[u64::MAX; EXIT_REASONS]).unwrap();
    let u = Usage { name: long, cpu_us: u64::MAX, guest_cpu_us: u64::MAX, memory_kib: u32::MAX, exits };
    let stats = Stats {
        free_frames: u64::MAX,
        objects: u64::MAX,
        uptime_ms: u64::MAX,
        frames: u64::MAX,
        dropped: u64::MAX,
        entries: usages((0..MAX_ENTRIES).map(|_| u.clone()).collect()),
    };
    assert_eq!(stats.entries.iter().filter(|u| !u.exits.is_empty()).count(), MAX_GUESTS);
    assert!(Response::new(u32::MAX, Body::Stats(stats)).encode(&mut buf).is_ok());
    let longest = Request::new(
        u32::MAX,
        Verb::Set {
            name: Name::try_from("abcdefghijklmnopqrstuvwx").unwrap(),
            weight: Some(u16::MAX),
            cap_percent: Some(100),
        },
    );
    assert!(longest.encode(&mut [0u8; MAX_REQUEST + 1]).is_ok());
}

/// The pieces of `entry`, as `ryokan create` sends them.
fn pieces(entry: &[u8]) -> std::vec::Vec<Verb> {
    let n = entry.len().div_ceil(PIECE_MAX) as u16;
    entry
        .chunks(PIECE_MAX)
        .enumerate()
        .map(|(i, c)| Verb::Create {
            piece: i as u16,
            pieces: n,
            sum: checksum(entry),
            bytes: Vec::from_slice(c).unwrap(),
        })
        .collect()
}

fn push(u: &mut Upload, v: &Verb) -> Result<Option<std::vec::Vec<u8>>, ControlError> {
    let Verb::Create { piece, pieces, sum, bytes } = v else { panic!("not a piece") };
    u.push(*piece, *pieces, *sum, bytes).map(|e| e.map(<[u8]>::to_vec))
}

proptest! {
    #[test]
    fn uploads_in_order_give_the_entry_back(entry in vec(any::<u8>(), 1..=ENTRY_MAX)) {
        let mut u = Upload::new();
        let all = pieces(&entry);
        for (i, p) in all.iter().enumerate() {
            // Every piece fits a request frame.
            let frame = Request::new(u32::MAX, p.clone());
            prop_assert!(frame.encode(&mut [0u8; MAX_REQUEST + 1]).is_ok());
            let got = push(&mut u, p).unwrap();
            prop_assert_eq!(got.is_some(), i + 1 == all.len());
            if let Some(e) = got {
                prop_assert_eq!(&e, &entry);
            }
        }
        prop_assert!(!u.pending());
    }

    #[test]
    fn a_lost_doubled_or_changed_piece_is_refused(entry in vec(any::<u8>(), PIECE_MAX + 1..=ENTRY_MAX), at in any::<prop::sample::Index>(), how in 0..3u8) {
        let mut all = pieces(&entry);
        let i = at.index(all.len());
        let mut u = Upload::new();
        let want = match how {
            // (A lost last piece leaves the upload waiting; the next piece 0 drops it.)
            0 if i > 0 && i + 1 < all.len() => { all.remove(i); ControlError::OutOfOrder }
            1 if i > 0 => { let p = all[i].clone(); all.insert(i, p); ControlError::OutOfOrder }
            _ => {
                if let Verb::Create { bytes, .. } = &mut all[i] { bytes[0] ^= 1; }
                ControlError::BadChecksum
            }
        };
        let mut refused = None;
        for p in &all {
            if let Err(e) = push(&mut u, p) { refused = Some(e); break; }
        }
        prop_assert_eq!(refused, Some(want));
        prop_assert!(!u.pending(), "the upload is dropped");
        // A new upload from piece 0 goes through.
        for p in pieces(&entry) { let _ = push(&mut u, &p); }
        prop_assert!(!u.pending());
    }
}

#[test]
fn bad_pieces_are_refused() {
    let mut u = Upload::new();
    assert_eq!(u.push(1, 2, 0, &[1]), Err(ControlError::OutOfOrder), "no upload under way");
    assert_eq!(u.push(0, 2, 7, &[1]), Ok(None));
    assert_eq!(u.push(1, 3, 7, &[1]), Err(ControlError::OutOfOrder), "another count");
    assert_eq!(u.push(0, 2, 7, &[1]), Ok(None));
    assert_eq!(u.push(1, 2, 8, &[1]), Err(ControlError::OutOfOrder), "another sum");
    assert_eq!(u.push(2, 2, 7, &[1]), Err(ControlError::OutOfOrder), "past the last");
    assert_eq!(u.push(u16::MAX, u16::MAX, 7, &[1]), Err(ControlError::OutOfOrder));
    assert_eq!(u.push(0, 1, 7, &[]), Err(ControlError::OutOfOrder), "empty");
    // More than ENTRY_MAX in all: refused, never written past the buffer.
    let n = (ENTRY_MAX / PIECE_MAX + 2) as u16;
    let mut last = Ok(None);
    for i in 0..n {
        last = u.push(i, n, 0, &[0xAA; PIECE_MAX]).map(|e| e.map(<[u8]>::to_vec));
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last, Err(ControlError::BadEntry));
    // And on the wire: piece numbers out of range, too many, empty.
    let create = |piece, pieces, bytes: &[u8]| {
        Request::new(1, Verb::Create { piece, pieces, sum: 0, bytes: Vec::from_slice(bytes).unwrap() })
            .validate()
    };
    assert!(create(0, 1, &[1]).is_ok());
    assert!(create(1, 1, &[1]).is_err());
    assert!(create(0, (ENTRY_MAX.div_ceil(PIECE_MAX) + 1) as u16, &[1]).is_err());
    assert!(create(0, 1, &[]).is_err());
}

#[test]
fn the_largest_console_messages_fit_their_frames() {
    let name = Name::try_from("abcdefghijklmnopqrstuvwx").unwrap();
    let input = Vec::from_slice(&[0xFFu8; CONSOLE_INPUT_MAX]).unwrap();
    let mut buf = [0u8; MAX_RESPONSE + 1];
    let req = Request::new(u32::MAX, Verb::Console { name, from: u64::MAX, input });
    assert!(req.encode(&mut buf).is_ok(), "the longest console request fits MAX_REQUEST");
    let output = Vec::from_slice(&[0xFFu8; CONSOLE_OUTPUT_MAX]).unwrap();
    let body = Body::Console { start: u64::MAX / 2, output, taken: CONSOLE_INPUT_MAX as u16, running: true };
    assert!(Response::new(u32::MAX, body).encode(&mut buf).is_ok());
}

#[test]
fn console_answers_with_bad_fields_are_refused() {
    let check = |start: u64, len: usize, taken: u16| {
        let output = Vec::from_slice(&vec![b'x'; len]).unwrap();
        let mut f = raw_frame(&Response::new(1, Body::Console { start, output, taken, running: true }));
        f.pop();
        Response::decode(&mut f).map(drop)
    };
    assert_eq!(check(7, 10, 3), Ok(()));
    assert!(check(7, 10, CONSOLE_INPUT_MAX as u16 + 1).is_err(), "more taken than an input holds");
    assert!(check(u64::MAX - 3, 10, 0).is_err(), "output past the last offset");
    // An input longer than CONSOLE_INPUT_MAX does not decode (nor fit).
    let long = [b'a'; CONSOLE_INPUT_MAX + 1];
    let frame = raw_frame(&(VERSION, 1u32, RawVerb::Console { name: "g", from: 0, input: &long }));
    assert_eq!(requests(&frame), vec![Err(ControlError::Malformed)]);
    let ok = raw_frame(&(VERSION, 1u32, RawVerb::Console { name: "g", from: 0, input: &long[1..] }));
    assert!(matches!(&requests(&ok)[..], [Ok(_)]));
    let nameless = raw_frame(&(VERSION, 1u32, RawVerb::Console { name: "", from: 0, input: b"x" }));
    assert_eq!(requests(&nameless), vec![Err(ControlError::Malformed)]);
}
