//! Host tests of `[[device]]` tables: good ones reach the manifest, bad ones are refused at their key.

use ipc::manifest::{DeviceModel, PciAddress};

use super::tests::refused;
use super::*;

const GOOD: &str = r#"[[domain]]
name = "blk"
image = "blk"
memory = "1M"

[[device]]
pci = "00:04.0"
domain = "blk"
model = "virtio-blk"
unconfined_dma = true

[[guest]]
name = "guest-hello"
image = "guest-hello"
memory = "8M"
"#;

#[test]
fn a_device_reaches_the_manifest() {
    let c = compile("system.toml", GOOD).expect("compiles");
    let d = &c.manifest.devices[0];
    assert_eq!(d.pci, PciAddress { bus: 0, device: 4, function: 0 });
    assert_eq!((d.domain.as_str(), d.model, d.unconfined_dma), ("blk", Some(DeviceModel::VirtioBlk), true));
    let plain = GOOD.replace("model = \"virtio-blk\"\nunconfined_dma = true\n", "");
    let c = compile("system.toml", &plain).expect("compiles");
    assert_eq!((c.manifest.devices[0].model, c.manifest.devices[0].unconfined_dma), (None, false));
}

#[test]
fn a_device_for_no_domain_is_refused_at_its_domain() {
    refused(&GOOD.replace("domain = \"blk\"", "domain = \"disk\""), 8, "no [[domain]] named `disk`");
}

#[test]
fn a_device_given_twice_is_refused_where_it_is_given_again() {
    let twice = format!("{GOOD}\n[[device]]\npci = \"00:04.0\"\ndomain = \"blk\"\n");
    refused(&twice, 18, "device 00:04.0 is already given at system.toml:7:7");
    let other = format!("{GOOD}\n[[device]]\npci = \"00:05.0\"\ndomain = \"blk\"\n");
    assert_eq!(compile("system.toml", &other).expect("compiles").manifest.devices.len(), 2);
}

#[test]
fn a_device_given_to_a_guests_vmm_is_refused() {
    refused(&GOOD.replace("domain = \"blk\"", "domain = \"guest-hello\""), 8, "is a guest's VMM");
}

#[test]
fn bad_addresses_models_and_keys_are_refused_at_their_key() {
    refused(&GOOD.replace("\"00:04.0\"", "\"00:20.0\""), 7, "bad PCI address `00:20.0`");
    refused(&GOOD.replace("\"00:04.0\"", "\"0:4.0\""), 7, "bad PCI address");
    refused(&GOOD.replace("\"virtio-blk\"", "\"nvme\""), 9, "unknown device model `nvme`");
    refused(&GOOD.replace("unconfined_dma = true", "unconfined_dma = 1"), 10, "invalid type");
    refused(&GOOD.replace("unconfined_dma = true", "irq = 11"), 10, "unknown field `irq`");
}

#[test]
fn an_intx_line_is_one_devices_and_its_drivers_alone() {
    let intx = GOOD.replace("unconfined_dma = true", "unconfined_dma = true\nintx = 20");
    assert_eq!(compile("system.toml", &intx).expect("compiles").manifest.devices[0].intx, Some(20));
    assert_eq!(compile("system.toml", GOOD).expect("compiles").manifest.devices[0].intx, None);
    refused(&intx.replace("intx = 20", "intx = 24"), 11, "INTx line 24 does not exist");
    refused(&intx.replace("intx = 20", "intx = 256"), 11, "invalid value");
    let twice = format!("{intx}\n[[device]]\npci = \"00:05.0\"\ndomain = \"blk\"\nintx = 20\n");
    refused(&twice, 21, "line 20 is already a device's INTx at system.toml:11:8");
    let irq = intx.replace("memory = \"1M\"\n", "memory = \"1M\"\ncaps = [{ irq = 20 }]\n");
    refused(&irq, 12, "line 20 is given to `blk` at system.toml:5:9 too");
}

#[test]
fn a_snippet_cannot_hand_out_devices() {
    let snippet = GOOD.split("[[guest]]").next().unwrap_or_default();
    let e = compile_entry("system.toml", snippet).expect_err("refused");
    assert_eq!(e.line, 6, "{e}");
    assert!(e.message.contains("cannot hand out devices"), "{e}");
}
