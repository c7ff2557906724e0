//! Host tests of the system-file compiler's `[[guest]]` tables.

use ipc::manifest::Restart;

use super::tests::refused;
use super::*;

const GUESTS: &str = r#"[[domain]]
name = "hello"
image = "hello"
memory = "1M"

[[guest]]
name = "guest-hello"
image = "guest-hello"
cmdline = "console=ttyS0"
memory = "8M"
weight = 512
cpu = 0

[[guest]]
name = "spin"
image = "guest-spin"
memory = "16M"
vcpus = 2
cap = "50%"
restart = { policy = "backoff", max_restarts = 2, initial_ms = 5, max_ms = 20 }
"#;

#[test]
fn guests_compile_to_the_manifest() {
    let c = compile("system.toml", GUESTS).expect("compiles");
    let g = &c.manifest.guests;
    assert_eq!(g.len(), 2);
    assert_eq!(
        (g[0].name.as_str(), g[0].image.as_str(), g[0].cmdline.as_str()),
        ("guest-hello", "guest-hello", "console=ttyS0")
    );
    assert_eq!(
        (g[0].memory_kib, g[0].vcpus, g[0].weight, g[0].cap_percent, g[0].cpu),
        (8192, 1, 512, 0, Some(0))
    );
    assert_eq!(g[0].restart, Restart::Never);
    assert_eq!((g[1].vcpus, g[1].weight, g[1].cap_percent, g[1].cpu), (2, 256, 50, None));
    assert_eq!(g[1].restart, Restart::Backoff { max_restarts: 2, initial_ms: 5, max_ms: 20 });
    let images: Vec<_> = c.guest_images.iter().map(|i| (i.name.as_str(), i.at.as_str())).collect();
    assert_eq!(images, [("guest-hello", "system.toml:8:9"), ("guest-spin", "system.toml:16:9")]);
    assert_eq!(c.images.len(), 1, "guest kernels are not domain images");
    assert_eq!(ipc::manifest::Manifest::decode(&c.bytes).as_ref(), Ok(&c.manifest));
}

#[test]
fn bad_guest_values_are_refused_at_their_key() {
    refused(&GUESTS.replace("memory = \"8M\"", "memory = \"1M\""), 10, "from 2M to 3G");
    refused(&GUESTS.replace("memory = \"16M\"", "memory = \"4G\""), 17, "memory of 4194304 KiB");
    refused(&GUESTS.replace("vcpus = 2", "vcpus = 0"), 18, "1 to 16 vCPUs");
    refused(&GUESTS.replace("vcpus = 2", "vcpus = 300"), 18, "1 to 16 vCPUs");
    refused(&GUESTS.replace("weight = 512", "weight = 0"), 11, "weight 0");
    refused(&GUESTS.replace("weight = 512", "weight = 70000"), 11, "weight 70000");
    refused(&GUESTS.replace("cap = \"50%\"", "cap = 101"), 19, "cap of 101%");
    refused(&GUESTS.replace("cpu = 0", "cpu = -1"), 12, "cpu -1");
    refused(&GUESTS.replace("initial_ms = 5", "initial_ms = 50"), 20, "above max_ms = 20");
    refused(&GUESTS.replace("console=ttyS0", "tab\there"), 9, "printable ASCII");
    refused(&GUESTS.replace("console=ttyS0", &"x".repeat(129)), 9, "at most 128 bytes");
    refused(&GUESTS.replace("vcpus = 2", "vcpus = 2\ncolour = 1"), 19, "unknown field `colour`");
}

#[test]
fn guest_names_and_images_are_checked() {
    refused(&GUESTS.replace("name = \"spin\"", "name = \"hello\""), 15, "already defined at system.toml:2:8");
    refused(
        &GUESTS.replace("name = \"spin\"", "name = \"guest-hello\""),
        15,
        "already defined at system.toml:7:8",
    );
    refused(&GUESTS.replace("name = \"spin\"", "name = \"two words\""), 15, "bad guest name");
    refused(&GUESTS.replace("name = \"spin\"", "name = \"mgmt\""), 15, "root domain");
    refused(&GUESTS.replace("image = \"guest-spin\"", "image = \"vmm\""), 16, "reserved");
    refused(&GUESTS.replace("image = \"guest-spin\"", "image = \"manifest\""), 16, "reserved");
    refused(
        &GUESTS.replace("image = \"guest-spin\"", "image = \"hello\""),
        16,
        "a domain's image (at system.toml:3:9)",
    );
    refused(&GUESTS.replace("image = \"guest-spin\"", "image = \"\""), 16, "empty image name");
    let nine: String =
        (0..9).map(|i| format!("[[guest]]\nname = \"g{i}\"\nimage = \"k\"\nmemory = \"2M\"\n")).collect();
    // Eight were the most once; the limit of 100 has its own test
    // (a_hundred_guests_compile_and_one_more_is_refused).
    let eleven = compile("system.toml", &format!("{GUESTS}{nine}")).map(|c| c.manifest.guests.len());
    assert_eq!(eleven.ok(), Some(11));
}

const MODULES: &str = r#"[[guest]]
name = "a"
image = "guest-mods"
memory = "4M"
modules = [{ file = "mods/one.txt", cmdline = "one 1" }, { file = "mods/two.txt" }]

[[guest]]
name = "b"
image = "guest-mods"
memory = "4M"
modules = [{ file = "mods/two.txt", cmdline = "two again" }]
"#;

#[test]
fn guest_modules_are_boot_modules_by_file() {
    let c = compile("system.toml", MODULES).expect("compiles");
    let g = &c.manifest.guests;
    let mods = |i: usize| -> Vec<(&str, &str)> {
        g[i].modules.iter().map(|m| (m.module.as_str(), m.string.as_str())).collect()
    };
    assert_eq!(mods(0), [("guest-module.0", "one 1"), ("guest-module.1", "")]);
    assert_eq!(mods(1), [("guest-module.1", "two again")], "one boot module per file");
    let files: Vec<_> =
        c.guest_modules.iter().map(|m| (m.name.as_str(), m.file.as_str(), m.at.as_str())).collect();
    assert_eq!(
        files,
        [
            ("guest-module.0", "mods/one.txt", "system.toml:5:21"),
            ("guest-module.1", "mods/two.txt", "system.toml:5:67")
        ]
    );
    assert_eq!(ipc::manifest::Manifest::decode(&c.bytes).as_ref(), Ok(&c.manifest));
}

#[test]
fn bad_guest_modules_are_refused_at_their_key() {
    refused(&MODULES.replace("cmdline = \"one 1\"", "cmdline = \"tab\there\""), 5, "printable ASCII");
    refused(&MODULES.replace("one 1", &"x".repeat(65)), 5, "at most 64 bytes");
    refused(&MODULES.replace("file = \"mods/one.txt\"", "file = \"\""), 5, "empty module file name");
    refused(&MODULES.replace("cmdline = \"one 1\"", "size = 1"), 5, "unknown field `size`");
    let five =
        r#"modules = [{ file = "1" }, { file = "2" }, { file = "3" }, { file = "4" }, { file = "5" }]"#;
    refused(
        &MODULES.replace(r#"modules = [{ file = "mods/two.txt", cmdline = "two again" }]"#, five),
        11,
        "at most 4",
    );
    refused(
        &MODULES.replace(
            "image = \"guest-mods\"\nmemory = \"4M\"\nmodules",
            "image = \"guest-module.0\"\nmemory = \"4M\"\nmodules",
        ),
        3,
        "reserved",
    );
}

const KERNELS: &str = r#"[[guest]]
name = "linux"
kernel = "linux/vmlinuz"
initrd = "linux/initrd.img"
memory = "512M"
modules = [{ file = "mods/extra.txt", cmdline = "extra" }]

[[guest]]
name = "linux-2"
kernel = "linux/vmlinuz"
initrd = "mods/extra.txt"
memory = "64M"

[[guest]]
name = "test-kernel"
image = "guest-hello"
memory = "4M"
"#;

#[test]
fn kernels_and_initrds_by_file_are_boot_modules() {
    let c = compile("system.toml", KERNELS).expect("compiles");
    let g = &c.manifest.guests;
    let images: Vec<&str> = g.iter().map(|g| g.image.as_str()).collect();
    assert_eq!(
        images,
        ["guest-kernel.0", "guest-kernel.0", "guest-hello"],
        "one boot module per kernel file"
    );
    let kernels: Vec<_> =
        c.guest_kernels.iter().map(|m| (m.name.as_str(), m.file.as_str(), m.at.as_str())).collect();
    assert_eq!(kernels, [("guest-kernel.0", "linux/vmlinuz", "system.toml:3:10")]);
    let images: Vec<&str> = c.guest_images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(images, ["guest-hello"], "only kernels named by image are binaries of tests/guests");
    let mods = |i: usize| -> Vec<(&str, &str)> {
        g[i].modules.iter().map(|m| (m.module.as_str(), m.string.as_str())).collect()
    };
    assert_eq!(mods(0), [("guest-module.0", ""), ("guest-module.1", "extra")], "the initrd first");
    assert_eq!(mods(1), [("guest-module.1", "")], "a file is one module, as initrd or not");
    let files: Vec<&str> = c.guest_modules.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(files, ["linux/initrd.img", "mods/extra.txt"]);
    assert_eq!(ipc::manifest::Manifest::decode(&c.bytes).as_ref(), Ok(&c.manifest));
}

#[test]
fn a_guest_names_exactly_one_kernel() {
    refused(
        &KERNELS.replace("kernel = \"linux/vmlinuz\"\ninitrd = \"linux", "initrd = \"linux"),
        2,
        "needs its kernel",
    );
    refused(
        &KERNELS.replace("image = \"guest-hello\"", "image = \"guest-hello\"\nkernel = \"k\""),
        17,
        "not both",
    );
    refused(
        &KERNELS.replace("kernel = \"linux/vmlinuz\"\ninitrd", "kernel = \"\"\ninitrd"),
        3,
        "empty kernel file name",
    );
    refused(&KERNELS.replace("initrd = \"linux/initrd.img\"", "initrd = \"\""), 4, "empty initrd file name");
    refused(&KERNELS.replace("image = \"guest-hello\"", "image = \"guest-kernel.0\""), 16, "reserved");
    refused(&KERNELS.replace("initrd = \"mods/extra.txt\"", "initrd = 3"), 11, "invalid type");
}

#[test]
fn a_hundred_guests_compile_and_one_more_is_refused() {
    // A manifest of 100 guests is some 75 KiB, moved by value in a debug
    // build: more than a test thread's stack.
    let run = std::thread::Builder::new().stack_size(64 << 20).spawn(hundred_guests);
    run.expect("spawned").join().expect("passed");
}

fn hundred_guests() {
    let head = "[[domain]]\nname = \"hello\"\nimage = \"hello\"\nmemory = \"1M\"\n";
    let guest =
        |i: usize| format!("\n[[guest]]\nname = \"g{i}\"\nimage = \"guest-hello\"\nmemory = \"2M\"\n");
    let hundred: String = (0..ipc::manifest::MAX_GUESTS).map(guest).collect();
    let c = compile("system.toml", &format!("{head}{hundred}")).expect("100 guests compile");
    assert_eq!(c.manifest.guests.len(), 100);
    let mut buf = vec![0u8; 64 << 10];
    let bytes = c.manifest.encode(&mut buf).expect("100 guests encode");
    assert_eq!(ipc::manifest::Manifest::decode(bytes).map(|m| m.guests.len()), Ok(100));
    // The 101st [[guest]] starts on line 5 + 100 * 5 + 1.
    refused(&format!("{head}{hundred}{}", guest(100)), 506, "too many [[guest]]s: at most 100");
}
