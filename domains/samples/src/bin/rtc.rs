//! `rtc`: a tiny driver domain. Programs the CMOS real-time clock's periodic
//! interrupt (64 Hz) through its I/O ports and takes five interrupts on line
//! 8 through `IrqWait`, acknowledging each at the device (register C).

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::syscall::Width;
use user::{sys, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
const NMI_OFF: u32 = 0x80;

fn main(start: &'static StartInfo) -> u64 {
    let (Some(ports), Some(irq)) = (start.slot("ioports"), start.slot("irq:8")) else {
        log::error!("rtc: needs `ioports` (0x70..0x72) and `irq:8`");
        return 1;
    };
    let read = |reg: u32| -> Result<u32, ipc::Error> {
        sys::ioport_write(ports, INDEX, Width::Byte, NMI_OFF | reg)?;
        sys::ioport_read(ports, DATA, Width::Byte)
    };
    let write = |reg: u32, v: u32| -> Result<(), ipc::Error> {
        sys::ioport_write(ports, INDEX, Width::Byte, NMI_OFF | reg)?;
        sys::ioport_write(ports, DATA, Width::Byte, v)
    };
    let run = || -> Result<u32, ipc::Error> {
        let a = read(0x0A)?;
        write(0x0A, (a & 0xF0) | 0x0A)?; // rate 10: 64 Hz
        let b = read(0x0B)?;
        write(0x0B, b | 0x40)?; // periodic interrupt enable
        read(0x0C)?; // clear anything pending
        let mut n = 0;
        while n < 5 {
            sys::irq_wait(irq)?;
            if read(0x0C)? & 0x40 != 0 {
                n += 1;
            }
        }
        write(0x0B, b & !0x40)?;
        Ok(n)
    };
    match run() {
        Ok(n) => {
            log::info!("rtc: {n} periodic interrupts on line 8");
            0
        }
        Err(e) => {
            log::error!("rtc: {e:?}");
            1
        }
    }
}
