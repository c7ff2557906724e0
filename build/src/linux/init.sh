#!/bin/sh
# /init of the Linux test payload's initramfs (built by `cargo xtask
# linux-payload`): busybox's applets, the kernel's filesystems, a report
# a system test can judge, then a shell on the console, or, with
# `ryokan.test` on the command line, power-off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The TSC in init's first line: under QEMU's -icount, the machine's
# instructions since it started, which `cargo xtask bench` counts to here
# (build/src/bench/linux.rs). Read as ftrace's x86-tsc clock stamps a
# marker: the TSC itself, not a time since the kernel's start.
t=/sys/kernel/tracing
mount -t tracefs tracefs $t
echo x86-tsc > $t/trace_clock
echo ryokan-init > $t/trace_marker
tsc=$(grep -m1 'tracing_mark_write: ryokan-init' $t/trace)
tsc=${tsc%%: tracing_mark_write*}
echo "ryokan-init: started, uptime $(cut -d' ' -f1 /proc/uptime) s, tsc ${tsc##* }"
echo "ryokan-init: nproc $(nproc)"
# The timer interrupts of every CPU and the clock, twice, a second apart:
# a system test judges that both rise.
sample() {
    echo "ryokan-init: sample $1 uptime $(cut -d' ' -f1 /proc/uptime) s"
    grep -E 'LOC|timer' /proc/interrupts | sed "s/^/ryokan-init: irq $1 /"
}
# The CMOS clock's interrupt (IRQ 8): an alarm two seconds on (at most:
# the second's start after next), which rtc_cmos takes across `sleep 2`; a
# system test judges that rtc0's count in /proc/interrupts rises. Not one
# second on: Linux reads the clock for `+1` and again before it programs
# the alarm, and if the clock's second turned in between (its reads are
# exits, slow on a loaded host: CI saw it) the alarm is already due, so
# Linux fires it from a work item and the chip raises no interrupt.
rtc_irqs() { echo "ryokan-init: rtc irq $1 $(grep rtc0 /proc/interrupts)"; }
rtc_irqs 1
echo +2 > /sys/class/rtc/rtc0/wakealarm
sample 1
sleep 2
sample 2
rtc_irqs 2
# The clock the kernel keeps time by, and the CMOS clock (rtc0) and the
# system clock in seconds since 1970: a system test judges that the
# clock source is the TSC and that both dates are the host's.
echo "ryokan-init: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "ryokan-init: rtc0 $(cat /sys/class/rtc/rtc0/name 2>&1) $(cat /sys/class/rtc/rtc0/since_epoch 2>&1)"
echo "ryokan-init: date $(date -u +%s)"
# With `ryokan.disk` (linux_disk): /dev/vda, the ext4 file system the
# harness built on a region of the blk domain's disk. Mounted, its
# known.bin's SHA-256 said, new.bin (known.bin four times) written and
# synced, unmounted: the harness reads new.bin back from the image.
if grep -qw ryokan.disk /proc/cmdline; then
    for m in $(cat /lib/modules/order); do
        insmod "/lib/modules/$(uname -r)/kernel/$m" || echo "ryokan-init: disk: insmod $m failed"
    done
    mkdir -p /mnt
    if mount -t ext4 /dev/vda /mnt; then
        echo "ryokan-init: disk: mounted /dev/vda ($(cat /sys/block/vda/size) sectors)"
        echo "ryokan-init: disk: $(sha256sum /mnt/known.bin)"
        cat /mnt/known.bin /mnt/known.bin /mnt/known.bin /mnt/known.bin > /mnt/new.bin
        sync
        echo "ryokan-init: disk: wrote $(sha256sum /mnt/new.bin)"
        umount /mnt
        if dmesg | grep -q -i -E 'I/O error|EXT4-fs error|blk_update_request'; then
            echo "ryokan-init: disk: unmounted, with I/O errors:"
            dmesg | grep -i -E 'I/O error|EXT4-fs error|blk_update_request'
        else
            echo "ryokan-init: disk: unmounted, no I/O errors"
        fi
    else
        echo "ryokan-init: disk: cannot mount /dev/vda"
        dmesg | tail -20
    fi
fi
# The kernel's log, less its command line (which may say `panic=-1`).
log() { dmesg | grep -v -i 'command line'; }
if log | grep -q -E 'BUG|WARNING|Call Trace|panic'; then
    echo "ryokan-init: dmesg has errors:"
    log | grep -E -B2 -A8 'BUG|WARNING|Call Trace|panic'
else
    echo "ryokan-init: dmesg clean"
fi
# A clock the kernel found unstable (the TSC against its watchdog).
if log | grep -q -i 'unstable'; then
    echo "ryokan-init: dmesg says a clock is unstable:"
    log | grep -i 'unstable'
fi
if grep -qw ryokan.test /proc/cmdline; then
    echo "ryokan-init: done, powering off"
    poweroff -f
fi
echo "ryokan-init: a shell; 'poweroff -f' ends the guest"
setsid cttyhack sh
poweroff -f
