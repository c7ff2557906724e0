//! Guests' disks backed by the `blk` domain (issue 13): `linux_disk`
//! (must-show 1), `linux_disk_two` (two Linux guests on one physical
//! disk, each its own region: must-show 2's first half) and the hostile
//! twin `guest_disk_hostile`.
//!
//! The physical disk (QEMU's virtio-blk at 00:04.0, which `blk` drives)
//! is laid out by the harness: the harness's pattern at sectors 0..8 and
//! room for `blk`'s own at 100..108 (`blk` checks and writes them at start,
//! as in `blk_disk`), the guests' regions from 1 MiB on, and a guard of
//! known bytes after them, which no guest may reach.

use std::path::{Path, PathBuf};
use std::process::Command;

use ipc::block::pattern::{blk as blks, harness};
use ipc::manifest::PciAddress;
use sha2::{Digest, Sha256};

use super::{finished, MGMT, VMM};
use crate::cases::{Image, SystemTest};
use crate::domains::expect::{in_order, never, says, says_prefix};
use crate::emulator::{Emulator, Qemu};
use crate::judge::Outcome;

const SECTOR: usize = 512;
const MIB: usize = 1 << 20;
/// Where the guests' regions start (`start = "1M"` in the system files).
const REGIONS_AT: usize = MIB;
/// `linux_disk`'s ext4 region (`size = "32M"`), and the guard after it.
const EXT4_BYTES: usize = 32 * MIB;
const GUARD_BYTES: usize = MIB;
/// The file the harness puts in the file system, and the one the guest
/// writes: `known.bin` four times.
const KNOWN: &str = "known.bin";
const KNOWN_BYTES: usize = MIB;
const NEW: &str = "new.bin";
/// `guest_disk_hostile`'s two regions (`size = "32K"` each: the first
/// writable, the second read-only), then the guard.
const SMALL_BYTES: usize = 32 << 10;

pub fn cases() -> Vec<SystemTest> {
    let case = |name, file, check, prepare| SystemTest {
        name,
        image: Image::System(file),
        emulator: Emulator::Qemu(Qemu::default()),
        check,
        drive: None,
        prepare: Some(prepare),
    };
    vec![
        case("linux_disk", "tests/systems/linux-disk.toml", check_linux_disk, prepare_linux_disk),
        case("linux_disk_two", "tests/systems/linux-disk-two.toml", check_linux_disk_two, prepare_two),
        case("guest_disk_hostile", "tests/systems/guest-disk-hostile.toml", check_hostile, prepare_hostile),
    ]
}

fn image(dir: &Path) -> PathBuf {
    dir.join(crate::emulator::disk_file(PciAddress { bus: 0, device: 4, function: 0 }))
}

/// The known file's bytes (`seed`: whose; 0 for `linux_disk`).
fn known(seed: u8, i: usize) -> u8 {
    (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ (i / 4096) as u8 ^ seed.wrapping_mul(0x3d)
}

/// The guard's bytes, and each small region's.
fn guard(i: usize) -> u8 {
    (i * 11 + 7) as u8 ^ 0x5a
}

fn region_byte(r: usize, i: usize) -> u8 {
    (i * 3 + r * 101) as u8 ^ (i / SECTOR) as u8
}

/// The 1 MiB before the regions: the harness's pattern, zeros after.
fn header() -> Vec<u8> {
    let mut h = vec![0u8; REGIONS_AT];
    for (i, b) in h[..8 * SECTOR].iter_mut().enumerate() {
        *b = harness(i);
    }
    h
}

/// Whether the header is as `blk` leaves it: the harness's pattern,
/// `blk`'s at sectors 100..108, zeros elsewhere.
fn header_after(bytes: &[u8]) -> Result<(), String> {
    let want = |i: usize| match i {
        i if i < 8 * SECTOR => harness(i),
        i if (100 * SECTOR..108 * SECTOR).contains(&i) => blks(i - 100 * SECTOR),
        _ => 0,
    };
    match bytes[..REGIONS_AT].iter().enumerate().find(|&(i, &b)| b != want(i)) {
        Some((i, &b)) => Err(format!("the disk's header holds {b:#04x} at byte {i}, not {:#04x}", want(i))),
        None => Ok(()),
    }
}

fn sbin(tool: &str) -> String {
    let full = format!("/usr/sbin/{tool}");
    if Path::new(&full).exists() {
        full
    } else {
        tool.to_string()
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e} (e2fsprogs is a Debian package)"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({}): {text}", out.status))
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn known_bytes(seed: u8) -> Vec<u8> {
    (0..KNOWN_BYTES).map(|i| known(seed, i)).collect()
}

/// An ext4 file system of `bytes` (`mke2fs -d`) holding `known.bin` of
/// `seed`, made in `dir` under `name`.
fn ext4(dir: &Path, name: &str, seed: u8, bytes: usize) -> Result<Vec<u8>, String> {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    std::fs::write(root.join(KNOWN), known_bytes(seed)).map_err(|e| e.to_string())?;
    let fs = dir.join(format!("{name}.img"));
    let _ = std::fs::remove_file(&fs);
    run(Command::new(sbin("mke2fs"))
        .args(["-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", "-d"])
        .arg(&root)
        .arg(&fs)
        .arg(format!("{}k", bytes / 1024)))?;
    let ext4 = std::fs::read(&fs).map_err(|e| e.to_string())?;
    if ext4.len() != bytes {
        return Err(format!("mke2fs made {} bytes, not {bytes}", ext4.len()));
    }
    Ok(ext4)
}

/// The disk: the header, an ext4 file system holding `known.bin`, the guard.
fn prepare_linux_disk(dir: &Path) -> Result<(), String> {
    let mut disk = header();
    disk.extend_from_slice(&ext4(dir, "ext4", 0, EXT4_BYTES)?);
    disk.extend((0..GUARD_BYTES).map(guard));
    std::fs::write(image(dir), disk).map_err(|e| e.to_string())
}

/// `guest`'s lines of a disk whose `known.bin` is of `seed`, of `sectors`.
fn disk_said(s: &str, guest: &str, seed: u8, sectors: usize) -> Result<Vec<u8>, String> {
    let known = known_bytes(seed);
    says(s, guest, &format!("ryokan-init: disk: mounted /dev/vda ({sectors} sectors)"))?;
    says(s, guest, &format!("ryokan-init: disk: {}  /mnt/{KNOWN}", sha256(&known)))?;
    let new: Vec<u8> = known.iter().copied().cycle().take(4 * KNOWN_BYTES).collect();
    says(s, guest, &format!("ryokan-init: disk: wrote {}  /mnt/{NEW}", sha256(&new)))?;
    says(s, guest, "ryokan-init: disk: unmounted, no I/O errors")?;
    says(s, VMM, &format!("{guest}: powered off (ACPI S5)"))?;
    says(s, MGMT, &format!("{guest} exited with code 0"))?;
    Ok(new)
}

/// The file system at `range` of the image after the run: `new.bin` in it
/// is `new` (`debugfs`), and `e2fsck -fn` finds it clean.
fn ext4_after(
    o: &Outcome,
    disk: &[u8],
    range: std::ops::Range<usize>,
    name: &str,
    new: &[u8],
) -> Result<(), String> {
    let fs = o.work_dir.join(format!("{name}-after.img"));
    std::fs::write(&fs, &disk[range]).map_err(|e| e.to_string())?;
    let out = o.work_dir.join(format!("{name}-new-after.bin"));
    let _ = std::fs::remove_file(&out);
    run(Command::new(sbin("debugfs")).arg("-R").arg(format!("dump /{NEW} {}", out.display())).arg(&fs))?;
    let got = std::fs::read(&out).map_err(|e| format!("debugfs dumped no {NEW} from {name}: {e}"))?;
    if got != new {
        return Err(format!("{NEW} in {name} ({} bytes) is not what the guest wrote", got.len()));
    }
    run(Command::new(sbin("e2fsck")).arg("-fn").arg(&fs))
        .map_err(|e| format!("e2fsck -fn of {name}: {e}"))?;
    Ok(())
}

/// `linux_disk` (must-show 1): the Linux guest's /dev/vda is the ext4
/// region `blk` serves through its VMM; it mounts it, finds `known.bin`'s
/// SHA-256 the harness's, writes `new.bin` (4 MiB), syncs, unmounts and
/// powers off. After, the harness finds `new.bin` in the image
/// (`debugfs`) as the guest wrote it, `e2fsck -fn` finds the file system
/// clean, and nothing outside the region changed.
fn check_linux_disk(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    let region = (REGIONS_AT / SECTOR, (REGIONS_AT + EXT4_BYTES) / SECTOR);
    says(s, "blk", &format!("blk: guest disk linux:0: sectors {}..{} of the disk", region.0, region.1))?;
    says(s, VMM, &format!("linux: disk 0: {} sectors of blk's disk", EXT4_BYTES / SECTOR))?;
    let new = disk_said(s, "linux", 0, EXT4_BYTES / SECTOR)?;
    says(s, "blk", "blk: every client closed or dropped")?;
    never(s, MGMT, |m| m.contains("faulted"), "a faulted domain")?;
    let path = image(&o.work_dir);
    let disk = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if disk.len() != REGIONS_AT + EXT4_BYTES + GUARD_BYTES {
        return Err("the disk image changed size".into());
    }
    header_after(&disk)?;
    let guard_at = REGIONS_AT + EXT4_BYTES;
    if let Some(i) = (0..GUARD_BYTES).find(|&i| disk[guard_at + i] != guard(i)) {
        return Err(format!("the guard after the guest's region changed at its byte {i}"));
    }
    ext4_after(o, &disk, REGIONS_AT..guard_at, "ext4", &new)
}

/// `linux_disk_two`'s regions: 16 MiB each, side by side from 1 MiB.
const TWO_BYTES: usize = 16 * MIB;

/// The disk: the header, two ext4 file systems each with its own
/// `known.bin` (seeds 1 and 2), the guard.
fn prepare_two(dir: &Path) -> Result<(), String> {
    let mut disk = header();
    disk.extend_from_slice(&ext4(dir, "ext4-a", 1, TWO_BYTES)?);
    disk.extend_from_slice(&ext4(dir, "ext4-b", 2, TWO_BYTES)?);
    disk.extend((0..GUARD_BYTES).map(guard));
    std::fs::write(image(dir), disk).map_err(|e| e.to_string())
}

/// `linux_disk_two`: two Linux guests at once, each with its own 16 MiB
/// region of one physical disk: each finds its own `known.bin` (not the
/// other's: their SHA-256s differ), writes its `new.bin`; after, each
/// region holds its own guest's `new.bin`, both are clean, nothing
/// outside them changed.
fn check_linux_disk_two(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    let sectors = TWO_BYTES / SECTOR;
    let first = REGIONS_AT / SECTOR;
    says(s, "blk", &format!("blk: guest disk linux-a:0: sectors {first}..{} of the disk", first + sectors))?;
    says(
        s,
        "blk",
        &format!(
            "blk: guest disk linux-b:1: sectors {}..{} of the disk",
            first + sectors,
            first + 2 * sectors
        ),
    )?;
    let news = [disk_said(s, "linux-a", 1, sectors)?, disk_said(s, "linux-b", 2, sectors)?];
    says(s, "blk", "blk: every client closed or dropped")?;
    never(s, MGMT, |m| m.contains("faulted"), "a faulted domain")?;
    let path = image(&o.work_dir);
    let disk = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if disk.len() != REGIONS_AT + 2 * TWO_BYTES + GUARD_BYTES {
        return Err("the disk image changed size".into());
    }
    header_after(&disk)?;
    let guard_at = REGIONS_AT + 2 * TWO_BYTES;
    if let Some(i) = (0..GUARD_BYTES).find(|&i| disk[guard_at + i] != guard(i)) {
        return Err(format!("the guard after the regions changed at its byte {i}"));
    }
    for (r, (name, new)) in ["ext4-a", "ext4-b"].iter().zip(&news).enumerate() {
        let at = REGIONS_AT + r * TWO_BYTES;
        ext4_after(o, &disk, at..at + TWO_BYTES, name, new)?;
    }
    Ok(())
}

/// The disk: the header, two small regions of known bytes, the guard.
fn prepare_hostile(dir: &Path) -> Result<(), String> {
    let mut disk = header();
    for r in 0..2 {
        disk.extend((0..SMALL_BYTES).map(|i| region_byte(r, i)));
    }
    disk.extend((0..GUARD_BYTES).map(guard));
    std::fs::write(image(dir), disk).map_err(|e| e.to_string())
}

/// `guest_disk_hostile` (the twin): two guests, each with a small region
/// of `blk`'s disk (`guest-a`'s writable, `guest-b`'s read-only), whose
/// VMMs (`ryokan.disk-attack`) ask `blk` past their regions' ends, across
/// them, wrapping, and `guest-b`'s to write its read-only one: `blk`
/// refuses every one, and after the run every byte of the disk outside
/// `blk`'s own sectors is as the harness wrote it. (The VMM's own refusal
/// of a guest's chain past its disk's end, VIRTIO_BLK_S_IOERR, is
/// host-tested: `vmm::disks`, `vmm::backing`.)
fn check_hostile(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    let sectors = SMALL_BYTES / SECTOR;
    let first = REGIONS_AT / SECTOR;
    says(s, "blk", &format!("blk: guest disk guest-a:0: sectors {first}..{} of the disk", first + sectors))?;
    says(
        s,
        "blk",
        &format!(
            "blk: guest disk guest-b:1: sectors {}..{} of the disk, read-only",
            first + sectors,
            first + 2 * sectors
        ),
    )?;
    for (guest, ro) in [("guest-a", false), ("guest-b", true)] {
        let mut refused = vec![
            "a read past the end: refused (BadAddress)",
            "a write past the end: refused (BadAddress)",
            "a write across the end: refused (BadAddress)",
            "a write whose end wraps: refused (BadAddress)",
        ];
        if ro {
            refused.push("a write to a read-only disk: refused (InsufficientRights)");
        }
        for what in refused {
            says(s, VMM, &format!("{guest}: disk 0: {what}, as owed"))?;
        }
        let after = says(s, VMM, &format!("{guest}: disk 0: still {sectors} sectors after"))?;
        // The attack was made before the guest ran, which went on as ever.
        let hello = says(s, guest, "hello from a guest")?;
        in_order(&[("the attack", after), ("the guest's hello", hello)], guest)?;
        super::hello_said(s, guest, 8192, "console=ttyS0 greeting=hello ryokan.disk-attack")?;
    }
    says(s, "blk", "blk: every client closed or dropped")?;
    says_prefix(s, MGMT, "blk exited with code 0")?;
    let path = image(&o.work_dir);
    let disk = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if disk.len() != REGIONS_AT + 2 * SMALL_BYTES + GUARD_BYTES {
        return Err("the disk image changed size".into());
    }
    header_after(&disk)?;
    for r in 0..2 {
        let at = REGIONS_AT + r * SMALL_BYTES;
        if let Some(i) = (0..SMALL_BYTES).find(|&i| disk[at + i] != region_byte(r, i)) {
            return Err(format!("region {r} changed at its byte {i}"));
        }
    }
    let guard_at = REGIONS_AT + 2 * SMALL_BYTES;
    match (0..GUARD_BYTES).find(|&i| disk[guard_at + i] != guard(i)) {
        Some(i) => Err(format!("the guard after the regions changed at its byte {i}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_differ_where_a_mix_up_would_hide() {
        assert!((0..SMALL_BYTES).any(|i| region_byte(0, i) != region_byte(1, i)));
        assert!((0..SECTOR).any(|i| guard(i) != region_byte(0, i)));
        assert!((0..KNOWN_BYTES).filter(|&i| known(0, i) == 0).count() < KNOWN_BYTES / 100);
        assert_ne!(sha256(&known_bytes(1)), sha256(&known_bytes(2)), "each guest's own file");
        let mut h = header();
        h[100 * SECTOR..108 * SECTOR].iter_mut().enumerate().for_each(|(i, b)| *b = blks(i));
        assert_eq!(header_after(&h), Ok(()));
        h[2000] = 1;
        assert!(header_after(&h).is_err());
        assert!(header_after(&header()).is_err(), "blk's pattern missing");
    }
}
