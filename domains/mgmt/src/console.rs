//! Guests' consoles (`ryokan console`): `mgmt` is each guest's console
//! backend, as xenconsoled is Xen's. Per guest it owns two pages holding
//! two rings (`ipc::guest::CONSOLE_CAP`), grants them to each VMM instance
//! it starts, drains the output ring into the guest's [`History`] on every
//! round of supervision (a VMM signals when the ring went from empty to
//! not, `CONSOLE_OUTPUT_BIT`), and pushes what a client types into the
//! input ring, signalling the VMM (`CONSOLE_INPUT_BIT`).
//!
//! Decisions:
//! - Shared rings, not IPC calls: `mgmt` never calls a VMM, so a VMM that
//!   does not answer (or lies) never blocks it. A ring whose indices or
//!   lengths the VMM broke turns that guest's console off until its next
//!   start (`ConsoleBroken`); nothing else is affected.
//! - The pages are `mgmt`'s, not the VMM's, so a dying VMM never unmaps
//!   them under `mgmt`; they are zeroed for each new instance.
//! - Output is kept in `mgmt` (the last `history::KEPT` bytes, offsets
//!   counted across restarts), so `console` shows what the guest said
//!   before it was attached, and several clients may read.
//! - Input is all or nothing per request: a full input ring (a guest that
//!   does not read) takes none, and the client is told (`taken` 0), so
//!   typing never blocks `mgmt` and never loses a byte silently.
//! - Each round drains at most [`DRAIN_MESSAGES`] messages per guest; if
//!   more wait, `mgmt` comes back after the round, so a chatty guest
//!   delays supervision by that much only.

use core::sync::atomic::{AtomicU32, Ordering};

use ipc::control::{Body, ControlError, CONSOLE_OUTPUT_MAX};
use ipc::guest::{
    CONSOLE_BELL_CAP, CONSOLE_INPUT_BIT, CONSOLE_IN_AT, CONSOLE_MGMT_CAP, CONSOLE_OUT_AT, CONSOLE_PAGES,
    CONSOLE_RING,
};
use ipc::ring::{Consumer, Producer, Region, RingLayout, Sleep};
use ipc::{CapSlot, Error, ObjectType, Rights};
use mgmt::history::History;
use mgmt::plan::Grant;
use user::{layout, sys};

use crate::spawn::{failed, push, Env, Failure, Instance};
use crate::supervise::Supervisor;

/// Where `mgmt` maps guest `i`'s console pages: `CONSOLES_VA + i * STRIDE`.
const CONSOLES_VA: u64 = layout::FREE_BASE + (1 << 40);
const STRIDE: u64 = 1 << 20;
/// The most messages drained from one guest's output ring per round.
pub const DRAIN_MESSAGES: usize = 32;

/// One guest's console.
pub struct GuestConsole {
    page: CapSlot,
    words: &'static [AtomicU32],
    out: Consumer<'static>,
    input: Producer<'static>,
    pub history: History,
    /// The running VMM's notification.
    bell: Option<CapSlot>,
    broken: bool,
}

fn ring_layout() -> Result<RingLayout, Error> {
    RingLayout::new(CONSOLE_RING.0, CONSOLE_RING.1)
}

impl GuestConsole {
    /// Makes and maps the pages of plan domain `index`'s console.
    fn make(this: CapSlot, index: usize) -> Result<Self, Failure> {
        let page = sys::memory_create(this, CONSOLE_PAGES).map_err(failed("making a console's pages"))?;
        let va = CONSOLES_VA + index as u64 * STRIDE;
        if let Err(e) = sys::memory_map(page, this, va, Rights::READ | Rights::WRITE) {
            let _ = sys::cap_delete(page);
            return Err(Failure::Sys { what: "mapping a console's pages", error: e });
        }
        let bytes = (CONSOLE_PAGES * layout::PAGE) as usize;
        // SAFETY: the pages are mapped readable and writable at `va` for
        // mgmt's whole life (never unmapped: the console is kept for every
        // later instance), page-aligned, and only ever touched through
        // these atomics here; what a VMM writes there is a race on atomics.
        let words = unsafe { core::slice::from_raw_parts(va as *const AtomicU32, bytes / 4) };
        let (out, input) = Self::rings(words).map_err(failed("laying out a console's rings"))?;
        Ok(Self { page, words, out, input, history: History::new(), bell: None, broken: false })
    }

    fn rings(words: &'static [AtomicU32]) -> Result<(Consumer<'static>, Producer<'static>), Error> {
        let l = ring_layout()?;
        let at = |offset: usize| words.get(offset / 4..(offset + l.bytes()) / 4).ok_or(Error::Malformed);
        let out = Consumer::new(Region::from_words(at(CONSOLE_OUT_AT)?), l)?;
        let input = Producer::new(Region::from_words(at(CONSOLE_IN_AT)?), l)?;
        Ok((out, input))
    }

    /// Fresh rings for a new VMM instance (the old one is gone).
    fn reset(&mut self) -> Result<(), Error> {
        for w in self.words {
            w.store(0, Ordering::Relaxed);
        }
        (self.out, self.input) = Self::rings(self.words)?;
        self.broken = false;
        Ok(())
    }

    /// Drains the output ring into the history (at most
    /// [`DRAIN_MESSAGES`]); whether messages were left; the error if the
    /// VMM broke the ring (the console is then off).
    fn drain(&mut self) -> Result<bool, Error> {
        if self.broken {
            return Ok(false);
        }
        let mut buf = [0u8; CONSOLE_RING.1 as usize];
        for _ in 0..DRAIN_MESSAGES {
            match self.out.pop(&mut buf) {
                Ok((n, _)) => self.history.push(buf.get(..n).unwrap_or_default()),
                Err(Error::WouldBlock) => match self.out.prepare_to_sleep() {
                    Ok(Sleep::Wait) => return Ok(false),
                    Ok(_) => continue,
                    Err(e) => return Err(self.off(e)),
                },
                Err(e) => return Err(self.off(e)),
            }
        }
        Ok(true)
    }

    fn off(&mut self, e: Error) -> Error {
        self.broken = true;
        e
    }
}

/// Gives the VMM of plan domain `index` its console: the pages (made at
/// its first start), a notification of its own and mgmt's.
pub fn give(env: &mut Env, inst: &mut Instance, index: usize, cap: &str) -> Result<(), Failure> {
    let this = env.this;
    let mgmt_bell = env.bell;
    while env.consoles.len() <= index {
        env.consoles.push(None);
    }
    let slot = env.consoles.get_mut(index).ok_or(Failure::Unavailable("a console"))?;
    if slot.is_none() {
        *slot = Some(GuestConsole::make(this, index)?);
    }
    let c = slot.as_mut().ok_or(Failure::Unavailable("a console"))?;
    c.reset().map_err(failed("resetting a console's rings"))?;
    let rw = Rights::READ | Rights::WRITE;
    let pages = sys::cap_grant(inst.domain, c.page, rw).map_err(failed("granting a console's pages"))?;
    push(inst, cap, pages, ObjectType::Memory, CONSOLE_PAGES * layout::PAGE)?;
    // The VMM's notification is its own (charged to it, gone with it);
    // mgmt keeps a copy to signal input.
    let bell = sys::notification_create(inst.domain).map_err(failed("making a console's notification"))?;
    inst.hold(bell);
    c.bell = Some(bell);
    let granted =
        sys::cap_grant(inst.domain, bell, rw).map_err(failed("granting a console's notification"))?;
    push(inst, CONSOLE_BELL_CAP, granted, ObjectType::Notification, 0)?;
    let ours = sys::cap_grant(inst.domain, mgmt_bell, Rights::WRITE)
        .map_err(failed("granting mgmt's notification"))?;
    push(inst, CONSOLE_MGMT_CAP, ours, ObjectType::Notification, 0)?;
    Ok(())
}

impl Supervisor {
    /// Drains every guest's output ring; whether some had more left.
    pub fn drain_consoles(&mut self) -> bool {
        let mut more = false;
        for i in 0..self.env.consoles.len() {
            more |= self.drain_console(i);
        }
        more
    }

    fn drain_console(&mut self, i: usize) -> bool {
        let Some(Some(c)) = self.env.consoles.get_mut(i) else { return false };
        match c.drain() {
            Ok(more) => more,
            Err(e) => {
                let name = self.plan.domains.get(i).map_or("?", |d| d.name.as_str());
                log::warn!("warning: {name}: its VMM broke the console's output ring ({e:?}): console off");
                false
            }
        }
    }

    /// `ryokan console`: types `input` into guest `name`'s UART and reads
    /// its console log from `from`.
    pub fn console(&mut self, name: &str, from: u64, input: &[u8]) -> Body {
        let i = match self.plan.domains.iter().position(|d| d.name.as_str() == name) {
            Some(i) => i,
            None => return Body::Error(ControlError::NoSuchName),
        };
        let guest = self
            .plan
            .domains
            .get(i)
            .is_some_and(|d| d.grants.iter().any(|g| matches!(g, Grant::Console { .. })));
        if !guest {
            return Body::Error(ControlError::NotAGuest);
        }
        self.drain_console(i);
        let running = self.running.get(i).is_some_and(Option::is_some);
        let Some(Some(c)) = self.env.consoles.get_mut(i) else {
            return Body::Error(ControlError::NotRunning);
        };
        if c.broken {
            return Body::Error(ControlError::ConsoleBroken);
        }
        let mut taken = 0;
        if running && !input.is_empty() {
            match c.input.push(input) {
                Ok(_) => {
                    taken = input.len() as u16;
                    if let Some(bell) = c.bell {
                        // A hint: the VMM also looks when the guest
                        // touches its UART.
                        let _ = sys::signal(bell, CONSOLE_INPUT_BIT);
                    }
                }
                Err(Error::WouldBlock) => {}
                Err(e) => {
                    c.off(e);
                    log::warn!(
                        "warning: {name}: its VMM broke the console's input ring ({e:?}): console off"
                    );
                    return Body::Error(ControlError::ConsoleBroken);
                }
            }
        }
        let mut buf = [0u8; CONSOLE_OUTPUT_MAX];
        let (start, n) = c.history.read(from, &mut buf);
        let output = heapless::Vec::from_slice(buf.get(..n).unwrap_or_default()).unwrap_or_default();
        Body::Console { start, output, taken, running }
    }
}
