//! Host tests of `mem::guest` (not the kernel: `kernel/src/mem/guest.rs` includes them).

use super::*;
use std::collections::HashMap;

fn reader(m: &HashMap<u64, u64>) -> impl FnMut(u64) -> Option<u64> + '_ {
    |pa| m.get(&pa).copied()
}

#[test]
fn without_paging_linear_is_physical() {
    let p = Paging { cr0: 1, cr3: 0, cr4: 0, efer: 0 };
    assert_eq!(p.translate(0x1_0010_0000, |_| None), Some(0x0010_0000));
}

#[test]
fn walks_32_bit_pae_and_long_mode_tables() {
    // 32-bit: PDE 1 -> table at 0x3000, PTE 2 -> 0x7000; PDE 2 a 4 MiB page.
    let mut m = HashMap::new();
    m.insert(0x2000, (0x3000 | 1) << 32); // PDE 1 at 0x2004 (high half)
    m.insert(0x2008, 0x0080_0000 | PS | 1); // PDE 2
    m.insert(0x3008, 0x7000 | 1); // PTE 2 at 0x3008 (low half)
    let p = Paging { cr0: CR0_PG | 1, cr3: 0x2000, cr4: CR4_PSE, efer: 0 };
    assert_eq!(p.translate(0x0040_2123, reader(&m)), Some(0x7123));
    assert_eq!(p.translate(0x0080_0042, reader(&m)), Some(0x0080_0042));
    assert_eq!(p.translate(0x00C0_0000, reader(&m)), None, "not present");
    // PAE: PDPTE 0 -> PD at 0x5000, PDE 1 a 2 MiB page at 0x4000_0000.
    let mut m = HashMap::new();
    m.insert(0x4000, 0x5000 | 1);
    m.insert(0x5008, 0x4000_0000 | PS | 1);
    let p = Paging { cr0: CR0_PG | 1, cr3: 0x4000, cr4: CR4_PAE, efer: 0 };
    assert_eq!(p.translate(0x0020_0010, reader(&m)), Some(0x4000_0010));
    // Long mode: 4 levels down to a 4 KiB page.
    let mut m = HashMap::new();
    m.insert(0x1000, 0x2000 | 1);
    m.insert(0x2000, 0x3000 | 1);
    m.insert(0x3000, 0x4000 | 1);
    m.insert(0x4008, 0x9000 | 1);
    let p = Paging { cr0: CR0_PG | 1, cr3: 0x1000, cr4: CR4_PAE, efer: EFER_LMA };
    assert_eq!(p.translate(0x1234, reader(&m)), Some(0x9234));
    assert_eq!(p.translate(0x1_0000_1234, reader(&m)), None);
}

#[test]
fn decodes_mov_to_debug_registers_only() {
    assert_eq!(mov_to_dr(&[0x0F, 0x23, 0xF8], false), Some((7, 0, 3)), "mov dr7, eax");
    assert_eq!(mov_to_dr(&[0x0F, 0x23, 0xC3], false), Some((0, 3, 3)), "mov dr0, ebx");
    assert_eq!(mov_to_dr(&[0x41, 0x0F, 0x23, 0xC9], true), Some((1, 9, 4)), "mov dr1, r9");
    assert_eq!(mov_to_dr(&[0x44, 0x0F, 0x23, 0xC0], true), Some((8, 0, 4)), "dr8: for the caller to refuse");
    assert_eq!(mov_to_dr(&[0x41, 0x0F, 0x23, 0xC9], false), None, "no REX outside long mode");
    assert_eq!(mov_to_dr(&[0x66, 0x0F, 0x23, 0xD1], false), Some((2, 1, 4)));
    assert_eq!(mov_to_dr(&[0x0F, 0x21, 0xF8], false), None, "a read");
    assert_eq!(mov_to_dr(&[0x66; 15], false), None, "prefixes only");
    assert_eq!(mov_to_dr(&[0x0F, 0x23], false), None, "cut short");
}
