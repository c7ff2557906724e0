//! The pure data the core and the machine (`arch`, `virt`) exchange
//! through the hardware interface (`hw`), below both: what an entry from
//! user mode saved (`trap`), and a vCPU's entry and exit (`guest`).

pub mod guest;
pub mod trap;
