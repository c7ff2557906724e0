//! Host tests of `obj::pool` (not the kernel: `kernel/src/obj/pool.rs` includes them).

use super::*;

#[test]
fn stale_references_miss() {
    let mut p: Pool<u32, 2> = Pool::new();
    let a = p.insert(1).unwrap();
    let b = p.insert(2).unwrap();
    assert_eq!(p.insert(3), Err(3), "full");
    assert_eq!(p.remove(a), Some(1));
    assert_eq!(p.get(a), None, "stale after remove");
    assert_eq!(p.remove(a), None);
    let c = p.insert(4).unwrap();
    assert_eq!(c.index, a.index);
    assert_ne!(c.generation, a.generation);
    assert_eq!(p.get(a), None, "a reused slot does not revive the old reference");
    assert_eq!((p.get(b), p.get(c), p.used()), (Some(&2), Some(&4), 2));
    assert_eq!(p.get(Ref { index: 9, generation: 0 }), None);
}

#[test]
fn discard_drops_in_place_and_find_finds_the_first() {
    let mut p: Pool<u32, 4> = Pool::new();
    let a = p.insert(7).unwrap();
    let b = p.insert(8).unwrap();
    assert_eq!((p.find(|&x| x == 8), p.find(|&x| x > 6), p.find(|&x| x == 9)), (Some(b), Some(a), None));
    assert!(p.discard(a));
    assert!(!p.discard(a), "once");
    assert_eq!((p.get(a), p.used(), p.find(|&x| x > 6)), (None, 1, Some(b)));
    let c = p.insert(9).unwrap();
    assert_eq!(c.index, a.index);
    assert!(!p.discard(a), "a stale reference discards nothing");
    assert_eq!(p.get(c), Some(&9));
}

#[test]
fn iteration_sees_every_live_object_across_holes_and_nothing_else() {
    let mut p: Pool<u32, 8> = Pool::new();
    let refs: Vec<Ref> = (0..6).map(|x| p.insert(x).unwrap()).collect();
    assert!(p.remove(refs[0]).is_some() && p.discard(refs[2]) && p.remove(refs[3]).is_some());
    let live = |p: &Pool<u32, 8>| p.iter().map(|(r, &x)| (r, x)).collect::<Vec<_>>();
    assert_eq!(live(&p), vec![(refs[1], 1), (refs[4], 4), (refs[5], 5)]);
    for (_, x) in p.iter_mut() {
        *x += 10;
    }
    assert_eq!(live(&p), vec![(refs[1], 11), (refs[4], 14), (refs[5], 15)]);
    let again = p.insert(7).unwrap();
    assert_eq!(again.index, 0, "the lowest free slot");
    assert_eq!(live(&p).len(), 4);
    assert_eq!(p.find(|&x| x == 15), Some(refs[5]), "the last live object is found");
    assert_eq!(p.find(|&x| x == 99), None);
    for r in [again, refs[1], refs[4], refs[5]] {
        p.remove(r);
    }
    assert_eq!(live(&p), vec![]);
}
