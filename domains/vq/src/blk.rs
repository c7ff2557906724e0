//! virtio-blk requests (virtio 1.2 §5.2.6) served from a checked chain:
//! for whichever backend serves a guest's disk queue (the blk domain, or a
//! VMM serving it from memory).
//!
//! A request is a 16-byte header the device reads (type, reserved,
//! sector), the data (device-writable for a read, device-readable for a
//! write), and a status byte the device writes, the chain's last writable
//! byte. What the guest wrote is checked: a header shorter than 16 bytes,
//! data not a whole number of sectors, or sectors past the disk's end are
//! `VIRTIO_BLK_S_IOERR` (the disk is the guest's whole view: a region of
//! a physical disk is checked against its own end, never the physical
//! one's), a write to a read-only disk is `IOERR`, an unknown type
//! `UNSUPP`. A chain with no writable byte has nowhere for a status: it
//! is completed with a used length of 0 and nothing done.

use crate::{Chain, GuestMemory};

pub const SECTOR: u64 = 512;
/// Request types.
pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;
/// Status values.
pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;
/// The bytes of a device ID (`VIRTIO_BLK_ID_BYTES`).
pub const ID_BYTES: usize = 20;
const HEADER: u64 = 16;
/// The bytes moved at a time between the disk and guest memory.
const CHUNK: usize = 4096;

/// The storage behind a guest's disk, in sectors of [`SECTOR`] bytes.
pub trait Disk {
    fn sectors(&self) -> u64;
    fn read_only(&self) -> bool;
    /// Reads `buf.len()` bytes (whole sectors) from `sector`; false on an
    /// error of the storage.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool;
    fn write(&mut self, sector: u64, data: &[u8]) -> bool;
    /// Everything written before is on the storage.
    fn flush(&mut self) -> bool;
    /// The ID the guest reads with `GET_ID`.
    fn id(&self) -> &[u8];
}

/// Serves the request in `chain`: its used length (the bytes written
/// into the chain, status included).
pub fn serve<const N: usize>(chain: &Chain<N>, mem: &impl GuestMemory, disk: &mut impl Disk) -> u32 {
    let writable = chain.writable_bytes();
    let Some(status_at) = writable.checked_sub(1) else {
        return 0;
    };
    let (status, written) = request(chain, mem, disk, status_at);
    match chain.write(mem, u64::from(status_at), &[status]) {
        Ok(1) => written + 1,
        _ => written,
    }
}

/// The status and the data bytes written of a request whose status byte
/// is at `status_at` of the writable bytes.
fn request<const N: usize>(
    chain: &Chain<N>,
    mem: &impl GuestMemory,
    disk: &mut impl Disk,
    status_at: u32,
) -> (u8, u32) {
    let mut h = [0u8; HEADER as usize];
    if chain.read(mem, 0, &mut h) != Ok(h.len()) {
        return (S_IOERR, 0);
    }
    let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let sector = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    let data = match kind {
        T_IN => u64::from(status_at),
        T_OUT => chain.readable_bytes() - HEADER,
        T_FLUSH => return (if disk.flush() { S_OK } else { S_IOERR }, 0),
        T_GET_ID => {
            let id = disk.id();
            let n = id.len().min(ID_BYTES).min(status_at as usize);
            return match chain.write(mem, 0, &id[..n]) {
                Ok(w) => (S_OK, w as u32),
                Err(_) => (S_IOERR, 0),
            };
        }
        _ => return (S_UNSUPP, 0),
    };
    // The data goes one way: nothing readable after the header of a read,
    // nothing writable but the status of a write.
    let misplaced = if kind == T_IN { chain.readable_bytes() != HEADER } else { status_at != 0 };
    let end = sector.checked_add(data / SECTOR);
    if misplaced
        || data % SECTOR != 0
        || end.is_none_or(|e| e > disk.sectors())
        || kind == T_OUT && disk.read_only()
    {
        return (S_IOERR, 0);
    }
    let mut buf = [0u8; CHUNK];
    let mut done = 0u64;
    while done < data {
        let n = (data - done).min(CHUNK as u64) as usize;
        let at = sector + done / SECTOR;
        let ok = if kind == T_IN {
            disk.read(at, &mut buf[..n]) && chain.write(mem, done, &buf[..n]) == Ok(n)
        } else {
            chain.read(mem, HEADER + done, &mut buf[..n]) == Ok(n) && disk.write(at, &buf[..n])
        };
        if !ok {
            return (S_IOERR, if kind == T_IN { done as u32 } else { 0 });
        }
        done += n as u64;
    }
    (S_OK, if kind == T_IN { data as u32 } else { 0 })
}
