//! A fixed pool of kernel objects of one type. Each slot has a generation
//! that grows when its object is destroyed, so a reference to a dead object
//! (a capability, a domain id) is recognisably stale. The kernel has no heap:
//! every object lives in a pool, and the pools' sizes bound the kernel's
//! memory.

pub use crate::cap::Ref;

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A pool of up to `N` objects.
pub struct Pool<T, const N: usize> {
    slots: [Slot<T>; N],
    used: usize,
}

impl<T, const N: usize> Pool<T, N> {
    const EMPTY: Slot<T> = Slot { generation: 0, value: None };

    pub const fn new() -> Self {
        Self { slots: [Self::EMPTY; N], used: 0 }
    }

    /// Stores `value`; `Err(value)` if the pool is full.
    pub fn insert(&mut self, value: T) -> Result<Ref, T> {
        let Some(index) = self.slots.iter().position(|s| s.value.is_none()) else {
            return Err(value);
        };
        let slot = &mut self.slots[index];
        slot.value = Some(value);
        self.used += 1;
        Ok(Ref { index: index as u16, generation: slot.generation })
    }

    /// The live object `r` names.
    pub fn get(&self, r: Ref) -> Option<&T> {
        self.slots.get(usize::from(r.index)).filter(|s| s.generation == r.generation)?.value.as_ref()
    }

    pub fn get_mut(&mut self, r: Ref) -> Option<&mut T> {
        self.slots.get_mut(usize::from(r.index)).filter(|s| s.generation == r.generation)?.value.as_mut()
    }

    /// The live object in slot `index`, whatever its generation: for what
    /// names its owner by slot alone (`obj::window`'s chunks), which holds
    /// nothing past its owner's death.
    pub fn at_mut(&mut self, index: u16) -> Option<&mut T> {
        self.slots.get_mut(usize::from(index))?.value.as_mut()
    }

    /// Takes the object out; every reference to it is stale from now on.
    pub fn remove(&mut self, r: Ref) -> Option<T> {
        let slot = self.slots.get_mut(usize::from(r.index)).filter(|s| s.generation == r.generation)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.used -= 1;
        Some(value)
    }

    /// Drops the object where it lies (for objects too large to move
    /// through a kernel stack); true if it was live. Every reference to it
    /// is stale from now on.
    pub fn discard(&mut self, r: Ref) -> bool {
        let Some(slot) = self.slots.get_mut(usize::from(r.index)).filter(|s| s.generation == r.generation)
        else {
            return false;
        };
        if slot.value.is_none() {
            return false;
        }
        slot.value = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.used -= 1;
        true
    }

    /// The first live object that satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&T) -> bool) -> Option<Ref> {
        self.iter().find(|(_, x)| pred(x)).map(|(r, _)| r)
    }

    /// Objects in the pool.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Every live object with its reference, in slot order. The walk ends
    /// at the last live one (`used` of them seen), not at the pool's end:
    /// `insert` fills the lowest free slot, so the live objects sit low, and
    /// a search that finds nothing (a guest's OUT to a port that is no
    /// doorbell, on every such exit) reads only their slots: 64 doorbell
    /// slots read for one doorbell cost an OUT via the VMM 218
    /// instructions (1,779 -> 1,561 on Bochs VT-x).
    pub fn iter(&self) -> impl Iterator<Item = (Ref, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((Ref { index: i as u16, generation: s.generation }, s.value.as_ref()?)))
            .take(self.used)
    }

    /// Every live object, mutably (as [`Self::iter`]).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Ref, &mut T)> {
        let used = self.used;
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| {
                let generation = s.generation;
                Some((Ref { index: i as u16, generation }, s.value.as_mut()?))
            })
            .take(used)
    }
}

impl<T, const N: usize> Default for Pool<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/obj/pool.rs"]
mod tests;
