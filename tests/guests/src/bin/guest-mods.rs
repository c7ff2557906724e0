//! `guest-mods`: reads the Multiboot modules it was given and prints each
//! (`guest-mods: module <i>: <n> bytes at 0x…, sum 0x…, string "<s>"`),
//! where the sum is, from 0, `sum = rotl(sum, 5) ^ byte` over its bytes.
//! It checks what a loader must guarantee: `mods=<n>` on the command line
//! is the count; each module starts page-aligned, above the guest's own
//! image and the previous module, and ends at or after its start and
//! within RAM (1 MiB + mem_upper KiB). Any check that fails prints
//! `guest-mods: FAIL …` and reports failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-mods")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl mb_info, %ebx
    movl $opt_mods, %esi
    call cmdline_number
    movl %eax, %ebp                 /* the count expected */
    xorl %ecx, %ecx                 /* the count given */
    testl $8, (%ebx)
    jz 1f
    movl 20(%ebx), %ecx
1:  cmpl %ebp, %ecx
    jne bad_count
    testl %ecx, %ecx
    jz done
    /* RAM's end: 1 MiB + mem_upper KiB (flag 0 is always given). */
    movl 8(%ebx), %eax
    shll $10, %eax
    addl $0x100000, %eax
    movl %eax, ram_end
    movl $guest_end, %eax
    movl %eax, floor
    movl 24(%ebx), %edi             /* the module list */
    xorl %ebx, %ebx                 /* the module's index */
next:
    movl (%edi), %eax               /* mod_start */
    movl 4(%edi), %edx              /* mod_end */
    testl $0xfff, %eax
    jnz bad_align
    cmpl floor, %eax
    jb bad_overlap
    cmpl %eax, %edx
    jb bad_end
    cmpl ram_end, %edx
    ja bad_end
    movl %edx, floor
    movl $msg_module, %esi
    call puts
    movl %ebx, %eax
    call put_dec
    movl $msg_colon, %esi
    call puts
    movl 4(%edi), %eax
    subl (%edi), %eax
    call put_dec
    movl $msg_at, %esi
    call puts
    movl (%edi), %eax
    call put_hex
    movl $msg_sum, %esi
    call puts
    call sum
    call put_hex
    movl $msg_string, %esi
    call puts
    movl 8(%edi), %esi
    testl %esi, %esi
    jz 1f
    call puts
1:  movb $0x22, %al
    call putc
    movb $0x0a, %al
    call putc
    addl $16, %edi
    incl %ebx
    cmpl %ebp, %ebx
    jne next
done:
    movl $msg_done, %esi
    call puts
    movl %ebp, %eax
    call put_dec
    movl $msg_done_end, %esi
    call puts
    ret

    /* %eax = the sum of the module at %edi. */
sum:
    pushl %esi
    pushl %edx
    pushl %ecx
    movl (%edi), %esi
    movl 4(%edi), %ecx
    xorl %eax, %eax
1:  cmpl %ecx, %esi
    je 2f
    roll $5, %eax
    movzbl (%esi), %edx
    xorl %edx, %eax
    incl %esi
    jmp 1b
2:  popl %ecx
    popl %edx
    popl %esi
    ret

bad_count:
    movl $msg_bad_count, %esi
    call puts
    movl %ecx, %eax
    call put_dec
    movl $msg_expected, %esi
    call puts
    movl %ebp, %eax
    call put_dec
    movb $0x0a, %al
    call putc
    jmp guest_fail
bad_align:
    movl $msg_bad_align, %esi
    jmp bad_module
bad_overlap:
    movl $msg_bad_overlap, %esi
    jmp bad_module
bad_end:
    movl $msg_bad_end, %esi
bad_module:
    call puts
    movl %ebx, %eax
    call put_dec
    movl $msg_range, %esi
    call puts
    movl (%edi), %eax
    call put_hex
    movl $msg_comma, %esi
    call puts
    movl 4(%edi), %eax
    call put_hex
    movb $0x29, %al
    call putc
    movb $0x0a, %al
    call putc
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-mods"
opt_mods:
    .asciz "mods="
msg_module:
    .asciz "guest-mods: module "
msg_colon:
    .asciz ": "
msg_at:
    .asciz " bytes at "
msg_sum:
    .asciz ", sum "
msg_string:
    .asciz ", string \""
msg_done:
    .asciz "guest-mods: "
msg_done_end:
    .asciz " module(s) as expected\n"
msg_bad_count:
    .asciz "guest-mods: FAIL given "
msg_expected:
    .asciz " module(s), expected "
msg_bad_align:
    .asciz "guest-mods: FAIL not page-aligned: module "
msg_bad_overlap:
    .asciz "guest-mods: FAIL over the kernel or the module before: module "
msg_bad_end:
    .asciz "guest-mods: FAIL ends before its start or past RAM: module "
msg_range:
    .asciz " at ["
msg_comma:
    .asciz ", "

    .section .bss.guest_main, "aw", @nobits
    .balign 4
ram_end:
    .skip 4
floor:
    .skip 4
"#,
    options(att_syntax)
);
