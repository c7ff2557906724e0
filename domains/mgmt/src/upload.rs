//! An image uploaded over the control channel (`ipc::control::Verb::
//! UploadBegin`, `UploadPiece`, `UploadEnd`): the checks of each step, kept
//! apart from the memory the bytes go into, which the binary handles
//! (`main.rs`'s `images`). Pieces come in order, each where the bytes so far
//! end; the end checks that every byte came and that their SHA-256 is the
//! one the upload began with.

use core::ops::Range;

use ipc::control::{ControlError, Digest, Name, UPLOAD_MAX};
use sha2::{Digest as _, Sha256};

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// An upload under way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub image: Name,
    pub size: u32,
    pub sha256: Digest,
    /// The bytes taken so far: `0..received` of the image.
    pub received: u32,
}

impl Progress {
    /// An upload of `size` bytes: 1 to `UPLOAD_MAX` (`TooLarge` if not).
    pub fn new(image: Name, size: u32, sha256: Digest) -> Result<Self, ControlError> {
        if size == 0 || size > UPLOAD_MAX {
            return Err(ControlError::TooLarge { max: UPLOAD_MAX });
        }
        Ok(Self { image, size, sha256, received: 0 })
    }

    /// Takes a piece of `len` bytes at `offset`: where in the image they go.
    /// Refused, and nothing taken, unless `offset` is where the bytes so
    /// far end (`UploadOffset`), `len` is not 0 and the piece ends within
    /// the size (`PastTheEnd`).
    pub fn piece(&mut self, offset: u32, len: usize) -> Result<Range<usize>, ControlError> {
        if offset != self.received {
            return Err(ControlError::UploadOffset { expected: self.received });
        }
        let end = u32::try_from(len).ok().and_then(|l| offset.checked_add(l));
        match end {
            Some(end) if len > 0 && end <= self.size => {
                self.received = end;
                Ok(offset as usize..end as usize)
            }
            _ => Err(ControlError::PastTheEnd { size: self.size }),
        }
    }

    /// Whether the upload is whole and `bytes` (its `size` bytes as
    /// written) are what it began with.
    pub fn end(&self, bytes: &[u8]) -> Result<(), ControlError> {
        if self.received < self.size {
            return Err(ControlError::Truncated { have: self.received, want: self.size });
        }
        if bytes.len() != self.size as usize || sha256(bytes) != self.sha256 {
            return Err(ControlError::BadChecksum);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(len: usize) -> alloc::vec::Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    fn begin(bytes: &[u8]) -> Progress {
        Progress::new(Name::try_from("up").unwrap(), bytes.len() as u32, sha256(bytes)).unwrap()
    }

    #[test]
    fn the_digest_is_sha256() {
        // FIPS 180-2's example "abc".
        let abc = sha256(b"abc");
        assert_eq!(abc[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(abc[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn pieces_in_order_make_the_image() {
        let want = image(1000);
        let mut p = begin(&want);
        let mut got = alloc::vec![0u8; want.len()];
        for (i, c) in want.chunks(112).enumerate() {
            let at = p.piece((i * 112) as u32, c.len()).unwrap();
            got[at].copy_from_slice(c);
        }
        assert_eq!(p.end(&got), Ok(()));
        assert_eq!(got, want);
    }

    #[test]
    fn a_piece_out_of_place_is_refused_and_the_upload_goes_on() {
        let want = image(300);
        let mut p = begin(&want);
        assert_eq!(p.piece(0, 100), Ok(0..100));
        assert_eq!(p.piece(0, 100), Err(ControlError::UploadOffset { expected: 100 }), "a piece again");
        assert_eq!(p.piece(200, 100), Err(ControlError::UploadOffset { expected: 100 }), "one skipped");
        assert_eq!(p.piece(100, 201), Err(ControlError::PastTheEnd { size: 300 }));
        assert_eq!(p.piece(100, 0), Err(ControlError::PastTheEnd { size: 300 }), "an empty piece");
        assert_eq!(p.received, 100, "nothing of the refused taken");
        assert_eq!(p.piece(100, 200), Ok(100..300));
        assert_eq!(p.end(&want), Ok(()));
    }

    #[test]
    fn a_truncated_or_corrupted_upload_is_refused() {
        let want = image(300);
        let mut p = begin(&want);
        p.piece(0, 299).unwrap();
        assert_eq!(p.end(&want), Err(ControlError::Truncated { have: 299, want: 300 }));
        p.piece(299, 1).unwrap();
        let mut bad = want.clone();
        bad[150] ^= 1;
        assert_eq!(p.end(&bad), Err(ControlError::BadChecksum), "one bit flipped");
        assert_eq!(p.end(&want[..299]), Err(ControlError::BadChecksum), "not its size");
        assert_eq!(p.end(&want), Ok(()));
    }

    #[test]
    fn sizes_past_the_limit_are_refused() {
        let n = || Name::try_from("up").unwrap();
        let refused = Err(ControlError::TooLarge { max: UPLOAD_MAX });
        assert_eq!(Progress::new(n(), 0, [0; 32]), refused);
        assert_eq!(Progress::new(n(), UPLOAD_MAX + 1, [0; 32]), refused);
        let mut p = Progress::new(n(), UPLOAD_MAX, [0; 32]).unwrap();
        assert_eq!(p.piece(0, usize::MAX), Err(ControlError::PastTheEnd { size: UPLOAD_MAX }), "no overflow");
    }
}
