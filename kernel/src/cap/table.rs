//! A domain's capability table: slots with generations. A capability names
//! an object (by pool reference), carries rights, and records the object's
//! grant epoch when it was made: revoking an object starts a new epoch, and
//! every copy from an older one (except the original) is stale.

use ipc::{CapSlot, Error, ObjectType, Rights};

use super::Ref;

/// Slots per table.
pub const SLOTS: usize = ipc::cap::SLOTS;

/// The object a capability names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjRef {
    pub kind: ObjectType,
    pub at: Ref,
}

/// One capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    pub obj: ObjRef,
    pub rights: Rights,
    /// The object's grant epoch when this copy was made.
    pub epoch: u32,
    /// Made with the object (not derived or granted): survives revocation.
    pub original: bool,
    /// For endpoints and notifications: what the receiver learns about who
    /// sent (set by `CapMint`).
    pub badge: u64,
}

impl Cap {
    /// The capability for a new object: all of `rights`, original.
    pub const fn new(kind: ObjectType, at: Ref, rights: Rights) -> Self {
        Self { obj: ObjRef { kind, at }, rights, epoch: 0, original: true, badge: 0 }
    }

    /// This capability if it names a `kind` object and has `needed`.
    pub fn check(self, kind: ObjectType, needed: Rights) -> Result<Cap, Error> {
        if self.obj.kind != kind {
            Err(Error::WrongType)
        } else if !self.rights.contains(needed) {
            Err(Error::InsufficientRights)
        } else {
            Ok(self)
        }
    }

    /// A copy with `rights`: the one rule for every copy a domain makes
    /// (derive, grant, mint, IPC transfer). Its rights are a subset of this
    /// one's, never REVOKE; it is never original, and it is stamped with
    /// `epoch`, its object's current grant epoch (so a copy made after a
    /// revocation is current, whatever the epoch of the copy it came from).
    ///
    /// With `badge`, a badged copy of an endpoint or notification (`CapMint`).
    /// As in seL4, only an unbadged capability can be badged, and only with
    /// CONTROL (which the object's creator holds and clients are not given);
    /// the badged copy never carries CONTROL, so it can never be badged
    /// again: a client cannot take another client's badge.
    pub fn copy(self, rights: Rights, epoch: u32, badge: Option<u64>) -> Result<Cap, Error> {
        if !self.rights.contains(rights) || rights.contains(Rights::REVOKE) {
            return Err(Error::InsufficientRights);
        }
        let copy = Cap { rights, epoch, original: false, ..self };
        let Some(badge) = badge else { return Ok(copy) };
        if !matches!(self.obj.kind, ObjectType::Endpoint | ObjectType::Notification) {
            return Err(Error::WrongType);
        }
        if !self.rights.contains(Rights::CONTROL) || self.badge != 0 {
            return Err(Error::InsufficientRights);
        }
        Ok(Cap { rights: rights - Rights::CONTROL, badge, ..copy })
    }
}

#[derive(Clone, Copy)]
pub struct Slot {
    generation: u32,
    cap: Option<Cap>,
}

/// An empty slot.
pub const EMPTY: Slot = Slot { generation: 0, cap: None };

/// A table of [`SLOTS`] capabilities in place, or of more elsewhere (the
/// root's, which holds a capability for each domain it starts).
pub struct CapTable {
    inline: [Slot; SLOTS],
    wide: Option<&'static mut [Slot]>,
}

impl CapTable {
    pub const fn new() -> Self {
        Self { inline: [EMPTY; SLOTS], wide: None }
    }

    /// The table of the empty `slots` (at most 4,096: a handle's index has
    /// 12 bits) in place of the slots it has (empty too).
    pub fn widen(&mut self, slots: &'static mut [Slot]) {
        self.wide = Some(slots);
    }

    #[inline(always)]
    fn slots(&self) -> &[Slot] {
        self.wide.as_deref().unwrap_or(&self.inline)
    }

    fn slots_mut(&mut self) -> &mut [Slot] {
        self.wide.as_deref_mut().unwrap_or(&mut self.inline)
    }

    /// How many slots it has.
    pub fn capacity(&self) -> usize {
        self.slots().len()
    }

    /// Puts `cap` in the first free slot.
    pub fn insert(&mut self, cap: Cap) -> Result<CapSlot, Error> {
        let (index, slot) = self
            .slots_mut()
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.cap.is_none())
            .ok_or(Error::OutOfSlots)?;
        slot.cap = Some(cap);
        Ok(CapSlot::new(index, slot.generation))
    }

    fn slot(&self, s: CapSlot) -> Result<&Slot, Error> {
        let slot = self.slots().get(s.index()).ok_or(Error::InvalidCapability)?;
        // A handle from an earlier generation is stale; one from a later
        // generation, or for an empty slot, was never issued: forged.
        if s.generation() < slot.generation {
            Err(Error::StaleCapability)
        } else if s.generation() > slot.generation || slot.cap.is_none() {
            Err(Error::InvalidCapability)
        } else {
            Ok(slot)
        }
    }

    /// The capability in `s`.
    pub fn get(&self, s: CapSlot) -> Result<Cap, Error> {
        self.slot(s)?.cap.ok_or(Error::InvalidCapability)
    }

    /// Empties `s`; the handle becomes stale.
    pub fn remove(&mut self, s: CapSlot) -> Result<Cap, Error> {
        let cap = self.get(s)?;
        let slot = &mut self.slots_mut()[s.index()];
        slot.cap = None;
        slot.generation = (slot.generation + 1) & CapSlot::MAX_GENERATION;
        Ok(cap)
    }

    /// The capability in slot number `i`, if any.
    pub fn at(&self, i: usize) -> Option<Cap> {
        self.slots().get(i).and_then(|s| s.cap)
    }

    /// Empties slot number `i` (if it held a capability, its handles
    /// become stale).
    pub fn clear(&mut self, i: usize) {
        if let Some(slot) = self.slots_mut().get_mut(i).filter(|s| s.cap.is_some()) {
            slot.cap = None;
            slot.generation = (slot.generation + 1) & CapSlot::MAX_GENERATION;
        }
    }

    /// Empties every slot whose capability matches `pred`; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Cap) -> bool) -> usize {
        let mut n = 0;
        for slot in self.slots_mut().iter_mut() {
            if slot.cap.as_ref().is_some_and(&mut pred) {
                slot.cap = None;
                slot.generation = (slot.generation + 1) & CapSlot::MAX_GENERATION;
                n += 1;
            }
        }
        n
    }

    /// Capabilities held.
    pub fn len(&self) -> usize {
        self.slots().iter().filter(|s| s.cap.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every capability held, with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (CapSlot, &Cap)> {
        self.slots()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((CapSlot::new(i, s.generation), s.cap.as_ref()?)))
    }
}

impl Default for CapTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/cap/table.rs"]
mod tests;
