//! What `net-client` and `net-bench` share as clients of the frame service
//! (`ipc::net`, served by `net`): attaching to the region and doorbells
//! `mgmt` gives a client.

use ipc::net::{EVENTS_AT, REGION_BYTES, RING};
use ipc::ring::{Consumer, Producer, Region};
use samples::link::Bells;
use user::{Caps, StartInfo};

/// A client's end of the frame service.
pub struct Link {
    /// The request ring, ours to fill.
    pub tx: Producer<'static>,
    /// The event ring (answers and frames received), ours to read.
    pub rx: Consumer<'static>,
    pub bells: Bells,
}

/// Attaches to the region `net-client` and the doorbells
/// `notification:net-client-ans` (ours) and `notification:net-req`
/// (`net`'s), checking the region's size and both rings' headers; with
/// the region's first byte (its request ring's producer index).
pub fn attach(start: &StartInfo) -> Result<(Link, *mut u8), &'static str> {
    let shared = start.shared("net-client").ok_or("no region for the frame service")?;
    if (shared.len as usize) < REGION_BYTES {
        return Err("the frame service's region is too small");
    }
    let bells = Bells {
        mine: start.slot("notification:net-client-ans").ok_or("no doorbell of our own")?,
        peer: start.slot("notification:net-req").ok_or("no notification:net-req")?,
    };
    let base = shared.va as *mut u8;
    // SAFETY: mgmt maps the region read-write for our life; these two
    // rings, each in its own part, are all that use it.
    let (req, ev) = unsafe {
        (Region::from_raw(base, EVENTS_AT), Region::from_raw(base.add(EVENTS_AT), REGION_BYTES - EVENTS_AT))
    };
    let tx = Producer::new(req.map_err(|_| "the request ring")?, RING).map_err(|_| "the request ring")?;
    let rx = Consumer::new(ev.map_err(|_| "the event ring")?, RING).map_err(|_| "the event ring")?;
    Ok((Link { tx, rx, bells }, base))
}
