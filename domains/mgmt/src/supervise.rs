//! Starting the manifest's domains and supervising them: every exit and
//! fault is logged, the domain destroyed and, per its policy, restarted;
//! when none is left running or pending, `mgmt` exits and the system stops.

use alloc::vec::Vec;

use ipc::event::Event;
use ipc::guest::HANDOVER;
use ipc::manifest::Name;
use ipc::msg::{Incoming, Message};
use ipc::{CapSlot, Error, ObjectType};
use mgmt::plan::{Grant, Plan, SharedPlan};
use mgmt::policy::Outcome;
use mgmt::report::Report;
use mgmt::tracker::Tracker;
use mgmt::verdict::{self, Verdicts};
use user::{arch, layout, sys, time, Caps, StartInfo};

use crate::control::{After, Channel};
use crate::modules::Modules;
use crate::spawn::{self, Env, Failure, Instance};
use crate::uart::{self, Uart};

/// The bits of mgmt's one notification: a supervised domain died; a
/// restart is due.
const DEATH: u64 = 1 << 0;
const RESTART_DUE: u64 = 1 << 1;
/// The control channel's line has bytes (its interrupt, or mgmt's own
/// signal when it left some for the next round).
const CONTROL: u64 = 1 << 2;

pub(crate) struct Supervisor {
    /// The manifest's domains, and those `ryokan create` added after them.
    pub(crate) plan: alloc::boxed::Box<Plan>,
    /// What mgmt waits on: every supervised domain's death and its restart
    /// timer signal it (DESIGN.md §4: supervision on notifications).
    bell: CapSlot,
    pub(crate) env: Env,
    /// The running instance of each domain of the plan.
    pub(crate) running: Vec<Option<Instance>>,
    pub(crate) tracker: Tracker,
    /// How each guest's last instance ended: the run's verdict.
    pub(crate) verdicts: Verdicts,
    /// Whether each domain's running instance is paused (`ryokan pause`).
    pub(crate) paused: Vec<bool>,
    /// The CPU share set by hand (`ryokan set`) for each domain, kept
    /// across its restarts; None: the plan's.
    pub(crate) shares: Vec<Option<(u16, u8)>>,
    /// The control channel, if COM2 is there.
    pub(crate) control: Option<Channel>,
    /// When mgmt started supervising (TSC).
    pub(crate) started: u64,
    /// Frames the control channel answered, and answers it dropped (the
    /// host did not read them in time).
    pub(crate) answered: u64,
    pub(crate) dropped: u64,
    /// `ryokan create`'s pieces so far.
    pub(crate) upload: alloc::boxed::Box<ipc::control::Upload>,
    /// `ryokan upload`'s image under way.
    pub(crate) image_upload: Option<crate::images::Pending>,
}

/// Starts every domain of `plan`, supervises them until all are stopped for
/// good, and returns mgmt's exit code.
pub fn run(start: &'static StartInfo, this: CapSlot, modules: Modules, plan: alloc::boxed::Box<Plan>) -> u64 {
    let Some(console) = start.console() else { return 1 };
    if start.tsc_per_ms == 0 {
        log::warn!(
            "warning: the TSC rate is unknown: delays assume {} ticks per ms",
            time::FALLBACK_TSC_PER_MS
        );
    }
    let bell = match sys::notification_create(this) {
        Ok(n) => n,
        Err(e) => {
            log::error!("cannot make mgmt's notification: {e:?}");
            return 1;
        }
    };
    let env = Env {
        this,
        bell,
        consoles: Vec::new(),
        start,
        console,
        ioports: start.slot("ioports"),
        tsc_per_ms: time::tsc_per_ms(),
        wall: crate::guest::wall_clock(start.slot("ioports")),
        modules,
        regions: make_regions(this, &plan),
        ports: Vec::new(),
        endpoints: make_channels(this, "endpoint", &plan.endpoints, sys::endpoint_create),
        notifications: make_channels(this, "notification", &plan.notifications, sys::notification_create),
        supervisor: sys::endpoint_create(this)
            .map_err(|e| {
                log::warn!("warning: no supervision endpoint ({e:?}): guests are seen as their VMMs")
            })
            .ok(),
    };
    let control = open_control(start, &plan, bell);
    let mut env = env;
    if env.supervisor.is_some() {
        // mgmt then waits by receiving on the supervision endpoint, its
        // notification ending the receive (DESIGN.md §4).
        if let Err(e) = sys::notification_bind(bell) {
            log::warn!("warning: cannot bind mgmt's notification ({e:?}): guests are seen as their VMMs");
            env.supervisor = None;
        }
    }
    let mut s = Supervisor {
        bell,
        env,
        running: (0..plan.domains.len()).map(|_| None).collect(),
        tracker: Tracker::new(plan.domains.iter().map(|d| d.restart), time::tsc_per_ms()),
        verdicts: Verdicts::new(
            plan.domains.iter().map(|d| d.grants.iter().any(|g| matches!(g, Grant::GuestConfig { .. }))),
        ),
        paused: plan.domains.iter().map(|_| false).collect(),
        shares: plan.domains.iter().map(|_| None).collect(),
        plan,
        control,
        started: arch::rdtsc(),
        answered: 0,
        dropped: 0,
        upload: alloc::boxed::Box::new(ipc::control::Upload::new()),
        image_upload: None,
    };
    s.start_all();
    s.supervise()
}

/// The control channel on COM2, unless the manifest gives its ports or its
/// interrupt line to a domain (then that domain's it is), or it is absent.
fn open_control(start: &StartInfo, plan: &Plan, bell: CapSlot) -> Option<Channel> {
    let end = uart::BASE + uart::PORTS;
    let taken = plan.domains.iter().flat_map(|d| d.grants.iter()).any(|g| match *g {
        Grant::IoPorts { base, count, .. } => {
            base < end && u32::from(base) + u32::from(count) > u32::from(uart::BASE)
        }
        Grant::Irq { line, .. } => line == uart::IRQ,
        _ => false,
    });
    if taken {
        log::info!("control: COM2 is a domain's (the manifest gives its ports or interrupt): not served");
        return None;
    }
    let irq = start.slot(&alloc::format!("irq:{}", uart::IRQ));
    match Uart::open(start.slot("ioports"), irq, bell, CONTROL) {
        Ok(u) => {
            log::info!("control: serving on COM2 (ports {:#x}, interrupt {})", uart::BASE, uart::IRQ);
            Some(Channel::new(u))
        }
        Err(why) => {
            log::info!("control: not served: {why}");
            None
        }
    }
}

/// Makes the manifest's shared regions, owned by mgmt, and says how large
/// they are.
fn make_regions(this: CapSlot, plan: &Plan) -> Vec<(Option<CapSlot>, u64)> {
    let make = |r: &SharedPlan| match sys::memory_create(this, r.pages) {
        Ok(m) => (Some(m), r.pages * layout::PAGE),
        Err(e) => {
            log::error!("cannot make shared region {} ({} pages): {e:?}", r.name, r.pages);
            (None, 0)
        }
    };
    plan.shared.iter().map(make).collect()
}

/// Makes the manifest's endpoints or notifications (`kind`), owned by mgmt,
/// so that they outlive the domains that use them: a restarted server is
/// found by its clients on the same endpoint.
fn make_channels(
    this: CapSlot,
    kind: &str,
    names: &[Name],
    create: fn(CapSlot) -> Result<CapSlot, Error>,
) -> Vec<Option<CapSlot>> {
    let make = |name: &Name| match create(this) {
        Ok(slot) => Some(slot),
        Err(e) => {
            log::error!("cannot make {kind} {name}: {e:?}");
            None
        }
    };
    names.iter().map(make).collect()
}

impl Supervisor {
    /// Creates every domain, then gives them each other, then starts them.
    fn start_all(&mut self) {
        for i in 0..self.plan.domains.len() {
            let Some(d) = self.plan.domains.get(i) else { continue };
            for note in &d.notes {
                log::warn!("warning: {}: {note}", d.name);
            }
            match spawn::create(&mut self.env, d, i, 0) {
                Ok(inst) => self.running[i] = Some(inst),
                Err(f) => self.refuse(i, &f),
            }
        }
        for i in 0..self.plan.domains.len() {
            self.grant_peers(i);
        }
        for i in 0..self.plan.domains.len() {
            self.launch(i);
        }
    }

    /// Starts domain `i` again after a failure (or by hand), with the CPU
    /// share last set by hand, unpaused.
    pub(crate) fn restart(&mut self, i: usize) {
        let Some(d) = self.plan.domains.get(i) else { return };
        let generation = u64::from(self.tracker.restarts(i));
        if let Some(p) = self.paused.get_mut(i) {
            *p = false;
        }
        self.verdicts.clear(i);
        match spawn::create(&mut self.env, d, i, generation) {
            Ok(inst) => {
                if let Some((w, c)) = self.shares.get(i).copied().flatten() {
                    if let Err(e) = sys::sched_set(inst.domain, w, c) {
                        log::warn!("warning: {}: its CPU share stays the plan's: {e:?}", d.name);
                    }
                }
                self.running[i] = Some(inst);
                self.grant_peers(i);
                self.launch(i);
            }
            Err(f) => self.refuse(i, &f),
        }
    }

    pub(crate) fn refuse(&mut self, i: usize, f: &Failure) {
        let name = self.plan.domains.get(i).map_or("?", |d| d.name.as_str());
        log::error!("cannot start {name}: {f}");
        log::info!("{}", Report::StoppedForGood { name });
        self.verdicts.not_started(i);
        self.running[i] = None;
        self.tracker.stop(i);
    }

    /// Gives domain `i` the running domains its plan names.
    pub(crate) fn grant_peers(&mut self, i: usize) {
        let Some(d) = self.plan.domains.get(i) else { return };
        for g in &d.grants {
            let Grant::Domain { cap, domain } = g else { continue };
            let peer = self.running.get(*domain).and_then(|p| p.as_ref()).map(|p| p.domain);
            let Some(Some(inst)) = self.running.get_mut(i) else { return };
            match peer {
                Some(peer) => {
                    if let Err(f) = spawn::grant_peer(inst, cap, peer) {
                        log::warn!("warning: {}: `{cap}` left out: {f}", d.name);
                    }
                }
                None => log::warn!("warning: {}: `{cap}` left out: that domain is not running", d.name),
            }
        }
    }

    pub(crate) fn launch(&mut self, i: usize) {
        let Some(Some(inst)) = self.running.get_mut(i) else { return };
        let Some(d) = self.plan.domains.get(i) else { return };
        let name = d.name.as_str();
        match spawn::launch(&self.env, inst, d.cpu) {
            Ok(()) => {
                if let Err(e) = sys::domain_notify(inst.domain, self.bell, DEATH) {
                    log::warn!("warning: {name}: its death will not be signalled: {e:?}");
                }
                log::info!("{}", Report::Started { name, id: inst.id });
                self.tracker.started(i, inst.id);
            }
            Err(f) => {
                if let Some(inst) = self.running[i].take() {
                    spawn::destroy(inst);
                }
                self.refuse(i, &f);
            }
        }
    }

    /// Waits on the one notification; on a death, collects the events; when
    /// a restart is due, restarts. Nothing is polled.
    fn supervise(&mut self) -> u64 {
        loop {
            while let Some(i) = self.tracker.due(arch::rdtsc()) {
                self.restart(i);
            }
            loop {
                match sys::domain_wait(false) {
                    Ok(event) => self.on_event(&event),
                    Err(Error::WouldBlock) => break,
                    Err(e) => {
                        log::error!("reading the domains' events failed: {e:?}: giving up");
                        return 1;
                    }
                }
            }
            if self.tracker.all_stopped() {
                log::info!("{}", Report::AllStopped);
                return self.verdict();
            }
            let drained_all = !self.drain_consoles();
            let (more, after) = self.serve_control();
            if let After::Shutdown = after {
                log::info!("{}", Report::AllStopped);
                return self.verdict();
            }
            if more {
                // Bytes left on the line: come back after this round.
                let _ = sys::signal(self.bell, CONTROL);
            }
            if !drained_all {
                // A guest's output left in its ring: likewise.
                let _ = sys::signal(self.bell, ipc::guest::CONSOLE_OUTPUT_BIT);
            }
            if self.tracker.due(arch::rdtsc()).is_some() {
                continue;
            }
            if let Some(due) = self.tracker.next_due() {
                let ticks_per_us = (time::tsc_per_ms() / 1000).max(1);
                let us = due.saturating_sub(arch::rdtsc()) / ticks_per_us;
                if let Err(e) = sys::timer_set(self.bell, RESTART_DUE, us.max(1), 0) {
                    log::error!("cannot set the restart timer: {e:?}: giving up");
                    return 1;
                }
            }
            if let Err(e) = self.wait() {
                log::error!("waiting on mgmt's notification failed: {e:?}: giving up");
                return 1;
            }
        }
    }

    /// The run's verdict, as mgmt's exit code: 1 (the system stops in
    /// failure) if any guest's last instance failed, each said.
    fn verdict(&self) -> u64 {
        let mut code = 0;
        let (passed, guests) = self.verdicts.finished();
        if guests > 0 {
            log::info!("{passed} of {guests} guests finished");
        }
        for (i, failure) in self.verdicts.failures() {
            let name = self.plan.domains.get(i).map_or("?", |d| d.name.as_str());
            log::error!("{}", verdict::Line { name, failure });
            code = 1;
        }
        code
    }

    /// Waits for the notification (or, with a supervision endpoint, for it
    /// or a VMM's handover, answered at once).
    fn wait(&mut self) -> Result<(), Error> {
        let Some(ep) = self.env.supervisor else { return sys::wait(self.bell).map(drop) };
        match sys::recv_any(ep)? {
            Incoming::Notified(_) => {}
            Incoming::Call { badge, msg } => {
                self.on_handover(badge, &msg);
                // The VMM may be gone meanwhile: nothing to do then.
                let _ = sys::reply(&Message::default());
            }
        }
        Ok(())
    }

    /// A VMM hands over its guest's domain: kept with its instance if the
    /// call is what `ipc::guest::HANDOVER` says, from a running VMM that
    /// did not hand one over yet, or whose guest is gone (a reboot: the
    /// VMM made it again, `vmm::reboot`; the stale capability is dropped);
    /// else dropped, and said.
    fn on_handover(&mut self, badge: u64, msg: &Message) {
        let i = usize::try_from(badge.wrapping_sub(1)).unwrap_or(usize::MAX);
        let is_vmm = self
            .plan
            .domains
            .get(i)
            .is_some_and(|d| d.grants.iter().any(|g| matches!(g, Grant::GuestConfig { .. })));
        let is_domain = |s: CapSlot| sys::cap_info(s).is_ok_and(|c| c.kind == Some(ObjectType::Domain));
        let inst = self
            .running
            .get_mut(i)
            .and_then(Option::as_mut)
            .filter(|inst| inst.guest.is_none_or(|g| !is_domain(g)));
        match (msg.cap, inst) {
            (Some(slot), Some(inst)) if is_vmm && msg.label == HANDOVER && is_domain(slot) => {
                if let Some(gone) = inst.guest.replace(slot) {
                    let _ = sys::cap_delete(gone);
                }
                // A share set by hand outlives the guest's restarts.
                if let Some((w, c)) = self.shares.get(i).copied().flatten() {
                    if let Err(e) = sys::sched_set(slot, w, c) {
                        log::warn!(
                            "warning: the guest of {} keeps its CPU share: {e:?}",
                            self.plan.domains[i].name
                        );
                    }
                }
            }
            (cap, _) => {
                if let Some(slot) = cap {
                    let _ = sys::cap_delete(slot);
                }
                let name = self.plan.domains.get(i).map_or("?", |d| d.name.as_str());
                log::warn!("warning: {name}: a handover refused (label {:#x}, badge {badge:#x})", msg.label);
            }
        }
    }

    fn on_event(&mut self, event: &Event) {
        let Some(i) = self.tracker.find(event.domain()) else {
            log::warn!(
                "warning: an event of domain {:#x}, which mgmt does not know: {event:?}",
                event.domain().0
            );
            return;
        };
        let name = self.plan.domains.get(i).map_or("?", |d| d.name.as_str());
        match *event {
            Event::Exited { code, .. } => log::info!("{}", Report::Exited { name, code }),
            Event::Faulted { fault, .. } => log::info!("{}", Report::Faulted { name, fault }),
        }
        self.verdicts.ended(i, event);
        self.on_death(i, event);
    }

    /// Domain `i` died (or was killed by hand): it is destroyed, and its
    /// policy decides whether it starts again.
    pub(crate) fn on_death(&mut self, i: usize, event: &Event) {
        let name = self.plan.domains.get(i).map_or("?", |d| d.name.as_str());
        if let Some(p) = self.paused.get_mut(i) {
            *p = false;
        }
        if let Some(inst) = self.running.get_mut(i).and_then(Option::take) {
            if let Some(faults) = sys::domain_info(inst.domain).ok().map(|x| x.dma_faults).filter(|&n| n > 0)
            {
                log::info!("{}", Report::DmaFaults { name, faults });
            }
            spawn::destroy(inst);
        }
        match self.tracker.on_event(i, event, arch::rdtsc()) {
            Outcome::Finished => {}
            Outcome::Restart { delay_ms, attempt, max } => {
                log::info!("{}", Report::Restarting { name, delay_ms, attempt, max })
            }
            Outcome::StoppedForGood => log::info!("{}", Report::StoppedForGood { name }),
        }
    }
}
