//! Making the guest: the guest domain and its CPU share, its RAM (mapped
//! into it and into the VMM), the kernel's segments, its modules and the
//! Multiboot information loaded into that RAM (a command line asking for a fixed
//! time is told the TSC's rate: [`vmm::info::with_tsc_khz`]), the exit endpoint, and the vCPU,
//! which starts running at once, on the VMM's CPU.

use core::fmt;

use ipc::guest::{GuestConfig, DEFAULT_WEIGHT, MAX_GUEST_MODULES};
use ipc::{CapSlot, Error, Rights};
use user::sys;
use vmm::info::{self, INFO_GPA};
use vmm::multiboot::{self, ImageError, Kernel};
use vmm::platform::DOORBELL_PORT;
use vmm::ram::{self, PAGE, RAM_START, RAM_VA};

/// A running guest.
pub struct Guest {
    pub domain: CapSlot,
    /// The endpoint its vCPUs' exits arrive on.
    pub exits: CapSlot,
    /// Its first vCPU (a thread capability).
    pub vcpu0: CapSlot,
    /// The notification its vCPUs' APIC timers signal (bit i: vCPU i).
    pub timers: CapSlot,
    /// Its RAM, as the VMM has it mapped.
    pub ram: Ram,
}

/// Why the guest could not be made.
pub enum SetupError {
    Image(ImageError),
    Modules(info::ModulesTooBig),
    Sys { what: &'static str, error: Error },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Image(e) => write!(f, "the kernel image is refused: {e}"),
            SetupError::Modules(e) => write!(f, "{e}"),
            SetupError::Sys { what, error } => write!(f, "{what} failed: {error:?}"),
        }
    }
}

fn failed(what: &'static str) -> impl FnOnce(Error) -> SetupError {
    move |error| SetupError::Sys { what, error }
}

/// Checks the kernel `file` and that `modules` fit beside it, makes the
/// guest of `config` and starts it.
pub fn boot(
    this: CapSlot,
    config: &GuestConfig,
    file: &[u8],
    modules: &[&[u8]],
) -> Result<Guest, SetupError> {
    let ram_end = u64::from(config.memory_kib) * 1024;
    let kernel = multiboot::check(file, RAM_START..ram_end).map_err(SetupError::Image)?;
    let kernel_end = kernel.segments.iter().map(|s| s.vaddr + s.memsz).max().unwrap_or(0);
    let sizes: heapless::Vec<u64, MAX_GUEST_MODULES> = modules.iter().map(|m| m.len() as u64).collect();
    let places = info::place_modules(kernel_end, &sizes, ram_end).map_err(SetupError::Modules)?;
    let mut told: heapless::Vec<info::Module<'_>, MAX_GUEST_MODULES> = heapless::Vec::new();
    for (at, string) in places.iter().zip(&config.modules) {
        let _ = told.push(info::Module { at: at.clone(), string });
    }
    let quota = ram::guest_quota_pages(ram_end, u64::from(config.vcpus));
    let (domain, _) = sys::guest_create(quota).map_err(failed("creating the guest"))?;
    match build(this, domain, config, (&kernel, file), (modules, &told)) {
        Ok((exits, vcpu0, timers)) => Ok(Guest { domain, exits, vcpu0, timers, ram: Ram { end: ram_end } }),
        Err(e) => {
            // Everything made so far belongs to the guest, or is harmless.
            let _ = sys::domain_destroy(domain);
            Err(e)
        }
    }
}

fn build(
    this: CapSlot,
    domain: CapSlot,
    config: &GuestConfig,
    (kernel, file): (&Kernel, &[u8]),
    (modules, told): (&[&[u8]], &[info::Module<'_>]),
) -> Result<(CapSlot, CapSlot, CapSlot), SetupError> {
    if (config.weight, config.cap_percent) != (DEFAULT_WEIGHT, 0) {
        sys::sched_set(domain, config.weight, config.cap_percent).map_err(failed("setting its CPU share"))?;
    }
    let ram_end = u64::from(config.memory_kib) * 1024;
    let rw = Rights::READ | Rights::WRITE;
    for chunk in ram::chunks(ram_end) {
        let mem =
            sys::memory_create(domain, (chunk.end - chunk.start) / PAGE).map_err(failed("making its RAM"))?;
        sys::memory_map(mem, domain, chunk.start, rw).map_err(failed("mapping its RAM into it"))?;
        sys::memory_map(mem, this, RAM_VA + chunk.start, rw)
            .map_err(failed("mapping its RAM into the VMM"))?;
    }
    let ram = Ram { end: ram_end };
    for seg in &kernel.segments {
        // multiboot::check made sure the bytes are in the file.
        let bytes = usize::try_from(seg.offset)
            .ok()
            .and_then(|o| file.get(o..o.checked_add(usize::try_from(seg.filesz).ok()?)?));
        let bytes =
            bytes.ok_or(SetupError::Image(ImageError::Elf(ipc::elf::ElfError::SegmentOutsideFile)))?;
        ram.write(seg.vaddr, bytes).map_err(failed("loading the kernel"))?;
    }
    for (bytes, m) in modules.iter().zip(told) {
        ram.write(m.at.start, bytes).map_err(failed("loading a module"))?;
    }
    let mut page = [0u8; PAGE as usize];
    let cmdline = info::with_tsc_khz(&config.cmdline, user::time::tsc_per_ms());
    let ebx = info::build(&mut page, ram_end, &cmdline, told);
    ram.write(INFO_GPA, &page).map_err(failed("writing the Multiboot information"))?;
    let exits = sys::endpoint_create(this).map_err(failed("making the exit endpoint"))?;
    let bell = sys::notification_create(this).map_err(failed("making the doorbell notification"))?;
    sys::doorbell_create(domain, DOORBELL_PORT, bell, 1).map_err(failed("making the doorbell"))?;
    // The vCPU starts on this thread's CPU (where mgmt put it: the guest's
    // `cpu`, if it has one), so that an exit and its reply switch directly.
    let timers = sys::notification_create(this).map_err(failed("making the timer notification"))?;
    let vcpu0 =
        sys::vcpu_create(domain, exits, kernel.entry, u64::from(ebx)).map_err(failed("making the vCPU"))?;
    Ok((exits, vcpu0, timers))
}

/// Guest RAM as the VMM sees it: mapped read-write at `RAM_VA + gpa` for
/// every gpa in `[RAM_START, end)`.
pub struct Ram {
    end: u64,
}

/// What the MMIO decoder reads: the guest's page tables and instructions.
impl vmm::mmio::GuestMemory for Ram {
    /// Byte by byte with volatile reads (the guest may change its RAM at
    /// any time; what is read is then only checked, never trusted); false
    /// for anything outside the RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        if gpa.checked_add(buf.len() as u64).is_none_or(|end| end > self.end) {
            return false;
        }
        let base = (RAM_VA + gpa) as *const u8;
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: [gpa, end) lies in [RAM_START, self.end), which `build`
            // mapped at RAM_VA + gpa for the VMM's life; it is guest memory,
            // never a Rust object, so a volatile byte read aliases nothing.
            *b = unsafe { base.add(i).read_volatile() };
        }
        true
    }
}

impl Ram {
    /// Copies `bytes` to guest-physical `gpa`, byte by byte with volatile
    /// writes (the guest may run and change its RAM at any time).
    fn write(&self, gpa: u64, bytes: &[u8]) -> Result<(), Error> {
        let end = gpa.checked_add(bytes.len() as u64).ok_or(Error::InvalidArgument)?;
        if end > self.end {
            return Err(Error::InvalidArgument);
        }
        let base = (RAM_VA + gpa) as *mut u8;
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: [gpa, end) lies in [RAM_START, self.end), which `build`
            // mapped read-write at RAM_VA + gpa for the VMM's life; it is
            // guest memory, never a Rust object, so a volatile byte write
            // cannot break any reference.
            unsafe { base.add(i).write_volatile(b) };
        }
        Ok(())
    }
}
