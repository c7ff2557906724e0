//! `guest-bench`: path lengths of exits through the VMM, timed by the guest
//! with `rdtsc` (under QEMU `-icount shift=0,sleep=off` or Bochs
//! `clock: sync=none` the TSC counts instructions: the guest's, the
//! kernel's and the VMM's). 1000 times each: CPUID leaf 0x4000_0000 (an
//! exit the VMM answers without asking the CPU) and an OUT to the UART's
//! scratch register (a port write the VMM handles), and an OUT to the
//! VMM's doorbell port 0xf6 (an exit the kernel handles alone). Prints
//! `bench: <name> <fewest instructions>` and `bench: <name>_mean <mean>`
//! for `guest_cpuid_vmm`, `guest_out_vmm` and `guest_out_kernel`, then
//! reports success.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-bench")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set N, 1000

    /* Times \body N times; prints `bench: \name <min>` and the mean. */
    .macro measure name, body
    movl $0xFFFFFFFF, best
    movl $0, total
    movl $N, %edi
1:  rdtsc
    movl %eax, start
    \body
    rdtsc
    subl start, %eax
    addl %eax, total
    cmpl best, %eax
    jae 2f
    movl %eax, best
2:  decl %edi
    jnz 1b
    movl $\name, %esi
    movl best, %eax
    call report
    movl $\name, %esi
    call puts_name
    movl $msg_mean, %esi
    call puts
    movl total, %eax
    xorl %edx, %edx
    movl $N, %ecx
    divl %ecx
    call put_dec
    movb $0x0a, %al
    call putc
    .endm

    /* Each exit is followed by a label (used once), where the guest
       resumes: `cargo xtask profile` counts round trips by it. */
    .macro cpuid_hv
    movl $0x40000000, %eax
    cpuid
    .global after_cpuid
after_cpuid:
    .endm

    .macro out_doorbell
    movw $0xf6, %dx
    movb $1, %al
    outb %al, %dx
    .global after_out_kernel
after_out_kernel:
    .endm

    .macro out_scratch
    movw $0x3ff, %dx
    movb $0x5a, %al
    outb %al, %dx
    .global after_out_vmm
after_out_vmm:
    .endm

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $msg_start, %esi
    call puts
    measure name_cpuid, cpuid_hv
    measure name_out, out_scratch
    measure name_doorbell, out_doorbell
    ret

    /* Prints `bench: <name at %esi> <%eax>` and a newline. */
report:
    call puts_name
    movb $0x20, %al
    pushl %eax
    call putc
    popl %eax
    movl best, %eax
    call put_dec
    movb $0x0a, %al
    call putc
    ret

    /* Prints `bench: ` and the name at %esi. */
puts_name:
    pushl %esi
    movl $msg_bench, %esi
    call puts
    popl %esi
    call puts
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-bench"
msg_start:
    .asciz "guest-bench: timing 1000 exits of each kind\n"
msg_bench:
    .asciz "bench: "
msg_mean:
    .asciz "_mean "
name_cpuid:
    .asciz "guest_cpuid_vmm"
name_out:
    .asciz "guest_out_vmm"
name_doorbell:
    .asciz "guest_out_kernel"

    .section .bss.guest_main, "aw", @nobits
    .balign 4
best:
    .skip 4
total:
    .skip 4
start:
    .skip 4
"#,
    options(att_syntax)
);
