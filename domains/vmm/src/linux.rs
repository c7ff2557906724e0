//! How the VMM boots a Linux bzImage: everything it writes into guest RAM
//! and the state the first vCPU starts in, worked out before anything is
//! written (so a kernel, initrd or command line that does not fit is
//! refused whole, with its reason).
//!
//! - The protected-mode kernel at [`crate::bzimage::Placement::load`].
//! - The initrd as high as it fits ([`crate::initrd::place`]).
//! - The ACPI tables at [`crate::acpi::ACPI_GPA`] (MADT with every vCPU and
//!   the I/O APIC; the zero page's `acpi_rsdp_addr` names the RSDP).
//! - The zero page at [`ZERO_PAGE_GPA`] with the e820 map, the command line
//!   at [`crate::zeropage::CMDLINE_GPA`].
//! - A stub at [`STUB_GPA`] that makes the 32-bit boot protocol's hand-off
//!   (boot.rst, "32-bit Boot Protocol"): `VcpuCreate` starts a vCPU in
//!   flat 32-bit protected mode, paging and interrupts off, at `entry` with
//!   `ebx` = its argument; the stub moves the zero page's address (the
//!   argument) to `esi`, clears `ebx`, `ebp` and `edi`, and jumps to
//!   `code32_start`. Linux's `startup_32` loads its own GDT and segments
//!   at once (arch/x86/boot/compressed/head_64.S), so the selectors
//!   `VcpuCreate` gives do not matter.
//!
//! The TSC's rate. Linux 6.1 asks no hypervisor leaf of a hypervisor it
//! does not know (`init_hypervisor_platform` knows KVM, Xen, Hyper-V,
//! VMware, ACRN and Jailhouse only), and reads CPUID 0x15/0x16 only when
//! the vendor is Intel (`native_calibrate_tsc`): on AMD-V it would
//! calibrate against the PIT, which a hardware-reduced platform does not
//! have. So the VMM tells it on the command line, as `tsc_early_khz=`
//! (appended unless the command line already gives one): Linux then takes
//! that rate (`tsc_early_init`), derives `loops_per_jiffy` from it, and
//! calibrates the local APIC timer against the TSC by polling
//! (`calibrate_APIC_clock`). The hypervisor leaf 0x4000_0010 says the same
//! rate for guests that read it.

use core::fmt;
use core::ops::Range;

use crate::acpi::{self, BadVcpus, Tables};
use crate::bzimage::{BzImage, Placement};
use crate::initrd::{self, InitrdError};
use crate::ram::PAGE;
use crate::zeropage::{self, BootInfo, ZeroPageError, CMDLINE_ROOM};

pub use crate::zeropage::{CMDLINE_GPA, ZERO_PAGE_GPA};

/// Where the hand-off stub goes: the page below the zero page, in low RAM
/// that the kernel reclaims once it runs.
pub const STUB_GPA: u64 = 0x6000;
/// The option that tells Linux the TSC's rate, in kHz.
pub const TSC_OPTION: &str = "tsc_early_khz=";
/// The stub's length.
pub const STUB_LEN: usize = 15;

/// The command line the guest gets: the configured one, and
/// ` tsc_early_khz=<tsc_khz>` after it unless it names a rate itself.
pub type Cmdline = heapless::String<CMDLINE_ROOM>;

/// Why the kernel cannot be booted as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxError {
    /// The kernel does not fit in guest RAM.
    KernelTooBig {
        end: u64,
        ram_end: u64,
    },
    Initrd(InitrdError),
    Acpi(BadVcpus),
    ZeroPage(ZeroPageError),
    /// The command line with the TSC's rate does not fit the VMM's room.
    CmdlineTooLong,
}

impl fmt::Display for LinuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinuxError::KernelTooBig { end, ram_end } => {
                write!(f, "the kernel needs guest RAM up to {end:#x}, past its end {ram_end:#x}")
            }
            LinuxError::Initrd(e) => write!(f, "{e}"),
            LinuxError::Acpi(e) => write!(f, "{e}"),
            LinuxError::ZeroPage(e) => write!(f, "{e}"),
            LinuxError::CmdlineTooLong => write!(f, "the command line with `{TSC_OPTION}` does not fit"),
        }
    }
}

/// What to write where, and where the first vCPU starts.
pub struct Boot {
    pub placement: Placement,
    pub initrd: Option<Range<u64>>,
    pub tables: Tables,
    pub zero_page: [u8; PAGE as usize],
    pub cmdline: Cmdline,
    pub stub: [u8; STUB_LEN],
    /// The vCPU's entry ([`STUB_GPA`]) and its `ebx` (the zero page).
    pub entry: u64,
    pub arg: u64,
}

/// `cmdline` with the TSC's rate ([`TSC_OPTION`]) unless it has one.
pub fn command_line(cmdline: &str, tsc_khz: u64) -> Result<Cmdline, LinuxError> {
    let mut out = Cmdline::new();
    out.push_str(cmdline).map_err(|_| LinuxError::CmdlineTooLong)?;
    if !cmdline.split(' ').any(|w| w.starts_with(TSC_OPTION)) {
        let sep = if cmdline.is_empty() { "" } else { " " };
        core::fmt::write(&mut out, format_args!("{sep}{TSC_OPTION}{tsc_khz}"))
            .map_err(|_| LinuxError::CmdlineTooLong)?;
    }
    Ok(out)
}

/// The hand-off to the 32-bit entry `code32_start`:
/// `mov esi, ebx; xor ebx, ebx; xor ebp, ebp; xor edi, edi;
/// mov eax, code32_start; jmp eax`.
pub fn stub(code32_start: u32) -> [u8; STUB_LEN] {
    let [a, b, c, d] = code32_start.to_le_bytes();
    [0x89, 0xDE, 0x31, 0xDB, 0x31, 0xED, 0x31, 0xFF, 0xB8, a, b, c, d, 0xFF, 0xE0]
}

/// Plans the boot of `image` in guest RAM `[0, ram_end)` with `vcpus`
/// vCPUs, `cmdline` and an initrd of `initrd_len` bytes, on a TSC of
/// `tsc_khz`, on a machine with no PCI bus.
pub fn plan(
    image: &BzImage<'_>,
    ram_end: u64,
    vcpus: u32,
    cmdline: &str,
    initrd_len: Option<u64>,
    tsc_khz: u64,
) -> Result<Boot, LinuxError> {
    plan_on(image, ram_end, (vcpus, false), cmdline, initrd_len, tsc_khz)
}

/// As [`plan`], on a machine with a PCI bus if `pci` (a guest with disks:
/// the DSDT has `PCI0`, [`acpi::with_pci`]).
pub fn plan_on(
    image: &BzImage<'_>,
    ram_end: u64,
    (vcpus, pci): (u32, bool),
    cmdline: &str,
    initrd_len: Option<u64>,
    tsc_khz: u64,
) -> Result<Boot, LinuxError> {
    let placement =
        image.placement(ram_end).map_err(|e| LinuxError::KernelTooBig { end: e.end, ram_end: e.ram_end })?;
    let initrd = initrd_len
        .map(|len| initrd::place(len, image.initrd_addr_max, ram_end, &placement))
        .transpose()
        .map_err(LinuxError::Initrd)?;
    let tables = if pci { acpi::with_pci(vcpus) } else { acpi::build(vcpus) }.map_err(LinuxError::Acpi)?;
    let cmdline = command_line(cmdline, tsc_khz)?;
    let mut zero_page = [0u8; PAGE as usize];
    let info = BootInfo { ram_end, cmdline: &cmdline, initrd: initrd.clone(), rsdp: tables.rsdp };
    zeropage::build(&mut zero_page, image, &placement, &info).map_err(LinuxError::ZeroPage)?;
    // zeropage::build checked that the kernel lies in RAM below 4 GiB.
    let stub = stub(placement.entry32 as u32);
    Ok(Boot { placement, initrd, tables, zero_page, cmdline, stub, entry: STUB_GPA, arg: ZERO_PAGE_GPA })
}

#[cfg(test)]
mod tests;
