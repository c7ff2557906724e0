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
//! - Its interrupts, IRQ 8 through the I/O APIC (pin 8, vector 0x68, the
//!   local APIC in x2APIC mode), the handler reading status C and
//!   counting its flags: the periodic one at 16 Hz over 1 s by the TSC
//!   (`guest-rtc: periodic 16 Hz: <n> interrupts in <us> us`; no more
//!   than the periods plus one, no fewer than three quarters: under QEMU's
//!   TCG one takes about 2 ms and a few are late by more, so a fast rate
//!   would coalesce); at 8192 Hz with
//!   status C unread, one interrupt in 50 ms and then status C saying
//!   IRQF and PF; the alarm two seconds on (this hour, any minute: a
//!   don't-care byte), at its own second (`guest-rtc: alarm interrupt at
//!   second <s>`); two update-ended interrupts 0.8–1.2 s apart
//!   (`guest-rtc: update-ended interrupts <ms> ms apart`).
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
    call cmos_read64
    cmpb $0x02, %al
    movq $msg_status_b, %rsi
    jne fail_line64
    movb $0x8D, %al                 /* NMIs masked, register 0x0D */
    call cmos_read64
    cmpb $0x80, %al
    movq $msg_status_d, %rsi
    jne fail_line64

    /* Now, in BCD. */
    call read_time
    movq $msg_now, %rsi
    call puts64
    call put_date
    call newline64
    call check_fields
    cmpl $2025, year
    movq $msg_year, %rsi
    jb fail_line64
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
    jb fail_line64
    cmpq $2, %r13
    ja fail_line64

    /* Binary mode, SET: 1999-12-31 23:59:59. */
    movb $0x0B, %al
    movb $0x86, %ah                 /* SET, binary, 24-hour */
    call cmos_write64
    movw $(0x32 | 19 << 8), %ax
    call cmos_write64
    movw $(0x09 | 99 << 8), %ax
    call cmos_write64
    movw $(0x08 | 12 << 8), %ax
    call cmos_write64
    movw $(0x07 | 31 << 8), %ax
    call cmos_write64
    movw $(0x04 | 23 << 8), %ax
    call cmos_write64
    movw $(0x02 | 59 << 8), %ax
    call cmos_write64
    movw $(0x00 | 59 << 8), %ax
    call cmos_write64
    movw $(0x0B | 0x06 << 8), %ax   /* SET cleared: it runs */
    call cmos_write64
    movq $1100000, %rax
    call spin_us64
    call read_time
    movq $msg_set, %rsi
    call puts64
    call put_date
    call newline64
    movq $msg_carry, %rsi
    cmpl $2000, year
    jne fail_line64
    cmpb $1, month
    jne fail_line64
    cmpb $1, day
    jne fail_line64
    cmpb $0, hour
    jne fail_line64
    cmpb $0, minute
    jne fail_line64
    cmpb $1, second
    ja fail_line64
    movb $0x06, %al
    call cmos_read64
    cmpb $7, %al
    movq $msg_weekday, %rsi
    jne fail_line64

    /* The CMOS memory: base memory, and memory above 1 MiB. */
    movb $0x15, %al
    call cmos_read64
    movb %al, %bl
    movb $0x16, %al
    call cmos_read64
    movb %al, %bh
    cmpw $640, %bx
    movq $msg_base, %rsi
    jne fail_line64
    movb $0x17, %al
    call cmos_read64
    movb %al, %bl
    movb $0x18, %al
    call cmos_read64
    movb %al, %bh
    movzwl %bx, %ebx
    movl mem_upper, %eax
    cmpl $0xFFFF, %eax
    jbe 2f
    movl $0xFFFF, %eax
2:  cmpl %eax, %ebx
    movq $msg_extended, %rsi
    jne fail_line64
    call interrupts
    movq $msg_ok, %rsi
    call puts64
    ret

/* The clock's interrupts: IRQ 8 on I/O APIC pin 8, to vector 0x68 at
   APIC ID 0, the local APIC in x2APIC mode; status B is binary and
   24-hour from here on (as set above). */
interrupts:
    movq $irq_rtc, %rax
    movl $0x68, %ecx
    call gate64_set
    call x2apic_on64
    movb $0x21, %al                 /* pin 8's destination: APIC ID 0 */
    xorl %edx, %edx
    call ioapic_write64
    movb $0x20, %al                 /* edge, fixed, vector 0x68 */
    movl $0x68, %edx
    call ioapic_write64

    /* Periodic, 16 Hz, for 1 s. */
    movw $(0x0A | 0x2C << 8), %ax
    call cmos_write64
    movb $0x0C, %al                 /* nothing pending */
    call cmos_read64
    call stamp
    movw $(0x0B | 0x46 << 8), %ax   /* PIE, binary, 24-hour */
    call cmos_write64
    movq $1000000, %rax
    call spin_sti64
    movw $(0x0B | 0x06 << 8), %ax
    call cmos_write64
    call since_us
    movq %rax, %r13                 /* us */
    movq count_p, %r12
    movq $msg_periodic, %rsi
    call puts64
    movq %r12, %rax
    call put_dec64
    movq $msg_periodic_in, %rsi
    call puts64
    movq %r13, %rax
    call put_dec64
    movq $msg_us, %rsi
    call puts64
    movq %r13, %rax                 /* periods in the interval */
    shlq $4, %rax
    xorl %edx, %edx
    movq $1000000, %rcx
    divq %rcx
    leaq 1(%rax), %rcx
    movq $msg_periodic_many, %rsi
    cmpq %rcx, %r12
    ja fail_line64
    leaq (%rax,%rax,2), %rax        /* three quarters of them */
    shrq $2, %rax
    movq $msg_periodic_few, %rsi
    cmpq %rax, %r12
    jb fail_line64

    /* The fastest rate, status C never read: one interrupt in 50 ms
       (after 10 ms for an interrupt still on its way to be taken). */
    movq $10000, %rax
    call spin_sti64
    movb $1, c_unread
    movq count_irq, %r12
    movw $(0x0A | 0x23 << 8), %ax   /* 8192 Hz */
    call cmos_write64
    movw $(0x0B | 0x46 << 8), %ax
    call cmos_write64
    movq $50000, %rax
    call spin_sti64
    movq count_irq, %r13
    subq %r12, %r13
    movb $0x0C, %al
    call cmos_read64
    movb %al, %bl
    movb $0, c_unread
    movw $(0x0B | 0x06 << 8), %ax
    call cmos_write64
    movw $(0x0A | 0x26 << 8), %ax
    call cmos_write64
    movb $0x0C, %al
    call cmos_read64
    movq $msg_unread, %rsi
    call puts64
    movq %r13, %rax
    call put_dec64
    movq $msg_unread_in, %rsi
    call puts64
    movq $msg_unread_many, %rsi
    cmpq $1, %r13
    jne fail_line64
    andb $0xC0, %bl
    movq $msg_unread_flags, %rsi
    cmpb $0xC0, %bl
    jne fail_line64

    /* The alarm: this hour, any minute, two seconds on. */
    movb $0x00, %al
    call cmos_read64
    addb $2, %al
    cmpb $60, %al
    jb 1f
    subb $60, %al
1:  movb %al, alarm_second
    movb %al, %ah
    movb $0x01, %al
    call cmos_write64
    movw $(0x03 | 0xC0 << 8), %ax   /* minutes: don't care */
    call cmos_write64
    movb $0x04, %al
    call cmos_read64
    movb %al, %ah
    movb $0x05, %al
    call cmos_write64
    movb $0x0C, %al
    call cmos_read64
    movq $count_a, %rdi
    movw $(0x0B | 0x26 << 8), %ax   /* AIE */
    call cmos_write64
    movq count_a, %rax
    incq %rax
    call wait_count64
    jnc 2f
    call wait_count64
    movq $msg_no_alarm, %rsi
    jc fail_line64
2:  movb $0x00, %al
    call cmos_read64
    movb %al, %bl
    movw $(0x0B | 0x06 << 8), %ax
    call cmos_write64
    movq $msg_alarm, %rsi
    call puts64
    movzbl %bl, %eax
    call put_dec64
    call newline64
    movq $msg_alarm_second, %rsi
    cmpb alarm_second, %bl
    jne fail_line64

    /* Update-ended: two of them, a second apart. */
    movb $0x0C, %al
    call cmos_read64
    movq $count_u, %rdi
    movw $(0x0B | 0x16 << 8), %ax   /* UIE */
    call cmos_write64
    movq count_u, %rax
    addq $2, %rax
    call wait_count64
    jnc 3f
    call wait_count64
    movq $msg_no_update, %rsi
    jc fail_line64
3:  movw $(0x0B | 0x06 << 8), %ax
    call cmos_write64
    movq uf_last, %rax
    subq uf_prev, %rax
    xorl %edx, %edx
    movl long_tsc_khz, %ecx
    divq %rcx
    movq %rax, %r13                 /* ms */
    movq $msg_update, %rsi
    call puts64
    movq %r13, %rax
    call put_dec64
    movq $msg_update_apart, %rsi
    call puts64
    movq $msg_update_not_second, %rsi
    cmpq $800, %r13
    jb fail_line64
    cmpq $1200, %r13
    ja fail_line64
    ret

/* The clock's interrupt: status C read (unless c_unread), its flags
   counted, the TSC of each update noted; then EOI. */
irq_rtc:
    pushq %rax
    pushq %rcx
    pushq %rdx
    incq count_irq
    cmpb $0, c_unread
    jne 1f
    movb $0x0C, %al
    outb %al, $0x70
    inb $0x71, %al
    testb $0x40, %al
    jz 2f
    incq count_p
2:  testb $0x20, %al
    jz 3f
    incq count_a
3:  testb $0x10, %al
    jz 1f
    incq count_u
    movq uf_last, %rcx
    movq %rcx, uf_prev
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, uf_last
1:  movl $0x80B, %ecx
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    popq %rdx
    popq %rcx
    popq %rax
    iretq

stamp:
    pushq %rax
    pushq %rdx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, stamp_tsc
    popq %rdx
    popq %rax
    ret

/* %rax = microseconds since the stamp, by the TSC. */
since_us:
    pushq %rcx
    pushq %rdx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    subq stamp_tsc, %rax
    movl $1000, %ecx
    mulq %rcx
    movl long_tsc_khz, %ecx
    divq %rcx
    popq %rdx
    popq %rcx
    ret


/* One field: %al = register %al in the mode of status B (BCD or binary). */
field:
    call cmos_read64
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
    call cmos_read64
    movb %al, mode_b
1:  movb $0x0A, %al
    call cmos_read64
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
    jb fail_line64
    cmpb $12, month
    ja fail_line64
    cmpb $1, day
    jb fail_line64
    cmpb $31, day
    ja fail_line64
    cmpb $23, hour
    ja fail_line64
    cmpb $59, minute
    ja fail_line64
    cmpb $59, second
    ja fail_line64
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
msg_periodic:
    .asciz "guest-rtc: periodic 16 Hz: "
msg_periodic_in:
    .asciz " interrupts in "
msg_us:
    .asciz " us\n"
msg_periodic_many:
    .asciz "more periodic interrupts than periods (plus one)"
msg_periodic_few:
    .asciz "fewer periodic interrupts than three quarters of the periods"
msg_unread:
    .asciz "guest-rtc: 8192 Hz with status C unread: "
msg_unread_in:
    .asciz " interrupt(s) in 50 ms\n"
msg_unread_many:
    .asciz "not one interrupt with status C unread"
msg_unread_flags:
    .asciz "status C unread did not say IRQF and PF"
msg_no_alarm:
    .asciz "no alarm interrupt within 4 s"
msg_alarm:
    .asciz "guest-rtc: alarm interrupt at second "
msg_alarm_second:
    .asciz "the alarm came at a second other than its own"
msg_no_update:
    .asciz "no two update-ended interrupts within 4 s"
msg_update:
    .asciz "guest-rtc: update-ended interrupts "
msg_update_apart:
    .asciz " ms apart\n"
msg_update_not_second:
    .asciz "update-ended interrupts not 0.8-1.2 s apart"
msg_ok:
    .asciz "guest-rtc: CMOS clock ok\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 8
count_irq:
    .skip 8
count_p:
    .skip 8
count_a:
    .skip 8
count_u:
    .skip 8
uf_prev:
    .skip 8
uf_last:
    .skip 8
stamp_tsc:
    .skip 8
c_unread:
    .skip 1
alarm_second:
    .skip 1
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
