//! COBS framing of the control protocol: encoding a message into one
//! frame, and cutting a byte stream (a serial line) into frames.

use serde::Serialize;

use crate::error::Error;

/// Encodes `msg` as postcard, then COBS, then the 0x00 that ends the frame,
/// into `buf`; `Malformed` if the frame (without its 0x00) would be longer
/// than `max`, or `buf` too small.
pub fn encode<'b, T: Serialize>(msg: &T, buf: &'b mut [u8], max: usize) -> Result<&'b mut [u8], Error> {
    let frame = postcard::to_slice_cobs(msg, buf).map_err(|_| Error::Malformed)?;
    if frame.len() > max + 1 {
        return Err(Error::Malformed);
    }
    Ok(frame)
}

/// What a byte completed.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A whole frame: its COBS bytes, without the 0x00 (decode it in place).
    Frame(&'a mut [u8]),
    /// A frame longer than the buffer ended here; its bytes were dropped.
    TooLong,
}

/// Cuts a stream into frames of at most `N` bytes, one byte at a time (so a
/// serial receiver needs no buffer of its own). Bytes past `N` are dropped
/// until the frame's 0x00, which then reports [`FrameEvent::TooLong`] once;
/// empty frames (0x00 after 0x00) report nothing.
#[derive(Debug)]
pub struct Framer<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> Default for Framer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Framer<N> {
    pub const fn new() -> Self {
        Self { buf: [0; N], len: 0, overflowed: false }
    }

    /// Takes one byte of the stream.
    pub fn push(&mut self, byte: u8) -> Option<FrameEvent<'_>> {
        if byte != 0 {
            match self.buf.get_mut(self.len) {
                Some(b) if !self.overflowed => {
                    *b = byte;
                    self.len += 1;
                }
                _ => self.overflowed = true,
            }
            return None;
        }
        let (len, overflowed) = (self.len, self.overflowed);
        self.len = 0;
        self.overflowed = false;
        if overflowed {
            return Some(FrameEvent::TooLong);
        }
        if len == 0 {
            return None;
        }
        self.buf.get_mut(..len).map(FrameEvent::Frame)
    }

    /// Bytes of an unfinished frame held.
    pub fn pending(&self) -> usize {
        self.len
    }
}
