//! `mgmt`, the root domain: reads the system manifest, starts every domain
//! it names, and supervises them: it logs each exit and fault, restarts the
//! failed per their policy, and shuts the system down (by exiting) when all
//! are stopped for good.
//!
//! The kernel gives `mgmt` its domain (`self`), the console, all I/O ports,
//! the interrupt lines (`irq:<line>`) and one `module:<name>` capability
//! per boot module; the manifest is the module `manifest`. Exit code 0
//! means the system ran and shut down; 1 means the manifest could not be
//! read (or the kernel failed mgmt).
//!
//! Each domain gets its image (from `module:<image>`), a 64 KiB stack below
//! `STACK_TOP` and a start page naming its capabilities: `self` (CONTROL),
//! `console` (WRITE), and per manifest capability `ioports`, `ioports.1`, …
//! (READ|WRITE), `irq:<line>` (CONTROL), `shared:<region>` (mapped at
//! `user::layout::shared_va` of its ordinal among the domain's shared
//! capabilities; READ, and WRITE if writable), `domain:<name>` (CONTROL),
//! `endpoint:<name>` (READ|WRITE for the server; WRITE for a client, minted
//! with its badge) and `notification:<name>` (READ|WRITE for a waiter,
//! WRITE for a signaller). A domain whose weight or cap is not the default
//! (256, none) gets them with `SchedSet` once created; one with a `cpu` has
//! its thread moved there (if that fails, a line says so and it runs where
//! the kernel put it). All domains are created, then given each other, then
//! started. A restarted domain gets the same, with the other domains as
//! they run then; the capabilities others held to its previous instance
//! are stale. Endpoints and notifications are `mgmt`'s, made before any
//! domain: they outlive the domains that use them.
//!
//! Each guest of the manifest runs in a domain of its own named after it:
//! its VMM, the boot module `vmm`, given `module:guest` (the guest's kernel
//! image, read-only) and `guest-config` (its `ipc::guest::GuestConfig`,
//! read-only), and the guest's restart policy, CPU share and CPU. The VMM
//! creates the guest, supervises it, and exits when it stops: `mgmt`
//! supervises the VMM like any domain (`mgmt::plan::guest`).

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

extern crate alloc;

mod console;
mod control;
mod create;
mod device;
mod guest;
mod images;
mod modules;
mod spawn;
mod supervise;
mod uart;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;

use ipc::manifest::Manifest;
use user::{Caps, StartInfo};

use crate::modules::Modules;

// A heap of 2 MiB and a stack of 1 MiB: a manifest of 100 guests is
// 101 KB decoded, by value; its plan (`mgmt::plan::Plan`, 333 KB with 24
// grants a domain, its guests' disks' channels among them) is made on the
// heap, and `ryokan create` plans one more entry beside the running one.
user::entry!(main, heap_kib = 2048, stack_kib = 1024);

fn main(start: &'static StartInfo) -> u64 {
    let Some(this) = start.self_domain() else {
        log::error!("no `self` capability: cannot work");
        return 1;
    };
    let mut modules = Modules::new(this, start);
    let manifest = match modules.get("module:manifest") {
        Ok(bytes) => match decode(bytes) {
            Ok(m) => m,
            Err(why) => {
                log::error!("the manifest (module `manifest`) is bad: {why}");
                return 1;
            }
        },
        Err(e) => {
            log::error!("cannot read the manifest (module `manifest`): {e}");
            return 1;
        }
    };
    let plan = mgmt::plan::plan(&manifest);
    drop(manifest);
    supervise::run(start, this, modules, plan)
}

/// Decodes and checks the manifest with `Manifest::decode`; when it refuses,
/// finds out why, to say so.
fn decode(bytes: &[u8]) -> Result<Box<Manifest>, String> {
    match Manifest::decode(bytes) {
        Ok(m) => Ok(Box::new(m)),
        Err(_) => Err(match postcard::from_bytes::<Manifest>(bytes) {
            Err(e) => format!("cannot decode it: {e}"),
            Ok(m) => match m.validate() {
                Ok(()) => "refused".into(),
                Err(e) => match e.domain.and_then(|i| m.domains.get(i)) {
                    Some(d) => format!("{:?} in domain {}", e.problem, d.name),
                    None => format!("{:?}", e.problem),
                },
            },
        }),
    }
}
