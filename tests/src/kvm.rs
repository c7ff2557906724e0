//! Whether this host can run Ryokan under KVM (`--accel kvm`): `/dev/kvm`
//! there and usable, a VM creatable, and nested virtualization on, so that
//! Ryokan finds VT-x (or AMD-V) inside its QEMU machine. Asked once, before
//! anything is built or booted, so that a user learns at once, and why.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

/// `/dev/kvm`'s ioctls (linux/kvm.h: `_IO(KVMIO, 0x00)` and `_IO(KVMIO, 0x01)`).
const KVM_GET_API_VERSION: libc::c_ulong = 0xae00;
const KVM_CREATE_VM: libc::c_ulong = 0xae01;
/// The only KVM API version there has ever been (linux/kvm.h `KVM_API_VERSION`).
const KVM_API_VERSION: libc::c_int = 12;

/// Where the KVM modules say whether they run guests' hypervisors.
const NESTED: [(&str, &str); 2] = [
    ("Intel VT-x", "/sys/module/kvm_intel/parameters/nested"),
    ("AMD-V", "/sys/module/kvm_amd/parameters/nested"),
];

/// Ok with what Ryokan will find in the machine ("Intel VT-x" or "AMD-V"),
/// or what is wrong and what to do about it.
pub fn check() -> Result<&'static str, String> {
    let kvm = OpenOptions::new().read(true).write(true).open("/dev/kvm").map_err(|e| open_error(&e))?;
    let fd = kvm.as_raw_fd();
    // SAFETY: KVM_GET_API_VERSION takes no argument and touches no memory of ours.
    let version = unsafe { libc::ioctl(fd, KVM_GET_API_VERSION, 0) };
    if version != KVM_API_VERSION {
        return Err(format!(
            "/dev/kvm answers API version {version}, not {KVM_API_VERSION}: this is not a KVM QEMU can use"
        ));
    }
    // SAFETY: KVM_CREATE_VM takes a machine type (0, the default) by value
    // and returns a new descriptor, which we own and close at once.
    let vm = unsafe { libc::ioctl(fd, KVM_CREATE_VM, 0) };
    if vm < 0 {
        return Err(format!(
            "/dev/kvm cannot create a virtual machine ({}): is another hypervisor holding VT-x/AMD-V?",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: `vm` is the descriptor KVM_CREATE_VM just gave us; nothing else holds it.
    unsafe { libc::close(vm) };
    nested(NESTED.map(|(vendor, path)| (vendor, std::fs::read_to_string(path).ok()))).map_err(|why| {
        match other_kvm_modules().as_slice() {
            [] => why,
            found => format!("{why} (this host's KVM is {})", found.join(", ")),
        }
    })
}

/// The loaded KVM modules other than `kvm` itself and the two that nest
/// (a paravirtual one such as `kvm_pvm` runs guests without VT-x or AMD-V).
fn other_kvm_modules() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/module") else { return Vec::new() };
    let mut found: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|m| m.starts_with("kvm_") && m != "kvm_intel" && m != "kvm_amd")
        .collect();
    found.sort();
    found
}

/// What a failed open of `/dev/kvm` means.
fn open_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "/dev/kvm is missing: this host has no KVM (no hardware \
             virtualization, or the kvm_intel/kvm_amd module is not loaded); run without --accel kvm \
             to use QEMU's own AMD-V (TCG), or --emulator bochs for VT-x"
            .to_string(),
        io::ErrorKind::PermissionDenied => {
            "cannot open /dev/kvm: permission denied; add yourself to its group (`sudo usermod -aG kvm $USER`, \
             then log in again) or run as root"
                .to_string()
        }
        _ => format!("cannot open /dev/kvm: {e}"),
    }
}

/// Judges the modules' `nested` parameters: Ryokan needs VT-x or AMD-V
/// inside its machine, which KVM gives only with nesting on.
fn nested(params: [(&'static str, Option<String>); 2]) -> Result<&'static str, String> {
    let mut loaded = false;
    for (vendor, value) in params {
        let Some(v) = value else { continue };
        loaded = true;
        if matches!(v.trim(), "Y" | "y" | "1") {
            return Ok(vendor);
        }
    }
    Err(if loaded {
        "KVM runs, but nested virtualization is off, so Ryokan would find no VT-x or AMD-V in its \
         machine; turn it on with `sudo modprobe -r kvm_intel && sudo modprobe kvm_intel nested=1` \
         (kvm_amd on AMD hosts)"
            .to_string()
    } else {
        "/dev/kvm is there but neither kvm_intel nor kvm_amd is loaded, so KVM cannot give Ryokan \
         VT-x or AMD-V in its machine; run without --accel kvm (QEMU's own AMD-V), or \
         --emulator bochs for VT-x"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_decides() {
        let p = |intel: Option<&str>, amd: Option<&str>| {
            nested([("Intel VT-x", intel.map(String::from)), ("AMD-V", amd.map(String::from))])
        };
        assert_eq!(p(Some("Y\n"), None), Ok("Intel VT-x"));
        assert_eq!(p(None, Some("1\n")), Ok("AMD-V"));
        assert!(p(Some("N\n"), None).unwrap_err().contains("nested virtualization is off"));
        assert!(p(None, Some("0\n")).unwrap_err().contains("nested virtualization is off"));
        assert!(p(None, None).unwrap_err().contains("neither kvm_intel nor kvm_amd"));
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let missing = open_error(&io::Error::from(io::ErrorKind::NotFound));
        assert!(missing.contains("/dev/kvm is missing") && missing.contains("without --accel kvm"));
        let denied = open_error(&io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(denied.contains("permission denied") && denied.contains("group"));
    }

    #[test]
    fn this_host_is_judged() {
        // On the build machines (no /dev/kvm) the answer is the missing
        // device; on a KVM host, whichever it is, never a panic.
        match (std::path::Path::new("/dev/kvm").exists(), check()) {
            (false, r) => assert!(r.unwrap_err().contains("/dev/kvm is missing")),
            (true, Ok(v)) => assert!(v == "Intel VT-x" || v == "AMD-V"),
            (true, Err(why)) => {
                let nests = NESTED.iter().any(|(_, p)| std::path::Path::new(p).exists());
                assert!(nests || why.contains("neither kvm_intel nor kvm_amd"), "{why}");
            }
        }
    }
}
