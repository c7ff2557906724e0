//! Builds every domain image the way `cargo xtask` does (the flags below)
//! and checks each as its loader will: `ipc::elf::parse` must accept it,
//! with text, read-only data and writable data in separate segments, never
//! writable and executable, and the entry point at `_start`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ipc::elf;
use ipc::syscall::USER_MIN;

/// The packages holding domain images, and the images they make.
const IMAGES: [(&str, &[&str]); 2] = [
    ("ryokan-mgmt", &["mgmt"]),
    ("ryokan-samples", &["hello", "ticker", "steady", "faulter", "hostile", "shm-a", "shm-b", "churn"]),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("user/ has a parent").to_path_buf()
}

fn build() -> PathBuf {
    let root = root();
    let target_dir = root.join("target/user");
    let flags = format!(
        "-C relocation-model=static -C code-model=small -C link-arg=-T{} -C link-arg=-zmax-page-size=4096",
        root.join("user/link.ld").display()
    );
    let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    cmd.current_dir(&root).env("RUSTFLAGS", flags).env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd.args(["build", "--release", "--target", "x86_64-unknown-none", "--target-dir"]).arg(&target_dir);
    for (package, _) in IMAGES {
        cmd.args(["-p", package]);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building the images failed: {cmd:?}");
    target_dir.join("x86_64-unknown-none/release")
}

#[test]
fn every_image_passes_the_loaders_checks() {
    let dir = build();
    for name in IMAGES.iter().flat_map(|(_, bins)| bins.iter()) {
        let file = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let image =
            elf::parse(&file, USER_MIN..ipc::boot::IMAGE_END).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(image.entry, 0x40_0000, "{name}: _start comes first");
        let kinds: Vec<(bool, bool)> =
            image.segments.iter().map(|s| (s.access.write, s.access.exec)).collect();
        assert_eq!(kinds, [(false, true), (false, false), (true, false)], "{name}: text, rodata, data");
        for s in &image.segments {
            assert!(s.access.read, "{name}: every segment is readable");
            assert_eq!(s.vaddr % 4096, 0, "{name}: segments start on a page");
        }
    }
}
