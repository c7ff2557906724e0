//! A domain's capability table: slots with generations. A capability names
//! an object (by pool reference), carries rights, and records the object's
//! grant epoch when it was made: revoking an object starts a new epoch, and
//! every copy from an older one (except the original) is stale.

use ipc::{CapSlot, Error, ObjectType, Rights};

use crate::obj::pool::Ref;

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
struct Slot {
    generation: u32,
    cap: Option<Cap>,
}

/// A table of [`SLOTS`] capabilities.
pub struct CapTable {
    slots: [Slot; SLOTS],
}

impl CapTable {
    pub const fn new() -> Self {
        Self { slots: [Slot { generation: 0, cap: None }; SLOTS] }
    }

    /// Puts `cap` in the first free slot.
    pub fn insert(&mut self, cap: Cap) -> Result<CapSlot, Error> {
        let (index, slot) =
            self.slots.iter_mut().enumerate().find(|(_, s)| s.cap.is_none()).ok_or(Error::OutOfSlots)?;
        slot.cap = Some(cap);
        Ok(CapSlot::new(index, slot.generation))
    }

    fn slot(&self, s: CapSlot) -> Result<&Slot, Error> {
        let slot = self.slots.get(s.index()).ok_or(Error::InvalidCapability)?;
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
        let slot = &mut self.slots[s.index()];
        slot.cap = None;
        slot.generation = (slot.generation + 1) & CapSlot::MAX_GENERATION;
        Ok(cap)
    }

    /// The capability in slot number `i`, if any.
    pub fn at(&self, i: usize) -> Option<Cap> {
        self.slots.get(i).and_then(|s| s.cap)
    }

    /// Empties slot number `i` (if it held a capability, its handles
    /// become stale).
    pub fn clear(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i).filter(|s| s.cap.is_some()) {
            slot.cap = None;
            slot.generation = (slot.generation + 1) & CapSlot::MAX_GENERATION;
        }
    }

    /// Empties every slot whose capability matches `pred`; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Cap) -> bool) -> usize {
        let mut n = 0;
        for slot in self.slots.iter_mut() {
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
        self.slots.iter().filter(|s| s.cap.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every capability held, with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (CapSlot, &Cap)> {
        self.slots
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn mem(i: u16) -> Cap {
        Cap::new(ObjectType::Memory, Ref { index: i, generation: 0 }, Rights::all())
    }

    #[test]
    fn forged_and_stale_slots_are_told_apart() {
        let mut t = CapTable::new();
        let s = t.insert(mem(1)).unwrap();
        assert_eq!(t.get(s), Ok(mem(1)));
        assert_eq!(t.get(CapSlot::new(s.index() + 1, 0)), Err(Error::InvalidCapability), "empty slot");
        assert_eq!(t.get(CapSlot::new(4000, 0)), Err(Error::InvalidCapability), "out of range");
        assert_eq!(t.get(CapSlot::new(s.index(), 7)), Err(Error::InvalidCapability), "future generation");
        t.remove(s).unwrap();
        assert_eq!(t.get(s), Err(Error::StaleCapability));
        let s2 = t.insert(mem(2)).unwrap();
        assert_eq!(s2.index(), s.index());
        assert_eq!(t.get(s), Err(Error::StaleCapability), "the reused slot keeps old handles stale");
        assert_eq!(t.get(s2), Ok(mem(2)));
    }

    #[test]
    fn derivation_never_adds_rights() {
        let c = mem(1);
        let r = c.copy(Rights::READ | Rights::GRANT, 0, None).unwrap();
        assert!(!r.original);
        assert_eq!(r.copy(Rights::WRITE, 0, None), Err(Error::InsufficientRights));
        assert_eq!(c.copy(Rights::REVOKE, 0, None), Err(Error::InsufficientRights));
        assert_eq!(r.check(ObjectType::Domain, Rights::empty()), Err(Error::WrongType));
        assert_eq!(r.check(ObjectType::Memory, Rights::WRITE), Err(Error::InsufficientRights));
        assert!(r.check(ObjectType::Memory, Rights::READ).is_ok());
    }

    #[test]
    fn fills_up_and_purges() {
        let mut t = CapTable::new();
        for i in 0..SLOTS {
            t.insert(mem(i as u16)).unwrap();
        }
        assert_eq!(t.insert(mem(0)), Err(Error::OutOfSlots));
        assert_eq!(t.remove_where(|c| c.obj.at.index % 2 == 0), SLOTS / 2);
        assert_eq!(t.len(), SLOTS / 2);
    }

    #[test]
    fn every_copy_is_of_the_current_epoch() {
        // The original of a memory object revoked twice (epoch 2) stays
        // epoch 0; a copy of it, or of a copy, is stamped with the epoch given.
        let c = mem(1);
        let r = c.copy(Rights::READ | Rights::GRANT, 2, None).unwrap();
        assert_eq!(r.epoch, 2);
        assert_eq!(r.copy(Rights::READ, 3, None).map(|x| x.epoch), Ok(3));
    }

    #[test]
    fn only_an_unbadged_capability_with_control_can_be_badged() {
        let ep =
            Cap::new(ObjectType::Endpoint, Ref { index: 3, generation: 0 }, Rights::all() - Rights::REVOKE);
        let minted = ep.copy(Rights::WRITE | Rights::GRANT | Rights::CONTROL, 0, Some(7)).unwrap();
        assert_eq!((minted.badge, minted.rights), (7, Rights::WRITE | Rights::GRANT), "CONTROL dropped");
        assert_eq!(minted.copy(Rights::WRITE, 0, Some(8)), Err(Error::InsufficientRights), "re-badged");
        let client = ep.copy(Rights::WRITE | Rights::GRANT, 0, None).unwrap();
        assert_eq!(client.copy(Rights::WRITE, 0, Some(8)), Err(Error::InsufficientRights), "no CONTROL");
        // A badged copy passed on (granted, sent) keeps its badge.
        assert_eq!(minted.copy(Rights::WRITE, 0, None).map(|x| x.badge), Ok(7));
        assert_eq!(mem(1).copy(Rights::READ, 0, Some(1)), Err(Error::WrongType));
    }

    proptest! {
        /// Against a model: any sequence of inserts, removes and lookups with
        /// arbitrary (often forged) handles answers as the model does.
        #[test]
        fn matches_a_model(ops in prop::collection::vec((0u8..3, any::<u32>()), 1..400)) {
            let mut t = CapTable::new();
            let mut live: HashMap<u32, Cap> = HashMap::new();
            let mut dead: Vec<u32> = vec![];
            let mut issued: Vec<u32> = vec![];
            for (op, x) in ops {
                match op {
                    0 => match t.insert(mem(x as u16)) {
                        Ok(s) => { live.insert(s.0, mem(x as u16)); issued.push(s.0); }
                        Err(e) => prop_assert_eq!(e, Error::OutOfSlots),
                    },
                    1 if !issued.is_empty() => {
                        let h = issued[x as usize % issued.len()];
                        let r = t.remove(CapSlot(h));
                        if let Some(c) = live.remove(&h) { prop_assert_eq!(r, Ok(c)); dead.push(h); }
                        else { prop_assert!(r.is_err()); }
                    }
                    _ => {
                        let h = if x % 2 == 0 && !dead.is_empty() { dead[x as usize % dead.len()] } else { x };
                        match live.get(&h) {
                            Some(c) => prop_assert_eq!(t.get(CapSlot(h)), Ok(*c)),
                            None => prop_assert!(t.get(CapSlot(h)).is_err()),
                        }
                        if dead.contains(&h) && !live.contains_key(&h) {
                            prop_assert_eq!(t.get(CapSlot(h)), Err(Error::StaleCapability));
                        }
                    }
                }
            }
        }
    }
}
