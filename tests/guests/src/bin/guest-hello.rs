//! `guest-hello`: says `hello from a guest`, asks CPUID leaf 0x4000_0000
//! for the hypervisor's vendor and prints it, checks that leaf 1 sets the
//! hypervisor bit and hides VMX and that leaf 0x8000_0001 hides SVM, prints
//! what the Multiboot information says (memory, command line, memory map),
//! and reports success on the exit port (or, with `exit=N` on its command
//! line, exit code N: how a test makes a guest end in failure on purpose).
//! Any check that fails prints a `guest-hello: FAIL …` line and reports
//! failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-hello")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    cmpl $0x2BADB002, mb_magic
    jne bad_magic
    movl $msg_hello, %esi
    call puts

    movl $0x40000000, %eax
    xorl %ecx, %ecx
    cpuid
    movl %eax, %edi
    movl %ebx, vendor
    movl %ecx, vendor + 4
    movl %edx, vendor + 8
    movl $msg_vendor, %esi
    call puts
    movl $vendor, %esi
    call puts
    movl $msg_max_leaf, %esi
    call puts
    movl %edi, %eax
    call put_hex
    call newline

    movl $1, %eax
    xorl %ecx, %ecx
    cpuid
    testl $0x80000000, %ecx
    jz bad_leaf1
    testl $0x20, %ecx
    jnz bad_leaf1
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb 1f
    movl $0x80000001, %eax
    cpuid
    testl $0x4, %ecx
    jnz bad_svm
1:  movl $msg_cpuid_ok, %esi
    call puts

    movl mb_info, %ebx
    testl $0x1, (%ebx)
    jz bad_info
    movl $msg_mem_lower, %esi
    call puts
    movl 4(%ebx), %eax
    call put_dec
    movl $msg_mem_upper, %esi
    call puts
    movl 8(%ebx), %eax
    call put_dec
    movl $msg_cmdline, %esi
    call puts
    testl $0x4, (%ebx)
    jz 2f
    movl 16(%ebx), %esi
    call puts
2:  movl $msg_quote_end, %esi
    call puts

    /* The memory map: entries of (size, base, length, type), each `size`
       bytes after its size field. */
    testl $0x40, (%ebx)
    jz bad_info
    movl 48(%ebx), %edi
    movl 44(%ebx), %ecx
    addl %edi, %ecx
3:  cmpl %ecx, %edi
    jae 4f
    movl $msg_mmap, %esi
    call puts
    movl 4(%edi), %eax
    call put_hex
    movl $msg_length, %esi
    call puts
    movl 12(%edi), %eax
    call put_hex
    movl $msg_type, %esi
    call puts
    movl 20(%edi), %eax
    call put_dec
    call newline
    movl (%edi), %eax
    leal 4(%edi, %eax), %edi
    jmp 3b
4:  movl $opt_exit, %esi
    call cmdline_number
    testl %eax, %eax
    jnz guest_exit
    ret

newline:
    pushl %eax
    movb $0x0a, %al
    call putc
    popl %eax
    ret

bad_magic:
    movl $msg_bad_magic, %esi
    jmp fail
bad_leaf1:
    movl %ecx, %eax
    movl $msg_bad_leaf1, %esi
    call puts
    call put_hex
    call newline
    jmp guest_fail
bad_svm:
    movl $msg_bad_svm, %esi
    jmp fail
bad_info:
    movl $msg_bad_info, %esi
fail:
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-hello"
msg_hello:
    .asciz "hello from a guest\n"
msg_vendor:
    .asciz "hypervisor vendor: "
msg_max_leaf:
    .asciz ", max leaf "
msg_cpuid_ok:
    .asciz "cpuid: hypervisor bit set, vmx and svm hidden\n"
msg_mem_lower:
    .asciz "multiboot: mem_lower "
msg_mem_upper:
    .asciz " KiB, mem_upper "
msg_cmdline:
    .asciz " KiB, cmdline `"
msg_quote_end:
    .asciz "`\n"
msg_mmap:
    .asciz "mmap: base "
msg_length:
    .asciz " length "
msg_type:
    .asciz " type "
opt_exit:
    .asciz "exit="
msg_bad_magic:
    .asciz "guest-hello: FAIL eax is not the Multiboot magic 0x2badb002\n"
msg_bad_leaf1:
    .asciz "guest-hello: FAIL cpuid leaf 1 ecx: hypervisor bit clear or vmx shown: "
msg_bad_svm:
    .asciz "guest-hello: FAIL cpuid leaf 0x80000001 shows svm\n"
msg_bad_info:
    .asciz "guest-hello: FAIL the Multiboot information lacks memory or a memory map\n"

    .section .bss.guest_main, "aw", @nobits
vendor:
    .skip 16
"#,
    options(att_syntax)
);
