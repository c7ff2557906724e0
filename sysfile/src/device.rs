//! `[[device]]` tables: lowered to `ipc::manifest::DeviceSpec`, each value
//! checked here at its key (an address `BB:DD.F` in range, a known model,
//! a `[[domain]]` of the file that is no guest's VMM, no address twice), so
//! that `Manifest::validate`, which knows only "a device" is wrong, never
//! has to find the culprit.

use ipc::manifest::{DeviceModel, DeviceSpec, PciAddress, MAX_DEVICES};

use super::lower;
use super::schema::{DeviceTable, SystemFile};
use super::{Located, Source};

/// The address a table names.
fn address(t: &DeviceTable) -> Result<PciAddress, Located> {
    PciAddress::parse(t.pci.get_ref()).ok_or_else(|| {
        Located::new(
            t.pci.span(),
            format!(
                "bad PCI address `{}`: write BB:DD.F in hexadecimal, device 00 to 1f, function 0 to 7 \
                 (e.g. \"00:04.0\")",
                t.pci.get_ref()
            ),
        )
    })
}

fn model(t: &DeviceTable) -> Result<Option<DeviceModel>, Located> {
    let Some(m) = &t.model else { return Ok(None) };
    match DeviceModel::ALL.iter().find(|(name, _)| name == m.get_ref()) {
        Some((_, model)) => Ok(Some(*model)),
        None => {
            let known: Vec<_> = DeviceModel::ALL.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            Err(Located::new(
                m.span(),
                format!("unknown device model `{}`: {}", m.get_ref(), known.join(" or ")),
            ))
        }
    }
}

/// The devices of `f`, as the manifest has them; [`check`] has not run yet.
pub fn lower(f: &SystemFile) -> Result<heapless::Vec<DeviceSpec, MAX_DEVICES>, Located> {
    let mut devices = heapless::Vec::new();
    for d in &f.device {
        let t = d.get_ref();
        let spec = DeviceSpec {
            pci: address(t)?,
            domain: lower::name(&t.domain)?,
            model: model(t)?,
            unconfined_dma: t.unconfined_dma.as_ref().is_some_and(|u| *u.get_ref()),
            intx: t.intx.as_ref().map(|l| *l.get_ref()),
        };
        devices
            .push(spec)
            .map_err(|_| Located::new(d.span(), format!("too many [[device]]s: at most {MAX_DEVICES}")))?;
    }
    Ok(devices)
}

/// Each device goes once, to a `[[domain]]` of the file.
pub fn check(src: &Source<'_>, f: &SystemFile) -> Result<(), Located> {
    for (i, d) in f.device.iter().enumerate() {
        let t = d.get_ref();
        let pci = address(t)?;
        let earlier = f.device[..i].iter().find(|o| address(o.get_ref()).is_ok_and(|a| a == pci));
        if let Some(first) = earlier {
            let at = src.at(first.get_ref().pci.span().start);
            return Err(Located::new(t.pci.span(), format!("device {pci} is already given at {at}")));
        }
        if let Some(intx) = &t.intx {
            intx_line(src, f, i, intx)?;
        }
        let name = t.domain.get_ref();
        if f.guest.iter().any(|g| g.get_ref().name.get_ref() == name) {
            return Err(Located::new(
                t.domain.span(),
                format!(
                    "`{name}` is a guest's VMM: a device goes to a native [[domain]] (a driver domain), \
                     never to a guest's VMM"
                ),
            ));
        }
        if !f.domain.iter().any(|o| o.get_ref().name.get_ref() == name) {
            return Err(Located::new(
                t.domain.span(),
                format!("no [[domain]] named `{name}` to give device {pci} to"),
            ));
        }
    }
    Ok(())
}

/// Device `i`'s INTx line `intx`: one of the I/O APIC's 24, one device's,
/// and no domain's `{ irq = N }` as well (its interrupts are its driver's).
fn intx_line(src: &Source<'_>, f: &SystemFile, i: usize, intx: &toml::Spanned<u8>) -> Result<(), Located> {
    let line = *intx.get_ref();
    if line >= 24 {
        return Err(Located::new(intx.span(), format!("INTx line {line} does not exist: lines are 0 to 23")));
    }
    let earlier = f.device[..i].iter().filter_map(|o| o.get_ref().intx.as_ref());
    if let Some(first) = earlier.into_iter().find(|o| *o.get_ref() == line) {
        let at = src.at(first.span().start);
        return Err(Located::new(intx.span(), format!("line {line} is already a device's INTx at {at}")));
    }
    for d in &f.domain {
        let d = d.get_ref();
        if let Some(c) = d.caps.iter().find(|c| matches!(c.get_ref(), super::cap::Cap::Irq(l) if *l == line))
        {
            let at = src.at(c.span().start);
            return Err(Located::new(
                intx.span(),
                format!(
                    "line {line} is given to `{}` at {at} too: a device's INTx line is its driver's alone",
                    d.name.get_ref()
                ),
            ));
        }
    }
    Ok(())
}
