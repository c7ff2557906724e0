//! The guest's console as the binary runs it: [`vmm::console_link`] over
//! the pages `mgmt` grants (`ipc::guest::CONSOLE_CAP`), with the wake-ups
//! `ipc::guest` describes. A VMM started without them (run alone, or by an
//! older `mgmt`) has no console: its guest's output still goes to the
//! debug console's log, and nothing is typed into it.
//!
//! A peer that breaks the rings ([`ipc::Error::PeerMisbehaved`]) turns the
//! console off for the rest of this VMM's life, said once: the guest runs
//! on, with its output in the log.

use ipc::guest::{
    CONSOLE_CAP, CONSOLE_IN_AT, CONSOLE_MGMT_CAP, CONSOLE_OUTPUT_BIT, CONSOLE_OUT_AT, CONSOLE_PAGES,
};
use ipc::ring::Region;
use ipc::{CapSlot, Rights};
use user::{layout, sys, Caps, StartInfo};
use vmm::console_link::ConsoleLink;
use vmm::platform::{Platform, Step};

use crate::console::{say, Console};

/// Where the VMM maps the console's pages: below its configuration
/// (`FREE2_BASE`), above its RAM (`FREE_BASE`, at most 3 GiB).
const CONSOLE_VA: u64 = layout::FREE2_BASE - (1 << 30);

pub struct Link {
    link: ConsoleLink<'static>,
    /// `mgmt`'s notification, to say output came.
    mgmt: Option<CapSlot>,
    broken: bool,
}

impl Link {
    /// The console `start` grants, mapped; None (and said why, unless it
    /// is simply absent) if there is none to use.
    pub fn open(start: &StartInfo, this: CapSlot, console: &Console) -> Option<Link> {
        let cap = start.cap(CONSOLE_CAP)?;
        let bytes = CONSOLE_PAGES * layout::PAGE;
        if cap.size < bytes {
            say!(console, "`{CONSOLE_CAP}` holds {} bytes, not {bytes}: no console", cap.size);
            return None;
        }
        if let Err(e) = sys::memory_map(CapSlot(cap.slot), this, CONSOLE_VA, Rights::READ | Rights::WRITE) {
            say!(console, "cannot map `{CONSOLE_CAP}`: {e:?}: no console");
            return None;
        }
        let half = (bytes / 2) as usize;
        // SAFETY: the pages are mapped readable and writable at CONSOLE_VA
        // for the VMM's whole life (never unmapped; `mgmt`, which owns
        // them, never unmaps them from us either), and nothing here touches
        // them but the rings, atomically. The offsets are within the pages.
        let regions = unsafe {
            let base = CONSOLE_VA as *mut u8;
            (
                Region::from_raw(base.add(CONSOLE_OUT_AT), half),
                Region::from_raw(base.add(CONSOLE_IN_AT), half),
            )
        };
        let made = match regions {
            (Ok(out), Ok(input)) => ConsoleLink::new(out, input),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match made {
            Ok(link) => Some(Link { link, mgmt: start.slot(CONSOLE_MGMT_CAP), broken: false }),
            Err(e) => {
                say!(console, "the console's rings do not fit its pages ({e:?}): no console");
                None
            }
        }
    }

    /// Gives the UART what input waits and it has room for; the step with
    /// the interrupt that raised, if any. Nothing is done where no input
    /// waits: every UART access comes here, and the whole feed cost a
    /// UART OUT's round trip about 370 instructions.
    #[inline(always)]
    pub fn feed(&mut self, platform: &mut Platform, console: &Console) -> Option<Step> {
        if self.broken || !self.link.has_input() {
            return None;
        }
        self.feed_now(platform, console)
    }

    /// [`Self::feed`] where input waits: out of line, as it is seldom.
    #[inline(never)]
    fn feed_now(&mut self, platform: &mut Platform, console: &Console) -> Option<Step> {
        let (fed, step) = platform.receive(|uart| self.link.feed(uart));
        if let Err(e) = fed {
            self.off(console, e);
        }
        Some(step)
    }

    /// A byte the guest sent.
    pub fn output(&mut self, byte: u8) {
        if !self.broken && self.link.output(byte) {
            self.signal();
        }
    }

    /// Pushes what output waits (the guest did something else than send).
    pub fn flush(&mut self) {
        if !self.broken && self.link.pending() && self.link.flush() {
            self.signal();
        }
    }

    fn signal(&self) {
        if let Some(mgmt) = self.mgmt {
            // A hint only: mgmt also looks at the ring on its own rounds.
            let _ = sys::signal(mgmt, CONSOLE_OUTPUT_BIT);
        }
    }

    fn off(&mut self, console: &Console, e: ipc::Error) {
        self.broken = true;
        say!(console, "the console's input ring is broken ({e:?}): the console is off");
    }
}
