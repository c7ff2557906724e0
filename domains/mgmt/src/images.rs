//! `ryokan upload`: an image sent over the control channel in pieces, into
//! memory set aside at its beginning, checked whole at its end
//! (`mgmt::upload`), then kept for `create` to name as it names the boot
//! image's modules (`crate::modules`).
//!
//! The memory is owned by a domain made for the upload alone (a holder,
//! which runs nothing) from `mgmt`'s own quota: a memory object lives as
//! long as its owner, so destroying the holder is what frees all of an
//! upload dropped (truncated, corrupted, or given up for another), and the
//! quota comes back. One upload is under way at a time; other requests may
//! come between its pieces.

use ipc::control::{ControlError, Digest, Name};
use ipc::{CapSlot, Error, Rights};
use mgmt::plan::ModuleName;
use mgmt::upload::Progress;
use user::start::MODULE_PREFIX;
use user::{layout, sys};

use crate::modules::Uploaded;
use crate::supervise::Supervisor;

/// Pages a holder has beyond its image's, for what the kernel charges a
/// domain (its tables).
const HOLDER_SLACK: u64 = 8;
/// The most images uploaded over a run.
pub const MAX_UPLOADS: usize = 16;

/// An upload under way.
pub struct Pending {
    progress: Progress,
    cap: ModuleName,
    holder: CapSlot,
    memory: CapSlot,
    /// Where the memory is mapped into `mgmt`, writable.
    va: u64,
}

impl Pending {
    /// The image's bytes as written so far (and the rest zero).
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the memory (at least `size` bytes) is mapped read-write
        // at `va` while the upload is under way, and nothing else maps it
        // or can: its owner runs nothing, and no capability to it was given
        // away; `&mut self` makes this borrow the only one.
        unsafe { core::slice::from_raw_parts_mut(self.va as *mut u8, self.progress.size as usize) }
    }
}

fn no_memory(e: Error) -> ControlError {
    log::info!("control: no memory for an upload: {e:?}");
    ControlError::NoMemory
}

impl Supervisor {
    pub(crate) fn upload_begin(
        &mut self,
        image: &Name,
        size: u32,
        sha256: Digest,
    ) -> Result<(), ControlError> {
        self.drop_upload("another began");
        let progress = Progress::new(image.clone(), size, sha256)?;
        let mut cap = ModuleName::new();
        cap.push_str(MODULE_PREFIX)
            .and_then(|()| cap.push_str(image))
            .map_err(|_| ControlError::Malformed)?;
        if self.env.modules.image(&cap).is_some() {
            return Err(ControlError::NameInUse);
        }
        if self.env.modules.uploads() >= MAX_UPLOADS {
            return Err(ControlError::NoMemory);
        }
        let pages = layout::pages(u64::from(size));
        let (holder, _) = sys::domain_create(pages + HOLDER_SLACK).map_err(no_memory)?;
        let this = self.env.modules.this();
        let va = self.env.modules.reserve(pages * layout::PAGE);
        let made = sys::memory_create(holder, pages).and_then(|memory| {
            sys::memory_map(memory, this, va, Rights::READ | Rights::WRITE).map(|()| memory)
        });
        let memory = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = sys::domain_destroy(holder);
                let _ = sys::cap_delete(holder);
                self.env.modules.unreserve(va, pages * layout::PAGE);
                return Err(no_memory(e));
            }
        };
        log::info!("control: uploading {image} ({size} bytes)");
        self.image_upload = Some(Pending { progress, cap, holder, memory, va });
        Ok(())
    }

    pub(crate) fn upload_piece(&mut self, offset: u32, bytes: &[u8]) -> Result<(), ControlError> {
        let p = self.image_upload.as_mut().ok_or(ControlError::NotUploading)?;
        let size = p.progress.size;
        let at = p.progress.piece(offset, bytes.len())?;
        let dst = p.bytes().get_mut(at).ok_or(ControlError::PastTheEnd { size })?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    pub(crate) fn upload_end(&mut self) -> Result<(), ControlError> {
        let mut p = self.image_upload.take().ok_or(ControlError::NotUploading)?;
        let progress = p.progress.clone();
        if let Err(e) = progress.end(p.bytes()) {
            log::info!("control: upload of {} refused: {e:?}", p.progress.image);
            self.free(p);
            return Err(e);
        }
        let this = self.env.modules.this();
        // SAFETY: nothing of `mgmt` holds a reference into the mapping:
        // `bytes` borrows end with their calls.
        let remapped = unsafe { sys::memory_unmap(p.memory, this, p.va) }
            .and_then(|()| sys::memory_map(p.memory, this, p.va, Rights::READ));
        if let Err(e) = remapped {
            log::warn!("warning: control: upload of {}: cannot map it read-only: {e:?}", p.progress.image);
            self.free(p);
            return Err(ControlError::NoMemory);
        }
        // SAFETY: mapped read-only at `va` (its `size` bytes) for the rest of
        // mgmt's life, never unmapped; no one can write it: its owner runs
        // nothing, and only READ copies are given (to VMMs).
        let bytes: &'static [u8] =
            unsafe { core::slice::from_raw_parts(p.va as *const u8, p.progress.size as usize) };
        let d = &p.progress.sha256;
        log::info!(
            "control: uploaded {}: {} bytes, sha256 {:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}...",
            p.progress.image,
            bytes.len(),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7]
        );
        self.env.modules.add(Uploaded { cap: p.cap, memory: p.memory, bytes });
        Ok(())
    }

    /// Drops the upload under way, if any, saying `why`.
    pub(crate) fn drop_upload(&mut self, why: &str) {
        if let Some(p) = self.image_upload.take() {
            log::info!(
                "control: upload of {} dropped ({} of {} bytes): {why}",
                p.progress.image,
                p.progress.received,
                p.progress.size
            );
            self.free(p);
        }
    }

    /// Frees all of an upload: its holder destroyed, its memory with it
    /// (and so its mapping in `mgmt`, whose addresses the next may take).
    fn free(&mut self, p: Pending) {
        if let Err(e) = sys::domain_destroy(p.holder) {
            log::warn!("warning: control: cannot free the upload of {}: {e:?}", p.progress.image);
        }
        let _ = sys::cap_delete(p.memory);
        let _ = sys::cap_delete(p.holder);
        self.env.modules.unreserve(p.va, layout::pages(u64::from(p.progress.size)) * layout::PAGE);
    }
}
