//! `faulter`: faults on purpose, in the way its domain name says, so that
//! the system tests see the kernel report it and `mgmt` act on it:
//! `fault-kernel` reads kernel memory, `fault-ro` writes its own read-only
//! data, `fault-ud` executes an invalid instruction, `fault-panic` panics.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::fault;
use user::StartInfo;

user::entry!(main, heap_kib = 0);

/// The first address of the kernel's half.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// Read-only data of this image (in .rodata, mapped read-only).
static READ_ONLY: [u8; 16] = *b"read-only bytes.";

fn main(start: &'static StartInfo) -> u64 {
    match start.name().trim_end_matches(|c: char| c.is_ascii_digit()) {
        "fault-kernel" => {
            log::info!("about to read kernel memory at {KERNEL_HALF:#x}");
            let v = fault::read(KERNEL_HALF);
            log::error!("faulter: FAIL read kernel memory and got {v:#x}");
        }
        "fault-ro" => {
            let addr = core::hint::black_box(READ_ONLY.as_ptr()) as u64;
            log::info!("about to write to read-only memory at {addr:#x}");
            // SAFETY: READ_ONLY is mapped read-only: the write faults. Were
            // it to happen, only these bytes, which nothing reads, change.
            unsafe { fault::write(addr) };
            log::error!("faulter: FAIL wrote to read-only memory");
        }
        "fault-ud" => {
            log::info!("about to execute an invalid instruction (ud2)");
            fault::invalid_opcode();
        }
        "fault-simd" => {
            log::info!("about to read xmm0");
            let v = fault::read_xmm0();
            log::error!("faulter: FAIL read xmm0 and got {v:#x}");
        }
        "fault-panic" => {
            log::info!("about to panic");
            panic!("on purpose, as fault-panic does");
        }
        other => {
            log::error!("faulter: unknown domain name `{other}`: want fault-kernel, fault-ro, fault-ud, fault-simd or fault-panic");
        }
    }
    1
}
