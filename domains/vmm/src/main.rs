//! `vmm`: one per guest. `mgmt` starts it as a domain named after the guest
//! with `guest-config` (a memory object holding the postcard
//! `ipc::guest::GuestConfig`), `module:guest` (the guest's kernel image)
//! and `guest-module:<i>` for each of the guest's Multiboot modules.
//! Started without `guest-config`, it runs a guest named "guest" with
//! 16 MiB of RAM and one vCPU.
//!
//! It checks the kernel ([`vmm::kernel`]: a Multiboot kernel or a Linux
//! bzImage, whose one module is its initrd), creates the guest domain with
//! the configured CPU share and its RAM, loads the kernel and what it is
//! told at boot (the Multiboot information, or for Linux the zero page and
//! ACPI tables, [`vmm::linux`]), starts its first vCPU, and answers the
//! vCPU's exits ([`vmm::platform`]) until the guest stops (a reset, a
//! reboot, restarts it in place: [`vmm::reboot`]), when it says the
//! guest's CPU time (`cpu time <us> us`; also between the guest's marks,
//! see [`vmm::platform::MARK_PORT`]). Its lines are
//! `[vmm] <guest>: …`, the guest's serial output `[<guest>] <line>`. It
//! destroys the guest and exits with a [`vmm::status`]: 0 when the guest
//! reported success on port 0xf4, 1 for another value there, 2 halted,
//! 3 unmapped memory, 4 triple fault, 5 an exit it cannot handle, 6 no
//! guest could be made, 7 the kernel accepted a forbidden reply (the
//! `hostile-vmm` test mode, [`hostile`]) or ran a vCPU on after its entry
//! failed (the `bad-entry` test mode, [`bad_entry`]), or `blk` answered a
//! request past a disk's region (the `ryokan.disk-attack` test mode,
//! [`disk_link::attack`]). The guest's disks ([`disk_link`]) are each a
//! client of a `blk` domain; they are closed when the guest stops.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

mod bad_entry;
mod console;
mod disk_link;
mod hostile;
mod link;
mod run;
mod setup;

use heapless::String;
use ipc::guest::{
    module_cap, GuestConfig, CONFIG_CAP, CONFIG_MAX, DEFAULT_WEIGHT, GUEST_CONFIG_VERSION, HANDOVER,
    MAX_GUEST_MODULES, MODULE_CAP, SUPERVISOR_CAP,
};
use ipc::{CapSlot, Rights};
use user::{layout, sys, Caps, StartInfo};
use vmm::status;

use crate::console::{say, Console};

// A heap for iced-x86, whose decoder builds its tables there once, at the
// first MMIO exit (`vmm::mmio`; between 256 and 512 KiB: 256 is too little),
// charged to the VMM's own 4 MiB; and for the ACPI tables of a Linux guest
// while they are built (`vmm::acpi`, about 1 KiB for 16 vCPUs). A stack
// of 256 KiB: a disk's request to `blk` and its answer are a ring slot
// each (4 KiB) on it, below the exit path's frames, which the 64 KiB
// default did not hold.
user::entry!(main, heap_kib = 512, stack_kib = 256);

/// Where the VMM maps its configuration, the guest's kernel image and its
/// modules (each at most guest RAM's 3 GiB, so 4 GiB apart).
const CONFIG_VA: u64 = layout::FREE2_BASE;
const IMAGE_VA: u64 = layout::FREE2_BASE + (1 << 30);
const MODULES_VA: u64 = layout::FREE2_BASE + (4 << 30);
const MODULE_STRIDE: u64 = 4 << 30;

fn main(start: &'static StartInfo) -> u64 {
    let mut console = Console::new(start.console(), start.name());
    let Some(this) = start.self_domain() else {
        say!(console, "no `self` capability: cannot work");
        return status::SETUP;
    };
    let config = match config(start, this, &console) {
        Ok(c) => c,
        Err(why) => {
            say!(console, "bad `{CONFIG_CAP}`: {why}: not started");
            return status::SETUP;
        }
    };
    console.rename(&config.name);
    let Some(image) = image(start, this, &console) else { return status::SETUP };
    let Some(modules) = modules(start, this, &config, &console) else { return status::SETUP };
    let host = |leaf: u32, sub: u32| {
        let r = core::arch::x86_64::__cpuid_count(leaf, sub);
        [r.eax, r.ebx, r.ecx, r.edx]
    };
    match vmm::cpuid::host_tsc(host) {
        Ok(vmm::cpuid::HostTsc::Invariant) => {}
        Ok(vmm::cpuid::HostTsc::Hypervisor) => {
            say!(
                console,
                "the host is a virtual machine that does not say its TSC is invariant: taken as it is"
            );
        }
        Err(why) => {
            say!(console, "cannot start the guest: {why}");
            return status::SETUP;
        }
    }
    let mut disks = match disk_link::open(start, &config) {
        Ok(d) => d,
        Err((k, why)) => {
            say!(console, "cannot start the guest: disk {k}: {why}");
            return status::SETUP;
        }
    };
    for (k, d) in disks.iter().enumerate() {
        let blk = config.disks.get(k).map_or("", |s| s.blk.as_str());
        let ro = if vq::blk::Disk::read_only(d) { ", read-only" } else { "" };
        say!(console, "disk {k}: {} sectors of {blk}'s disk{ro}", vq::blk::Disk::sectors(d));
    }
    let attack = config.cmdline.split(' ').any(|w| w == disk_link::ATTACK);
    let code = if attack && !disk_link::attack(&mut disks, &console) {
        status::HOSTILE_ACCEPTED
    } else {
        run_guest(start, this, &config, (image, &modules), &console, &mut disks)
    };
    // blk serves a client until it closes: each disk is closed, the guest gone.
    for d in disks.iter_mut() {
        let _ = d.close();
    }
    code
}

/// Boots the guest and serves it, through its resets, until it stops.
fn run_guest(
    start: &StartInfo,
    this: CapSlot,
    config: &GuestConfig,
    (image, modules): (&'static [u8], &[&'static [u8]]),
    console: &Console,
    disks: &mut disk_link::Disks,
) -> u64 {
    let bell = start.slot(ipc::guest::CONSOLE_BELL_CAP);
    let mut guest = match setup::boot(this, config, image, modules, bell, None) {
        Ok(g) => g,
        Err(e) => {
            say!(console, "cannot start the guest: {e}");
            return status::SETUP;
        }
    };
    let has = |flag: &str| config.cmdline.split(' ').any(|w| w == flag);
    let (hostile, bad_entry) = (has(hostile::FLAG), has(bad_entry::FLAG));
    hand_over(start, &guest, console, hostile);
    say!(
        console,
        "started: {} KiB of RAM, {} vCPU{}, command line `{}`, {} module(s)",
        config.memory_kib,
        config.vcpus,
        if config.vcpus == 1 { "" } else { "s" },
        config.cmdline,
        modules.len()
    );
    // Where `cargo xtask bench` counts a Linux guest's boot from.
    say!(console, "first entry after TSC {}", guest.entry_tsc);
    let mut link = link::Link::open(start, this, console);
    let vcpus = usize::from(config.vcpus);
    let shown: heapless::Vec<vmm::virtio_blk::Disk, { ipc::manifest::MAX_GUEST_DISKS }> = disks
        .iter()
        .map(|d| vmm::virtio_blk::Disk {
            sectors: vq::blk::Disk::sectors(d),
            read_only: vq::blk::Disk::read_only(d),
        })
        .collect();
    let (mut platform, start_tsc) = run::platform(&guest, vcpus, &shown);
    let mut restarts = vmm::reboot::Restarts::new(0);
    // The CPU time of the boots before this one.
    let mut cpu_us = 0;
    let code = loop {
        if let Err(e) = sys::notification_bind(guest.timers) {
            say!(console, "cannot bind the timer notification: {e:?}: stopped");
            break status::UNHANDLED;
        }
        let probes = (hostile && restarts.boot() == 1, bad_entry);
        let code =
            run::serve(&guest, (&mut platform, start_tsc), console, link.as_mut(), probes, (vcpus, disks));
        if code != status::RESET {
            break code;
        }
        // A reset: the guest is made again (vmm::reboot), unless in a loop.
        let boot = match restarts.reset(run::virtual_ns(start_tsc)) {
            Ok(boot) => boot,
            Err(reset_loop) => {
                say!(console, "{reset_loop}");
                break code;
            }
        };
        cpu_us += sys::domain_info(guest.domain).map_or(0, |i| i.cpu_us);
        let timers = platform.timers_to_disarm();
        for bit in (0..64).map(|b| 1u64 << b).filter(|b| timers & b != 0) {
            let _ = sys::timer_set(guest.timers, bit, 0, 0);
        }
        platform.reset();
        if let Err(e) = guest.destroy() {
            say!(console, "cannot destroy the guest to restart it: {e:?}: stopped");
            return status::UNHANDLED;
        }
        let kept = Some((guest.exits, guest.bell));
        guest = match setup::boot(this, config, image, modules, Some(guest.timers), kept) {
            Ok(g) => g,
            Err(e) => {
                say!(console, "cannot restart the guest: {e}");
                return status::SETUP;
            }
        };
        say!(console, "restarted: boot {boot}");
        hand_over(start, &guest, console, false);
    };
    match sys::domain_info(guest.domain) {
        Ok(info) => say!(console, "cpu time {} us", cpu_us + info.cpu_us),
        Err(e) => say!(console, "cannot read the guest's CPU time: {e:?}"),
    }
    if let Err(e) = sys::domain_destroy(guest.domain) {
        say!(console, "warning: cannot destroy the guest: {e:?}");
    }
    code
}

/// The most times a guest's handover is tried: for some 30 s.
const HANDOVER_TRIES: u32 = 40;

/// Hands the guest's domain to `mgmt` (`ipc::guest::HANDOVER` on
/// `endpoint:mgmt`), so that it can report and steer the guest itself;
/// without that capability (a VMM run alone) there is no one to tell.
/// With `hostile`, it first makes the handovers mgmt must refuse: a wrong
/// label, none, and an endpoint for a domain; and one more after the good
/// one (a VMM hands over one guest).
fn hand_over(start: &StartInfo, guest: &setup::Guest, console: &Console, hostile: bool) {
    let Some(ep) = start.slot(SUPERVISOR_CAP) else { return };
    let call = |label: u64, cap: Option<CapSlot>| {
        sys::ipc_call(ep, &ipc::msg::Message { label, words: [0; 8], cap }).map(drop)
    };
    if hostile {
        for (label, cap) in
            [(HANDOVER ^ 1, Some(guest.domain)), (HANDOVER, None), (HANDOVER, Some(guest.exits))]
        {
            if let Err(e) = call(label, cap) {
                say!(console, "a bad handover failed in the kernel: {e:?}");
            }
        }
    }
    // `Busy`: mgmt's endpoint has a full queue of callers (a hundred VMMs
    // starting at once, while mgmt starts the rest): tried again after 1,
    // 2, 4, … ms, then every 1,024 ms (a timer on a notification of its
    // own, made at the first refusal; yields if none can be had). Yields
    // alone were too few on a loaded host.
    let (mut tries, mut pause) = (1, None);
    let refused = loop {
        match call(HANDOVER, Some(guest.domain)) {
            Err(ipc::Error::Busy) if tries < HANDOVER_TRIES => {
                if pause.is_none() {
                    pause = start.self_domain().and_then(|d| sys::notification_create(d).ok());
                }
                let us = 1000 << (tries - 1).min(10);
                match pause {
                    Some(n) if sys::timer_set(n, 1, us, 0).is_ok() => drop(sys::wait(n)),
                    _ => (0..1024).for_each(|_| sys::yield_now()),
                }
                tries += 1;
            }
            done => break done.err(),
        }
    };
    if let Some(e) = refused {
        say!(console, "cannot hand the guest to mgmt: {e:?} (tried {tries} times): it is seen as its VMM");
    }
    if hostile {
        let _ = call(HANDOVER, Some(guest.domain));
    }
}

/// The configuration `mgmt` gave, or the defaults if it gave none.
fn config(start: &StartInfo, this: CapSlot, console: &Console) -> Result<GuestConfig, &'static str> {
    let Some(cap) = start.cap(CONFIG_CAP) else {
        say!(console, "no `{CONFIG_CAP}`: running the defaults (16 MiB of RAM, 1 vCPU)");
        return Ok(GuestConfig {
            version: GUEST_CONFIG_VERSION,
            name: String::try_from("guest").map_err(|_| "the default name does not fit")?,
            memory_kib: 16 << 10,
            cmdline: String::new(),
            vcpus: 1,
            weight: DEFAULT_WEIGHT,
            cap_percent: 0,
            modules: heapless::Vec::new(),
            wall: None,
            disks: heapless::Vec::new(),
        });
    };
    let len =
        usize::try_from(cap.size).ok().filter(|&l| l <= CONFIG_MAX).ok_or("larger than a configuration")?;
    sys::memory_map(CapSlot(cap.slot), this, CONFIG_VA, Rights::READ).map_err(|_| "cannot map it")?;
    let mut bytes = [0u8; CONFIG_MAX];
    for (i, b) in bytes[..len].iter_mut().enumerate() {
        // SAFETY: the memory object is mapped readable at CONFIG_VA, and a
        // memory object holds at least a page (CONFIG_MAX < 4096). It is
        // read byte by byte, volatile: mgmt, which made it, could change it.
        *b = unsafe { ((CONFIG_VA as *const u8).add(i)).read_volatile() };
    }
    GuestConfig::decode(&bytes[..len]).map_err(|_| "it does not decode to a valid GuestConfig")
}

/// The guest's kernel image (`module:guest`), mapped read-only.
fn image(start: &StartInfo, this: CapSlot, console: &Console) -> Option<&'static [u8]> {
    let Some(cap) = start.cap(MODULE_CAP) else {
        say!(console, "no `{MODULE_CAP}`: no kernel to boot");
        return None;
    };
    let len = usize::try_from(cap.size).ok().filter(|&l| l > 0)?;
    if let Err(e) = sys::memory_map(CapSlot(cap.slot), this, IMAGE_VA, Rights::READ) {
        say!(console, "cannot map `{MODULE_CAP}`: {e:?}");
        return None;
    }
    // SAFETY: the module is mapped read-only at IMAGE_VA for the VMM's life
    // (never unmapped) and holds `size` bytes; nobody can write it: the
    // kernel gives only READ|GRANT on boot modules, and mgmt grants READ.
    Some(unsafe { core::slice::from_raw_parts(IMAGE_VA as *const u8, len) })
}

/// The guest's modules (`guest-module:<i>`, one per string in `config`),
/// each mapped read-only; None (and said why) if one is missing or empty.
fn modules(
    start: &StartInfo,
    this: CapSlot,
    config: &GuestConfig,
    console: &Console,
) -> Option<heapless::Vec<&'static [u8], MAX_GUEST_MODULES>> {
    let mut out = heapless::Vec::new();
    for i in 0..config.modules.len() {
        let name = module_cap(i);
        let Some(cap) = start.cap(&name) else {
            say!(console, "no `{name}`: the configuration names {} module(s)", config.modules.len());
            return None;
        };
        let Some(len) = usize::try_from(cap.size).ok().filter(|&l| l > 0 && l as u64 <= MODULE_STRIDE) else {
            say!(console, "`{name}` holds {} bytes: not a module", cap.size);
            return None;
        };
        let va = MODULES_VA + i as u64 * MODULE_STRIDE;
        if let Err(e) = sys::memory_map(CapSlot(cap.slot), this, va, Rights::READ) {
            say!(console, "cannot map `{name}`: {e:?}");
            return None;
        }
        // SAFETY: the module is mapped read-only at `va` for the VMM's life
        // (never unmapped) and holds `len` bytes (its capability's size,
        // below MODULE_STRIDE, so the mappings do not overlap); nobody can
        // write it: boot modules are READ|GRANT, and mgmt grants READ.
        let bytes = unsafe { core::slice::from_raw_parts(va as *const u8, len) };
        // At most MAX_GUEST_MODULES strings, so this fits.
        let _ = out.push(bytes);
    }
    Some(out)
}
