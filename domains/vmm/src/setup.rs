//! Making the guest: the guest domain and its CPU share, its RAM (mapped
//! into it and into the VMM), its kernel loaded into that RAM, the exit
//! endpoint, and the vCPU, which starts running at once, on the VMM's CPU.
//!
//! A Multiboot kernel gets its segments, its modules and the Multiboot
//! information (a command line asking for a fixed time is told the TSC's
//! rate: [`vmm::info::with_tsc_khz`]). A Linux bzImage gets what
//! [`vmm::linux::plan`] works out: the kernel, the initrd (the guest's one
//! module), the ACPI tables, the zero page and command line, and the stub
//! its vCPU starts in.

use core::fmt;

use ipc::guest::{GuestConfig, DEFAULT_WEIGHT, MAX_GUEST_MODULES};
use ipc::{CapSlot, Error, Rights};
use user::sys;
use vmm::info::{self, INFO_GPA};
use vmm::kernel::{KernelError, KernelFile};
use vmm::linux::{self, LinuxError};
use vmm::multiboot::{ImageError, Kernel};
use vmm::platform::DOORBELL_PORT;
use vmm::ram::{self, PAGE, RAM_VA};

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
    /// The wall-clock time its CMOS clock starts from (`mgmt`'s reading).
    pub wall: Option<ipc::guest::WallClock>,
    /// The TSC just before its first vCPU was made (and could first run).
    pub entry_tsc: u64,
    /// The notification its doorbell signals.
    pub bell: CapSlot,
    /// The capabilities made for this boot alone (its RAM's memory
    /// objects, its doorbell), deleted with it ([`Guest::destroy`]).
    made: heapless::Vec<CapSlot, MADE_MAX>,
}

/// At most 3 GiB of RAM in 64 MiB chunks, and the doorbell.
const MADE_MAX: usize = 49;

impl Guest {
    /// Destroys the guest's domain (all it owns: its vCPUs, wherever they
    /// run, RAM, tables, doorbell) and deletes the VMM's capabilities to
    /// what went with it; the exit endpoint, the doorbell's and the
    /// timers' notifications stay, for a next boot ([`boot`]'s `kept`).
    pub fn destroy(&self) -> Result<(), Error> {
        let destroyed = sys::domain_destroy(self.domain);
        for &slot in self.made.iter().chain([&self.domain, &self.vcpu0]) {
            let _ = sys::cap_delete(slot);
        }
        destroyed
    }
}

/// Why the guest could not be made.
pub enum SetupError {
    Image(ImageError),
    Kernel(KernelError),
    Linux(LinuxError),
    /// A Linux guest takes one module, its initrd.
    LinuxModules(usize),
    Modules(info::ModulesTooBig),
    Sys {
        what: &'static str,
        error: Error,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Image(e) => write!(f, "the kernel image is refused: {e}"),
            SetupError::Kernel(e) => write!(f, "the kernel image is refused: {e}"),
            SetupError::Linux(e) => write!(f, "the Linux kernel cannot be booted: {e}"),
            SetupError::LinuxModules(n) => {
                write!(f, "{n} modules given: a Linux guest takes one, its initrd")
            }
            SetupError::Modules(e) => write!(f, "{e}"),
            SetupError::Sys { what, error } => write!(f, "{what} failed: {error:?}"),
        }
    }
}

fn failed(what: &'static str) -> impl FnOnce(Error) -> SetupError {
    move |error| SetupError::Sys { what, error }
}

/// What is loaded into the guest's RAM, and where its first vCPU starts.
/// (Made once per boot, on the stack, and never stored in bulk: the Linux
/// variant's zero page and command line cost nothing worth a heap.)
#[allow(clippy::large_enum_variant)]
enum Load<'a> {
    Multiboot { kernel: Kernel, file: &'a [u8], modules: &'a [&'a [u8]], told: Told<'a> },
    Linux { boot: linux::Boot, kernel: &'a [u8], initrd: Option<&'a [u8]> },
}

type Told<'a> = heapless::Vec<info::Module<'a>, MAX_GUEST_MODULES>;

/// Checks the kernel `file` and that `modules` fit beside it, makes the
/// guest of `config` and starts it; its exits on the endpoint and its
/// doorbell on the notification `kept` names (a reboot's, those of the
/// boot before), else on new ones.
pub fn boot<'a>(
    this: CapSlot,
    config: &'a GuestConfig,
    file: &'a [u8],
    modules: &'a [&'a [u8]],
    timers: Option<CapSlot>,
    kept: Option<(CapSlot, CapSlot)>,
) -> Result<Guest, SetupError> {
    let ram_end = u64::from(config.memory_kib) * 1024;
    let load = match vmm::kernel::identify(file, ram_end) {
        Ok(KernelFile::Multiboot(kernel)) => {
            let kernel_end = kernel.segments.iter().map(|s| s.vaddr + s.memsz).max().unwrap_or(0);
            let sizes: heapless::Vec<u64, MAX_GUEST_MODULES> =
                modules.iter().map(|m| m.len() as u64).collect();
            let places = info::place_modules(kernel_end, &sizes, ram_end).map_err(SetupError::Modules)?;
            let mut told = Told::new();
            for (at, string) in places.iter().zip(&config.modules) {
                let _ = told.push(info::Module { at: at.clone(), string });
            }
            Load::Multiboot { kernel, file, modules, told }
        }
        Ok(KernelFile::Linux(image)) => {
            if modules.len() > 1 {
                return Err(SetupError::LinuxModules(modules.len()));
            }
            let initrd = modules.first().copied();
            let boot = linux::plan(
                &image,
                ram_end,
                u32::from(config.vcpus),
                &config.cmdline,
                initrd.map(|m| m.len() as u64),
                user::time::tsc_per_ms(),
            )
            .map_err(SetupError::Linux)?;
            Load::Linux { boot, kernel: image.kernel(), initrd }
        }
        Err(KernelError::Multiboot(e)) => return Err(SetupError::Image(e)),
        Err(e) => return Err(SetupError::Kernel(e)),
    };
    let quota = ram::guest_quota_pages(ram_end, u64::from(config.vcpus));
    let (domain, _) = sys::guest_create(quota).map_err(failed("creating the guest"))?;
    let mut made = heapless::Vec::new();
    match build(this, domain, config, &load, (timers, kept), &mut made) {
        Ok((exits, vcpu0, timers, bell, entry_tsc)) => {
            let ram = Ram { end: ram_end };
            Ok(Guest { domain, exits, vcpu0, timers, ram, wall: config.wall, entry_tsc, bell, made })
        }
        Err(e) => {
            // Everything made so far belongs to the guest, or is harmless.
            let _ = sys::domain_destroy(domain);
            Err(e)
        }
    }
}

/// Writes what `load` says into the guest's RAM; the vCPU's entry and
/// argument (its `ebx`).
fn load(ram: &Ram, config: &GuestConfig, load: &Load<'_>) -> Result<(u64, u64), SetupError> {
    match load {
        Load::Multiboot { kernel, file, modules, told } => {
            for seg in &kernel.segments {
                // multiboot::check made sure the bytes are in the file.
                let bytes = usize::try_from(seg.offset)
                    .ok()
                    .and_then(|o| file.get(o..o.checked_add(usize::try_from(seg.filesz).ok()?)?));
                let bytes = bytes
                    .ok_or(SetupError::Image(ImageError::Elf(ipc::elf::ElfError::SegmentOutsideFile)))?;
                ram.write(seg.vaddr, bytes).map_err(failed("loading the kernel"))?;
            }
            for (bytes, m) in modules.iter().zip(told) {
                ram.write(m.at.start, bytes).map_err(failed("loading a module"))?;
            }
            let mut page = [0u8; PAGE as usize];
            let cmdline = info::with_tsc_khz(&config.cmdline, user::time::tsc_per_ms());
            let ebx = info::build(&mut page, ram.end, &cmdline, told);
            ram.write(INFO_GPA, &page).map_err(failed("writing the Multiboot information"))?;
            Ok((kernel.entry, u64::from(ebx)))
        }
        Load::Linux { boot, kernel, initrd } => {
            ram.write(boot.placement.load, kernel).map_err(failed("loading the kernel"))?;
            if let (Some(bytes), Some(at)) = (initrd, &boot.initrd) {
                ram.write(at.start, bytes).map_err(failed("loading the initrd"))?;
            }
            ram.write(vmm::acpi::ACPI_GPA, &boot.tables.bytes).map_err(failed("writing the ACPI tables"))?;
            let mut cmdline = [0u8; vmm::zeropage::CMDLINE_ROOM];
            cmdline[..boot.cmdline.len()].copy_from_slice(boot.cmdline.as_bytes());
            ram.write(linux::CMDLINE_GPA, &cmdline).map_err(failed("writing the command line"))?;
            ram.write(linux::ZERO_PAGE_GPA, &boot.zero_page).map_err(failed("writing the zero page"))?;
            ram.write(linux::STUB_GPA, &boot.stub).map_err(failed("writing the boot stub"))?;
            Ok((boot.entry, boot.arg))
        }
    }
}

fn build(
    this: CapSlot,
    domain: CapSlot,
    config: &GuestConfig,
    what: &Load<'_>,
    (timers, kept): (Option<CapSlot>, Option<(CapSlot, CapSlot)>),
    made: &mut heapless::Vec<CapSlot, MADE_MAX>,
) -> Result<(CapSlot, CapSlot, CapSlot, CapSlot, u64), SetupError> {
    if (config.weight, config.cap_percent) != (DEFAULT_WEIGHT, 0) {
        sys::sched_set(domain, config.weight, config.cap_percent).map_err(failed("setting its CPU share"))?;
    }
    let ram_end = u64::from(config.memory_kib) * 1024;
    let rw = Rights::READ | Rights::WRITE;
    for chunk in ram::chunks(ram_end) {
        let mem =
            sys::memory_create(domain, (chunk.end - chunk.start) / PAGE).map_err(failed("making its RAM"))?;
        // At most MADE_MAX - 1 chunks (3 GiB): it fits.
        let _ = made.push(mem);
        sys::memory_map(mem, domain, chunk.start, rw).map_err(failed("mapping its RAM into it"))?;
        sys::memory_map(mem, this, RAM_VA + chunk.start, rw)
            .map_err(failed("mapping its RAM into the VMM"))?;
    }
    let ram = Ram { end: ram_end };
    let (entry, arg) = load(&ram, config, what)?;
    let (exits, bell) = match kept {
        Some(k) => k,
        None => (
            sys::endpoint_create(this).map_err(failed("making the exit endpoint"))?,
            sys::notification_create(this).map_err(failed("making the doorbell notification"))?,
        ),
    };
    let door = sys::doorbell_create(domain, DOORBELL_PORT, bell, 1).map_err(failed("making the doorbell"))?;
    let _ = made.push(door);
    // The vCPU starts on this thread's CPU (where mgmt put it: the guest's
    // `cpu`, if it has one), so that an exit and its reply switch directly.
    // The console's notification, if mgmt gave one (it signals input
    // there: `ipc::guest::CONSOLE_INPUT_BIT`), else one of its own.
    let timers = match timers {
        Some(t) => t,
        None => sys::notification_create(this).map_err(failed("making the timer notification"))?,
    };
    let entry_tsc = user::arch::rdtsc();
    let vcpu0 = sys::vcpu_create(domain, exits, entry, arg).map_err(failed("making the vCPU"))?;
    Ok((exits, vcpu0, timers, bell, entry_tsc))
}

/// Guest RAM as the VMM sees it: mapped read-write at `RAM_VA + gpa` for
/// every gpa in `[RAM_START, end)`.
pub struct Ram {
    pub end: u64,
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

/// What the disks' queues are checked against and served through
/// (`vmm::disks`): the same volatile accesses, inside the RAM only.
impl vq::GuestMemory for Ram {
    fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa.checked_add(len).is_some_and(|end| end <= self.end)
    }

    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        vmm::mmio::GuestMemory::read(self, gpa, buf)
    }

    fn write(&self, gpa: u64, data: &[u8]) -> bool {
        Ram::write(self, gpa, data).is_ok()
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
