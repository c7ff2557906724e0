//! The control protocol: how the host tool `ryokan` runs and watches a live
//! system through `mgmt` (DESIGN.md §7), defined once for both ends.
//!
//! A message is a postcard encoding, COBS-framed: the encoded bytes with
//! every zero removed (COBS), then one `0x00` that ends the frame. The
//! client sends a [`Request`] and `mgmt` answers each frame it received
//! with exactly one [`Response`] carrying the request's `seq` (0 when the
//! frame was too broken to read one), so a client never waits for an
//! answer that will not come, and one bad frame costs nothing but itself.
//!
//! Decisions the design leaves open:
//! - The version is the first field of both messages and is read before
//!   anything else: a peer of another version gets
//!   [`ControlError::WrongVersion`] naming both, never a misparse.
//! - Frames are bounded: [`MAX_REQUEST`] bytes for a request frame (with its
//!   COBS overhead, without the delimiter), [`MAX_RESPONSE`] for a
//!   response. A longer frame is dropped up to its delimiter and answered
//!   [`ControlError::TooLong`] ([`Framer`]).
//! - An empty frame (a lone `0x00`) is not a message and gets no answer: a
//!   client may send one first to end whatever partial frame the line held.
//! - Every field is checked on decode ([`Request::decode`],
//!   [`Response::decode`]): names are 1 to [`NAME_MAX`] printable ASCII
//!   bytes, weights 1..=65535, caps 0..=100, kernel error codes known ones,
//!   lists no longer than [`MAX_ENTRIES`], and no byte may follow the
//!   message inside its frame.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::manifest::MAX_GUESTS;
use crate::vcpu::EXIT_REASONS;

mod frame;
#[cfg(test)]
mod tests;
mod upload;

pub use frame::{encode, FrameEvent, Framer};
pub use upload::{checksum, Upload, ENTRY_MAX, PIECE_MAX};

/// The protocol's version; both messages begin with it.
pub const VERSION: u16 = 5;
/// The most bytes a request frame holds (COBS-encoded, without its 0x00).
pub const MAX_REQUEST: usize = 128;
/// The most bytes a response frame holds (COBS-encoded, without its 0x00).
pub const MAX_RESPONSE: usize = 32768;
/// The longest domain or guest name (that of the manifest).
pub const NAME_MAX: usize = 24;
/// The most domains and guests a list holds: the manifest's domains and a
/// VMM per guest (`ipc::manifest::MAX_DOMAINS + MAX_GUESTS`).
pub const MAX_ENTRIES: usize = crate::manifest::MAX_DOMAINS + crate::manifest::MAX_GUESTS;

/// A domain's or guest's name.
pub type Name = String<NAME_MAX>;
/// The most bytes of input one [`Verb::Console`] carries (its request
/// frame stays within [`MAX_REQUEST`] with the longest name and offset).
pub const CONSOLE_INPUT_MAX: usize = 64;
/// The most bytes of output one [`Body::Console`] carries.
pub const CONSOLE_OUTPUT_MAX: usize = 1024;
/// The most bytes of an image one [`Verb::UploadPiece`] carries (its frame
/// stays within [`MAX_REQUEST`] with the largest offset and sequence number).
pub const UPLOAD_PIECE_MAX: usize = 112;
/// The largest image an upload takes, whatever memory is left: a hard
/// limit, so that a client cannot make `mgmt` hold more than this for one
/// upload however much quota it has.
pub const UPLOAD_MAX: u32 = 16 << 20;
/// A SHA-256 digest: what an upload's bytes are checked against.
pub type Digest = [u8; 32];

/// What the client asks, with its sequence number (echoed in the answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u16,
    pub seq: u32,
    pub verb: Verb,
}

/// The verbs. A guest is named by its own name, which is also its VMM
/// domain's: a verb on it acts on both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verb {
    /// Every domain and guest of the system.
    List,
    /// One of them.
    Info {
        name: Name,
    },
    /// Stops its threads (a guest's vCPUs and its VMM) until `Resume`.
    Pause {
        name: Name,
    },
    Resume {
        name: Name,
    },
    /// Fault injection: stops it as if it had failed; its restart policy
    /// then applies.
    Kill {
        name: Name,
    },
    /// Stops it and starts it afresh at once (not counted as a failure).
    Restart {
        name: Name,
    },
    /// Stops it for good and frees all it held.
    Destroy {
        name: Name,
    },
    /// Sets its CPU weight and/or cap (what is `None` stays).
    Set {
        name: Name,
        weight: Option<u16>,
        cap_percent: Option<u8>,
    },
    /// CPU time and memory: of one, or (`None`) of all, and the kernel's
    /// free frames.
    Stats {
        name: Option<Name>,
    },
    /// Stops everything; the system powers off.
    Shutdown,
    /// Piece `piece` of `pieces` of a new domain or guest to start: a
    /// manifest of that one entry (postcard, `ipc::manifest::Manifest`),
    /// at most [`ENTRY_MAX`] bytes, whose [`checksum`] is `sum`, cut into
    /// pieces of at most [`PIECE_MAX`] bytes sent in order ([`Upload`]).
    /// Each piece but the last is answered `Done` once taken; the last
    /// once the entry has started.
    Create {
        piece: u16,
        pieces: u16,
        sum: u32,
        bytes: Vec<u8, PIECE_MAX>,
    },
    /// A guest's console, both ways, one round trip: `input` is typed into
    /// its UART (all of it, or none when the console's input ring is full:
    /// the guest is not reading), and the answer carries the guest's output
    /// from offset `from` of its console log on (`mgmt` keeps the last
    /// `mgmt::history::KEPT` bytes of it; offsets count every byte the
    /// guest ever sent, across its restarts). A client polls with the
    /// offset after what it has.
    Console {
        name: Name,
        from: u64,
        input: Vec<u8, CONSOLE_INPUT_MAX>,
    },
    /// Begins the upload of an image named `image` (a name no boot module
    /// and no other upload has) of `size` bytes (1 to [`UPLOAD_MAX`], else
    /// `TooLarge`) whose
    /// SHA-256 is `sha256`: `mgmt` sets aside memory for it, charged to its
    /// own quota (`NoMemory` if not enough is left). An upload under way is
    /// dropped. Once uploaded, `create` may name it as its image (or a
    /// guest's module) as it names the boot image's.
    UploadBegin {
        image: Name,
        size: u32,
        sha256: Digest,
    },
    /// The bytes of the upload under way from `offset` on, which must be
    /// where the bytes so far end (else `UploadOffset`), within its size
    /// (else `PastTheEnd`); a piece refused leaves the upload as it was.
    UploadPiece {
        offset: u32,
        bytes: Vec<u8, UPLOAD_PIECE_MAX>,
    },
    /// Ends the upload under way: if every byte came and their SHA-256 is
    /// the one begun with, the image is kept (read-only) until `mgmt`
    /// stops; else it is dropped, its memory freed (`Truncated`,
    /// `BadChecksum`).
    UploadEnd,
}

/// The answer to one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub version: u16,
    /// The request's, or 0 when the frame was too broken to read it from.
    pub seq: u32,
    pub body: Body,
}

/// (Its variants differ in size as lists do: `ipc` allocates nothing, and
/// a response is made once per request, so it is not boxed.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// For `List`.
    List(Vec<Entry, MAX_ENTRIES>),
    /// For `Info`.
    Info(Entry),
    /// For `Stats`.
    Stats(Stats),
    /// For `Console`: the output from offset `start` (greater than the
    /// `from` asked when what lay between is no longer kept), how many
    /// bytes of the input were taken, and whether the guest runs (a guest
    /// that stopped keeps its log, and takes no input).
    Console {
        start: u64,
        output: Vec<u8, CONSOLE_OUTPUT_MAX>,
        taken: u16,
        running: bool,
    },
    /// The verb was carried out.
    Done,
    Error(ControlError),
}

/// Whether a guest or a native domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Domain,
    Guest,
}

/// Where one stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Running,
    Paused,
    /// Failed; restarted in `in_ms`.
    Restarting {
        in_ms: u64,
    },
    /// Finished, failed for good, or destroyed.
    Stopped,
}

/// One domain or guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: Name,
    pub kind: Kind,
    pub state: State,
    /// Its domain id (the VMM's, for a guest) while it runs, else 0.
    pub id: u64,
    /// Its memory quota in KiB (a guest's: its VMM's, RAM included).
    pub memory_kib: u32,
    /// A guest's RAM in KiB; 0 for a domain.
    pub guest_memory_kib: u32,
    /// A guest's vCPUs; 0 for a domain.
    pub vcpus: u8,
    pub weight: u16,
    /// Percent of one CPU, 0 for none.
    pub cap_percent: u8,
    /// How often it was restarted.
    pub restarts: u32,
    /// CPU time of this instance in microseconds (a guest's: its vCPUs'
    /// and its VMM's).
    pub cpu_us: u64,
    /// Requests of the devices this instance holds that the IOMMU
    /// blocked (the kernel's count, charged to it).
    pub iommu_faults: u64,
}

/// What `Stats` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The kernel's free 4 KiB frames.
    pub free_frames: u64,
    /// The kernel objects in use.
    pub objects: u64,
    /// Milliseconds since `mgmt` started.
    pub uptime_ms: u64,
    /// Frames the channel has answered, and answers it dropped because the
    /// host did not read them in time.
    pub frames: u64,
    pub dropped: u64,
    pub entries: Vec<Usage, MAX_ENTRIES>,
}

/// One domain's or guest's use of the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub name: Name,
    /// Its CPU time (this instance), microseconds.
    pub cpu_us: u64,
    /// Of which a guest's vCPUs (with its VMM's work for them, which the
    /// kernel charges to the guest); 0 for a domain.
    pub guest_cpu_us: u64,
    /// Its memory quota in KiB.
    pub memory_kib: u32,
    /// A guest's exits by reason (`ipc::vcpu::ExitReason::index`): all
    /// [`EXIT_REASONS`] counts, or none (a domain, or a guest whose VMM
    /// has not yet handed it to `mgmt`). At most [`MAX_GUESTS`] entries of
    /// a `Stats` have them.
    pub exits: Vec<u64, EXIT_REASONS>,
}

/// Why a request was not carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlError {
    /// The frame is not a message of this protocol (bad COBS, postcard or a
    /// field out of range).
    Malformed,
    /// The frame was longer than [`MAX_REQUEST`]; it was dropped.
    TooLong,
    /// The peer speaks another version.
    WrongVersion { ours: u16, theirs: u16 },
    /// No domain or guest of that name.
    NoSuchName,
    /// It is not running (stopped, or waiting for a restart).
    NotRunning,
    /// Pause of a paused one, or resume of a running one.
    AlreadyInState,
    /// A `Set` with neither weight nor cap.
    NothingToSet,
    /// The kernel refused (its error code, an `ipc::Error`).
    Kernel { code: u64 },
    /// It could not be started (`mgmt`'s log says why).
    StartFailed,
    /// `Create`: a piece other than the next expected (the upload so far
    /// is dropped: start again from piece 0).
    OutOfOrder,
    /// `Create`: the pieces do not make up what their checksum says;
    /// `UploadEnd`: the bytes' SHA-256 is not the one begun with (the
    /// upload is dropped).
    BadChecksum,
    /// `Create`: the pieces are not a manifest of one domain or guest that
    /// `mgmt` can start alone (it names what the running system has).
    BadEntry,
    /// `Create`: that name is taken; `UploadBegin`: a boot module or
    /// another upload has that name.
    NameInUse,
    /// `Create`: neither the boot image has a module of that image nor
    /// was one uploaded by that name.
    UnknownImage,
    /// `Create`: not memory enough left for its quota (or no room in
    /// `mgmt`'s tables for another domain); `UploadBegin`: not memory
    /// enough left in `mgmt`'s quota for the image (or no room for another
    /// upload).
    NoMemory,
    /// `Console`: that is a native domain, not a guest: it has no console.
    NotAGuest,
    /// `Console`: the guest's VMM broke the console's rings; its console
    /// is off until the guest is restarted (`mgmt`'s log says so).
    ConsoleBroken,
    /// `UploadPiece`, `UploadEnd`: no upload is under way (none began, or
    /// it ended, or another began since).
    NotUploading,
    /// `UploadPiece`: not at the end of the bytes so far, `expected`; the
    /// upload stays as it was, to go on from there.
    UploadOffset { expected: u32 },
    /// `UploadPiece`: bytes past the size begun with; the upload stays as
    /// it was.
    PastTheEnd { size: u32 },
    /// `UploadEnd`: only `have` of the `want` bytes came; the upload is
    /// dropped.
    Truncated { have: u32, want: u32 },
    /// `UploadBegin`: the image is larger than `max` bytes, the most an
    /// upload takes ([`UPLOAD_MAX`]).
    TooLarge { max: u32 },
}

/// Why a frame did not decode to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not COBS, not postcard of the message, or bytes after it.
    Malformed,
    /// The version field is not [`VERSION`].
    WrongVersion(u16),
    /// A field is out of range.
    BadField(&'static str),
}

impl From<DecodeError> for ControlError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Malformed | DecodeError::BadField(_) => ControlError::Malformed,
            DecodeError::WrongVersion(theirs) => ControlError::WrongVersion { ours: VERSION, theirs },
        }
    }
}

impl ControlError {
    /// The kernel's refusal as a control error.
    pub fn kernel(e: Error) -> Self {
        ControlError::Kernel { code: e.code() }
    }
}

/// Decodes one frame (its COBS bytes, without the 0x00) into `T`, in
/// place: the version first, then the rest, which must fill the frame.
fn decode_frame<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, DecodeError> {
    let len = cobs::decode_in_place(frame).map_err(|_| DecodeError::Malformed)?;
    let bytes = frame.get(..len).ok_or(DecodeError::Malformed)?;
    let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(|_| DecodeError::Malformed)?;
    if version != VERSION {
        return Err(DecodeError::WrongVersion(version));
    }
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(DecodeError::Malformed),
    }
}

impl Request {
    pub fn new(seq: u32, verb: Verb) -> Self {
        Self { version: VERSION, seq, verb }
    }

    /// Decodes and checks a request frame (COBS bytes without the 0x00;
    /// decoded in place, so the buffer is spent).
    pub fn decode(frame: &mut [u8]) -> Result<Request, DecodeError> {
        let r: Request = decode_frame(frame)?;
        r.validate()?;
        Ok(r)
    }

    /// Every field in range.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match &self.verb {
            Verb::List | Verb::Shutdown | Verb::Stats { name: None } => Ok(()),
            Verb::Info { name }
            | Verb::Pause { name }
            | Verb::Resume { name }
            | Verb::Kill { name }
            | Verb::Restart { name }
            | Verb::Destroy { name }
            | Verb::Stats { name: Some(name) } => check_name(name),
            Verb::Set { name, weight, cap_percent } => {
                check_name(name)?;
                check_share(*weight, *cap_percent)
            }
            Verb::Create { piece, pieces, bytes, .. } => {
                if *piece >= *pieces || usize::from(*pieces) > ENTRY_MAX.div_ceil(PIECE_MAX) {
                    return Err(DecodeError::BadField("piece"));
                }
                if bytes.is_empty() {
                    return Err(DecodeError::BadField("an empty piece"));
                }
                Ok(())
            }
            Verb::Console { name, .. } => check_name(name),
            // A size past UPLOAD_MAX is mgmt's to refuse (`TooLarge`), saying
            // what it takes.
            Verb::UploadBegin { image, size, .. } => {
                check_name(image)?;
                if *size == 0 {
                    return Err(DecodeError::BadField("size: an empty image"));
                }
                Ok(())
            }
            Verb::UploadPiece { bytes, .. } => {
                if bytes.is_empty() {
                    return Err(DecodeError::BadField("an empty piece"));
                }
                Ok(())
            }
            Verb::UploadEnd => Ok(()),
        }
    }

    /// The frame: COBS bytes and the 0x00, into `buf` (at least
    /// [`MAX_REQUEST`] + 1 bytes).
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], Error> {
        encode(self, buf, MAX_REQUEST)
    }
}

impl Response {
    pub fn new(seq: u32, body: Body) -> Self {
        Self { version: VERSION, seq, body }
    }

    /// Decodes and checks a response frame (as [`Request::decode`]).
    pub fn decode(frame: &mut [u8]) -> Result<Response, DecodeError> {
        let r: Response = decode_frame(frame)?;
        r.validate()?;
        Ok(r)
    }

    /// Every field in range.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match &self.body {
            Body::Done => Ok(()),
            Body::List(entries) => entries.iter().try_for_each(Entry::validate),
            Body::Info(e) => e.validate(),
            Body::Stats(s) => s.validate(),
            Body::Error(e) => e.validate(),
            Body::Console { output, taken, start, .. } => {
                if usize::from(*taken) > CONSOLE_INPUT_MAX {
                    return Err(DecodeError::BadField("taken: more than an input holds"));
                }
                if start.checked_add(output.len() as u64).is_none() {
                    return Err(DecodeError::BadField("start: output past the last offset"));
                }
                Ok(())
            }
        }
    }

    /// The frame: COBS bytes and the 0x00, into `buf` (at least
    /// [`MAX_RESPONSE`] + 1 bytes).
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], Error> {
        encode(self, buf, MAX_RESPONSE)
    }
}

impl Entry {
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_name(&self.name)?;
        check_share(Some(self.weight), Some(self.cap_percent))?;
        let guest_fields = self.guest_memory_kib != 0 || self.vcpus != 0;
        if self.kind == Kind::Domain && guest_fields {
            return Err(DecodeError::BadField("a domain with guest memory or vCPUs"));
        }
        if self.kind == Kind::Guest && self.vcpus == 0 {
            return Err(DecodeError::BadField("a guest without vCPUs"));
        }
        Ok(())
    }
}

impl Stats {
    pub fn validate(&self) -> Result<(), DecodeError> {
        let mut guests = 0;
        for u in &self.entries {
            check_name(&u.name)?;
            match u.exits.len() {
                0 => {}
                EXIT_REASONS => guests += 1,
                _ => return Err(DecodeError::BadField("exits: not one count per reason")),
            }
        }
        if guests > MAX_GUESTS {
            return Err(DecodeError::BadField("exits of more guests than there can be"));
        }
        Ok(())
    }
}

impl ControlError {
    pub fn validate(&self) -> Result<(), DecodeError> {
        match *self {
            ControlError::Kernel { code } => match Error::from_code(code) {
                Err(e) if e.code() == code => Ok(()),
                _ => Err(DecodeError::BadField("kernel error code")),
            },
            ControlError::WrongVersion { ours, theirs } if ours == theirs => {
                Err(DecodeError::BadField("a version mismatch of equal versions"))
            }
            ControlError::Truncated { have, want } if have >= want => {
                Err(DecodeError::BadField("a truncation with every byte"))
            }
            _ => Ok(()),
        }
    }

    /// The kernel's error, for `Kernel`.
    pub fn kernel_error(&self) -> Option<Error> {
        match *self {
            ControlError::Kernel { code } => Error::from_code(code).err(),
            _ => None,
        }
    }
}

/// 1 to [`NAME_MAX`] bytes (the type bounds it), printable ASCII, no space.
pub fn check_name(name: &str) -> Result<(), DecodeError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DecodeError::BadField("name"));
    }
    Ok(())
}

/// A weight of 1..=65535 and a cap of 0..=100 percent (the kernel's).
pub fn check_share(weight: Option<u16>, cap_percent: Option<u8>) -> Result<(), DecodeError> {
    if weight == Some(0) {
        return Err(DecodeError::BadField("weight"));
    }
    if cap_percent.is_some_and(|c| c > 100) {
        return Err(DecodeError::BadField("cap"));
    }
    Ok(())
}
