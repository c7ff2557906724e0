//! What a VMM is told about the guest it runs: `mgmt` writes a [`GuestConfig`]
//! (postcard) into a memory object it grants the VMM as `guest-config`
//! ([`CONFIG_CAP`]; the capability's size is the encoding's length), and
//! grants the guest's kernel image as `module:guest` ([`MODULE_CAP`]) and
//! its Multiboot modules (an initrd, say) as `guest-module:0`, `:1`, …
//! ([`module_cap`]), each read-only, in the order of
//! [`GuestConfig::modules`], which holds their strings. The VMM is the boot
//! module [`VMM_IMAGE`], started as a domain named after the guest with
//! [`vmm_quota_kib`] of memory.
//!
//! A guest's disks ([`GuestConfig::disks`]) are told to its VMM as the
//! system file gave them (`manifest::DiskSpec`: the blk domain, the
//! region's first sector and length, read-only). Design choice (the design
//! is silent): the VMM is told the region too, to answer a request past
//! its disk's end itself, but it is not what keeps a guest inside its
//! region: the blk domain, told each client's region by `mgmt`, refuses
//! whatever leaves it, whatever a VMM asks.

use heapless::String;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::manifest::{DiskSpec, MAX_GUEST_DISKS};

pub const GUEST_CONFIG_VERSION: u32 = 4;
/// The most guest RAM one VMM gives a guest (3 GiB: below the 32-bit hole).
pub const MAX_GUEST_MEMORY_KIB: u32 = 3 << 20;
/// The name of the VMM's capability to its configuration.
pub const CONFIG_CAP: &str = "guest-config";
/// The name of the VMM's capability to the guest's kernel image.
pub const MODULE_CAP: &str = "module:guest";
/// The most Multiboot modules a guest is given.
pub const MAX_GUEST_MODULES: usize = 4;
/// The longest string (its command line) of a guest's module.
pub const MODULE_STRING_MAX: usize = 64;
/// A module's string.
pub type ModuleString = String<MODULE_STRING_MAX>;
/// The prefix of the VMM's capabilities to the guest's modules.
pub const GUEST_MODULE_PREFIX: &str = "guest-module:";

/// The name of the VMM's capability to the guest's module `i`
/// (`guest-module:<i>`).
pub fn module_cap(i: usize) -> String<24> {
    let mut name = String::new();
    let _ = core::fmt::write(&mut name, format_args!("{GUEST_MODULE_PREFIX}{i}"));
    name
}

/// The name of a VMM's capability to `mgmt`'s supervision endpoint (WRITE,
/// badged with the VMM's place in `mgmt`'s plan). Once its guest exists, the
/// VMM calls it once with label [`HANDOVER`] and the guest's domain
/// capability, and `mgmt` replies at once: `mgmt` then reports the guest's
/// own CPU time and sets its CPU share itself (it is above the guest). A VMM
/// can hand over only a domain it holds, so a lying one misreports its own
/// guest, no one else's.
pub const SUPERVISOR_CAP: &str = "endpoint:mgmt";
/// The label of the call that hands a guest's domain to `mgmt`.
pub const HANDOVER: u64 = 0x6775_6573_7400; // "guest\0"

/// The boot module (and domain image) of the VMM.
pub const VMM_IMAGE: &str = "vmm";

/// The pages a VMM and `mgmt` share for the guest's console (`ryokan
/// console`), as Xen's console ring page is shared by a guest and
/// xenconsoled: two `crate::ring`s of [`CONSOLE_RING`], the guest's output
/// (the VMM produces) at [`CONSOLE_OUT_AT`] and the console's input (mgmt
/// produces) at [`CONSOLE_IN_AT`], a page each ([`CONSOLE_PAGES`]). The
/// pages are `mgmt`'s (it maps them for the VMM's whole life, and the
/// VMM's death never unmaps them under it); the VMM is granted them
/// READ|WRITE as [`CONSOLE_CAP`].
///
/// Wake-ups: the VMM signals [`CONSOLE_OUTPUT_BIT`] on `mgmt`'s
/// notification ([`CONSOLE_MGMT_CAP`], WRITE) when the output ring asks
/// for it; `mgmt` signals [`CONSOLE_INPUT_BIT`] on the notification the VMM
/// waits on ([`CONSOLE_BELL_CAP`], READ|WRITE: the VMM binds it and uses it
/// for its timers too) after it pushed input. Either side treats a signal
/// as a hint only: it looks at the rings, whose indices it checks.
pub const CONSOLE_CAP: &str = "console-rings";
pub const CONSOLE_BELL_CAP: &str = "notification:console";
pub const CONSOLE_MGMT_CAP: &str = "notification:mgmt";
pub const CONSOLE_PAGES: u64 = 2;
pub const CONSOLE_OUT_AT: usize = 0;
pub const CONSOLE_IN_AT: usize = 4096;
/// 16 slots of 240 bytes (236 of payload): 3,968 bytes, a page a ring.
pub const CONSOLE_RING: (u32, u32) = (16, 240);
/// The bit of the VMM's notification that says console input came (bits
/// 0–15 are its vCPUs' APIC timers, 16 the PIT's, 63 the `bad-entry` watch).
pub const CONSOLE_INPUT_BIT: u64 = 1 << 32;
/// The bit of `mgmt`'s notification that says a guest's output came.
pub const CONSOLE_OUTPUT_BIT: u64 = 1 << 3;
/// The most bytes a configuration encodes to.
pub const CONFIG_MAX: usize = 1024;
/// The CPU weight of a domain or guest nobody set one for.
pub const DEFAULT_WEIGHT: u16 = 256;

/// The memory quota of the VMM domain of a guest with `memory_kib` of RAM:
/// the RAM, then 4 MiB for the VMM itself (image, stack, start page,
/// configuration, vCPU frames) and 1/128 of the RAM for the page tables
/// that map it, in the guest's EPT/NPT and in the VMM.
pub const fn vmm_quota_kib(memory_kib: u32) -> u32 {
    memory_kib + 4096 + memory_kib / 128
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestConfig {
    pub version: u32,
    /// The guest's name: its console lines are `[<name>] …`.
    pub name: String<24>,
    /// Guest RAM, from guest-physical 0.
    pub memory_kib: u32,
    /// The kernel command line (Multiboot).
    pub cmdline: String<128>,
    /// Virtual CPUs: the first starts at the kernel's entry; the guest
    /// starts the others (x2APIC INIT and start-up IPIs, as on a PC).
    pub vcpus: u8,
    /// The guest's CPU weight (1..=65535) and cap (percent of one CPU,
    /// 0 for none): its VMM sets them on the guest domain, whose vCPUs'
    /// time is charged to it. (Its CPU is the VMM's: a vCPU starts on the
    /// CPU of the VMM thread that creates it, where `mgmt` put that thread.)
    pub weight: u16,
    pub cap_percent: u8,
    /// The strings of the guest's Multiboot modules, one per module
    /// capability (`guest-module:<i>`), in order.
    pub modules: heapless::Vec<ModuleString, MAX_GUEST_MODULES>,
    /// The wall-clock time the guest's CMOS clock starts from: what `mgmt`
    /// read from the machine's own CMOS clock, and the TSC then (None: it
    /// read none, and the guest's clock starts at 1970-01-01 00:00:00).
    pub wall: Option<WallClock>,
    /// The guest's virtual disks, in order (`vda`, `vdb`, …): each a region
    /// of the disk a blk domain drives.
    pub disks: heapless::Vec<DiskSpec, MAX_GUEST_DISKS>,
}

/// A date and time of day (UTC, as the machine's CMOS clock keeps it) and
/// the TSC at that time: the VMM's wall clock is this plus the TSC's ticks
/// since, at the TSC's rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallClock {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub tsc: u64,
}

impl WallClock {
    /// Whether each field is in its range (1970–9999, a month's day 1–31,
    /// 24 hours, 60 minutes and seconds).
    pub fn valid(&self) -> bool {
        (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }
}

impl GuestConfig {
    /// Checks what a VMM must not take on trust.
    pub fn validate(&self) -> Result<(), Error> {
        let ok = self.version == GUEST_CONFIG_VERSION
            && !self.name.is_empty()
            && self.memory_kib >= 2048
            && self.memory_kib <= MAX_GUEST_MEMORY_KIB
            && self.memory_kib % 4 == 0
            && (1..=16).contains(&self.vcpus)
            && self.weight > 0
            && self.cap_percent <= 100
            && self.modules.iter().all(|m| printable(m))
            && self.wall.as_ref().is_none_or(WallClock::valid)
            && self.disks.iter().all(disk_ok);
        if ok {
            Ok(())
        } else {
            Err(Error::Malformed)
        }
    }

    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        postcard::to_slice(self, buf).map_err(|_| Error::Malformed)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let c: GuestConfig = postcard::from_bytes(bytes).map_err(|_| Error::Malformed)?;
        c.validate()?;
        Ok(c)
    }
}

/// What a VMM's exit code tells its supervisor about the guest (the
/// contract between `domains/vmm` and `mgmt`, which judges a run by it).
pub mod status {
    /// The guest reported success: exit code 0 on the exit port, as QEMU's
    /// isa-debug-exit (value v gives status (v << 1) | 1, so 0 is success).
    pub const PASSED: u64 = 0;
    /// The guest wrote another exit code to the exit port.
    pub const FAILED: u64 = 1;
    /// The guest halted (HLT with nothing to wake it).
    pub const HALTED: u64 = 2;
    /// The guest touched guest-physical memory nothing maps.
    pub const UNMAPPED: u64 = 3;
    /// The guest triple-faulted.
    pub const TRIPLE_FAULT: u64 = 4;
    /// The hardware would not enter the guest, or an exit the VMM does not
    /// know (or the exit endpoint failed).
    pub const UNHANDLED: u64 = 5;
    /// The guest could not be set up: bad configuration or image, or a
    /// syscall failed.
    pub const SETUP: u64 = 6;
    /// The kernel accepted a reply it must refuse (`hostile-vmm` mode).
    pub const HOSTILE_ACCEPTED: u64 = 7;
    /// The guest can never run again: an exception faults in its own
    /// delivery (`ExitReason::ExceptionLoop`).
    pub const STUCK: u64 = 8;
    /// The guest reset its machine (the ACPI reset register or the
    /// keyboard controller's reset, a `reboot`) in a loop: its VMM restarts
    /// a guest that resets, but not one that resets again and again soon
    /// after it boots (`vmm::reboot`), which ends with this status.
    pub const RESET: u64 = 9;

    /// What status `code` means, for a user: "it triple-faulted".
    pub fn describe(code: u64) -> &'static str {
        match code {
            PASSED => "it reported success",
            FAILED => "it reported failure on its exit port (its VMM's line gives the code)",
            HALTED => "it halted with nothing to wake it",
            UNMAPPED => "it touched guest-physical memory nothing maps",
            TRIPLE_FAULT => "it triple-faulted",
            UNHANDLED => "it was stopped at an exit its VMM cannot handle, or the CPU would not enter it",
            SETUP => "it could not be set up (bad configuration or kernel image)",
            HOSTILE_ACCEPTED => "the kernel accepted a reply it must refuse",
            STUCK => "it is stuck in an exception that faults in its own delivery",
            RESET => "it reset its machine in a loop (rebooting again and again soon after each boot): not restarted",
            _ => "its VMM ended with an unknown status",
        }
    }
}

/// A disk names a blk domain (printable, not empty) and a region that is
/// not empty and does not wrap.
fn disk_ok(d: &DiskSpec) -> bool {
    let fits = d.sectors.is_none_or(|n| n > 0 && d.first_sector.checked_add(n).is_some());
    !d.blk.is_empty() && printable(&d.blk) && fits
}

/// Printable ASCII only: a module's string becomes a C string in guest
/// memory, and a NUL would cut it.
pub fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7F).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> GuestConfig {
        GuestConfig {
            version: GUEST_CONFIG_VERSION,
            name: String::try_from("guest-hello").unwrap(),
            memory_kib: 16 << 10,
            cmdline: String::try_from("console=ttyS0").unwrap(),
            vcpus: 1,
            weight: 512,
            cap_percent: 0,
            modules: heapless::Vec::from_slice(&[String::try_from("initrd ro").unwrap()]).unwrap(),
            wall: Some(WallClock {
                year: 2026,
                month: 12,
                day: 3,
                hour: 7,
                minute: 2,
                second: 54,
                tsc: 1 << 40,
            }),
            disks: heapless::Vec::from_slice(&[DiskSpec {
                blk: String::try_from("blk").unwrap(),
                first_sector: 2048,
                sectors: Some(32768),
                read_only: false,
            }])
            .unwrap(),
        }
    }

    #[test]
    fn round_trips_and_checks() {
        let mut buf = [0u8; CONFIG_MAX];
        let bytes = sample().encode(&mut buf).unwrap().to_vec();
        assert_eq!(GuestConfig::decode(&bytes), Ok(sample()));
        let mut c = sample();
        c.memory_kib = 1024;
        assert_eq!(c.validate(), Err(Error::Malformed));
        let mut c = sample();
        c.vcpus = 0;
        assert_eq!(c.validate(), Err(Error::Malformed));
        let mut c = sample();
        c.weight = 0;
        assert_eq!(c.validate(), Err(Error::Malformed));
        let mut c = sample();
        c.cap_percent = 101;
        assert_eq!(c.validate(), Err(Error::Malformed));
        let mut c = sample();
        c.modules[0] = String::try_from("nul\0inside").unwrap();
        assert_eq!(c.validate(), Err(Error::Malformed));
        let mut c = sample();
        c.wall = None;
        assert_eq!(c.validate(), Ok(()));
        let bad: [fn(&mut WallClock); 8] = [
            |w| w.year = 1969,
            |w| w.year = 10_000,
            |w| w.month = 0,
            |w| w.month = 13,
            |w| w.day = 0,
            |w| w.day = 32,
            |w| w.hour = 24,
            |w| w.second = 60,
        ];
        for (i, spoil) in bad.iter().enumerate() {
            let mut c = sample();
            if let Some(w) = c.wall.as_mut() {
                spoil(w);
            }
            assert_eq!(c.validate(), Err(Error::Malformed), "wall clock case {i}");
        }
        let mut c = sample();
        if let Some(w) = c.wall.as_mut() {
            w.minute = 60;
        }
        assert_eq!(c.validate(), Err(Error::Malformed));
        let bad: [fn(&mut DiskSpec); 5] = [
            |d| d.sectors = Some(0),
            |d| d.first_sector = u64::MAX,
            |d| d.blk.clear(),
            |d| d.blk = String::try_from("b\nk").unwrap(),
            |d| (d.first_sector, d.sectors) = (1, Some(u64::MAX)),
        ];
        for (i, spoil) in bad.iter().enumerate() {
            let mut c = sample();
            spoil(&mut c.disks[0]);
            assert_eq!(c.validate(), Err(Error::Malformed), "disk case {i}");
        }
        let mut c = sample();
        (c.disks[0].first_sector, c.disks[0].sectors, c.disks[0].read_only) = (u64::MAX, None, true);
        assert_eq!(c.validate(), Ok(()), "the rest of the disk from any sector");
    }

    #[test]
    fn every_status_is_described_apart() {
        let all = 0..=status::RESET;
        let said: std::collections::BTreeSet<&str> = all.clone().map(status::describe).collect();
        assert_eq!(said.len(), all.count(), "one wording per status");
        assert_eq!(status::describe(99), "its VMM ended with an unknown status");
    }

    #[test]
    fn module_caps_are_numbered() {
        assert_eq!(module_cap(0), "guest-module:0");
        assert_eq!(module_cap(MAX_GUEST_MODULES - 1), "guest-module:3");
    }

    #[test]
    fn the_largest_config_fits_its_buffer() {
        let mut c = sample();
        c.name = String::try_from("x".repeat(24).as_str()).unwrap();
        c.cmdline = String::try_from("y".repeat(128).as_str()).unwrap();
        (c.memory_kib, c.weight, c.cap_percent) = (MAX_GUEST_MEMORY_KIB, u16::MAX, 100);
        let longest = String::try_from("z".repeat(MODULE_STRING_MAX).as_str()).unwrap();
        c.modules = core::iter::repeat_n(longest, MAX_GUEST_MODULES).collect();
        let disk = DiskSpec {
            blk: String::try_from("w".repeat(24).as_str()).unwrap(),
            first_sector: u64::MAX - 1,
            sectors: Some(1),
            read_only: true,
        };
        c.disks = core::iter::repeat_n(disk, MAX_GUEST_DISKS).collect();
        let mut buf = [0u8; CONFIG_MAX];
        assert!(c.encode(&mut buf).is_ok());
        assert_eq!(vmm_quota_kib(MAX_GUEST_MEMORY_KIB), (3 << 20) + 4096 + (3 << 20) / 128);
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = GuestConfig::decode(&bytes);
        }
    }
}
