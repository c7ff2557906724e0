//! `Create`'s upload: a new domain's or guest's manifest entry sent in
//! pieces (a request frame holds at most `MAX_REQUEST` bytes), put back
//! together in order and checked before anything is started.

use super::ControlError;

/// The most bytes one `Create` piece carries (with its frame's other
/// fields it stays within `MAX_REQUEST`).
pub const PIECE_MAX: usize = 96;
/// The most bytes of an entry (its manifest, postcard).
pub const ENTRY_MAX: usize = 4096;

/// The FNV-1a hash (32 bits) of `bytes`: what `Create` checks the whole
/// entry against, so that a piece lost, doubled or corrupted on the line
/// is found before it starts anything.
pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The pieces taken so far.
#[derive(Debug)]
pub struct Upload {
    buf: [u8; ENTRY_MAX],
    len: usize,
    /// The next piece expected, with the `pieces` and `sum` of piece 0;
    /// `None` when no upload is under way.
    next: Option<(u16, u16, u32)>,
}

impl Default for Upload {
    fn default() -> Self {
        Self::new()
    }
}

impl Upload {
    pub const fn new() -> Self {
        Self { buf: [0; ENTRY_MAX], len: 0, next: None }
    }

    /// Takes piece `piece` of `pieces` (checked by `Request::validate`:
    /// `piece < pieces`, not empty). Piece 0 begins a new upload, dropping
    /// any other under way; any other piece must be the next one of the
    /// upload under way, with its `pieces` and `sum`, else the upload is
    /// dropped (`OutOfOrder`). After the last: the entry if its checksum is
    /// `sum` (`BadChecksum` if not); the upload is over either way.
    pub fn push(
        &mut self,
        piece: u16,
        pieces: u16,
        sum: u32,
        bytes: &[u8],
    ) -> Result<Option<&[u8]>, ControlError> {
        if piece >= pieces || bytes.is_empty() {
            self.next = None;
            return Err(ControlError::OutOfOrder);
        }
        if piece == 0 {
            self.len = 0;
            self.next = Some((0, pieces, sum));
        }
        match self.next.take() {
            Some(expected) if expected == (piece, pieces, sum) => {}
            _ => return Err(ControlError::OutOfOrder),
        }
        let end = self.len + bytes.len();
        let Some(to) = self.buf.get_mut(self.len..end) else { return Err(ControlError::BadEntry) };
        to.copy_from_slice(bytes);
        self.len = end;
        if u32::from(piece) + 1 < u32::from(pieces) {
            self.next = Some((piece + 1, pieces, sum));
            return Ok(None);
        }
        let entry = self.buf.get(..self.len).unwrap_or_default();
        if checksum(entry) != sum {
            return Err(ControlError::BadChecksum);
        }
        Ok(Some(entry))
    }

    /// Whether an upload is under way.
    pub fn pending(&self) -> bool {
        self.next.is_some()
    }
}
