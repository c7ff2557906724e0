//! Speaking `ipc::control` over the socket QEMU attaches to the system's
//! COM2: one request frame out, frames in until the one answering it.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ipc::control::{
    checksum, Body, ControlError, Name, Request, Response, Verb, ENTRY_MAX, MAX_REQUEST, MAX_RESPONSE,
    PIECE_MAX, UPLOAD_MAX, UPLOAD_PIECE_MAX,
};
use sha2::{Digest, Sha256};

/// What went wrong talking to the system, each said with what to do.
#[derive(Debug)]
pub enum Failure {
    NotListening {
        path: String,
        error: io::Error,
    },
    Io {
        path: String,
        error: io::Error,
    },
    NoAnswer {
        path: String,
        after: Duration,
    },
    /// The system answered with an error.
    Refused(ControlError),
    /// The system's answer was not what a request of this kind gets.
    Unexpected(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotListening { path, error } => write!(
                f,
                "no system listening on {path} ({error}): is it running? start it with `cargo xtask run` \
                 (or give its socket with --connect PATH)"
            ),
            Failure::Io { path, error } => write!(f, "talking to the system on {path} failed: {error}"),
            Failure::NoAnswer { path, after } => write!(
                f,
                "no answer from the system on {path} within {} s: is it still booting, paused in a debugger \
                 or stopped? try again, or raise --timeout",
                after.as_secs()
            ),
            Failure::Refused(e) => write!(f, "{}", crate::show::refusal(e)),
            Failure::Unexpected(what) => write!(f, "the system answered oddly: {what}"),
        }
    }
}

pub struct Client {
    stream: UnixStream,
    path: String,
    timeout: Duration,
    seq: u32,
    /// Bytes read past the last frame.
    pending: Vec<u8>,
}

impl Client {
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, Failure> {
        let shown = path.display().to_string();
        let stream = UnixStream::connect(path)
            .map_err(|error| Failure::NotListening { path: shown.clone(), error })?;
        // A process id and the time make this client's numbers unlike a
        // previous one's, whose late answers may still be on the line.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = std::process::id().rotate_left(16) ^ now.subsec_nanos();
        let seq = seed.max(1);
        Ok(Self { stream, path: shown, timeout, seq, pending: Vec::new() })
    }

    /// Sends `verb` and returns the answer's body (an error body as
    /// [`Failure::Refused`]).
    pub fn call(&mut self, verb: Verb) -> Result<Body, Failure> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let req = Request::new(self.seq, verb);
        let mut buf = [0u8; MAX_REQUEST + 2];
        // A lone 0x00 first ends whatever partial frame the line holds.
        buf[0] = 0;
        let n = req
            .encode(&mut buf[1..])
            .map_err(|e| Failure::Unexpected(format!("cannot encode: {e:?}")))?
            .len();
        let io = |error| Failure::Io { path: self.path.clone(), error };
        self.stream.write_all(&buf[..n + 1]).map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let mut frame = self.frame(deadline)?;
            match Response::decode(&mut frame) {
                Ok(r) if r.seq == self.seq => {
                    return match r.body {
                        Body::Error(e) => Err(Failure::Refused(e)),
                        body => Ok(body),
                    }
                }
                // Another request's answer, or a frame broken on the way:
                // not ours.
                Ok(_) | Err(_) => continue,
            }
        }
    }

    /// The next frame from the line (without its 0x00).
    fn frame(&mut self, deadline: Instant) -> Result<Vec<u8>, Failure> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == 0) {
                let frame: Vec<u8> = self.pending.drain(..=end).take(end).collect();
                if !frame.is_empty() && frame.len() <= MAX_RESPONSE {
                    return Ok(frame);
                }
                continue;
            }
            if self.pending.len() > MAX_RESPONSE {
                // No frame is this long: what was read is not one.
                self.pending.clear();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::NoAnswer { path: self.path.clone(), after: self.timeout });
            }
            let io = |error| Failure::Io { path: self.path.clone(), error };
            self.stream.set_read_timeout(Some(left)).map_err(io)?;
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(Failure::Io {
                        path: self.path.clone(),
                        error: io::Error::new(io::ErrorKind::UnexpectedEof, "the system closed the line"),
                    })
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(Failure::Io { path: self.path.clone(), error }),
            }
        }
    }
}

/// The `Create` pieces of `entry` (a one-entry manifest, postcard), in
/// order, each of at most `PIECE_MAX` bytes and with the whole's checksum.
pub fn pieces(entry: &[u8]) -> Result<Vec<Verb>, Failure> {
    if entry.is_empty() || entry.len() > ENTRY_MAX {
        return Err(Failure::Unexpected(format!(
            "the entry is {} bytes encoded; the system takes 1 to {ENTRY_MAX}",
            entry.len()
        )));
    }
    let (n, sum) = (entry.len().div_ceil(PIECE_MAX) as u16, checksum(entry));
    Ok(entry
        .chunks(PIECE_MAX)
        .enumerate()
        .map(|(i, c)| Verb::Create { piece: i as u16, pieces: n, sum, bytes: c.iter().copied().collect() })
        .collect())
}

/// Sends `entry` to be started: each piece must be taken before the next
/// is sent; the last one's answer says whether it started.
pub fn create(c: &mut Client, entry: &[u8]) -> Result<(), Failure> {
    for p in pieces(entry)? {
        match c.call(p)? {
            Body::Done => {}
            other => return Err(Failure::Unexpected(format!("{other:?} for a piece of a create"))),
        }
    }
    Ok(())
}

/// The requests that upload `bytes` as the image `image`: its beginning
/// (size and SHA-256), its pieces in order, each of at most
/// `UPLOAD_PIECE_MAX` bytes, and its end.
pub fn upload_verbs(image: &Name, bytes: &[u8]) -> Result<Vec<Verb>, Failure> {
    let size = u32::try_from(bytes.len()).ok().filter(|&n| n > 0 && n <= UPLOAD_MAX).ok_or_else(|| {
        Failure::Unexpected(format!(
            "the image is {} bytes; the system takes 1 to {UPLOAD_MAX} bytes",
            bytes.len()
        ))
    })?;
    let sha256: [u8; 32] = Sha256::digest(bytes).into();
    let mut verbs = vec![Verb::UploadBegin { image: image.clone(), size, sha256 }];
    for (i, c) in bytes.chunks(UPLOAD_PIECE_MAX).enumerate() {
        let offset = (i * UPLOAD_PIECE_MAX) as u32;
        verbs.push(Verb::UploadPiece { offset, bytes: c.iter().copied().collect() });
    }
    verbs.push(Verb::UploadEnd);
    Ok(verbs)
}

/// Uploads `bytes` as the image `image`, each request answered before the
/// next is sent; the end's answer says whether it was kept.
pub fn upload(c: &mut Client, image: &Name, bytes: &[u8]) -> Result<(), Failure> {
    for v in upload_verbs(image, bytes)? {
        match c.call(v)? {
            Body::Done => {}
            other => return Err(Failure::Unexpected(format!("{other:?} for a piece of an upload"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_its_beginning_its_pieces_in_order_and_its_end() {
        let image: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
        let verbs = upload_verbs(&Name::try_from("up").unwrap(), &image).unwrap();
        assert_eq!(verbs.len(), 1 + image.len().div_ceil(UPLOAD_PIECE_MAX) + 1);
        let Verb::UploadBegin { size, sha256, .. } = &verbs[0] else { panic!("{:?}", verbs[0]) };
        assert_eq!(*size as usize, image.len());
        let mut got = Vec::new();
        for v in &verbs[1..verbs.len() - 1] {
            let Verb::UploadPiece { offset, bytes } = v else { panic!("{v:?}") };
            assert_eq!(*offset as usize, got.len(), "in order");
            got.extend_from_slice(bytes);
        }
        assert_eq!(got, image);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&got)), *sha256);
        assert_eq!(verbs.last(), Some(&Verb::UploadEnd));
        // Each fits a request frame, with the largest sequence number.
        let mut buf = [0u8; MAX_REQUEST + 1];
        let last = Verb::UploadPiece { offset: UPLOAD_MAX - 1, bytes: [0xff; UPLOAD_PIECE_MAX].into() };
        for v in verbs.iter().chain([&last]) {
            assert!(Request::new(u32::MAX, v.clone()).encode(&mut buf).is_ok(), "{v:?}");
        }
        assert!(upload_verbs(&Name::try_from("up").unwrap(), &[]).is_err());
    }

    #[test]
    fn pieces_put_back_together_are_the_entry() {
        let entry: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let all = pieces(&entry).unwrap();
        assert_eq!(all.len(), 11);
        let mut u = ipc::control::Upload::new();
        let mut got = None;
        for p in &all {
            let Verb::Create { piece, pieces, sum, bytes } = p else { panic!() };
            got = u.push(*piece, *pieces, *sum, bytes).unwrap().map(<[u8]>::to_vec);
        }
        assert_eq!(got, Some(entry));
        assert!(pieces(&[]).is_err());
        assert!(pieces(&[0; ENTRY_MAX + 1]).is_err());
    }
}
