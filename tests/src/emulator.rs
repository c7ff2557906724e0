//! Emulator configurations and the command lines / config files they turn into.

use std::time::Duration;

use ipc::manifest::{DeviceModel, DeviceSpec, PciAddress};

use crate::judge::EmulatorKind;

/// Where QEMU sends the first serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuSerial<'a> {
    /// `-serial stdio`: to our stdout, for interactive runs.
    Stdio,
    /// `-serial file:PATH`.
    File(&'a str),
}

/// How QEMU runs the machine's CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Accel {
    /// QEMU's own translator: AMD-V with NPT under `-cpu max`, on any host.
    #[default]
    Tcg,
    /// The host's KVM, `-cpu host`: the host's own VT-x or AMD-V, nested
    /// (an Intel host with `kvm_intel nested=1` gives Ryokan real VT-x).
    /// Check the host with [`crate::kvm::check`] first.
    Kvm,
}

/// A QEMU machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    /// The `-cpu` string, e.g. `max` or `max,-svm`. Under [`Accel::Kvm`] a
    /// leading `max` becomes `host` (its feature changes are kept).
    pub cpu: String,
    pub accel: Accel,
    pub smp: u32,
    pub memory_mib: u32,
    /// Extra `-device` arguments, e.g. `intel-iommu`.
    pub devices: Vec<String>,
    /// Further arguments, last (e.g. `-icount shift=0,sleep=off` for `cargo xtask bench`).
    pub extra: Vec<String>,
    /// Raw disk images in the run's work dir, `-drive … id=disk<k>` for
    /// the `k`th: the runner makes each ([`DISK_BYTES`] of zeros) before boot.
    pub disks: Vec<String>,
    /// QEMU's user networks, `-netdev user,id=<id>`, one per virtio-net device.
    pub netdevs: Vec<String>,
    /// A host loopback port forwarded to TCP port [`FORWARDED_TO`] of the
    /// first user network's guest (`hostfwd`): the runner picks a free one
    /// just before boot, where there is a user network.
    pub host_port: Option<u16>,
}

/// The guest's TCP port a user network's forwarded host port reaches (echo).
pub const FORWARDED_TO: u16 = 7;

/// The size of each disk image the runner makes: 1 MiB, 2,048 sectors.
pub const DISK_BYTES: u64 = 1 << 20;

/// The disk image of the virtio-blk device at `pci`, in the run's work dir.
pub fn disk_file(pci: PciAddress) -> String {
    format!("disk-{:02x}-{:02x}-{:x}.img", pci.bus, pci.device, pci.function)
}

impl Default for Qemu {
    /// q35, `-cpu max` (AMD SVM with NPT), 2 CPUs, 512 MiB, Intel IOMMU.
    fn default() -> Self {
        Qemu {
            cpu: "max".to_string(),
            accel: Accel::Tcg,
            smp: 2,
            memory_mib: 512,
            devices: vec!["intel-iommu".to_string()],
            extra: Vec::new(),
            disks: Vec::new(),
            netdevs: Vec::new(),
            host_port: None,
        }
    }
}

impl Qemu {
    pub const BINARY: &'static str = "qemu-system-x86_64";
    /// Deterministic instruction counting: the guest TSC advances by one per
    /// instruction, and one host thread runs every CPU in turn (EMULATORS.md).
    pub const ICOUNT: [&'static str; 2] = ["-icount", "shift=0,sleep=off"];

    /// COM2 on a unix socket `control.sock` in the run's work dir (QEMU
    /// the server, not waiting for a client): mgmt's control channel.
    pub const CONTROL: [&'static str; 4] =
        ["-chardev", "socket,id=ctl,path=control.sock,server=on,wait=off", "-serial", "chardev:ctl"];
    /// The control socket's name in the run's work dir.
    pub const CONTROL_SOCKET: &'static str = "control.sock";

    /// The default machine with the control channel ([`Self::CONTROL`]).
    pub fn with_control() -> Self {
        Qemu { extra: Self::CONTROL.iter().map(|s| s.to_string()).collect(), ..Qemu::default() }
    }

    /// The default machine under [`Self::ICOUNT`]: runs are repeatable, and
    /// cross-CPU wake-ups do not wait for the host to schedule a CPU's thread.
    pub fn deterministic() -> Self {
        Qemu { extra: Self::ICOUNT.iter().map(|s| s.to_string()).collect(), ..Qemu::default() }
    }

    /// Whether the machine counts instructions (`-icount`): only QEMU's
    /// translator can, so such a machine stays on TCG under `--accel kvm`.
    pub fn counts_instructions(&self) -> bool {
        self.extra.iter().any(|a| a == Self::ICOUNT[0])
    }

    /// This machine on `accel`, unless it counts instructions (which KVM
    /// cannot): then it stays as it is.
    pub fn on(mut self, accel: Accel) -> Self {
        if !self.counts_instructions() {
            self.accel = accel;
        }
        self
    }

    /// This machine with the PCI devices a system file names: for each
    /// `model`, that device at its address on the root bus (virtio with
    /// `disable-legacy=on,iommu_platform=on`, so that its DMA goes through
    /// the IOMMU: EMULATORS.md), a virtio-blk device backed by a disk image
    /// ([`disk_file`]), a virtio-net device by QEMU's user network.
    /// Devices without a model are the machine's own: nothing is added.
    pub fn with_pci(mut self, devices: &[DeviceSpec]) -> Result<Self, String> {
        for d in devices {
            let Some(model) = d.model else { continue };
            if d.pci.bus != 0 {
                return Err(format!(
                    "device {}: QEMU's devices go on the root bus here (bus 00), not bus {:02x}",
                    d.pci, d.pci.bus
                ));
            }
            let at = format!("bus=pcie.0,addr={:02x}.{:x}", d.pci.device, d.pci.function);
            // A device handed out raises its interrupts through the
            // IOMMU's interrupt remapping: said, though QEMU offers it
            // anyway where the irqchip is not KVM's (TCG needs no split).
            for iommu in self.devices.iter_mut().filter(|d| *d == "intel-iommu" || *d == "amd-iommu") {
                iommu.push_str(",intremap=on");
            }
            let virtio = "disable-legacy=on,iommu_platform=on";
            let k = self.disks.len() + self.devices.len() + self.netdevs.len();
            match model {
                DeviceModel::VirtioBlk => {
                    let id = self.disks.len();
                    self.disks.push(disk_file(d.pci));
                    self.devices.push(format!("virtio-blk-pci,drive=disk{id},{at},{virtio}"));
                }
                DeviceModel::VirtioNet => {
                    self.netdevs.push(format!("net{k}"));
                    self.devices.push(format!("virtio-net-pci,netdev=net{k},{at},{virtio}"));
                }
            }
        }
        Ok(self)
    }

    /// The `-cpu` argument: under KVM the host's CPU in place of `max`.
    fn cpu_arg(&self) -> String {
        match self.accel {
            Accel::Tcg => self.cpu.clone(),
            Accel::Kvm => match self.cpu.strip_prefix("max") {
                Some(rest) => format!("host{rest}"),
                None => self.cpu.clone(),
            },
        }
    }

    /// The arguments that boot `iso` (see EMULATORS.md).
    pub fn args(&self, iso: &str, serial: QemuSerial<'_>) -> Vec<String> {
        let accel = match self.accel {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        };
        let mut a: Vec<String> =
            ["-accel", accel, "-machine", "q35", "-cpu"].iter().map(|s| s.to_string()).collect();
        a.push(self.cpu_arg());
        a.push("-smp".to_string());
        a.push(self.smp.to_string());
        a.push("-m".to_string());
        a.push(format!("{}M", self.memory_mib));
        for s in ["-cdrom", iso, "-display", "none", "-monitor", "none"] {
            a.push(s.to_string());
        }
        a.push("-no-reboot".to_string());
        a.push("-serial".to_string());
        a.push(match serial {
            QemuSerial::Stdio => "stdio".to_string(),
            QemuSerial::File(path) => format!("file:{path}"),
        });
        for (k, file) in self.disks.iter().enumerate() {
            a.push("-drive".to_string());
            a.push(format!("file={file},if=none,id=disk{k},format=raw"));
        }
        for d in &self.devices {
            a.push("-device".to_string());
            a.push(d.clone());
        }
        // The kernel's exit port: status = (value << 1) | 1.
        a.push("-device".to_string());
        a.push("isa-debug-exit,iobase=0xf4,iosize=4".to_string());
        a.extend(self.extra.iter().cloned());
        for (k, id) in self.netdevs.iter().enumerate() {
            a.push("-netdev".to_string());
            a.push(match self.host_port {
                Some(port) if k == 0 => format!("user,id={id},hostfwd=tcp:127.0.0.1:{port}-:{FORWARDED_TO}"),
                _ => format!("user,id={id}"),
            });
        }
        a
    }
}

/// A Bochs machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bochs {
    /// `cpu: model=…`, e.g. `corei7_skylake_x` (VT-x with EPT).
    pub cpu_model: String,
    pub cpus: u32,
    pub memory_mib: u32,
    /// Emulated instructions per second (the guest's notion of time).
    pub ips: u64,
}

impl Default for Bochs {
    /// Skylake-X (VT-x with EPT), 1 CPU, 256 MiB.
    fn default() -> Self {
        Bochs { cpu_model: "corei7_skylake_x".to_string(), cpus: 1, memory_mib: 256, ips: 50_000_000 }
    }
}

impl Bochs {
    pub const BINARY: &'static str = "bochs-bin";
    pub const BIOS: &'static str = "/usr/share/bochs/BIOS-bochs-latest";
    pub const VGABIOS: &'static str = "/usr/share/bochs/VGABIOS-lgpl-latest";

    /// A bochsrc that runs non-interactively (EMULATORS.md). Paths must not
    /// contain spaces or commas: the runner passes names relative to its work dir.
    pub fn bochsrc(&self, iso: &str, serial: &str, log: &str) -> String {
        format!(
            "\
# Generated by ryokan-systest.
megs: {megs}
cpu: model={model}, count={cpus}, ips={ips}, reset_on_triple_fault=0
romimage: file={bios}
vgaromimage: file={vgabios}
display_library: rfb, options=\"timeout=0\"
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path={iso}, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev={serial}
log: {log}
clock: sync=none, time0=utc
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
port_e9_hack: enabled=1
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
",
            megs = self.memory_mib,
            model = self.cpu_model,
            cpus = self.cpus,
            ips = self.ips,
            bios = Self::BIOS,
            vgabios = Self::VGABIOS,
        )
    }

    /// Bochs' debugger script: just run.
    pub const CONTINUE_RC: &'static str = "continue\n";

    /// The arguments, given `bochsrc` and `continue.rc` in the working directory.
    pub fn args() -> Vec<String> {
        ["-q", "-f", "bochsrc", "-rc", "continue.rc"].iter().map(|s| s.to_string()).collect()
    }
}

/// One of the emulators, configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulator {
    Qemu(Qemu),
    Bochs(Bochs),
}

impl Emulator {
    pub fn kind(&self) -> EmulatorKind {
        match self {
            Emulator::Qemu(_) => EmulatorKind::Qemu,
            Emulator::Bochs(_) => EmulatorKind::Bochs,
        }
    }

    /// How long a boot may take: the kernel needs a few seconds in either.
    /// QEMU under instruction counting gets as long as Bochs: there one host
    /// thread runs every CPU, and world switches cost much host time for
    /// few counted instructions (`guest_storm`'s exit storm: about 50 µs of
    /// host time an exit, some 80 s for its 4 s).
    pub fn default_timeout(&self) -> Duration {
        match self {
            Emulator::Qemu(q) if q.counts_instructions() => Duration::from_secs(180),
            // A system driven over its control channel lasts as long as
            // its driver (`control_cli`: some 15 s of checks, then 10^5
            // fuzzed frames, 66-99 s, the most beside the full suite) and
            // ends when told to.
            Emulator::Qemu(q) if q.extra.iter().any(|a| a == Qemu::CONTROL[1]) => Duration::from_secs(240),
            // `domains_hostile`'s 10^6 random calls took 58 s of a 60 s
            // bound on an idle CI machine (issue 10's notes): a hung run
            // costs two minutes, a slow one does not fail for its speed.
            Emulator::Qemu(_) => Duration::from_secs(120),
            Emulator::Bochs(_) => Duration::from_secs(180),
        }
    }

    /// A one-line description, e.g. for test listings.
    pub fn describe(&self) -> String {
        match self {
            Emulator::Qemu(q) => {
                let mut s = match q.accel {
                    Accel::Tcg => String::from("QEMU"),
                    Accel::Kvm => String::from("QEMU -accel kvm"),
                };
                s.push_str(&format!(" -cpu {} -smp {} -m {}M", q.cpu_arg(), q.smp, q.memory_mib));
                for d in &q.devices {
                    s.push_str(&format!(" -device {d}"));
                }
                for a in &q.extra {
                    s.push_str(&format!(" {a}"));
                }
                s
            }
            Emulator::Bochs(b) => format!("Bochs {} x{} {} MiB", b.cpu_model, b.cpus, b.memory_mib),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_default_command_line() {
        let args = Qemu::default().args("image.iso", QemuSerial::File("serial.log"));
        assert_eq!(
            args.join(" "),
            "-accel tcg -machine q35 -cpu max -smp 2 -m 512M -cdrom image.iso -display none \
             -monitor none -no-reboot -serial file:serial.log -device intel-iommu \
             -device isa-debug-exit,iobase=0xf4,iosize=4"
        );
    }

    #[test]
    fn qemu_parameters_are_used() {
        let q = Qemu {
            cpu: "max,-svm".into(),
            accel: Accel::Tcg,
            smp: 4,
            memory_mib: 128,
            devices: vec!["amd-iommu".into()],
            extra: vec!["-icount".into(), "shift=0".into()],
            disks: Vec::new(),
            netdevs: Vec::new(),
            host_port: None,
        };
        let args = q.args("x.iso", QemuSerial::Stdio).join(" ");
        assert!(args.contains("-cpu max,-svm -smp 4 -m 128M"), "{args}");
        assert!(args.contains("-serial stdio -device amd-iommu"), "{args}");
        assert!(args.ends_with("iosize=4 -icount shift=0"), "{args}");
    }

    #[test]
    fn a_system_files_devices_are_put_where_it_says() {
        let dev = |device, model| DeviceSpec {
            pci: PciAddress { bus: 0, device, function: 0 },
            domain: "blk".try_into().unwrap(),
            model,
            unconfined_dma: true,
        };
        let devices =
            [dev(4, Some(DeviceModel::VirtioBlk)), dev(5, None), dev(6, Some(DeviceModel::VirtioNet))];
        let q = Qemu::default().with_pci(&devices).unwrap();
        assert_eq!(q.disks, ["disk-00-04-0.img"]);
        let args = q.args("x.iso", QemuSerial::Stdio).join(" ");
        assert!(
            args.contains(
                "-drive file=disk-00-04-0.img,if=none,id=disk0,format=raw -device intel-iommu,intremap=on \
             -device virtio-blk-pci,drive=disk0,bus=pcie.0,addr=04.0,disable-legacy=on,iommu_platform=on \
             -device virtio-net-pci,netdev=net3,bus=pcie.0,addr=06.0,disable-legacy=on,iommu_platform=on"
            ),
            "{args}"
        );
        assert!(args.ends_with("-netdev user,id=net3"), "{args}");
        let q = Qemu { host_port: Some(40007), ..q };
        let args = q.args("x.iso", QemuSerial::Stdio).join(" ");
        assert!(args.ends_with("-netdev user,id=net3,hostfwd=tcp:127.0.0.1:40007-:7"), "{args}");
        let mut far = dev(4, Some(DeviceModel::VirtioBlk));
        far.pci.bus = 1;
        assert!(Qemu::default().with_pci(&[far]).unwrap_err().contains("root bus"));
    }

    #[test]
    fn kvm_runs_the_host_cpu_with_the_same_changes_but_never_counts_instructions() {
        let q = Qemu { cpu: "max,-svm".into(), ..Qemu::default() }.on(Accel::Kvm);
        let args = q.args("x.iso", QemuSerial::Stdio).join(" ");
        assert!(args.starts_with("-accel kvm -machine q35 -cpu host,-svm -smp 2"), "{args}");
        assert!(Emulator::Qemu(q).describe().starts_with("QEMU -accel kvm -cpu host,-svm"));
        let counted = Qemu::deterministic().on(Accel::Kvm);
        assert_eq!(counted.accel, Accel::Tcg, "-icount is TCG's alone");
        assert!(counted
            .args("x.iso", QemuSerial::Stdio)
            .join(" ")
            .starts_with("-accel tcg -machine q35 -cpu max "));
        assert_eq!(Qemu::default().on(Accel::Tcg), Qemu::default());
    }

    #[test]
    fn bochsrc_has_the_tested_settings() {
        let rc = Bochs::default().bochsrc("image.iso", "serial.log", "bochs.log");
        for want in [
            "megs: 256\n",
            "cpu: model=corei7_skylake_x, count=1, ips=50000000, reset_on_triple_fault=0\n",
            "ata0-master: type=cdrom, path=image.iso, status=inserted\n",
            "com1: enabled=1, mode=file, dev=serial.log\n",
            "log: bochs.log\n",
            "clock: sync=none, time0=utc\n",
            "romimage: file=/usr/share/bochs/BIOS-bochs-latest\n",
        ] {
            assert!(rc.contains(want), "missing {want:?} in\n{rc}");
        }
    }

    #[test]
    fn timeouts_follow_the_emulator() {
        assert_eq!(Emulator::Qemu(Qemu::default()).default_timeout().as_secs(), 120);
        assert_eq!(Emulator::Qemu(Qemu::deterministic()).default_timeout().as_secs(), 180);
        assert_eq!(Emulator::Qemu(Qemu::with_control()).default_timeout().as_secs(), 240);
        assert_eq!(Emulator::Bochs(Bochs::default()).default_timeout().as_secs(), 180);
    }
}
