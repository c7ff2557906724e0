//! Host tests of the payload's pieces that need no download: reading
//! apt's answer, and the initramfs from a made-up kernel tree.

use std::fs;

use super::*;
use crate::cpio::tests::read;

#[test]
fn the_kernel_package_is_read_from_apt_cache_depends() {
    let out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n";
    assert_eq!(kernel_package(out), Some("linux-image-6.1.0-57-cloud-amd64"));
    let virtual_first = "linux-image-cloud-amd64\n  Depends: <linux-image-6.1.0-9-cloud-amd64-unsigned>\n \
                         |Depends: linux-image-6.1.0-58-cloud-amd64\n  Recommends: apparmor\n";
    assert_eq!(kernel_package(virtual_first), None, "`|Depends` is an alternative, `<…>` a virtual package");
    let plain = "linux-image-cloud-amd64\n  Depends: apparmor\n  Depends: linux-image-6.1.0-58-cloud-amd64\n";
    assert_eq!(kernel_package(plain), Some("linux-image-6.1.0-58-cloud-amd64"));
    assert_eq!(kernel_package(""), None);
    assert_eq!(kernel_package("W: Unable to locate package linux-image-cloud-amd64\n"), None);
}

#[test]
fn only_a_bookworm_cloud_kernel_is_taken() {
    assert!(check_package("linux-image-6.1.0-57-cloud-amd64").is_ok());
    for bad in [
        "linux-image-6.12.22-cloud-amd64",
        "linux-image-6.1.0--cloud-amd64",
        "linux-image-6.1.0-57/../x-cloud-amd64",
        "linux-image-6.1.0-57-amd64",
    ] {
        assert!(check_package(bad).is_err(), "{bad}");
    }
}

/// A kernel package's module tree holding every module, with its path as
/// its contents.
fn fake_modules(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ryokan-linux-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for m in MODULES {
        let path = dir.join("kernel").join(m);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, m.as_bytes()).unwrap();
    }
    dir
}

#[test]
fn the_initramfs_holds_busybox_init_a_console_and_the_modules() {
    let modules = fake_modules("ok");
    let entries = read(&initramfs(b"\x7fELF busybox", &modules, "6.1.0-1-cloud-amd64").unwrap());
    let get = |name: &str| entries.iter().find(|e| e.0 == name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(get("bin/busybox").3, b"\x7fELF busybox");
    assert_eq!((get("bin/sh").1, get("bin/sh").3.as_slice()), (0o120777, &b"busybox"[..]));
    assert_eq!((get("init").1, get("init").3.as_slice()), (0o100755, INIT.as_bytes()));
    assert_eq!((get("dev/console").1, get("dev/console").2), (0o020600, (5, 1)));
    for d in ["proc", "sys", "dev", "tmp"] {
        assert_eq!(get(d).1, 0o040755, "{d}, where init mounts");
    }
    for m in MODULES {
        let name = format!("lib/modules/6.1.0-1-cloud-amd64/kernel/{m}");
        assert_eq!(get(&name).3, m.as_bytes());
    }
    // The order init loads them in, each after what it needs.
    let order = String::from_utf8(get("lib/modules/order").3.clone()).unwrap();
    assert_eq!(order.lines().collect::<Vec<_>>(), MODULES);
    let at = |m: &str| order.lines().position(|l| l.ends_with(m)).unwrap();
    // (virtio.ko needs virtio_ring's virtio_break_device: `depends=` in its modinfo.)
    assert!(at("/virtio_ring.ko") < at("/virtio.ko") && at("/virtio.ko") < at("/virtio_pci.ko"));
    assert!(
        at("/virtio_pci_modern_dev.ko") < at("/virtio_pci.ko") && at("/virtio_pci.ko") < at("/virtio_blk.ko")
    );
    // Every entry's directory comes before it.
    for (i, e) in entries.iter().enumerate() {
        if let Some((parent, _)) = e.0.rsplit_once('/') {
            let at = entries.iter().position(|d| d.0 == parent).unwrap_or_else(|| panic!("no {parent}"));
            assert!(at < i && entries[at].1 == 0o040755, "{parent} before {}", e.0);
        }
    }
    fs::remove_dir_all(&modules).unwrap();
}

#[test]
fn a_missing_module_is_an_error_not_a_smaller_initramfs() {
    let modules = fake_modules("missing");
    fs::remove_file(modules.join("kernel/drivers/net/virtio_net.ko")).unwrap();
    let e = initramfs(b"", &modules, "r").unwrap_err();
    assert!(format!("{e:#}").contains("virtio_net.ko"), "{e:#}");
    fs::remove_dir_all(&modules).unwrap();
}

#[test]
fn gzip_round_trips_and_is_reproducible() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let z = gzip(&data).unwrap();
    assert_eq!(&z[..2], [0x1f, 0x8b]);
    assert_eq!(z, gzip(&data).unwrap(), "no name or time in the header");
    let mut child =
        Command::new("gzip").args(["-dc"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&z).unwrap();
    assert_eq!(child.wait_with_output().unwrap().stdout, data);
}

#[test]
fn init_is_a_shell_script_that_reports_and_powers_off_when_testing() {
    assert!(INIT.starts_with("#!/bin/sh\n"));
    for needle in ["mount -t proc", "nproc", "/proc/interrupts", "dmesg", "ryokan.test", "poweroff -f"] {
        assert!(INIT.contains(needle), "{needle}");
    }
}
