//! Starting the root domain (`mgmt`) from its boot module: the one ELF the
//! kernel loads itself. The image is checked by `ipc::elf` before anything of
//! it is used; every other domain is loaded by `mgmt` in user mode.

use ipc::boot::{StartInfo, IMAGE_END, STACK_TOP, START_INFO_VA};
use ipc::elf::{self, ElfError};
use ipc::syscall::USER_MIN;
use ipc::{Error, ObjectType, Rights};
use x86_64::PhysAddr;

use crate::cap::Cap;
use crate::mem::kspace;
use crate::mem::paging::MapFlags;
use crate::obj::device::Device;
use crate::obj::domain::Domain;
use crate::obj::ioports::IoPorts;
use crate::obj::irq::Irq;
use crate::obj::memory::{Backing, Memory};
use crate::obj::pool::Ref;
use crate::obj::thread::{Context, Thread};
use crate::state::Kernel;

/// A boot module: its name (the GRUB command line) and physical extent.
#[derive(Clone, Copy, Debug)]
pub struct Module<'a> {
    pub name: &'a str,
    pub start: u64,
    pub end: u64,
}

/// Frames kept back from the root domain's quota for the kernel's own use.
const KERNEL_RESERVE: u64 = 512;
/// The root domain's first stack (256 KiB: it decodes the manifest).
const STACK_PAGES: u64 = 64;

/// Why the root domain could not be started.
#[derive(Clone, Copy, Debug)]
pub enum LoadError {
    BadImage(ElfError),
    Kernel(Error),
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        Self::Kernel(e)
    }
}

fn module_bytes(m: &Module) -> &'static [u8] {
    let va = kspace::phys_to_virt(PhysAddr::new(m.start));
    // SAFETY: the module's frames are reserved (never handed out) and covered
    // by the direct map; the kernel only reads them.
    unsafe { core::slice::from_raw_parts(va.as_ptr::<u8>(), (m.end - m.start) as usize) }
}

fn write_phys(pa: PhysAddr, bytes: &[u8]) {
    let va = kspace::phys_to_virt(pa);
    // SAFETY: `pa` lies in a memory object the loader just made, owned by
    // the domain being built, which does not run yet.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), va.as_mut_ptr::<u8>(), bytes.len()) }
}

/// Builds the root domain from module `root` and makes its thread runnable.
pub fn start_root(
    k: &mut Kernel,
    root: &Module,
    modules: &[Module],
    irq_lines: u32,
    tsc_per_ms: u64,
) -> Result<Ref, LoadError> {
    let bytes = module_bytes(root);
    let image = elf::parse(bytes, USER_MIN..IMAGE_END).map_err(LoadError::BadImage)?;
    let (pt, tables) = kspace::uspace_new().map_err(|_| Error::QuotaExceeded)?;
    let quota = kspace::free_frames().saturating_sub(KERNEL_RESERVE);
    let mut dom = Domain::new(pt.root(), quota, None);
    dom.quota.used = tables;
    let d = k.add_domain(dom).map_err(|(e, _)| e)?;
    k.root = Some(d);

    let mut start = StartInfo::new(root.name, quota, 0, tsc_per_ms);
    let mut give = |k: &mut Kernel, name: &str, cap: Cap, size: u64| -> Result<(), LoadError> {
        let slot = k.give(d, cap)?;
        if !start.push(name, slot.0, cap.obj.kind as u32, size) {
            log::warn!("loader: no room in the start page for {name}");
        }
        Ok(())
    };
    give(k, "self", Cap::new(ObjectType::Domain, d, Rights::CONTROL | Rights::GRANT), 0)?;
    let console = Ref { index: 0, generation: 0 };
    give(k, "console", Cap::new(ObjectType::Console, console, Rights::WRITE | Rights::GRANT), 0)?;
    let ports = k.add_ioports(IoPorts { base: 0, count: u16::MAX, owner: d })?;
    let all = Rights::READ | Rights::WRITE | Rights::GRANT | Rights::REVOKE;
    give(k, "ioports", Cap::new(ObjectType::IoPorts, ports, all), u64::from(u16::MAX))?;
    for line in 0..irq_lines.min(crate::state::MAX_IRQS as u32) as u8 {
        let irq = Irq { line, pending: false, waiter: None, bound: None };
        let r = k.irqs.insert(irq).map_err(|_| Error::OutOfObjects)?;
        let mut name: heapless::String<32> = heapless::String::new();
        let _ = core::fmt::write(&mut name, format_args!("irq:{line}"));
        give(k, &name, Cap::new(ObjectType::Irq, r, Rights::CONTROL | Rights::GRANT), 0)?;
    }
    if crate::hw::pci::present() {
        let seg = k.add_device(Device::segment(d))?;
        give(k, "pci", Cap::new(ObjectType::Device, seg, Rights::CONTROL | Rights::GRANT), 0)?;
    }
    for m in modules {
        let mut name: heapless::String<32> = heapless::String::new();
        let _ = name.push_str("module:");
        if name.push_str(m.name).is_err() {
            log::warn!("loader: module name {} too long for the start page: skipped", m.name);
            continue;
        }
        let bytes = m.end - m.start;
        let mem = Memory {
            base: PhysAddr::new(m.start),
            pages: bytes.div_ceil(4096),
            bytes,
            owner: d,
            backing: Backing::Boot,
            epoch: 0,
        };
        let r = k.add_memory(mem)?;
        give(k, &name, Cap::new(ObjectType::Memory, r, Rights::READ | Rights::GRANT), bytes)?;
    }

    for seg in &image.segments {
        let pages = seg.pages();
        let m = k.create_memory(d, (pages.end - pages.start) / 4096)?;
        let base = k.memory.get(m).map(|x| x.base).ok_or(Error::OutOfObjects)?;
        let file = &bytes[seg.offset as usize..(seg.offset + seg.filesz) as usize];
        write_phys(base + (seg.vaddr - pages.start), file);
        let mut flags = MapFlags::empty();
        flags.set(MapFlags::WRITE, seg.access.write);
        flags.set(MapFlags::EXEC, seg.access.exec);
        k.map_memory(m, d, pages.start, flags)?;
    }
    let stack = k.create_memory(d, STACK_PAGES)?;
    k.map_memory(stack, d, STACK_TOP - STACK_PAGES * 4096, MapFlags::WRITE)?;
    let page = k.create_memory(d, 1)?;
    let base = k.memory.get(page).map(|x| x.base).ok_or(Error::OutOfObjects)?;
    // SAFETY: `StartInfo` is plain `repr(C)` data with no padding holes that
    // matter to the reader; its bytes are what the domain reads back.
    let raw = unsafe { core::slice::from_raw_parts((&raw const start).cast::<u8>(), size_of::<StartInfo>()) };
    write_phys(base, raw);
    k.map_memory(page, d, START_INFO_VA, MapFlags::empty())?;

    let ctx = Context::start(image.entry, STACK_TOP, START_INFO_VA);
    let t = k.create_thread(Thread::new(d, ctx, 0))?;
    k.wake(t);
    Ok(d)
}
