//! Host tests of the system-file compiler: good files compile, bad ones are refused at the right place.

use std::path::Path;

use ipc::manifest::{CapSpec, Manifest, Restart};

use super::*;

const GOOD: &str = r#"# A system with every kind of capability.
[[domain]]
name = "hello"
image = "hello"
memory = "1M"
restart = { policy = "backoff", max_restarts = 3, initial_ms = 10, max_ms = 100 }
caps = ["console", { ioports = { base = 0x3f8, count = 8 } }, { shared = "mailbox", writable = true }, { domain = "peer" }, { irq = 4 }]

[[domain]]
name = "peer"
image = "hello"
memory = "512K"
restart = "never"
caps = [{ shared = "mailbox" }]

[[shared]]
name = "mailbox"
size = "4K"
"#;

/// GOOD without the capability that names `peer`, so that `peer` can be renamed.
fn alone() -> String {
    GOOD.replace(", { domain = \"peer\" }", "")
}

fn err(text: &str) -> CompileError {
    match compile("system.toml", text) {
        Ok(c) => panic!("compiled, but should not have: {:?}", c.manifest),
        Err(e) => e,
    }
}

/// Asserts the error is at `line` and its message contains `needle`.
pub(super) fn refused(text: &str, line: usize, needle: &str) {
    let e = err(text);
    let shown = e.to_string();
    assert_eq!(e.line, line, "wrong line: {shown}");
    assert!(e.message.contains(needle), "`{needle}` not in: {shown}");
    assert!(shown.starts_with(&format!("system.toml:{line}:{}: ", e.col)), "{shown}");
}

#[test]
fn a_good_file_compiles_to_the_manifest_it_says() {
    let c = compile("system.toml", GOOD).expect("compiles");
    let m = &c.manifest;
    assert_eq!(m.version, 1);
    assert_eq!(m.domains.len(), 2);
    let h = &m.domains[0];
    assert_eq!((h.name.as_str(), h.image.as_str(), h.memory_kib), ("hello", "hello", 1024));
    assert_eq!(h.restart, Restart::Backoff { max_restarts: 3, initial_ms: 10, max_ms: 100 });
    assert_eq!(h.caps[0], CapSpec::Console);
    assert_eq!(h.caps[1], CapSpec::IoPorts { base: 0x3f8, count: 8 });
    assert_eq!(h.caps[2], CapSpec::Shared { name: "mailbox".try_into().unwrap(), writable: true });
    assert_eq!(h.caps[3], CapSpec::Domain { name: "peer".try_into().unwrap() });
    assert_eq!(h.caps[4], CapSpec::Irq { line: 4 });
    let p = &m.domains[1];
    assert_eq!((p.memory_kib, p.restart), (512, Restart::Never));
    assert_eq!(p.caps[0], CapSpec::Shared { name: "mailbox".try_into().unwrap(), writable: false });
    assert_eq!((m.shared[0].name.as_str(), m.shared[0].kib), ("mailbox", 4));
    assert_eq!(Manifest::decode(&c.bytes).as_ref(), Ok(m));
    let images: Vec<_> = c.images.iter().map(|i| (i.name.as_str(), i.at.as_str())).collect();
    assert_eq!(images, [("hello", "system.toml:4:9")]);
}

#[test]
fn restart_defaults_to_never_and_sizes_take_units() {
    let c =
        compile("s.toml", "[[domain]]\nname = \"a\"\nimage = \"b\"\nmemory = \"1G\"\n").expect("compiles");
    assert_eq!((c.manifest.domains[0].restart, c.manifest.domains[0].memory_kib), (Restart::Never, 1 << 20));
    assert_eq!(schema::parse_size("2MiB"), Ok(schema::Size { kib: 2048 }));
    assert!(schema::parse_size("4096").is_err());
    assert!(schema::parse_size("K").is_err());
    assert!(schema::parse_size("99999999999999999999G").is_err());
    assert!(schema::parse_size("4T").is_err());
}

#[test]
fn syntax_errors_name_their_line() {
    refused(&GOOD.replace("memory = \"512K\"", "memory = \"512K"), 12, "");
    refused(&GOOD.replace("[[shared]]", "[[shared]"), 16, "");
}

#[test]
fn unknown_keys_are_refused_where_they_are() {
    refused(&GOOD.replace("restart = \"never\"", "restrat = \"never\""), 13, "unknown field `restrat`");
    refused(&format!("colour = 1\n{GOOD}"), 1, "unknown field `colour`");
    refused(&GOOD.replace("size = \"4K\"", "size = \"4K\"\nflags = 1"), 19, "unknown field `flags`");
    refused(&GOOD.replace("max_ms = 100", "max_ms = 100, jitter = 1"), 6, "jitter");
    refused(&GOOD.replace("count = 8", "count = 8, width = 1"), 7, "width");
}

#[test]
fn wrong_types_are_refused() {
    refused(&GOOD.replace("memory = \"1M\"", "memory = 1"), 5, "a size with a unit");
    refused(&GOOD.replace("memory = \"1M\"", "memory = \"1 parsec\""), 5, "bad size");
    refused(&GOOD.replace("name = \"peer\"", "name = 7"), 10, "invalid type");
    refused(&GOOD.replace("restart = \"never\"", "restart = \"sometimes\""), 13, "unknown restart policy");
    refused(&GOOD.replace("max_restarts = 3, ", ""), 6, "needs max_restarts");
    refused(&GOOD.replace("{ irq = 4 }", "{ irq = 400 }"), 7, "");
    refused(&GOOD.replace("{ irq = 4 }", "\"disk\""), 7, "unknown capability `disk`");
    refused(&GOOD.replace("{ irq = 4 }", "{ irq = 4, domain = \"peer\" }"), 7, "exactly one");
    refused(&GOOD.replace("caps = [{ shared = \"mailbox\" }]", "caps = [{ writable = true }]"), 14, "");
}

#[test]
fn missing_keys_are_refused_at_their_table() {
    let e = err(&GOOD.replace("image = \"hello\"\nmemory = \"512K\"", "memory = \"512K\""));
    assert!(e.message.contains("image"), "{e}");
    assert!((9..=13).contains(&e.line), "{e}");
}

#[test]
fn validation_problems_point_at_the_key_at_fault() {
    refused(
        &GOOD.replace("{ shared = \"mailbox\" }]", "{ shared = \"mailbag\" }]"),
        14,
        "no [[shared]] region named `mailbag`",
    );
    refused(
        &GOOD.replace("{ domain = \"peer\" }", "{ domain = \"nobody\" }"),
        7,
        "no other [[domain]] named `nobody`",
    );
    refused(&GOOD.replace("{ domain = \"peer\" }", "{ domain = \"hello\" }"), 7, "control of itself");
    refused(&GOOD.replace("count = 8", "count = 0"), 7, "I/O ports 0x3f8 + 0");
    refused(&GOOD.replace("{ irq = 4 }", "{ irq = 24 }"), 7, "IRQ line 24");
    refused(&GOOD.replace("memory = \"512K\"", "memory = \"2G\""), 12, "memory of 2097152 KiB");
    refused(
        &GOOD.replace("initial_ms = 10", "initial_ms = 1000"),
        6,
        "initial_ms = 1000, above max_ms = 100",
    );
    refused(
        &alone().replace("name = \"peer\"", "name = \"hello\""),
        10,
        "already defined at system.toml:3:8",
    );
    refused(&alone().replace("name = \"peer\"", "name = \"\""), 10, "empty domain name");
    refused(&GOOD.replace("size = \"4K\"", "size = \"6K\""), 18, "size of 6 KiB");
    refused(
        &format!("{GOOD}\n[[shared]]\nname = \"mailbox\"\nsize = \"8K\"\n"),
        21,
        "region named `mailbox` is already",
    );
    refused(&format!("version = 2\n{GOOD}"), 1, "manifest version 2");
    refused("[[shared]]\nname = \"x\"\nsize = \"4K\"\n", 1, "no [[domain]]");
}

#[test]
fn capacities_and_names_are_checked() {
    let alone = alone();
    refused(&alone.replace("name = \"peer\"", "name = \"a-name-much-longer-than-24\""), 10, "longer than 24");
    refused(&alone.replace("name = \"peer\"", "name = \"two words\""), 10, "bad domain name");
    refused(
        &alone.replace("image = \"hello\"\nmemory = \"512K\"", "image = \"mgmt\"\nmemory = \"512K\""),
        11,
        "reserved",
    );
    refused(&alone.replace("name = \"peer\"", "name = \"mgmt\""), 10, "root domain");
    let nine = ["\"console\""; 9].join(", ");
    refused(&GOOD.replace("caps = [{ shared = \"mailbox\" }]", &format!("caps = [{nine}]")), 14, "at most 8");
    let many: String =
        (0..17).map(|i| format!("[[domain]]\nname = \"d{i}\"\nimage = \"x\"\nmemory = \"4K\"\n")).collect();
    refused(&many, 65, "at most 16");
}

#[test]
fn the_repository_system_files_compile_and_the_bad_ones_do_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
    let mut files = vec![root.join("system.toml")];
    for e in std::fs::read_dir(root.join("tests/systems")).expect("tests/systems") {
        files.push(e.expect("entry").path());
    }
    let mut bad = 0;
    for path in files.iter().filter(|p| p.extension().is_some_and(|x| x == "toml")) {
        let shown = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let r = compile_file(path, &shown);
        let is_bad = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("bad-"));
        if is_bad {
            bad += 1;
            let e = r.expect_err("a bad- system file compiled");
            assert!(e.to_string().starts_with(&format!("{shown}:")), "{e}");
        } else if let Err(e) = r {
            panic!("{e}");
        }
    }
    assert!(bad > 0, "no bad-*.toml under tests/systems");
}

/// `manifest_rejected`: a system naming an undefined shared region fails with its line.
#[test]
fn manifest_rejected() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
    let path = root.join("tests/systems/bad-unknown-shared.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    let want_line = text.lines().position(|l| l.contains("mailbag")).expect("a cap naming `mailbag`") + 1;
    let e = compile_file(&path, "tests/systems/bad-unknown-shared.toml").expect_err("must be refused");
    let e = e.downcast::<CompileError>().expect("a located error");
    assert_eq!(e.line, want_line, "{e}");
    assert!(e.to_string().starts_with(&format!("tests/systems/bad-unknown-shared.toml:{want_line}:")), "{e}");
    assert!(e.message.contains("no [[shared]] region named `mailbag`"), "{e}");
}

/// `ryokan create`'s snippets: one entry, checked as the build checks a
/// system file, with the same `FILE:LINE:COL` errors.
#[test]
fn snippets_hold_one_entry_and_fail_as_the_build_does() {
    let domain = "[[domain]]\nname = \"new\"\nimage = \"hello\"\nmemory = \"512K\"\ncaps = [\"console\"]\n";
    let c = compile_entry("new.toml", domain).expect("one domain");
    assert_eq!((c.manifest.domains.len(), c.manifest.guests.len()), (1, 0));
    let guest = "[[guest]]\nname = \"vm\"\nimage = \"guest-hello\"\nmemory = \"4M\"\n";
    let c = compile_entry("vm.toml", guest).expect("one guest");
    assert_eq!((c.manifest.domains.len(), c.manifest.guests.len()), (0, 1));
    let e = |text: &str| compile_entry("new.toml", text).expect_err("refused").to_string();
    assert!(e("").starts_with("new.toml:1:1: a snippet for `ryokan create` needs one"), "{}", e(""));
    let two = format!("{domain}{guest}");
    assert!(e(&two).starts_with("new.toml:6:1: a snippet for `ryokan create` holds one"), "{}", e(&two));
    let shared = format!("{domain}[[shared]]\nname = \"m\"\nsize = \"4K\"\n");
    assert!(
        e(&shared).starts_with("new.toml:6:1: a snippet for `ryokan create` cannot make"),
        "{}",
        e(&shared)
    );
    // The build's own errors, at the same places as in a system file.
    let typo = domain.replace("memory", "memroy");
    let (built, created) = (compile("new.toml", &typo).expect_err("build"), e(&typo));
    assert_eq!(created, built.to_string());
    assert!(created.starts_with("new.toml:4:1: unknown field `memroy`"), "{created}");
    let big = domain.replace("512K", "1X");
    assert_eq!(e(&big), compile("new.toml", &big).expect_err("build").to_string());
}
