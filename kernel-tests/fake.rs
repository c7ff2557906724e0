//! The hardware interface on the host: a fake machine, so that the kernel's
//! core builds and runs under `cargo test` (`crate::core_tests`). Not part
//! of the kernel (it is not built for the target, and `cargo xtask sizes`
//! does not count it).
//!
//! One fake [`Machine`] per test thread (a thread-local, installed with
//! [`install`]), which simulates every CPU from that one thread: the test
//! says which CPU runs ([`Machine::current`]) and steps each in turn. What
//! it models:
//! - frames: a heap arena standing for physical memory (it starts at
//!   [`RAM_BASE`]; `frames::to_virt` gives real host pointers into it), each
//!   frame tagged with its owner ([`Owner`]) so a test can check that every
//!   frame is owned exactly once or free;
//! - address spaces: the kernel's own page-table code (`mem::paging`) over
//!   arena frames, so table frames are real and charged as on the machine;
//! - interrupts: IPIs, EOIs and line masks recorded ([`Event`]);
//! - CPUs: online or not, loaded roots, ticks, a settable clock; `idle`
//!   returns at once (the CPU is marked idle, and the test resumes it with
//!   `sched::schedule`);
//! - shootdowns: answered at once, or refused by CPUs made deaf;
//! - VM entry: each vCPU runs the exits a test scripted for it, then halts;
//! - the console (a buffer), port I/O (recorded), power-off (a panic with
//!   [`PowerOff`], which a test can catch).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};

use spin::Mutex;
use x86_64::PhysAddr;

use crate::hw::guest::{Entry, HwExit};
use crate::mem::paging::{self, MapError, MapFlags, PageSize, Table, TableMemory};
use crate::state::Kernel;

/// Where the fake's physical memory starts.
pub const RAM_BASE: u64 = 0x1_0000_0000;
/// The root the fake calls the kernel's own page tables.
pub const KERNEL_ROOT: u64 = 0x1000;
const PAGE: u64 = 4096;

/// What a frame of the arena is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Free,
    /// Part of a contiguous run `frames::alloc` gave out, from `head`.
    Run {
        head: u64,
        len: u64,
    },
    /// A page-table frame of the address space with root `root`.
    Table {
        root: u64,
    },
}

/// What the fake saw the kernel do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An IPI to make CPU `to` enter the kernel, sent by CPU `from`.
    Kick { from: usize, to: usize },
    /// An interrupt line masked (true) or unmasked.
    Mask { gsi: u32, masked: bool },
    /// An EOI on a CPU.
    Eoi { cpu: usize },
    /// CPU `cpu` was made to drop the translations of `root`.
    Shootdown { root: u64, cpu: usize },
    /// A port write.
    PortOut { port: u16, value: u32 },
    /// The IOMMU told to forget domain `did`'s translations (function `bdf`).
    IommuFlush { bdf: u16, did: u16 },
    /// An interrupt injected into the vCPU whose hardware state is at `hw`.
    Injected { hw: u64, vector: u8 },
    /// A vCPU's hardware frames were freed.
    Retired { hw: u64 },
    /// `n` frames leaked.
    Leaked { n: u64 },
}

/// Which virtualization the fake offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Virt {
    None,
    Vmx,
    Svm,
}

/// The panic payload of `power::off`: the run ended (root domain death).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerOff {
    pub success: bool,
}

/// One fake CPU.
#[derive(Clone, Debug)]
pub struct Cpu {
    pub online: bool,
    pub in_kernel: bool,
    pub ticks: u64,
    pub loaded_root: u64,
    pub loaded_epoch: u64,
    /// Asked by another CPU to leave its address space.
    pub leave: bool,
    pub running_guest: u64,
    /// The vCPU state frame loaded.
    pub guest_state: u64,
    /// It went idle (nothing to run) and waits to be resumed.
    pub idle: bool,
    /// It answers no shootdown (a CPU that hangs).
    pub deaf: bool,
    /// The first kernel timer's time it was last told (`timer_due`), and
    /// its timer's restarts after an interrupt (`timer_rearm`).
    pub timer_due: u64,
    pub rearms: u64,
    /// Its next timer interrupt is a kernel timer's, not the tick.
    pub timer_only: bool,
}

/// The physical memory.
pub struct Ram {
    base: *mut u8,
    layout: std::alloc::Layout,
    pub owner: Vec<Owner>,
    pub free: u64,
    /// The contiguous runs given out: head to length.
    pub runs: BTreeMap<u64, u64>,
    /// Table frames per address space (by root).
    pub tables: BTreeMap<u64, u64>,
    /// Where the next search for free frames starts.
    cursor: usize,
}

impl Ram {
    fn new(frames: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(frames.max(1) * PAGE as usize, PAGE as usize)
            .expect("arena layout");
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!base.is_null(), "no memory for the fake's RAM");
        let owner = vec![Owner::Free; frames];
        Self {
            base,
            layout,
            owner,
            free: frames as u64,
            runs: BTreeMap::new(),
            tables: BTreeMap::new(),
            cursor: 0,
        }
    }

    /// The frame number of `pa`, which must lie in the arena.
    pub fn frame(&self, pa: u64) -> usize {
        let i = pa.checked_sub(RAM_BASE).map(|o| (o / PAGE) as usize);
        match i {
            Some(i) if i < self.owner.len() && pa % PAGE == 0 => i,
            _ => panic!("fake: {pa:#x} is not a frame of the fake RAM"),
        }
    }

    fn pa(i: usize) -> u64 {
        RAM_BASE + i as u64 * PAGE
    }

    fn ptr(&self, pa: u64) -> *mut u8 {
        let i = self.frame(pa & !(PAGE - 1));
        // SAFETY: frame `i` lies in the arena (checked by `frame`).
        unsafe { self.base.add(i * PAGE as usize + (pa % PAGE) as usize) }
    }

    fn zero(&mut self, i: usize) {
        // SAFETY: frame `i` lies in the arena; nothing else borrows it now.
        unsafe { core::ptr::write_bytes(self.base.add(i * PAGE as usize), 0, PAGE as usize) }
    }

    /// `n` free frames in a row, tagged `tag(head)`.
    fn take(&mut self, n: u64, tag: impl Fn(u64) -> Owner) -> Option<u64> {
        let (n, len) = (n as usize, self.owner.len());
        if n == 0 || n > len || (n as u64) > self.free {
            return None;
        }
        for start in (self.cursor..len).chain(0..self.cursor) {
            if start + n > len {
                continue;
            }
            if self.owner[start..start + n].iter().all(|o| *o == Owner::Free) {
                let head = Self::pa(start);
                for i in start..start + n {
                    self.owner[i] = tag(head);
                    self.zero(i);
                }
                self.free -= n as u64;
                self.cursor = (start + n) % len;
                return Some(head);
            }
        }
        None
    }

    fn give_back(&mut self, i: usize) {
        self.zero(i);
        self.owner[i] = Owner::Free;
        self.free += 1;
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base, self.layout) }
    }
}

/// The fake machine.
pub struct Machine {
    pub cpus: Vec<Cpu>,
    /// The CPU the kernel runs on now.
    pub current: usize,
    /// The TSC.
    pub clock: u64,
    pub tsc_per_us: u64,
    pub ram: Ram,
    pub events: Vec<Event>,
    /// Lines masked now.
    pub masked: HashMap<u32, bool>,
    pub console: Vec<u8>,
    pub virt: Virt,
    /// Per vCPU (by hardware frame): the exits its guest makes next.
    pub exits: HashMap<u64, VecDeque<HwExit>>,
    /// Per vCPU: its entries so far and the replies applied, in order.
    pub entries: HashMap<u64, u64>,
    pub replies: HashMap<u64, Vec<ipc::vcpu::Reply>>,
    /// Per vCPU: the staged state writes its entries applied, in order.
    pub state_writes: HashMap<u64, Vec<ipc::vstate::Write>>,
    /// Whether a guest can take an interrupt now / has interrupts on.
    pub interruptible: bool,
    pub interrupts_on: bool,
    /// What port reads return.
    pub port_value: u32,
    /// CR2 of the last page fault.
    pub cr2: u64,
    /// The guest's XCR0 (set through XSETBV exits).
    pub xcr0: u64,
    /// Frames given up for good.
    pub leaked: u64,
    /// TSC ticks a guest runs per entry (until its exit).
    pub guest_time: u64,
    /// Whether the host interrupt that ends a guest's entry
    /// (`HwExit::Interrupt`) is the timer's tick, taken in the kernel by
    /// `take_interrupt` as on the machine (counted on the CPU).
    pub tick_in_guest: bool,
    /// The object windows' memory (`window`).
    pub windows: Windows,
    /// The arena frame behind each backed page of an object window, by
    /// (window, page).
    pub window_frames: BTreeMap<(usize, usize), u64>,
    /// PCI segment 0: each function's configuration space (4 KiB), by
    /// `bus << 8 | device << 3 | function`; others answer all ones.
    pub pci: BTreeMap<u16, Vec<u8>>,
    /// The writable bits of a function's configuration dwords, by
    /// (function, offset), where not all are (`pci_masks`).
    pub pci_masks: BTreeMap<(u16, u16), u32>,
    /// MSI-X table entries the kernel wrote, by physical address.
    pub msix: BTreeMap<u64, [u32; 4]>,
    /// Whether an IOMMU translates (else DMA is physical, unconfined).
    pub iommu: bool,
    /// Each attached function's DMA space: (root, domain id).
    pub dma_spaces: BTreeMap<u16, (u64, u16)>,
    /// Whether the unit finishes invalidating.
    pub iommu_answers: bool,
    /// Interrupt remapping entries made (with `iommu`): vector (the
    /// handle) to the requester they are for.
    pub remapped: BTreeMap<u8, u16>,
    /// Faults the unit recorded that the kernel has not taken, and how
    /// many more it lost (`iommu::take_fault`).
    pub dma_faults: std::collections::VecDeque<crate::hwdata::dma::DmaFault>,
    pub dma_lost: u64,
}

/// The fake's PCI functions: a virtio-like function at 00:04.0 (a
/// vendor-specific capability of 16 bytes at 0x40, MSI-X at 0x50 with 4
/// entries, its table and pending bits in page 3 of BAR 0; BAR 0 16 KiB
/// of memory at 0xfebf_0000, BAR 1 64 I/O ports at 0xc040, BARs 2-3 16 KiB
/// of 64-bit memory at 0x8_0000_0000), another at 00:05.0 whose BARs are
/// misplaced (BAR 0 over the interrupt window, BARs 2-3 over the RAM, BAR
/// 1 over the ISA ports), and a bridge at 00:01.0.
pub const PCI_FUNCTION: u16 = 0x20;
pub const PCI_OTHER: u16 = 0x28;
pub const PCI_BRIDGE: u16 = 0x08;
/// Where the good function's BARs are.
pub const BAR0: u64 = 0xfebf_0000;
pub const BAR2: u64 = 0x8_0000_0000;
pub const BAR_BYTES: u64 = 0x4000;

fn pci_functions() -> BTreeMap<u16, Vec<u8>> {
    let function = |header: u8, bars: [u32; 4]| {
        let mut s = vec![0u8; 4096];
        s[0..4].copy_from_slice(&[0xf4, 0x1a, 0x42, 0x10]);
        s[0x06] = 1 << 4;
        s[0x0e] = header;
        for (i, b) in bars.iter().enumerate() {
            s[0x10 + 4 * i..0x14 + 4 * i].copy_from_slice(&b.to_le_bytes());
        }
        s[0x34] = 0x40;
        s[0x40..0x43].copy_from_slice(&[0x09, 0x50, 16]);
        s[0x50..0x54].copy_from_slice(&[0x11, 0x00, 0x03, 0x00]);
        s[0x54..0x58].copy_from_slice(&0x3000u32.to_le_bytes());
        s[0x58..0x5c].copy_from_slice(&0x3800u32.to_le_bytes());
        s
    };
    let good = [0xfebf_0000, 0xc041, 0x0000_000c, 0x8];
    let bad = [0xfee0_0000, 0x0061, 0x0000_000c | RAM_BASE as u32, (RAM_BASE >> 32) as u32];
    BTreeMap::from([
        (PCI_FUNCTION, function(0, good)),
        (PCI_OTHER, function(0, bad)),
        (PCI_BRIDGE, function(1, [0; 4])),
    ])
}

/// The bits of each function's BARs that take writes (the rest read as
/// placed): what sizing a BAR finds.
fn pci_masks() -> BTreeMap<(u16, u16), u32> {
    let mut m = BTreeMap::new();
    for f in [PCI_FUNCTION, PCI_OTHER] {
        m.extend([
            ((f, 0x10), 0xffff_c000),
            ((f, 0x14), 0xffff_ffc0),
            ((f, 0x18), 0xffff_c000),
            ((f, 0x1c), !0),
        ]);
    }
    m
}

/// The object windows on the host: heap memory at fixed places for the
/// machine's life (their frames, for accounting, come from the arena).
pub struct Windows {
    base: *mut u8,
    layout: std::alloc::Layout,
}

/// Object windows the fake has, and the bytes of each.
pub const WINDOWS: usize = 12;
pub const WINDOW_BYTES: usize = 64 << 20;

impl Windows {
    fn new() -> Self {
        let layout = std::alloc::Layout::from_size_align(WINDOWS * WINDOW_BYTES, PAGE as usize).unwrap();
        // SAFETY: a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!base.is_null(), "fake: no memory for the object windows");
        Self { base, layout }
    }
}

impl Drop for Windows {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base, self.layout) }
    }
}

impl Machine {
    /// A machine with `cpus` CPUs online and `frames` frames of RAM.
    pub fn new(cpus: usize, frames: usize) -> Self {
        let cpu = Cpu {
            online: false,
            in_kernel: true,
            ticks: 0,
            loaded_root: KERNEL_ROOT,
            loaded_epoch: 0,
            leave: false,
            running_guest: 0,
            guest_state: 0,
            idle: false,
            deaf: false,
            timer_due: u64::MAX,
            rearms: 0,
            timer_only: false,
        };
        let mut all = vec![cpu; super::cpu::MAX_CPUS];
        for c in all.iter_mut().take(cpus) {
            c.online = true;
        }
        Self {
            cpus: all,
            current: 0,
            clock: 1,
            tsc_per_us: 1,
            ram: Ram::new(frames),
            events: Vec::new(),
            masked: HashMap::new(),
            console: Vec::new(),
            virt: Virt::Vmx,
            exits: HashMap::new(),
            entries: HashMap::new(),
            replies: HashMap::new(),
            state_writes: HashMap::new(),
            interruptible: true,
            interrupts_on: true,
            port_value: 0xFFFF_FFFF,
            cr2: 0,
            xcr0: 1,
            leaked: 0,
            guest_time: 0,
            tick_in_guest: false,
            windows: Windows::new(),
            window_frames: BTreeMap::new(),
            pci: pci_functions(),
            pci_masks: pci_masks(),
            msix: BTreeMap::new(),
            iommu: false,
            dma_spaces: BTreeMap::new(),
            iommu_answers: true,
            remapped: BTreeMap::new(),
            dma_faults: Default::default(),
            dma_lost: 0,
        }
    }

    /// Writes `bytes` at physical address `pa` (as a domain writes its memory).
    pub fn poke(&mut self, pa: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: `ptr` checked that the byte lies in the arena.
            unsafe { *self.ram.ptr(pa + i as u64) = *b };
        }
    }

    /// Reads `n` bytes at physical address `pa`.
    pub fn peek(&self, pa: u64, n: usize) -> Vec<u8> {
        // SAFETY: `ptr` checked that each byte lies in the arena.
        (0..n).map(|i| unsafe { *self.ram.ptr(pa + i as u64) }).collect()
    }

    fn me(&mut self) -> &mut Cpu {
        let c = self.current;
        &mut self.cpus[c]
    }
}

thread_local! {
    static MACHINE: RefCell<Option<Machine>> = const { RefCell::new(None) };
    static KERNEL: Cell<Option<&'static Mutex<Kernel>>> = const { Cell::new(None) };
    /// The installed machine's object windows (read without borrowing it:
    /// the kernel reads its objects while a test holds the machine).
    static WINDOW_BASE: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

/// Makes `m` and `k` this thread's machine and kernel.
pub fn install(m: Machine, k: &'static Mutex<Kernel>) {
    WINDOW_BASE.with(|x| x.set(m.windows.base));
    MACHINE.with(|x| *x.borrow_mut() = Some(m));
    KERNEL.with(|x| x.set(Some(k)));
}

/// Removes this thread's machine and kernel; returns the kernel.
pub fn uninstall() -> Option<&'static Mutex<Kernel>> {
    MACHINE.with(|x| *x.borrow_mut() = None);
    KERNEL.with(|x| x.take())
}

/// Runs `f` on this thread's machine.
pub fn with<R>(f: impl FnOnce(&mut Machine) -> R) -> R {
    MACHINE.with(|x| f(x.borrow_mut().as_mut().expect("fake: no machine installed on this thread")))
}

/// This thread's kernel.
pub fn kernel() -> &'static Mutex<Kernel> {
    KERNEL.with(|x| x.get()).expect("fake: no kernel installed on this thread")
}

pub mod cpu {
    use super::with;

    pub const MAX_CPUS: usize = 64;

    /// The running CPU (its index).
    #[derive(Clone, Copy, Debug)]
    pub struct Here(usize);

    pub fn this() -> Here {
        Here(current())
    }

    pub fn current() -> usize {
        with(|m| m.current)
    }

    pub fn is_online(c: usize) -> bool {
        with(|m| m.cpus.get(c).is_some_and(|x| x.online))
    }

    pub fn now() -> u64 {
        with(|m| m.clock)
    }

    pub fn tsc_per_us() -> u64 {
        with(|m| m.tsc_per_us)
    }

    pub fn running_guest(c: usize) -> u64 {
        with(|m| m.cpus.get(c).map_or(0, |x| x.running_guest))
    }

    pub fn fault_address() -> u64 {
        with(|m| m.cr2)
    }

    /// The CPU idles: marked so, and the call returns (the test resumes it).
    pub fn idle() -> bool {
        with(|m| m.me().idle = true);
        false
    }

    pub fn interrupts_off() {}

    pub fn timer_due(due: u64) {
        with(|m| m.me().timer_due = due);
    }

    pub fn timer_tick() -> bool {
        with(|m| !std::mem::take(&mut m.me().timer_only))
    }

    pub fn timer_rearm() {
        with(|m| m.me().rearms += 1);
    }

    impl Here {
        pub fn set_in_kernel(self, on: bool) {
            with(|m| m.cpus[self.0].in_kernel = on);
        }

        pub fn tick(self) {
            with(|m| m.cpus[self.0].ticks += 1);
        }

        pub fn ticks(self) -> u64 {
            with(|m| m.cpus[self.0].ticks)
        }

        pub fn set_running_guest(self, root: u64) {
            with(|m| m.cpus[self.0].running_guest = root);
        }
    }
}

pub mod irq {
    use super::{with, Event};

    pub fn eoi() {
        with(|m| {
            let cpu = m.current;
            m.events.push(Event::Eoi { cpu });
        });
    }

    /// The fake's CPUs have APIC ID 0. With an IOMMU, interrupts are
    /// remapped (an entry made, if the unit answers); else direct.
    pub fn msi_message(vector: u8, source: u16) -> Option<[u32; 4]> {
        with(|m| {
            if !m.iommu {
                return Some([0xfee0_0000, 0, u32::from(vector), 0]);
            }
            m.iommu_answers.then(|| m.remapped.insert(vector, source))?;
            Some([crate::platform::vtd::msi_address(vector.into()), 0, u32::from(vector), 0])
        })
    }

    pub fn msi_unroute(vector: u8) {
        with(|m| m.remapped.remove(&vector));
    }

    pub fn set_masked(gsi: u32, masked: bool) {
        with(|m| {
            m.masked.insert(gsi, masked);
            m.events.push(Event::Mask { gsi, masked });
        });
    }

    pub fn kick(c: usize) {
        with(|m| {
            let from = m.current;
            m.events.push(Event::Kick { from, to: c });
        });
    }
}

/// Page-table frames from the arena, tagged with the root of the address
/// space they belong to.
struct Tables<'a> {
    ram: &'a mut Ram,
    /// The root, or `None` while making one (then the frame is its own).
    root: Option<u64>,
    taken: u64,
}

impl TableMemory for Tables<'_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let root = self.root;
        let pa = self.ram.take(1, |head| Owner::Table { root: root.unwrap_or(head) })?;
        *self.ram.tables.entry(root.unwrap_or(pa)).or_default() += 1;
        self.taken += 1;
        Some(PhysAddr::new(pa))
    }

    fn table(&mut self, pa: PhysAddr) -> &mut [u64; 512] {
        let i = self.ram.frame(pa.as_u64());
        assert!(matches!(self.ram.owner[i], Owner::Table { .. }), "fake: {pa:?} is not a table frame");
        // SAFETY: a table frame of the arena (checked), borrowed with the
        // machine, so by nothing else.
        unsafe { &mut *self.ram.ptr(pa.as_u64()).cast::<[u64; 512]>() }
    }

    fn free_table(&mut self, pa: PhysAddr) {
        let i = self.ram.frame(pa.as_u64());
        let Owner::Table { root } = self.ram.owner[i] else { panic!("fake: freeing {pa:?}, not a table") };
        if let Some(n) = self.ram.tables.get_mut(&root) {
            *n -= 1;
            if *n == 0 {
                self.ram.tables.remove(&root);
            }
        }
        self.ram.give_back(i);
    }
}

pub mod space {
    use x86_64::{PhysAddr, VirtAddr};

    use super::{paging, with, Event, MapError, MapFlags, PageSize, Table, Tables, Virt, KERNEL_ROOT};

    fn tables<R>(root: Option<u64>, f: impl FnOnce(&mut Tables) -> R) -> R {
        with(|m| f(&mut Tables { ram: &mut m.ram, root, taken: 0 }))
    }

    fn npt() -> bool {
        with(|m| m.virt == Virt::Svm)
    }

    fn with_format<R>(
        guest: bool,
        x86: impl FnOnce() -> R,
        ept: impl FnOnce() -> R,
        npt_: impl FnOnce() -> R,
    ) -> R {
        if !guest {
            x86()
        } else if npt() {
            npt_()
        } else {
            ept()
        }
    }

    pub fn create(guest: bool) -> Option<(PhysAddr, u64)> {
        fn new<F: paging::Format>() -> Option<(PhysAddr, u64)> {
            tables(None, |t| Table::<F>::new(t).ok().map(|x| (x.root(), t.taken)))
        }
        with_format(guest, new::<paging::X86>, new::<paging::Ept>, new::<paging::Npt>)
    }

    pub fn destroy(guest: bool, root: PhysAddr) -> u64 {
        fn free<F: paging::Format>(root: PhysAddr, entries: core::ops::Range<usize>) -> u64 {
            tables(Some(root.as_u64()), |t| {
                let pt = Table::<F>::from_root(root);
                let n = pt.free_tables(t, entries);
                super::TableMemory::free_table(t, root);
                n + 1
            })
        }
        with_format(
            guest,
            || free::<paging::X86>(root, 0..256),
            || free::<paging::Ept>(root, 0..512),
            || free::<paging::Npt>(root, 0..512),
        )
    }

    pub fn map(guest: bool, root: PhysAddr, va: u64, pa: PhysAddr, flags: MapFlags) -> Result<u64, MapError> {
        fn go<F: paging::Format>(
            root: PhysAddr,
            va: u64,
            pa: PhysAddr,
            flags: MapFlags,
        ) -> Result<u64, MapError> {
            tables(Some(root.as_u64()), |t| {
                let pt = Table::<F>::from_root(root);
                pt.map(t, VirtAddr::new(va), pa, PageSize::Size4K, flags | MapFlags::USER)?;
                Ok(t.taken)
            })
        }
        with_format(
            guest,
            || go::<paging::X86>(root, va, pa, flags),
            || go::<paging::Ept>(root, va, pa, flags),
            || go::<paging::Npt>(root, va, pa, flags),
        )
    }

    pub fn unmap(guest: bool, root: PhysAddr, va: u64) -> Result<PhysAddr, MapError> {
        fn go<F: paging::Format>(root: PhysAddr, va: u64) -> Result<PhysAddr, MapError> {
            tables(Some(root.as_u64()), |t| {
                Table::<F>::from_root(root).unmap(t, VirtAddr::new(va)).map(|x| x.0)
            })
        }
        with_format(
            guest,
            || go::<paging::X86>(root, va),
            || go::<paging::Ept>(root, va),
            || go::<paging::Npt>(root, va),
        )
    }

    pub fn translate(root: PhysAddr, va: u64) -> Option<(PhysAddr, MapFlags)> {
        tables(Some(root.as_u64()), |t| paging::PageTable::from_root(root).translate(t, VirtAddr::new(va)))
    }

    /// Where guest-physical (or user) address `va` of the space `root`
    /// leads (a test's view of a guest's EPT or NPT, or a domain's tables).
    pub fn lookup(guest: bool, root: PhysAddr, va: u64) -> Option<(PhysAddr, MapFlags)> {
        with(|m| lookup_in(m, guest, root, va))
    }

    /// [`lookup`] on machine `m`.
    pub fn lookup_in(
        m: &mut super::Machine,
        guest: bool,
        root: PhysAddr,
        va: u64,
    ) -> Option<(PhysAddr, MapFlags)> {
        fn go<F: paging::Format>(t: &mut Tables, root: PhysAddr, va: u64) -> Option<(PhysAddr, MapFlags)> {
            Table::<F>::from_root(root).translate(t, VirtAddr::new(va))
        }
        let format = if !guest {
            0
        } else if m.virt == Virt::Svm {
            2
        } else {
            1
        };
        let t = &mut Tables { ram: &mut m.ram, root: Some(root.as_u64()), taken: 0 };
        match format {
            0 => go::<paging::X86>(t, root, va),
            1 => go::<paging::Ept>(t, root, va),
            _ => go::<paging::Npt>(t, root, va),
        }
    }

    pub fn switch(root: u64, epoch: u64) {
        with(|m| {
            let me = m.me();
            me.loaded_root = root;
            me.loaded_epoch = epoch;
        });
    }

    pub fn load_kernel() {
        switch(KERNEL_ROOT, 0);
    }

    pub fn obey_leave() {
        if with(|m| core::mem::take(&mut m.me().leave)) {
            load_kernel();
        }
    }

    /// Other CPUs using `root` are "interrupted": at once, unless deaf.
    pub fn shootdown(root: u64) -> bool {
        with(|m| {
            let me = m.current;
            for c in 0..m.cpus.len() {
                let x = &m.cpus[c];
                let uses = x.loaded_root == root || x.running_guest == root;
                if c == me || !x.online || !uses {
                    continue;
                }
                if x.deaf {
                    return false;
                }
                m.events.push(Event::Shootdown { root, cpu: c });
            }
            true
        })
    }

    /// CPUs that loaded `root` leave it: at once, unless deaf.
    pub fn unload(root: u64) -> bool {
        with(|m| {
            let mut all = true;
            for x in m.cpus.iter_mut().filter(|x| x.loaded_root == root) {
                if x.deaf {
                    all = false;
                } else {
                    x.loaded_root = KERNEL_ROOT;
                    x.loaded_epoch = 0;
                }
            }
            all
        })
    }
}

pub mod frames {
    use x86_64::{PhysAddr, VirtAddr};

    use super::{with, Event, Owner};

    pub fn alloc(n: u64) -> Option<PhysAddr> {
        with(|m| {
            let head = m.ram.take(n, |head| Owner::Run { head, len: n })?;
            m.ram.runs.insert(head, n);
            Some(PhysAddr::new(head))
        })
    }

    pub fn free(pa: PhysAddr, n: u64) {
        with(|m| {
            let head = pa.as_u64();
            for k in 0..n {
                let i = m.ram.frame(head + k * super::PAGE);
                assert_eq!(m.ram.owner[i], Owner::Run { head, len: n }, "fake: frees a run it does not own");
                m.ram.give_back(i);
            }
            m.ram.runs.remove(&head);
        });
    }

    pub fn leak(n: u64, _what: &str) {
        with(|m| {
            m.leaked += n;
            m.events.push(Event::Leaked { n });
        });
    }

    pub fn free_count() -> u64 {
        with(|m| m.ram.free)
    }

    /// The arena is all the memory the fake's firmware names.
    pub fn names_memory(start: u64, end: u64) -> bool {
        with(|m| start < super::RAM_BASE + m.ram.owner.len() as u64 * super::PAGE && super::RAM_BASE < end)
    }

    pub fn to_virt(pa: PhysAddr) -> VirtAddr {
        VirtAddr::from_ptr(with(|m| m.ram.ptr(pa.as_u64())))
    }
}

pub mod vm {
    use ipc::vcpu::{Action, Exit, ExitReason};
    use x86_64::PhysAddr;

    use super::cpu::Here;
    use super::{with, Entry, Event, HwExit, Virt};
    use crate::obj::pool::Ref;
    use crate::obj::vcpu::{Vcpu, HW_FRAMES};

    pub fn supported() -> bool {
        with(|m| m.virt != Virt::None)
    }

    pub fn init(_hw: PhysAddr) {}

    /// As the back ends do: first launch, the VMM's reply applied (recorded),
    /// a flush after unmaps.
    pub fn prepare(v: &mut Vcpu, root: u64, epoch: u64, _t: Ref) -> Option<Entry> {
        let hw = v.vmcs.as_u64();
        if let Some(w) = v.staged.take() {
            let r = &mut v.regs;
            let regs = [
                &mut r.rax, &mut r.rcx, &mut r.rdx, &mut r.rbx, &mut r.rbp, &mut r.rsi, &mut r.rdi,
                &mut r.r8, &mut r.r9, &mut r.r10, &mut r.r11, &mut r.r12, &mut r.r13, &mut r.r14, &mut r.r15,
            ];
            let at = [0usize, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
            for (reg, i) in regs.into_iter().zip(at) {
                if w.mask & (1 << i) != 0 {
                    *reg = w.gprs[i];
                }
            }
            with(|m| m.state_writes.entry(hw).or_default().push(w));
        }
        if let Some(r) = v.reply.take() {
            let regs = [&mut v.regs.rax, &mut v.regs.rbx, &mut v.regs.rcx, &mut v.regs.rdx];
            let flags = [Action::SET_RAX, Action::SET_RBX, Action::SET_RCX, Action::SET_RDX];
            for ((reg, flag), value) in regs.into_iter().zip(flags).zip(r.regs) {
                if r.actions.contains(flag) {
                    *reg = value;
                }
            }
            with(|m| m.replies.entry(hw).or_default().push(r));
        }
        v.ept_epoch = epoch;
        let launched = v.launched;
        v.launched = true;
        Some(Entry { hw, regs: v.regs, launched, root })
    }

    /// A vCPU's state: its general registers (rsp 0) and CR2, the rest 0.
    pub fn state_read(v: &Vcpu, _cpu_of: usize) -> Option<ipc::vstate::State> {
        let r = &v.regs;
        let gprs = [
            r.rax, r.rcx, r.rdx, r.rbx, 0, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
            r.r14, r.r15,
        ];
        Some(ipc::vstate::State { gprs, cr2: r.cr2, ..ipc::vstate::State::default() })
    }

    /// The next scripted exit; a guest with none left halts (interrupts on).
    pub fn enter(e: &mut Entry) -> HwExit {
        with(|m| {
            *m.entries.entry(e.hw).or_default() += 1;
            m.clock += m.guest_time;
            m.exits.get_mut(&e.hw).and_then(|q| q.pop_front())
        })
        .unwrap_or(HwExit::Vmm(Exit {
            reason: ExitReason::Hlt,
            rip: 0,
            len: 1,
            qualification: 0,
            gpa: 0,
            regs: [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx],
        }))
    }

    pub fn interruptible(_hw: u64) -> bool {
        with(|m| m.interruptible)
    }

    pub fn interrupts_on(_hw: u64) -> bool {
        with(|m| m.interrupts_on)
    }

    pub fn inject_interrupt(hw: u64, vector: u8) {
        with(|m| m.events.push(Event::Injected { hw, vector }));
    }

    pub fn want_window(_hw: u64, _on: bool) {}

    pub fn retire(v: &Vcpu, _cpu_of: usize) {
        let hw = v.vmcs.as_u64();
        with(|m| {
            for c in m.cpus.iter_mut().filter(|c| c.guest_state == crate::obj::vcpu::state_frame(hw)) {
                c.guest_state = 0;
            }
            m.events.push(Event::Retired { hw });
        });
        super::frames::free(v.vmcs, HW_FRAMES);
    }

    pub fn reap() {}

    pub fn restore_dr6() {}

    pub fn load_state(me: Here, pa: u64) {
        let _ = me;
        with(|m| m.me().guest_state = pa);
    }

    pub fn take_interrupt(_nmi: bool) {
        with(|m| {
            if m.tick_in_guest {
                m.me().ticks += 1;
            }
        });
    }

    /// XCR0 as on a CPU with x87, SSE and AVX.
    pub fn set_xcr0(value: u64) -> bool {
        let ok = value & 1 != 0 && value & !0x7 == 0 && (value & 4 == 0 || value & 2 != 0);
        if ok {
            with(|m| m.xcr0 = value);
        }
        ok
    }
}

pub mod console {
    pub fn write(bytes: &[u8]) {
        super::with(|m| m.console.extend_from_slice(bytes));
    }
}

pub mod io {
    use ipc::syscall::Width;

    use super::{with, Event};

    pub fn read(_port: u16, width: Width) -> u32 {
        let v = with(|m| m.port_value);
        match width {
            Width::Byte => v & 0xFF,
            Width::Word => v & 0xFFFF,
            Width::Dword => v,
        }
    }

    pub fn write(port: u16, _width: Width, value: u32) {
        with(|m| m.events.push(Event::PortOut { port, value }));
    }
}

/// The IOMMU: each attached function's DMA space a VT-d table in the
/// arena, as on the machine, its context entry a record in the machine.
pub mod iommu {
    use x86_64::{PhysAddr, VirtAddr};

    use super::{paging, with, Event, MapError, MapFlags, PageSize, Tables};

    type Space = paging::VtdTable;

    pub fn attach(bdf: u16, did: u16) -> Result<Option<(PhysAddr, u64)>, ipc::Error> {
        with(|m| {
            if !m.iommu {
                return Ok(None);
            }
            let mut t = Tables { ram: &mut m.ram, root: None, taken: 0 };
            let space = Space::new(&mut t).map_err(|_| ipc::Error::QuotaExceeded)?;
            let taken = t.taken;
            m.dma_spaces.insert(bdf, (space.root().as_u64(), did));
            Ok(Some((space.root(), taken)))
        })
    }

    pub fn detach(bdf: u16, did: u16, root: PhysAddr) -> Option<u64> {
        let answered = flush(bdf, did);
        with(|m| {
            m.dma_spaces.remove(&bdf);
            if !answered {
                return None;
            }
            let mut t = Tables { ram: &mut m.ram, root: Some(root.as_u64()), taken: 0 };
            let space = Space::from_root(root);
            let n = space.free_tables(&mut t, 0..512);
            paging::TableMemory::free_table(&mut t, root);
            Some(n + 1)
        })
    }

    pub fn map(root: PhysAddr, iova: u64, pa: PhysAddr) -> Result<u64, MapError> {
        with(|m| {
            let mut t = Tables { ram: &mut m.ram, root: Some(root.as_u64()), taken: 0 };
            Space::from_root(root).map(&mut t, VirtAddr::new(iova), pa, PageSize::Size4K, MapFlags::WRITE)?;
            Ok(t.taken)
        })
    }

    pub fn unmap(root: PhysAddr, iova: u64) {
        with(|m| {
            let mut t = Tables { ram: &mut m.ram, root: Some(root.as_u64()), taken: 0 };
            let _ = Space::from_root(root).unmap(&mut t, VirtAddr::new(iova));
        })
    }

    pub fn flush(bdf: u16, did: u16) -> bool {
        with(|m| {
            m.events.push(Event::IommuFlush { bdf, did });
            m.iommu_answers
        })
    }

    pub fn faulted() -> bool {
        with(|m| !m.dma_faults.is_empty() || m.dma_lost != 0)
    }

    pub fn take_fault() -> Result<crate::hwdata::dma::DmaFault, u64> {
        with(|m| m.dma_faults.pop_front().ok_or(core::mem::take(&mut m.dma_lost)))
    }

    /// Where function `bdf`'s DMA to `iova` lands, if anywhere (the test's
    /// view of the unit).
    pub fn reach(bdf: u16, iova: u64) -> Option<u64> {
        with(|m| {
            let &(root, _) = m.dma_spaces.get(&bdf)?;
            let mut t = Tables { ram: &mut m.ram, root: Some(root), taken: 0 };
            Space::from_root(PhysAddr::new(root)).translate(&mut t, VirtAddr::new(iova)).map(|x| x.0.as_u64())
        })
    }
}

pub mod pci {
    use ipc::syscall::Width;

    use super::with;

    pub fn present() -> bool {
        true
    }

    pub fn read(f: u16, offset: u16, width: Width) -> u32 {
        let o = usize::from(offset);
        with(|m| match m.pci.get(&f) {
            Some(s) => (0..width as usize).rev().fold(0, |v, i| v << 8 | u32::from(s[o + i])),
            None => width.max(),
        })
    }

    pub fn write(f: u16, offset: u16, width: Width, value: u32) {
        let o = usize::from(offset);
        with(|m| {
            let masks = &m.pci_masks;
            if let Some(s) = m.pci.get_mut(&f) {
                for i in 0..width as usize {
                    let at = o + i;
                    // BARs take only the bits their masks say (none: no BAR).
                    let dword = masks.get(&(f, (at & !3) as u16)).copied();
                    let dword = dword.or(if (0x10..0x28).contains(&at) { Some(0) } else { None });
                    let mask = dword.map_or(0xff, |k| (k >> (8 * (at % 4))) as u8);
                    s[at] = (value >> (8 * i)) as u8 & mask | s[at] & !mask;
                }
            }
        })
    }

    /// Records what was written to the MSI-X table entry at `pa`.
    pub fn msix_write(pa: u64, words: [u32; 4]) -> bool {
        with(|m| m.msix.insert(pa, words));
        true
    }

    pub fn stop_dma(f: u16) {
        let command = read(f, 4, Width::Word);
        write(f, 4, Width::Word, command & !4);
    }
}

pub mod power {
    /// Ends the run: a panic carrying [`super::PowerOff`].
    pub fn off(success: bool) -> ! {
        std::panic::panic_any(super::PowerOff { success })
    }
}

/// The object windows: heap memory of the installed machine, each page
/// backed (for accounting) by an arena frame of a run of one.
pub mod window {
    use super::{frames, with, WINDOW_BASE, WINDOW_BYTES};
    use crate::obj::window::{Backing, MAX_CHUNK_PAGES, PAGE};

    pub struct Window<const ID: usize>;

    impl<const ID: usize> Backing for Window<ID> {
        fn base(&self) -> *mut u8 {
            let base = WINDOW_BASE.with(|x| x.get());
            assert!(!base.is_null() && ID < super::WINDOWS, "fake: no object window {ID}");
            base.wrapping_add(ID * WINDOW_BYTES)
        }

        fn back(&mut self, offset: usize, pages: usize) -> bool {
            assert!(offset % PAGE == 0 && offset + pages * PAGE <= WINDOW_BYTES, "fake: outside window {ID}");
            let mut got = Vec::new();
            for _ in 0..pages {
                match frames::alloc(1) {
                    Some(pa) => got.push(pa),
                    None => {
                        got.into_iter().for_each(|pa| frames::free(pa, 1));
                        return false;
                    }
                }
            }
            for (p, pa) in got.into_iter().enumerate() {
                let page = offset / PAGE + p;
                let old = with(|m| m.window_frames.insert((ID, page), pa.as_u64()));
                assert!(old.is_none(), "fake: window {ID} page {page} backed twice");
            }
            // SAFETY: inside the window (asserted); fresh frames are zeroed.
            unsafe { self.base().add(offset).write_bytes(0, pages * PAGE) };
            true
        }

        fn unmap(&mut self, offset: usize, pages: usize, out: &mut [u64; MAX_CHUNK_PAGES]) {
            for (p, f) in out.iter_mut().enumerate().take(pages) {
                let page = offset / PAGE + p;
                *f = with(|m| m.window_frames.remove(&(ID, page))).expect("fake: unmapping an unbacked page");
            }
            // Poisoned: a read through a stale slot shows as garbage.
            // SAFETY: inside the window (it was backed).
            unsafe { self.base().add(offset).write_bytes(0xa5, pages * PAGE) };
        }

        fn shootdown(&mut self) -> bool {
            true // the fake's CPUs hold no translations of it
        }

        fn free(&mut self, out: &[u64]) {
            for &f in out {
                frames::free(x86_64::PhysAddr::new(f), 1);
            }
        }

        fn retire(&mut self, out: &[u64]) {
            frames::leak(out.len() as u64, "an object window");
        }
    }

    /// Nothing to flush on the host.
    pub fn obey_flush() {}
}
