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
echo "ryokan-init: started, uptime $(cut -d' ' -f1 /proc/uptime) s"
echo "ryokan-init: nproc $(nproc)"
# The timer interrupts of every CPU and the clock, twice, a second apart:
# a system test judges that both rise.
sample() {
    echo "ryokan-init: sample $1 uptime $(cut -d' ' -f1 /proc/uptime) s"
    grep -E 'LOC|timer' /proc/interrupts | sed "s/^/ryokan-init: irq $1 /"
}
sample 1
sleep 1
sample 2
# The kernel's log, less its command line (which may say `panic=-1`).
log() { dmesg | grep -v -i 'command line'; }
if log | grep -q -E 'BUG|WARNING|Call Trace|panic'; then
    echo "ryokan-init: dmesg has errors:"
    log | grep -E -B2 -A8 'BUG|WARNING|Call Trace|panic'
else
    echo "ryokan-init: dmesg clean"
fi
if grep -qw ryokan.test /proc/cmdline; then
    echo "ryokan-init: done, powering off"
    poweroff -f
fi
echo "ryokan-init: a shell; 'poweroff -f' ends the guest"
setsid cttyhack sh
poweroff -f
