//! Host tests of guests' `disks`.

use ipc::manifest::DiskSpec;

use super::tests::refused;
use super::*;

const DISKS: &str = r#"[[domain]]
name = "blk"
image = "blk"
memory = "2M"

[[domain]]
name = "net"
image = "net"
memory = "2M"

[[device]]
pci = "00:04.0"
domain = "blk"
model = "virtio-blk"

[[device]]
pci = "00:05.0"
domain = "net"
model = "virtio-net"

[[guest]]
name = "a"
image = "guest-hello"
memory = "8M"
disks = [{ blk = "blk", size = "1M" }, { blk = "blk", start = "1M", size = "2M", read_only = true }]

[[guest]]
name = "b"
image = "guest-hello"
memory = "8M"
disks = [{ blk = "blk", start = "1M", size = "1M", read_only = true }, { blk = "blk", start = "3M" }]
"#;

#[test]
fn disks_compile_to_the_manifest() {
    let c = compile("system.toml", DISKS).expect("compiles");
    let g = &c.manifest.guests;
    let d = |blk: &str, first_sector, sectors, read_only| DiskSpec {
        blk: blk.try_into().unwrap(),
        first_sector,
        sectors,
        read_only,
    };
    assert_eq!(g[0].disks.as_slice(), [d("blk", 0, Some(2048), false), d("blk", 2048, Some(4096), true)]);
    assert_eq!(g[1].disks.as_slice(), [d("blk", 2048, Some(2048), true), d("blk", 6144, None, false)]);
    assert_eq!(ipc::manifest::Manifest::decode(&c.bytes).as_ref(), Ok(&c.manifest));
}

#[test]
fn bad_disks_are_refused_at_their_key() {
    let first = r#"disks = [{ blk = "blk", size = "1M" }, "#;
    refused(&DISKS.replace(first, r#"disks = [{ blk = "nobody", size = "1M" }, "#), 25, "is no [[domain]]");
    refused(&DISKS.replace(first, r#"disks = [{ blk = "net", size = "1M" }, "#), 25, "drives no [[device]]");
    refused(&DISKS.replace(first, r#"disks = [{ blk = "blk", size = "0K" }, "#), 25, "size 0");
    refused(&DISKS.replace(first, r#"disks = [{ blk = "blk", size = "1X" }, "#), 25, "bad size");
    refused(&DISKS.replace(first, r#"disks = [{ blk = "blk", sise = "1M" }, "#), 25, "unknown field");
    refused(&DISKS.replace(first, r#"disks = [{ blk = "blk", read_only = 1 }, "#), 25, "invalid type");
    let five = r#"disks = [{ blk = "blk", size = "1K" }, { blk = "blk", size = "1K" }, { blk = "blk", size = "1K" }, { blk = "blk", size = "1K" }, "#;
    refused(&DISKS.replace(first, five), 25, "at most 4");
}

#[test]
fn overlapping_regions_are_refused_unless_read_only() {
    // b's second disk (from 3M to the end) overlaps a's first moved to 4M.
    let moved =
        DISKS.replace(r#"{ blk = "blk", size = "1M" }"#, r#"{ blk = "blk", start = "4M", size = "1M" }"#);
    refused(&moved, 31, "overlaps the one at system.toml:25:");
    // a's two disks overlap each other: the second is writable.
    let own =
        DISKS.replace(r#"start = "1M", size = "2M", read_only = true"#, r#"start = "512K", size = "2M""#);
    refused(&own, 25, "overlaps the one at system.toml:25:10");
    // Read-only on read-only may share (a's second and b's first do).
    assert!(compile("system.toml", DISKS).is_ok());
    // The same region on another domain's disk is no overlap.
    let two = DISKS
        .replace("model = \"virtio-net\"", "model = \"virtio-blk\"")
        .replace(r#"{ blk = "blk", start = "3M" }"#, r#"{ blk = "net", size = "1M" }"#);
    assert!(compile("system.toml", &two).is_ok(), "{:?}", compile("system.toml", &two).err());
}
