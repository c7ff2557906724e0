//! Each CPU's GDT and TSS. Selector order fits SYSCALL/SYSRET: kernel code,
//! kernel data, user data, user code, then the TSS (SDM Vol. 3A 5.8.8).

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::cpu::PerCpu;

pub const KERNEL_CODE: SegmentSelector = SegmentSelector::new(1, PrivilegeLevel::Ring0);
pub const KERNEL_DATA: SegmentSelector = SegmentSelector::new(2, PrivilegeLevel::Ring0);
pub const USER_DATA: SegmentSelector = SegmentSelector::new(3, PrivilegeLevel::Ring3);
pub const USER_CODE: SegmentSelector = SegmentSelector::new(4, PrivilegeLevel::Ring3);
pub const TSS: SegmentSelector = SegmentSelector::new(5, PrivilegeLevel::Ring0);
const _: () = assert!(USER_CODE.0 as u64 == crate::hwdata::trap::USER_CS);
const _: () = assert!(USER_DATA.0 as u64 == crate::hwdata::trap::USER_SS);

/// IST slots (1-based in the IDT, 0-based in the TSS).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;

/// Builds and loads this CPU's GDT and TSS. `kstack_top` is the stack for
/// entries from ring 3, `ist_tops` the interrupt stacks.
pub fn init(cpu: &'static PerCpu, kstack_top: VirtAddr, ist_tops: [VirtAddr; 3]) {
    let tss = cpu.tss.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = kstack_top;
        for (slot, top) in ist_tops.into_iter().enumerate() {
            tss.interrupt_stack_table[slot] = top;
        }
        tss
    });
    let gdt = cpu.gdt.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let sels = [
            gdt.append(Descriptor::kernel_code_segment()),
            gdt.append(Descriptor::kernel_data_segment()),
            gdt.append(Descriptor::user_data_segment()),
            gdt.append(Descriptor::user_code_segment()),
            gdt.append(Descriptor::tss_segment(tss)),
        ];
        debug_assert_eq!(sels, [KERNEL_CODE, KERNEL_DATA, USER_DATA, USER_CODE, TSS]);
        gdt
    });
    gdt.load();
    // SAFETY: the selectors name the descriptors just loaded; the TSS
    // descriptor is fresh (not busy) on this CPU.
    unsafe {
        CS::set_reg(KERNEL_CODE);
        SS::set_reg(KERNEL_DATA);
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(TSS);
    }
}
