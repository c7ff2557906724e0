//! Host tests of `cap::table` (not the kernel: `kernel/src/cap/table.rs` includes them).

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
    let ep = Cap::new(ObjectType::Endpoint, Ref { index: 3, generation: 0 }, Rights::all() - Rights::REVOKE);
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
