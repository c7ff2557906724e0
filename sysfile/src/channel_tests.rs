//! Host tests of the system-file compiler's endpoints, notifications and CPU settings.

use ipc::manifest::CapSpec;

use super::tests::refused;
use super::*;

const CHANNELS: &str = r#"[[endpoint]]
name = "pp"

[[notification]]
name = "doorbell"

[[domain]]
name = "server"
image = "hello"
memory = "1M"
weight = 512
cap = 25
cpu = 1
caps = [{ endpoint = "pp", server = true }, { notification = "doorbell", wait = true }]

[[domain]]
name = "client"
image = "hello"
memory = "1M"
cap = "50%"
caps = [{ endpoint = "pp", badge = 7 }, { notification = "doorbell" }, "console"]
"#;

fn n(s: &str) -> ipc::manifest::Name {
    s.try_into().expect("short")
}

#[test]
fn channels_and_cpu_settings_compile_to_the_manifest() {
    let c = compile("system.toml", CHANNELS).expect("compiles");
    let m = &c.manifest;
    assert_eq!(m.endpoints.as_slice(), [n("pp")]);
    assert_eq!(m.notifications.as_slice(), [n("doorbell")]);
    let (s, k) = (&m.domains[0], &m.domains[1]);
    assert_eq!((s.weight, s.cap_percent, s.cpu), (512, 25, Some(1)));
    assert_eq!((k.weight, k.cap_percent, k.cpu), (256, 50, None), "defaults, and a cap as a string");
    assert_eq!(s.caps[0], CapSpec::Endpoint { name: n("pp"), server: true, badge: 0 });
    assert_eq!(s.caps[1], CapSpec::Notification { name: n("doorbell"), wait: true });
    assert_eq!(k.caps[0], CapSpec::Endpoint { name: n("pp"), server: false, badge: 7 });
    assert_eq!(k.caps[1], CapSpec::Notification { name: n("doorbell"), wait: false });
    assert_eq!(Manifest::decode(&c.bytes).as_ref(), Ok(m));
}

#[test]
fn caps_take_every_spelling_in_range() {
    for (cap, want) in [("0", 0), ("\"0%\"", 0), ("100", 100), ("\" 7 %\"", 7)] {
        let c = compile("s.toml", &CHANNELS.replace("cap = 25", &format!("cap = {cap}"))).expect("compiles");
        assert_eq!(c.manifest.domains[0].cap_percent, want, "cap = {cap}");
    }
    let c = compile("s.toml", &CHANNELS.replace("weight = 512", "weight = 65535")).expect("compiles");
    assert_eq!(c.manifest.domains[0].weight, 65535);
}

#[test]
fn bad_cpu_settings_are_refused_at_their_key() {
    refused(&CHANNELS.replace("weight = 512", "weight = 0"), 11, "weight 0: a weight is 1 to 65535");
    refused(&CHANNELS.replace("weight = 512", "weight = 70000"), 11, "weight 70000");
    refused(&CHANNELS.replace("weight = 512", "weight = -1"), 11, "weight -1");
    refused(&CHANNELS.replace("weight = 512", "weight = \"heavy\""), 11, "invalid type");
    refused(&CHANNELS.replace("cap = 25", "cap = 101"), 12, "cap of 101%: a cap is 1 to 100 percent");
    refused(&CHANNELS.replace("cap = \"50%\"", "cap = \"150%\""), 20, "cap of 150%");
    refused(&CHANNELS.replace("cap = 25", "cap = 300"), 12, "cap of 300%");
    refused(&CHANNELS.replace("cap = 25", "cap = -5"), 12, "cap of -5%");
    refused(&CHANNELS.replace("cap = 25", "cap = \"lots\""), 12, "bad percentage `lots`");
    refused(&CHANNELS.replace("cap = 25", "cap = \"25\""), 12, "bad percentage");
    refused(&CHANNELS.replace("cap = 25", "cap = 2.5"), 12, "a percentage");
    refused(&CHANNELS.replace("cpu = 1", "cpu = -1"), 13, "cpu -1: a CPU number is 0 to 65535");
    refused(&CHANNELS.replace("cpu = 1", "cpu = 65536"), 13, "cpu 65536");
    refused(&CHANNELS.replace("cpu = 1", "cpus = 1"), 13, "unknown field `cpus`");
}

#[test]
fn channel_capabilities_are_checked() {
    refused(
        &CHANNELS.replace("{ endpoint = \"pp\", badge", "{ endpoint = \"qq\", badge"),
        21,
        "no [[endpoint]] named `qq`",
    );
    refused(
        &CHANNELS.replace("{ notification = \"doorbell\" }", "{ notification = \"bell\" }"),
        21,
        "no [[notification]] named `bell`",
    );
    refused(
        &CHANNELS.replace("{ endpoint = \"pp\", server = true }", "{ notification = \"pp\" }"),
        14,
        "no [[notification]] named `pp`",
    );
    refused(
        &CHANNELS.replace("server = true", "server = true, badge = 1"),
        14,
        "a server's endpoint takes none",
    );
    refused(&CHANNELS.replace("badge = 7", "wait = true"), 21, "`wait` goes only with `notification`");
    refused(&CHANNELS.replace("wait = true", "server = true"), 14, "`server` goes only with `endpoint`");
    refused(&CHANNELS.replace("\"console\"]", "{ badge = 1 }]"), 21, "exactly one of");
    refused(
        &CHANNELS.replace("\"console\"]", "{ endpoint = \"pp\", notification = \"doorbell\" }]"),
        21,
        "exactly one of",
    );
    refused(&CHANNELS.replace("badge = 7", "badge = -7"), 21, "");
    refused(&CHANNELS.replace("badge = 7", "bagde = 7"), 21, "unknown field `bagde`");
    refused(&CHANNELS.replace("server = true", "server = \"yes\""), 14, "invalid type");
}

#[test]
fn channel_declarations_are_checked() {
    let twice = format!("{CHANNELS}\n[[endpoint]]\nname = \"pp\"\n");
    refused(&twice, 24, "endpoint `pp` is already defined at system.toml:2:8");
    let twice = format!("[[notification]]\nname = \"doorbell\"\n{CHANNELS}");
    refused(&twice, 7, "notification `doorbell` is already defined at system.toml:2:8");
    refused(&CHANNELS.replace("\"pp\"", "\"\""), 2, "empty endpoint name");
    refused(&CHANNELS.replace("\"pp\"", "\"p p\""), 2, "bad endpoint name");
    let long = "e".repeat(24);
    refused(&CHANNELS.replace("\"pp\"", &format!("\"{long}\"")), 2, "longer than 23 bytes");
    let long = "n".repeat(20);
    refused(&CHANNELS.replace("\"doorbell\"", &format!("\"{long}\"")), 5, "longer than 19 bytes");
    refused(&CHANNELS.replace("name = \"pp\"", "name = \"pp\"\nsize = \"4K\""), 3, "unknown field `size`");
    refused(&CHANNELS.replace("[[endpoint]]", "[endpoint]"), 1, "[[endpoint]]");
    let nine: String = (0..9).map(|i| format!("[[endpoint]]\nname = \"e{i}\"\n")).collect();
    refused(&format!("{nine}{CHANNELS}"), 17, "too many [[endpoint]]s: at most 8");
}

#[test]
fn long_channel_names_that_fit_compile() {
    let (e, b) = ("e".repeat(23), "n".repeat(19));
    let text = CHANNELS.replace("\"pp\"", &format!("\"{e}\"")).replace("\"doorbell\"", &format!("\"{b}\""));
    let c = compile("s.toml", &text).expect("compiles");
    assert_eq!(c.manifest.endpoints[0].as_str(), e);
}

/// The README shows a system file: it must compile as shown.
#[test]
fn the_readme_example_compiles() {
    let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(readme).expect("README.md");
    let block = text.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let c = compile("README.md", block).unwrap_or_else(|e| panic!("{e}"));
    let d = &c.manifest.domains[0];
    assert_eq!((d.weight, d.cap_percent, d.cpu), (512, 25, Some(1)));
    assert_eq!(c.manifest.domains[1].caps[0], CapSpec::Endpoint { name: n("pp"), server: false, badge: 7 });
}
