//! The control API (`ipc::control`) as `mgmt` serves it on COM2: frames
//! cut from the line, each request checked and carried out, one response
//! per frame. It runs inside the supervision loop, a bounded number of
//! bytes per wake-up ([`DRAIN_MAX`]), so a client that never stops talking
//! delays supervision by at most that much, never stops it.

use heapless::Vec;
use ipc::control::{
    Body, ControlError, Entry, FrameEvent, Framer, Kind, Name, Request, Response, State, Stats, Usage, Verb,
    MAX_REQUEST, MAX_RESPONSE,
};
use ipc::event::Event;
use mgmt::plan::{Grant, DEFAULT_WEIGHT};
use mgmt::report::{Report, EXIT_KILLED};
use mgmt::tracker;
use user::{arch, sys, time};

use crate::spawn;
use crate::supervise::Supervisor;
use crate::uart::Uart;

/// The most bytes read from the line per wake-up; if more wait, `mgmt`
/// signals itself and comes back after a round of supervision.
pub const DRAIN_MAX: usize = 512;

/// The channel: its line and the frame being received.
pub struct Channel {
    pub uart: Uart,
    framer: Framer<MAX_REQUEST>,
}

/// What a request asks of the supervision loop once it is answered.
pub enum After {
    Nothing,
    Shutdown,
}

impl Channel {
    pub fn new(uart: Uart) -> Self {
        Self { uart, framer: Framer::new() }
    }
}

impl Supervisor {
    /// Serves what the line holds, up to [`DRAIN_MAX`] bytes; returns
    /// whether bytes were left, and what the loop must do.
    pub fn serve_control(&mut self) -> (bool, After) {
        let Some(mut ch) = self.control.take() else { return (false, After::Nothing) };
        ch.uart.ack();
        let mut after = After::Nothing;
        // No busy-polling once the line is empty: waiting on for QEMU to
        // refill the FIFO (64 more status reads a round) made 10^5 fuzzed
        // frames take 93.8 s, against 66.3 s going straight back to wait.
        let mut n = 0;
        while n < DRAIN_MAX {
            let Some(byte) = ch.uart.read() else { break };
            n += 1;
            let response = match ch.framer.push(byte) {
                None => continue,
                Some(FrameEvent::TooLong) => Response::new(0, Body::Error(ControlError::TooLong)),
                Some(FrameEvent::Frame(frame)) => match Request::decode(frame) {
                    Err(e) => Response::new(0, Body::Error(e.into())),
                    Ok(req) => {
                        let (body, a) = self.carry_out(&req.verb);
                        if let After::Shutdown = a {
                            after = After::Shutdown;
                        }
                        Response::new(req.seq, body)
                    }
                },
            };
            let mut buf = [0u8; MAX_RESPONSE + 1];
            let sent = match response.encode(&mut buf) {
                Ok(frame) => ch.uart.write(frame),
                Err(_) => false,
            };
            self.answered += 1;
            if !sent {
                self.dropped += 1;
            }
            if let After::Shutdown = after {
                break;
            }
        }
        self.control = Some(ch);
        (n >= DRAIN_MAX, after)
    }

    fn find(&self, name: &str) -> Result<usize, ControlError> {
        self.plan.domains.iter().position(|d| d.name.as_str() == name).ok_or(ControlError::NoSuchName)
    }

    fn carry_out(&mut self, verb: &Verb) -> (Body, After) {
        let done = |r: Result<(), ControlError>| match r {
            Ok(()) => Body::Done,
            Err(e) => Body::Error(e),
        };
        let body = match verb {
            Verb::List => Body::List((0..self.plan.domains.len()).filter_map(|i| self.entry(i)).collect()),
            Verb::Info { name } => match self.find(name).map(|i| self.entry(i)) {
                Ok(Some(e)) => Body::Info(e),
                Ok(None) => Body::Error(ControlError::NoSuchName),
                Err(e) => Body::Error(e),
            },
            Verb::Pause { name } => done(self.find(name).and_then(|i| self.pause(i, true))),
            Verb::Resume { name } => done(self.find(name).and_then(|i| self.pause(i, false))),
            Verb::Kill { name } => done(self.find(name).and_then(|i| self.kill(i))),
            Verb::Restart { name } => done(self.find(name).and_then(|i| self.restart_by_hand(i))),
            Verb::Destroy { name } => done(self.find(name).and_then(|i| self.destroy(i))),
            Verb::Set { name, weight, cap_percent } => {
                done(self.find(name).and_then(|i| self.set(i, *weight, *cap_percent)))
            }
            Verb::Stats { name } => match name.as_ref().map(|n| self.find(n)).transpose() {
                Ok(only) => Body::Stats(self.stats(only)),
                Err(e) => Body::Error(e),
            },
            Verb::Create { piece, pieces, sum, bytes } => {
                done(self.create_piece(*piece, *pieces, *sum, bytes))
            }
            Verb::Console { name, from, input } => self.console(name, *from, input),
            Verb::UploadBegin { image, size, sha256 } => done(self.upload_begin(image, *size, *sha256)),
            Verb::UploadPiece { offset, bytes } => done(self.upload_piece(*offset, bytes)),
            Verb::UploadEnd => done(self.upload_end()),
            Verb::Shutdown => {
                log::info!("control: shutdown asked for");
                for i in 0..self.plan.domains.len() {
                    if let Some(inst) = self.running.get_mut(i).and_then(Option::take) {
                        spawn::destroy(inst);
                    }
                    self.tracker.stop(i);
                }
                return (Body::Done, After::Shutdown);
            }
        };
        (body, After::Nothing)
    }

    /// Domain `i` as the protocol shows it.
    fn entry(&self, i: usize) -> Option<Entry> {
        let d = self.plan.domains.get(i)?;
        let guest = d.grants.iter().find_map(|g| match g {
            Grant::GuestConfig { config, .. } => Some(config),
            _ => None,
        });
        let inst = self.running.get(i).and_then(Option::as_ref);
        let info = inst.and_then(|inst| sys::domain_info(inst.domain).ok());
        // A guest's share and CPU time are its own domain's (its vCPUs'),
        // once its VMM handed it over; its VMM's time is added.
        let guest_info = inst.and_then(|inst| inst.guest).and_then(|g| sys::domain_info(g).ok());
        let shown = guest_info.or(info);
        let (weight, cap_percent) = self.share(i);
        let state = match self.tracker.state(i)? {
            tracker::State::Running(_) if self.paused.get(i).copied().unwrap_or(false) => State::Paused,
            tracker::State::Running(_) => State::Running,
            tracker::State::Pending { due } => {
                let ticks = time::tsc_per_ms().max(1);
                State::Restarting { in_ms: due.saturating_sub(arch::rdtsc()) / ticks }
            }
            tracker::State::Stopped => State::Stopped,
        };
        Some(Entry {
            name: Name::try_from(d.name.as_str()).ok()?,
            kind: if guest.is_some() { Kind::Guest } else { Kind::Domain },
            state,
            id: inst.map_or(0, |inst| inst.id.0),
            memory_kib: u32::try_from(d.quota_pages * 4).unwrap_or(u32::MAX),
            guest_memory_kib: guest.map_or(0, |g| g.memory_kib),
            vcpus: guest.map_or(0, |g| g.vcpus.max(1)),
            weight: shown.map_or(weight, |x| x.weight),
            cap_percent: shown.map_or(cap_percent, |x| x.cap_percent),
            restarts: self.tracker.restarts(i),
            cpu_us: info.map_or(0, |x| x.cpu_us) + guest_info.map_or(0, |x| x.cpu_us),
            iommu_faults: info.map_or(0, |x| x.dma_faults),
        })
    }

    /// The CPU share domain `i` has, or is started with.
    pub fn share(&self, i: usize) -> (u16, u8) {
        let planned = self.plan.domains.get(i).and_then(|d| d.sched).unwrap_or((DEFAULT_WEIGHT, 0));
        self.shares.get(i).copied().flatten().unwrap_or(planned)
    }

    fn running_slot(&self, i: usize) -> Result<&spawn::Instance, ControlError> {
        self.running.get(i).and_then(Option::as_ref).ok_or(ControlError::NotRunning)
    }

    fn pause(&mut self, i: usize, paused: bool) -> Result<(), ControlError> {
        let inst = self.running_slot(i)?;
        if self.paused.get(i).copied() == Some(paused) {
            return Err(ControlError::AlreadyInState);
        }
        sys::domain_pause(inst.domain, paused).map_err(ControlError::kernel)?;
        let name = self.name(i);
        log::info!("control: {} {name}", if paused { "paused" } else { "resumed" });
        if let Some(p) = self.paused.get_mut(i) {
            *p = paused;
        }
        Ok(())
    }

    /// Fault injection: the domain is stopped as a failure (exit code
    /// [`EXIT_KILLED`]) and its restart policy decides what follows.
    fn kill(&mut self, i: usize) -> Result<(), ControlError> {
        let id = self.running_slot(i)?.id;
        log::info!("{}", Report::Killed { name: self.name(i) });
        self.verdicts.clear(i);
        self.on_death(i, &Event::Exited { domain: id, code: EXIT_KILLED });
        Ok(())
    }

    fn restart_by_hand(&mut self, i: usize) -> Result<(), ControlError> {
        if let Some(inst) = self.running.get_mut(i).and_then(Option::take) {
            spawn::destroy(inst);
        }
        log::info!("control: restarting {}", self.name(i));
        self.verdicts.clear(i);
        self.tracker.restarted_by_hand(i);
        self.restart(i);
        match self.tracker.state(i) {
            Some(tracker::State::Running(_)) => Ok(()),
            _ => Err(ControlError::StartFailed),
        }
    }

    fn destroy(&mut self, i: usize) -> Result<(), ControlError> {
        if self.tracker.state(i) == Some(tracker::State::Stopped) {
            return Err(ControlError::NotRunning);
        }
        if let Some(inst) = self.running.get_mut(i).and_then(Option::take) {
            spawn::destroy(inst);
        }
        self.tracker.stop(i);
        self.verdicts.clear(i);
        log::info!("control: destroyed {}", self.name(i));
        Ok(())
    }

    fn set(&mut self, i: usize, weight: Option<u16>, cap: Option<u8>) -> Result<(), ControlError> {
        if weight.is_none() && cap.is_none() {
            return Err(ControlError::NothingToSet);
        }
        let (w0, c0) = self.share(i);
        let (w, c) = (weight.unwrap_or(w0), cap.unwrap_or(c0));
        if let Some(inst) = self.running.get(i).and_then(Option::as_ref) {
            sys::sched_set(inst.domain, w, c).map_err(ControlError::kernel)?;
            if let Some(g) = inst.guest {
                sys::sched_set(g, w, c).map_err(ControlError::kernel)?;
            }
        }
        if let Some(s) = self.shares.get_mut(i) {
            *s = Some((w, c));
        }
        log::info!("control: {} now has weight {w}, cap {c}%", self.name(i));
        Ok(())
    }

    fn stats(&self, only: Option<usize>) -> Stats {
        let k = sys::stats().ok();
        let entries: Vec<Usage, { ipc::control::MAX_ENTRIES }> = (0..self.plan.domains.len())
            .filter(|&i| only.is_none_or(|o| o == i))
            .filter_map(|i| {
                let guest = self.running.get(i).and_then(Option::as_ref).and_then(|inst| inst.guest);
                let guest_cpu_us = guest.and_then(|g| sys::domain_info(g).ok()).map_or(0, |x| x.cpu_us);
                let exits = guest.and_then(|g| sys::guest_exits(g).ok());
                self.entry(i).map(|e| Usage {
                    name: e.name,
                    cpu_us: e.cpu_us,
                    guest_cpu_us,
                    memory_kib: e.memory_kib,
                    exits: exits.and_then(|x| Vec::from_slice(&x).ok()).unwrap_or_default(),
                })
            })
            .collect();
        let ticks = time::tsc_per_ms().max(1);
        Stats {
            free_frames: k.map_or(0, |k| k.free_frames),
            objects: k.map_or(0, |k| k.objects),
            uptime_ms: arch::rdtsc().saturating_sub(self.started) / ticks,
            frames: self.answered,
            dropped: self.dropped,
            entries,
        }
    }

    fn name(&self, i: usize) -> &str {
        self.plan.domains.get(i).map_or("?", |d| d.name.as_str())
    }
}
