//! `ryokan create`: a new domain or guest from a manifest of that one entry,
//! uploaded in pieces (`ipc::control::Upload`), checked whole, then planned
//! and started as the manifest's own are, after them in the plan. Only what
//! stands alone is taken: the images must be on the boot image or uploaded
//! (`crate::images`), and the entry may name nothing of the running
//! system's (no shared regions, endpoints, notifications or other domains:
//! `ryokan` compiles the snippet alone, as the build would, and mgmt checks
//! again).

use alloc::boxed::Box;

use ipc::control::ControlError;
use ipc::manifest::{Manifest, MAX_GUESTS};
use ipc::Error;
use mgmt::plan::{Grant, MAX_PLANNED};

use crate::spawn::Failure;
use crate::supervise::Supervisor;

impl Supervisor {
    /// Takes one piece; after the last, starts the entry.
    pub(crate) fn create_piece(
        &mut self,
        piece: u16,
        pieces: u16,
        sum: u32,
        bytes: &[u8],
    ) -> Result<(), ControlError> {
        let entry = match self.upload.push(piece, pieces, sum, bytes)? {
            None => return Ok(()),
            Some(entry) => Manifest::decode(entry).map(Box::new).map_err(|_| ControlError::BadEntry)?,
        };
        self.create(&entry)
    }

    fn create(&mut self, m: &Manifest) -> Result<(), ControlError> {
        let alone = m.shared.is_empty() && m.endpoints.is_empty() && m.notifications.is_empty();
        if !alone || m.domains.len() + m.guests.len() != 1 {
            return Err(ControlError::BadEntry);
        }
        let plan = mgmt::plan::plan(m);
        let Some(d) = plan.domains.into_iter().next() else { return Err(ControlError::BadEntry) };
        if self.plan.domains.iter().any(|x| x.name == d.name) {
            return Err(ControlError::NameInUse);
        }
        if d.refusal.is_some() {
            return Err(ControlError::BadEntry);
        }
        for g in &d.grants {
            match g {
                Grant::Module { module, .. } if self.env.modules.image(module).is_none() => {
                    return Err(ControlError::UnknownImage)
                }
                Grant::Shared { .. }
                | Grant::Domain { .. }
                | Grant::Endpoint { .. }
                | Grant::Notification { .. } => return Err(ControlError::BadEntry),
                _ => {}
            }
        }
        if self.env.modules.image(&d.module).is_none() {
            return Err(ControlError::UnknownImage);
        }
        let free =
            user::sys::stats().map_or(0, |k| k.quota_limit.saturating_sub(k.quota_used).min(k.free_frames));
        // Guests stay within the manifest's bound (a `Stats` answer holds
        // the exits of at most that many).
        let is_guest =
            |p: &mgmt::plan::DomainPlan| p.grants.iter().any(|g| matches!(g, Grant::GuestConfig { .. }));
        let guests = self.plan.domains.iter().filter(|p| is_guest(p)).count();
        let room = self.plan.domains.len() < MAX_PLANNED && (!is_guest(&d) || guests < MAX_GUESTS);
        if d.quota_pages > free || !room {
            return Err(ControlError::NoMemory);
        }
        let i = self.plan.domains.len();
        let (name, restart) = (d.name.clone(), d.restart);
        if self.plan.domains.push(d).is_err() || !self.tracker.add(restart) {
            return Err(ControlError::NoMemory);
        }
        self.running.push(None);
        self.paused.push(false);
        self.shares.push(None);
        log::info!("control: creating {name}");
        let Some(plan) = self.plan.domains.get(i) else { return Err(ControlError::StartFailed) };
        let made = crate::spawn::create(&mut self.env, plan, i, 0);
        let refused = match made {
            Ok(inst) => {
                if let Some(r) = self.running.get_mut(i) {
                    *r = Some(inst);
                }
                self.launch(i);
                ControlError::StartFailed
            }
            Err(f) => {
                let e = match f {
                    Failure::Sys { error: Error::QuotaExceeded | Error::OutOfObjects, .. } => {
                        ControlError::NoMemory
                    }
                    _ => ControlError::StartFailed,
                };
                self.refuse(i, &f);
                e
            }
        };
        match self.tracker.state(i) {
            Some(mgmt::tracker::State::Running(_)) => Ok(()),
            _ => {
                self.forget_last();
                Err(refused)
            }
        }
    }

    /// Takes back the entry just added, which could not be made: its name
    /// is free again, as if it had never been asked for.
    fn forget_last(&mut self) {
        if self.running.last().is_some_and(Option::is_none) {
            self.plan.domains.pop();
            self.tracker.pop();
            self.running.pop();
            self.paused.pop();
            self.shares.pop();
        }
    }
}
