//! `guest-state`: registers that are its own. It turns on the FPU, SSE and
//! (where the CPU has them) XSAVE and AVX; checks that an XCR0 the CPU
//! forbids (AVX without SSE) gets #GP; sets XCR0 to `xcr0=` (3 or 7,
//! default 3; 7 only with AVX), then fills st0, xmm0-7 (ymm0-7 with AVX)
//! and DR0-DR3 with a pattern drawn from `seed=`. With `breakpoints` it
//! instead arms DR0-DR3 on addresses of the code every domain shares
//! (4 MiB up, where domains are linked) with DR7 = 0x4ff, which its own
//! code never reaches. Then, for `rounds=` rounds (default 100), it spins
//! `round_ms=` ms (default 2), makes an exit to its VMM (CPUID) and checks
//! that every one of those registers (and XCR0, and DR7) still holds what
//! it put there. Another guest on the same CPU doing the same with another
//! pattern must never show through: `guest-state: FAIL <register> …` if
//! one does; `guest-state: <n> rounds, registers kept` and success if not.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-state")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $hook, trap_hook
    call idt_install
    movl $opt_seed, %esi
    call cmdline_number
    testl %eax, %eax
    jnz 1f
    movl $0x2545F491, %eax
1:  movl %eax, seed
    movl $opt_rounds, %esi
    call cmdline_number
    testl %eax, %eax
    jnz 1f
    movl $100, %eax
1:  movl %eax, rounds
    movl $opt_round_ms, %esi
    call cmdline_number
    testl %eax, %eax
    jnz 1f
    movl $2, %eax
1:  movl %eax, round_ms
    movl $opt_xcr0, %esi
    call cmdline_number
    testl %eax, %eax
    jnz 1f
    movl $3, %eax
1:  movl %eax, xcr0

    /* x87 and SSE on: CR0.EM and TS off, MP on (NE is the hypervisor's on VT-x); CR4.OSFXSR and
       OSXMMEXCPT. */
    movl %cr0, %eax
    andl $~0xC, %eax
    orl $0x2, %eax
    movl %eax, %cr0
    movl %cr4, %eax
    orl $0x600, %eax
    movl %eax, %cr4
    fninit

    /* XSAVE: CR4.OSXSAVE, then XCR0. */
    movl $1, %eax
    cpuid
    movl %ecx, leaf1_ecx
    testl $(1 << 26), %ecx
    jz no_xsave
    movl %cr4, %eax
    orl $(1 << 18), %eax
    movl %eax, %cr4
    /* The hostile twin: AVX without SSE is no XCR0 (SDM Vol. 1 13.3). */
    movl $0, gp_seen
    movl $5, %eax
    xorl %edx, %edx
    xorl %ecx, %ecx
    xsetbv
    cmpl $1, gp_seen
    jne bad_xcr0_taken
    movl $msg_gp, %esi
    call puts
    /* AVX only if the CPU and the XSAVE leaf offer it. */
    testl $4, xcr0
    jz 2f
    testl $(1 << 28), leaf1_ecx
    jz 1f
    movl $0xD, %eax
    xorl %ecx, %ecx
    cpuid
    testl $4, %eax
    jnz 2f
1:  movl $3, xcr0
2:  movl xcr0, %eax
    xorl %edx, %edx
    xorl %ecx, %ecx
    xsetbv
    jmp 3f
no_xsave:
    movl $0, xcr0
3:  movl $msg_xcr0, %esi
    call puts
    movl xcr0, %eax
    call put_hex
    call newline

    /* The pattern: 64 words of xorshift32 from the seed. */
    movl seed, %eax
    movl $want, %edi
    movl $64, %ecx
1:  call xorshift
    movl %eax, (%edi)
    addl $4, %edi
    loop 1b
    movl $opt_breakpoints, %esi
    call cmdline_has
    testl %eax, %eax
    jz 1f
    movl $1, armed
    movl $0x400000, want + 0
    movl $0x400010, want + 4
    movl $0x401000, want + 8
    movl $0x402000, want + 12
1:  call fill

    movl rounds, %ebp
round:
    movl round_ms, %eax
    call delay_ms
    xorl %eax, %eax
    cpuid
    call check
    decl %ebp
    jnz round
    movl $msg_name, %esi
    call puts
    movl rounds, %eax
    call put_dec
    movl $msg_kept, %esi
    call puts
    ret

    /* Puts the pattern into st0, xmm0-7 (ymm0-7), DR0-3 (DR7). */
fill:
    fildl want
    testl $4, xcr0
    jz 1f
    vmovdqu want + 0, %ymm0
    vmovdqu want + 32, %ymm1
    vmovdqu want + 64, %ymm2
    vmovdqu want + 96, %ymm3
    vmovdqu want + 128, %ymm4
    vmovdqu want + 160, %ymm5
    vmovdqu want + 192, %ymm6
    vmovdqu want + 224, %ymm7
    jmp 2f
1:  movdqu want + 0, %xmm0
    movdqu want + 16, %xmm1
    movdqu want + 32, %xmm2
    movdqu want + 48, %xmm3
    movdqu want + 64, %xmm4
    movdqu want + 80, %xmm5
    movdqu want + 96, %xmm6
    movdqu want + 112, %xmm7
2:  movl want + 0, %eax
    movl %eax, %db0
    movl want + 4, %eax
    movl %eax, %db1
    movl want + 8, %eax
    movl %eax, %db2
    movl want + 12, %eax
    movl %eax, %db3
    cmpl $0, armed
    je 3f
    movl $0x4FF, %eax
    movl %eax, %db7
3:  ret

    /* Reads them all back into `got` and compares. */
check:
    fistl got_st
    movl got_st, %eax
    cmpl want, %eax
    movl $name_st0, %esi
    jne changed
    testl $4, xcr0
    jz 1f
    vmovdqu %ymm0, got + 0
    vmovdqu %ymm1, got + 32
    vmovdqu %ymm2, got + 64
    vmovdqu %ymm3, got + 96
    vmovdqu %ymm4, got + 128
    vmovdqu %ymm5, got + 160
    vmovdqu %ymm6, got + 192
    vmovdqu %ymm7, got + 224
    movl $64, %ecx
    movl $name_ymm, %esi
    jmp 2f
1:  movdqu %xmm0, got + 0
    movdqu %xmm1, got + 16
    movdqu %xmm2, got + 32
    movdqu %xmm3, got + 48
    movdqu %xmm4, got + 64
    movdqu %xmm5, got + 80
    movdqu %xmm6, got + 96
    movdqu %xmm7, got + 112
    movl $32, %ecx
    movl $name_xmm, %esi
2:  pushl %esi
    movl $want, %esi
    movl $got, %edi
    repe cmpsl
    popl %esi
    movl -4(%edi), %eax
    jne changed
    movl %db0, %eax
    movl $name_dr0, %esi
    cmpl want + 0, %eax
    jne changed
    movl %db1, %eax
    movl $name_dr1, %esi
    cmpl want + 4, %eax
    jne changed
    movl %db2, %eax
    movl $name_dr2, %esi
    cmpl want + 8, %eax
    jne changed
    movl %db3, %eax
    movl $name_dr3, %esi
    cmpl want + 12, %eax
    jne changed
    movl %db7, %eax
    andl $0xFF, %eax
    movl $name_dr7, %esi
    movl armed, %ecx
    imull $0xFF, %ecx
    cmpl %ecx, %eax
    jne changed
    cmpl $0, xcr0
    je 3f
    xorl %ecx, %ecx
    xgetbv
    movl $name_xcr0, %esi
    cmpl xcr0, %eax
    jne changed
3:  ret

    /* %esi names the register, %eax holds what it read. */
changed:
    pushl %esi
    movl $msg_fail, %esi
    call puts
    popl %esi
    call puts
    movl $msg_changed, %esi
    call puts
    call put_hex
    call newline
    jmp guest_fail

bad_xcr0_taken:
    movl $msg_taken, %esi
    call puts
    jmp guest_fail

    /* #GP after XSETBV (3 bytes): counted and skipped. */
hook:
    cmpl $13, %eax
    jne 1f
    incl gp_seen
    addl $3, (%ebx)
    movl $1, %eax
    ret
1:  xorl %eax, %eax
    ret

newline:
    movb $10, %al
    jmp putc

    .section .rodata
opt_seed: .asciz "seed="
opt_rounds: .asciz "rounds="
opt_round_ms: .asciz "round_ms="
opt_xcr0: .asciz "xcr0="
opt_breakpoints: .asciz "breakpoints"
msg_gp: .asciz "guest-state: xsetbv of 0x5 refused with #GP\n"
msg_xcr0: .asciz "guest-state: xcr0 "
msg_name: .asciz "guest-state: "
msg_kept: .asciz " rounds, registers kept\n"
msg_fail: .asciz "guest-state: FAIL "
msg_changed: .asciz " changed: read "
msg_taken: .asciz "guest-state: FAIL xsetbv of 0x5 (AVX without SSE) was taken\n"
name_st0: .asciz "st0"
name_xmm: .asciz "xmm0-7"
name_ymm: .asciz "ymm0-7"
name_dr0: .asciz "dr0"
name_dr1: .asciz "dr1"
name_dr2: .asciz "dr2"
name_dr3: .asciz "dr3"
name_dr7: .asciz "dr7"
name_xcr0: .asciz "xcr0"

    .section .data
    .balign 4
    .global guest_name
guest_name: .asciz "guest-state"
    .balign 4
seed: .long 0
rounds: .long 0
round_ms: .long 0
xcr0: .long 0
armed: .long 0
leaf1_ecx: .long 0
gp_seen: .long 0
got_st: .long 0
    .balign 32
want: .space 256
got: .space 256
"#,
    options(att_syntax)
);
