//! What `net` and `net-client` share as `smoltcp` stations: a device over
//! anything that takes and puts whole Ethernet frames (`Frames`: the
//! virtio-net function for `net`, the frame service for `net-client`),
//! the TSC as `smoltcp`'s clock, and a MAC address in words.

use core::fmt;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;

/// The largest frame sent or received (no VLAN tag, no checksum).
pub const MTU: usize = ipc::net::MAX_FRAME;

/// Whole frames in and out.
pub trait Frames {
    /// The next frame received, copied into `out`: its length.
    fn take(&mut self, out: &mut [u8; MTU]) -> Option<usize>;
    /// Sends one frame (one the sender refuses is counted there).
    fn put(&mut self, frame: &[u8]);
}

/// `F` as a `smoltcp` device.
pub struct Station<'a, F>(pub &'a mut F);

pub struct Rx {
    frame: [u8; MTU],
    len: usize,
}

pub struct Tx<'a, F>(&'a mut F);

impl RxToken for Rx {
    fn consume<R, G: FnOnce(&[u8]) -> R>(self, f: G) -> R {
        f(&self.frame[..self.len])
    }
}

impl<F: Frames> TxToken for Tx<'_, F> {
    fn consume<R, G: FnOnce(&mut [u8]) -> R>(self, len: usize, f: G) -> R {
        let mut frame = [0u8; MTU];
        let len = len.min(MTU);
        let r = f(&mut frame[..len]);
        self.0.put(&frame[..len]);
        r
    }
}

impl<F: Frames> Device for Station<'_, F> {
    type RxToken<'a>
        = Rx
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a, F>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_, F>)> {
        let mut frame = [0u8; MTU];
        let len = self.0.take(&mut frame)?;
        Some((Rx { frame, len }, Tx(&mut *self.0)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_, F>> {
        Some(Tx(&mut *self.0))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(1);
        caps
    }
}

/// The TSC as `smoltcp`'s clock.
pub fn now() -> Instant {
    let per_us = (user::time::tsc_per_ms() / 1000).max(1);
    Instant::from_micros((user::time::now() / per_us) as i64)
}

/// A MAC address as `52:54:00:12:34:56`.
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}
