//! A virtual CPU: a thread that runs a guest instead of user code. Its
//! hardware state lives in a VMCS (VT-x) the kernel owns; its exits travel
//! to the VMM as calls on an endpoint, and the VMM's replies come back
//! checked (`ipc::vcpu::Reply`).

use x86_64::PhysAddr;

use super::pool::Ref;

/// Frames of a vCPU's hardware state: its VMCS or VMCB, then its state
/// frame (`crate::virt::state`: FPU, XCR0's components, debug registers),
/// then its MSR frame (`crate::virt::msrs`: the guest MSRs neither VMCS
/// nor VMCB holds).
pub const HW_FRAMES: u64 = 3;

pub struct Vcpu {
    /// The VMCS (or VMCB) frame; the state frame follows it.
    pub vmcs: PhysAddr,
    /// Launched on its CPU (VMRESUME from now on).
    pub launched: bool,
    /// Where the guest starts (Multiboot), or the start-up IPI's vector it
    /// starts from (real mode at 0x1000 × vector).
    pub entry: u64,
    pub sipi: Option<u8>,
    /// The exit endpoint and the badge the VMM sees.
    pub exit_ep: Ref,
    pub badge: u64,
    pub regs: GuestRegs,
    /// The VMM's checked answer to the last exit, applied at the next entry.
    pub reply: Option<ipc::vcpu::Reply>,
    /// The last exit's instruction length (for `ADVANCE`).
    pub exit_len: u64,
    /// The VMM stopped it: it never runs again.
    pub stopped: bool,
    /// Its last exit (in its thread's message registers) found the exit
    /// endpoint's queue full: it is sent again before the guest runs.
    pub unsent: bool,
    /// The guest's EPT epoch when this vCPU last flushed its translations.
    pub ept_epoch: u64,
    /// The page tables a VM exit returns to (VT-x's host CR3, 0 until
    /// written): the address space loaded when the guest was entered,
    /// which is its VMM's (an exit then returns to it without a switch).
    pub host_cr3: u64,
    /// The exit at the guest's next interrupt window is asked for (set in
    /// its VMCS or VMCB): an entry with no interrupt to deliver clears the
    /// request only if it stands, not on every entry (a VMREAD and a
    /// VMWRITE, or a VMCB's intercepts rewritten, per exit).
    pub window: bool,
    /// Interrupts raised on this vCPU alone (`VcpuInterrupt`), a bit per
    /// vector; the guest's VirqLines go to its first vCPU.
    pub pending: [u64; 4],
    /// Its exits by reason (`ExitReason::index`), the kernel's own
    /// answers included (`GuestExits`).
    pub exits: [u64; ipc::vcpu::EXIT_REASONS],
    /// The VMM's checked `VcpuStateWrite`s not yet entered, applied at the
    /// next entry (on its CPU, where VT-x can write its VMCS) before the
    /// reply to its exit.
    pub staged: Option<ipc::vstate::Write>,
}

impl Vcpu {
    /// Its state frame.
    pub fn state(&self) -> u64 {
        state_frame(self.vmcs.as_u64())
    }
}

/// The state frame of the vCPU whose VMCS (or VMCB) is at `hw`: the frame
/// after it (see [`HW_FRAMES`]).
pub const fn state_frame(hw: u64) -> u64 {
    hw + 4096
}

/// The MSR frame of the vCPU whose VMCS (or VMCB) is at `hw` (see
/// [`HW_FRAMES`]).
pub const fn msr_frame(hw: u64) -> u64 {
    hw + 2 * 4096
}

registers!(
    /// The guest's general registers (and CR2) while the kernel holds them;
    /// the VMCS has the rest.
    GuestRegs { rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, cr2 }
);
