//! `guest-rtc`: reads its CMOS clock (ports 0x70/0x71) in 64-bit mode.
//!
//! - Status B is 0x02 (BCD, 24-hour) and status D 0x80 (battery good) as
//!   at reset, the latter selected with the NMI-mask bit set (the index is
//!   its low 7 bits).
//! - The date and time, read as a careful OS does (update-in-progress
//!   waited out, two reads that agree), printed as `guest-rtc: now
//!   YYYY-MM-DD hh:mm:ss` (the system test compares it with the host's
//!   clock); every field in range and the year at least 2025 (a clock
//!   that starts at 1970 fails).
//! - 1.1 s later by the TSC (CPUID 0x4000_0010's rate) the clock has
//!   advanced by 1 or 2 s (`guest-rtc: advanced <n> s in 1100 ms`).
//! - Written in binary mode with SET held: 1999-12-31 23:59:59; 1.1 s
//!   after SET is cleared it reads 2000-01-01 00:00:00 or :01, a Saturday
//!   (day of week 7), the century byte 20: the written time runs on and
//!   carries into a new century.
//! - Its CMOS memory says 640 KiB of base memory and, above 1 MiB, what
//!   Multiboot's mem_upper says.
//!
//! Any check that fails is a `guest-rtc: FAIL <what>` line and exit code 1.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-rtc")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl mb_info, %ebx
    movl 8(%ebx), %eax              /* mem_upper, KiB */
    movl %eax, mem_upper
    jmp long_mode

    .code64
    .global guest_main64
guest_main64:
    call tsc_rates64
    /* Status B and D as at reset. */
    movb $0x0B, %al
    call cmos
    cmpb $0x02, %al
    movq $msg_status_b, %rsi
    jne fail
    movb $0x8D, %al                 /* NMIs masked, register 0x0D */
    call cmos
    cmpb $0x80, %al
    movq $msg_status_d, %rsi
    jne fail

    /* Now, in BCD. */
    call read_time
    movq $msg_now, %rsi
    call puts64
    call put_date
    call newline64
    call check_fields
    cmpl $2025, year
    movq $msg_year, %rsi
    jb fail
    call seconds_of_day
    movq %rax, %r12

    /* 1.1 s later. */
    movq $1100000, %rax
    call spin_us64
    call read_time
    call check_fields
    call seconds_of_day
    subq %r12, %rax
    jns 1f
    addq $86400, %rax               /* past midnight */
1:  movq %rax, %r13
    movq $msg_advanced, %rsi
    call puts64
    movq %r13, %rax
    call put_dec64
    movq $msg_advanced_in, %rsi
    call puts64
    cmpq $1, %r13
    movq $msg_not_advancing, %rsi
    jb fail
    cmpq $2, %r13
    ja fail

    /* Binary mode, SET: 1999-12-31 23:59:59. */
    movb $0x0B, %al
    movb $0x86, %ah                 /* SET, binary, 24-hour */
    call cmos_write
    movw $(0x32 | 19 << 8), %ax
    call cmos_write
    movw $(0x09 | 99 << 8), %ax
    call cmos_write
    movw $(0x08 | 12 << 8), %ax
    call cmos_write
    movw $(0x07 | 31 << 8), %ax
    call cmos_write
    movw $(0x04 | 23 << 8), %ax
    call cmos_write
    movw $(0x02 | 59 << 8), %ax
    call cmos_write
    movw $(0x00 | 59 << 8), %ax
    call cmos_write
    movw $(0x0B | 0x06 << 8), %ax   /* SET cleared: it runs */
    call cmos_write
    movq $1100000, %rax
    call spin_us64
    call read_time
    movq $msg_set, %rsi
    call puts64
    call put_date
    call newline64
    movq $msg_carry, %rsi
    cmpl $2000, year
    jne fail
    cmpb $1, month
    jne fail
    cmpb $1, day
    jne fail
    cmpb $0, hour
    jne fail
    cmpb $0, minute
    jne fail
    cmpb $1, second
    ja fail
    movb $0x06, %al
    call cmos
    cmpb $7, %al
    movq $msg_weekday, %rsi
    jne fail

    /* The CMOS memory: base memory, and memory above 1 MiB. */
    movb $0x15, %al
    call cmos
    movb %al, %bl
    movb $0x16, %al
    call cmos
    movb %al, %bh
    cmpw $640, %bx
    movq $msg_base, %rsi
    jne fail
    movb $0x17, %al
    call cmos
    movb %al, %bl
    movb $0x18, %al
    call cmos
    movb %al, %bh
    movzwl %bx, %ebx
    movl mem_upper, %eax
    cmpl $0xFFFF, %eax
    jbe 2f
    movl $0xFFFF, %eax
2:  cmpl %eax, %ebx
    movq $msg_extended, %rsi
    jne fail
    movq $msg_ok, %rsi
    call puts64
    ret

fail:
    pushq %rsi
    movq $msg_fail, %rsi
    call puts64
    popq %rsi
    call puts64
    call newline64
    jmp guest_fail64

/* %al = CMOS register %al (the index port's bit 7 as given). */
cmos:
    pushq %rdx
    movw $0x70, %dx
    outb %al, %dx
    movw $0x71, %dx
    inb %dx, %al
    popq %rdx
    ret

/* CMOS register %al = %ah. */
cmos_write:
    pushq %rdx
    movw $0x70, %dx
    outb %al, %dx
    movb %ah, %al
    movw $0x71, %dx
    outb %al, %dx
    popq %rdx
    ret

/* One field: %al = register %al in the mode of status B (BCD or binary). */
field:
    call cmos
    testb $0x04, mode_b
    jnz 1f
    pushq %rcx
    movb %al, %cl
    shrb $4, %al
    movb $10, %ch
    mulb %ch
    andb $0x0F, %cl
    addb %cl, %al
    popq %rcx
1:  ret

/* Reads the time into year..second: update-in-progress waited out, then
   two reads until they agree. */
read_time:
    pushq %rax
    pushq %rbx
    movb $0x0B, %al
    call cmos
    movb %al, mode_b
1:  movb $0x0A, %al
    call cmos
    testb $0x80, %al
    jnz 1b
    call read_once
    movq fields, %rbx
    call read_once
    cmpq fields, %rbx
    jne 1b
    movzbl century, %eax
    imull $100, %eax
    movzbl year_lo, %ebx
    addl %ebx, %eax
    movl %eax, year
    popq %rbx
    popq %rax
    ret

read_once:
    movb $0x00, %al
    call field
    movb %al, second
    movb $0x02, %al
    call field
    movb %al, minute
    movb $0x04, %al
    call field
    movb %al, hour
    movb $0x07, %al
    call field
    movb %al, day
    movb $0x08, %al
    call field
    movb %al, month
    movb $0x09, %al
    call field
    movb %al, year_lo
    movb $0x32, %al
    call field
    movb %al, century
    ret

/* Every field in its range (month 1-12, day 1-31, hour, minute, second). */
check_fields:
    movq $msg_range, %rsi
    cmpb $1, month
    jb fail
    cmpb $12, month
    ja fail
    cmpb $1, day
    jb fail
    cmpb $31, day
    ja fail
    cmpb $23, hour
    ja fail
    cmpb $59, minute
    ja fail
    cmpb $59, second
    ja fail
    ret

/* %rax = hour * 3600 + minute * 60 + second. */
seconds_of_day:
    pushq %rbx
    movzbl hour, %eax
    imull $3600, %eax
    movzbl minute, %ebx
    imull $60, %ebx
    addl %ebx, %eax
    movzbl second, %ebx
    addl %ebx, %eax
    popq %rbx
    ret

/* Prints YYYY-MM-DD hh:mm:ss. */
put_date:
    pushq %rax
    movl year, %eax
    call put_dec64
    movb $'-', %al
    call putc64
    movb month, %al
    call put2
    movb $'-', %al
    call putc64
    movb day, %al
    call put2
    movb $' ', %al
    call putc64
    movb hour, %al
    call put2
    movb $':', %al
    call putc64
    movb minute, %al
    call put2
    movb $':', %al
    call putc64
    movb second, %al
    call put2
    popq %rax
    ret

/* Prints %al (0-99) as two digits. */
put2:
    pushq %rax
    pushq %rcx
    movzbl %al, %eax
    movb $10, %cl
    divb %cl
    addb $'0', %al
    call putc64
    movb %ah, %al
    addb $'0', %al
    call putc64
    popq %rcx
    popq %rax
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-rtc"
msg_fail:
    .asciz "guest-rtc: FAIL "
msg_status_b:
    .asciz "status B is not 0x02 (BCD, 24-hour) at reset"
msg_status_d:
    .asciz "status D (selected with NMIs masked) is not 0x80"
msg_now:
    .asciz "guest-rtc: now "
msg_range:
    .asciz "a field out of its range"
msg_year:
    .asciz "the year is before 2025: no wall clock"
msg_advanced:
    .asciz "guest-rtc: advanced "
msg_advanced_in:
    .asciz " s in 1100 ms\n"
msg_not_advancing:
    .asciz "the clock did not advance by 1 or 2 s in 1.1 s"
msg_set:
    .asciz "guest-rtc: set to 1999-12-31 23:59:59 (binary), 1.1 s later "
msg_carry:
    .asciz "the written time did not run on into 2000-01-01 00:00:0x"
msg_weekday:
    .asciz "2000-01-01 is not day of week 7 (Saturday)"
msg_base:
    .asciz "CMOS base memory is not 640 KiB"
msg_extended:
    .asciz "CMOS memory above 1 MiB is not Multiboot's mem_upper"
msg_ok:
    .asciz "guest-rtc: CMOS clock ok\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 8
mem_upper:
    .skip 4
year:
    .skip 4
    /* The fields of a read, compared as one quadword. */
    .balign 8
fields:
second:
    .skip 1
minute:
    .skip 1
hour:
    .skip 1
day:
    .skip 1
month:
    .skip 1
year_lo:
    .skip 1
century:
    .skip 1
    .skip 1
mode_b:
    .skip 1
"#,
    options(att_syntax)
);
