//! `guest-vmx`: tries what a guest must not get: VMXON and VMRUN (the
//! kernel answers both with #UD, as a CPU without VMX or SVM would), VMCALL
//! and VMMCALL (#UD: the VMM offers no hypercalls; on each vendor one of
//! them reaches the VMM, the other is #UD in the CPU), and RDMSR/WRMSR of
//! IA32_FEATURE_CONTROL (#GP(0) from the VMM); MONITOR, MWAIT and INVLPGA
//! (#UD from the kernel, which never lets them run natively; CPUID hides
//! MONITOR/MWAIT), then WBINVD and INVD, which the kernel completes
//! without running them (`guest-vmx: wbinvd and invd completed`). Its exception handler prints
//! `got #UD for vmxon` and so on, and resumes after the instruction; when
//! all have trapped as they should it reports success. An instruction that
//! does not trap prints `guest-vmx: FAIL …`; an unexpected exception is
//! reported by the shared handler; both report failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-vmx")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    /* Expect exception \vec for instruction \name, resume at \next. */
    .macro expect vec, name, next
    movl $\vec, want_vector
    movl $\name, want_name
    movl $\next, want_resume
    .endm

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $hook, trap_hook
    call idt_install

    expect 6, name_vmxon, 1f
    /* vmxon [vmxon_region] */
    .byte 0xF3, 0x0F, 0xC7, 0x35
    .long vmxon_region
    jmp not_trapped
1:  expect 6, name_vmrun, 2f
    xorl %eax, %eax
    .byte 0x0F, 0x01, 0xD8
    jmp not_trapped
2:  expect 6, name_vmcall, 3f
    .byte 0x0F, 0x01, 0xC1
    jmp not_trapped
3:  expect 6, name_vmmcall, 4f
    .byte 0x0F, 0x01, 0xD9
    jmp not_trapped
4:  expect 13, name_rdmsr, 5f
    movl $0x3A, %ecx
    rdmsr
    jmp not_trapped
5:  expect 13, name_wrmsr, 6f
    movl $0x3A, %ecx
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    jmp not_trapped
6:  expect 6, name_monitor, 7f
    movl $0x100000, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    .byte 0x0F, 0x01, 0xC8
    jmp not_trapped
7:  expect 6, name_mwait, 8f
    xorl %eax, %eax
    xorl %ecx, %ecx
    .byte 0x0F, 0x01, 0xC9
    jmp not_trapped
8:  expect 6, name_invlpga, 9f
    xorl %eax, %eax
    xorl %ecx, %ecx
    .byte 0x0F, 0x01, 0xDF
    jmp not_trapped
    /* Done by the kernel (nothing to flush): no exception. */
9:  wbinvd
    invd
    movl $msg_flushed, %esi
    call puts
    movl $msg_done, %esi
    call puts
    ret

not_trapped:
    movl $msg_fail, %esi
    call puts
    movl want_name, %esi
    call puts
    movl $msg_no_trap, %esi
    call puts
    jmp guest_fail

    /* The trap hook: %eax vector, %ecx error code, %ebx &saved eip. */
hook:
    cmpl want_vector, %eax
    jne 9f
    cmpl $13, %eax
    jne 1f
    testl %ecx, %ecx
    jnz 9f
    movl $msg_gp, %esi
    jmp 2f
1:  movl $msg_ud, %esi
2:  call puts
    movl want_name, %esi
    call puts
    movb $0x0a, %al
    call putc
    movl want_resume, %eax
    movl %eax, (%ebx)
    movl $-1, want_vector
    movl $1, %eax
    ret
9:  xorl %eax, %eax
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-vmx"
name_vmxon:
    .asciz "vmxon"
name_vmrun:
    .asciz "vmrun"
name_vmcall:
    .asciz "vmcall"
name_vmmcall:
    .asciz "vmmcall"
name_rdmsr:
    .asciz "rdmsr"
name_wrmsr:
    .asciz "wrmsr"
name_monitor:
    .asciz "monitor"
name_mwait:
    .asciz "mwait"
name_invlpga:
    .asciz "invlpga"
msg_flushed:
    .asciz "guest-vmx: wbinvd and invd completed\n"
msg_ud:
    .asciz "got #UD for "
msg_gp:
    .asciz "got #GP(0) for "
msg_fail:
    .asciz "guest-vmx: FAIL "
msg_no_trap:
    .asciz " did not trap\n"
msg_done:
    .asciz "guest-vmx: every instruction trapped as it should\n"

    .section .data.guest_main, "aw"
    .balign 4
want_vector:
    .long -1
want_name:
    .long 0
want_resume:
    .long 0

    .section .bss.guest_main, "aw", @nobits
    .balign 4096
vmxon_region:
    .skip 4096
"#,
    options(att_syntax)
);
