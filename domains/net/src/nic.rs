//! The virtio-net function as `Frames` for `smoltcp`: receive buffers lent to
//! the device for good (carved from the DMA memory by
//! `ryokan_virtio::hal::buffer`, so never bounced), each given back to its
//! queue as soon as its frame is copied out; a frame to send goes through
//! the driver's blocking `send`. A frame the device says is longer than
//! its buffer, or shorter than its header, is dropped and counted.

use virtio_drivers::device::net::VirtIONetRaw;

use crate::station::{Frames, MTU};

use ryokan_virtio::hal::Dma;

/// The queue size, and the receive buffers kept lent to the device.
pub const QUEUE: usize = 16;
const RX_BUFFERS: usize = 8;
/// A receive buffer: a virtio-net header and an Ethernet frame (1514).
const RX_BYTES: usize = 2048;

pub type Driver = VirtIONetRaw<Dma, ryokan_virtio::Transport, QUEUE>;

pub struct Nic {
    net: Driver,
    rx: [(&'static mut [u8], u16); RX_BUFFERS],
    /// Frames dropped: bad lengths from the device, or sends it refused.
    pub dropped: u64,
    /// The device used a receive descriptor not lent: nothing more is
    /// received (said once).
    broken: bool,
    /// The frame service's client, once it is served: given the frames
    /// that are its own (only those to its address are not also ours).
    pub client: Option<crate::frames::Client>,
}

impl Nic {
    /// Lends the receive buffers to the device.
    pub fn new(mut net: Driver) -> Result<Self, &'static str> {
        let all =
            ryokan_virtio::hal::buffer(RX_BUFFERS * RX_BYTES).ok_or("no DMA memory for receive buffers")?;
        let mut chunks = all.chunks_exact_mut(RX_BYTES);
        let mut rx = [const { None }; RX_BUFFERS];
        for slot in rx.iter_mut() {
            let buf = chunks.next().ok_or("receive buffers")?;
            // SAFETY: `buf` lies in DMA memory lent to the device for good;
            // nothing here touches it until its token is used.
            let token = unsafe { net.receive_begin(buf) }.map_err(|_| "lending a receive buffer")?;
            *slot = Some((buf, token));
        }
        let rx = rx.map(|s| s.unwrap_or((&mut [][..], u16::MAX)));
        Ok(Nic { net, rx, dropped: 0, broken: false, client: None })
    }

    /// Reads the device's ISR status, which lowers its INTx line.
    pub fn ack_interrupt(&mut self) {
        let _ = self.net.ack_interrupt();
    }

    pub fn mac(&self) -> [u8; 6] {
        self.net.mac_address()
    }

    /// Whether the device has given back a buffer with a frame.
    pub fn has_frame(&self) -> bool {
        !self.broken && self.net.poll_receive().is_some()
    }

    /// The next received frame, copied out into `frame`: its length; the
    /// buffer is lent again at once.
    fn next_frame(&mut self, frame: &mut [u8; MTU]) -> Option<usize> {
        loop {
            if self.broken {
                return None;
            }
            let token = self.net.poll_receive()?;
            let Some(i) = self.rx.iter().position(|(_, t)| *t == token) else {
                // A token that names no buffer of ours: the device broke
                // its queue. Nothing can be given back; stop receiving.
                log::info!("net: FAIL: the device used receive descriptor {token}, not one lent");
                self.broken = true;
                return None;
            };
            let (buf, _) = &mut self.rx[i];
            // SAFETY: `buf` is the buffer lent with `token`.
            let got = unsafe { self.net.receive_complete(token, buf) };
            let len = match got {
                Ok((hdr, len)) if len <= MTU && hdr + len <= buf.len() => {
                    frame[..len].copy_from_slice(&buf[hdr..hdr + len]);
                    Some(len)
                }
                _ => None,
            };
            // SAFETY: as in `new`: the buffer is lent again, untouched here
            // until its new token is used.
            match unsafe { self.net.receive_begin(buf) } {
                Ok(t) => self.rx[i].1 = t,
                Err(_) => {
                    log::info!("net: FAIL: a receive buffer could not be lent again");
                    self.rx[i].1 = u16::MAX;
                }
            }
            let Some(n) = len else {
                self.dropped += 1;
                continue;
            };
            if let Some(c) = self.client.as_mut().filter(|c| c.wants(&frame[..n])) {
                c.offer(&frame[..n]);
                if frame[..6] == c.mac {
                    continue; // the client's alone
                }
            }
            return Some(n);
        }
    }
}

impl Nic {
    /// Sends one frame (its header added by the driver), waiting for the
    /// device to take it.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), ()> {
        self.net.send(frame).map_err(|_| self.dropped += 1)
    }
}

impl Frames for Nic {
    fn take(&mut self, out: &mut [u8; MTU]) -> Option<usize> {
        self.next_frame(out)
    }

    fn put(&mut self, frame: &[u8]) {
        let _ = self.send(frame);
    }
}
