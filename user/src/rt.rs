//! What runs before a domain's `main` and after it, and on a panic.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use ipc::boot::StartInfo;
use ipc::{CapSlot, Error, Rights};

use crate::start::Caps;
use crate::{arch, heap, layout, logger, sys};

/// What a domain asks of the runtime, through `entry!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The heap's size; 0 for no heap.
    pub heap_kib: u64,
    /// A stack to run `main` on instead of the 64 KiB one the domain starts
    /// with; 0 to keep that one.
    pub stack_kib: u64,
}

impl Config {
    pub const DEFAULT: Config = Config { heap_kib: 256, stack_kib: 0 };
}

/// The exit code of a domain whose start page is missing or not understood.
pub const EXIT_BAD_START: u64 = 102;
/// The exit code of a domain that cannot set up its heap or stack (its
/// quota is too small for them: the runtime logs what it tried).
pub const EXIT_NO_MEMORY: u64 = 103;

static START: AtomicPtr<StartInfo> = AtomicPtr::new(ptr::null_mut());

/// This domain's start page, once the runtime has checked it.
pub fn start_info() -> Option<&'static StartInfo> {
    let p = START.load(Ordering::Acquire);
    // SAFETY: only `run` stores here, a pointer to the checked start page,
    // which stays mapped read-only for the domain's life.
    unsafe { p.as_ref() }
}

/// Starts the domain: checks the start page, sets up log, heap and stack,
/// runs `main` and exits with its value. `entry!` calls it.
///
/// # Safety
///
/// `info` must be the start page pointer the domain was started with, and
/// `run` must be called once.
pub unsafe fn run(info: *const StartInfo, config: Config, main: fn(&'static StartInfo) -> u64) -> ! {
    if info.is_null() || !info.is_aligned() {
        sys::exit(EXIT_BAD_START);
    }
    // SAFETY: the start page is mapped read-only for the domain's life and
    // nothing writes it; were it not mapped, reading faults and the
    // supervisor hears of it.
    let start: &'static StartInfo = unsafe { &*info };
    if !start.is_valid() {
        sys::exit(EXIT_BAD_START);
    }
    START.store(info.cast_mut(), Ordering::Release);
    logger::init(start.console());
    let Some(this) = start.self_domain() else {
        log::error!("no `self` capability in the start page");
        sys::exit(EXIT_BAD_START);
    };
    if let Err(e) = heap::init(this, config.heap_kib) {
        log::error!(
            "cannot set up a heap of {} KiB: {e:?} (quota {} pages)",
            config.heap_kib,
            start.quota_pages
        );
        sys::exit(EXIT_NO_MEMORY);
    }
    if config.stack_kib == 0 {
        sys::exit(main(start));
    }
    if let Err(e) = map_stack(this, config.stack_kib) {
        log::error!(
            "cannot set up a stack of {} KiB: {e:?} (quota {} pages)",
            config.stack_kib,
            start.quota_pages
        );
        sys::exit(EXIT_NO_MEMORY);
    }
    let mut call = Call { start, main };
    // SAFETY: map_stack just mapped the stack read-write below
    // BIG_STACK_TOP (page aligned) for this domain alone, and `call` lives
    // on the old stack, which stays mapped.
    unsafe { arch::call_on_stack(layout::BIG_STACK_TOP, on_big_stack, (&raw mut call).cast()) }
}

/// `main` and its argument, handed to the new stack.
struct Call {
    start: &'static StartInfo,
    main: fn(&'static StartInfo) -> u64,
}

extern "C" fn on_big_stack(call: *mut u8) -> ! {
    // SAFETY: `run` passes a `Call` on its own stack frame, which never ends.
    let call = unsafe { &*call.cast::<Call>() };
    sys::exit((call.main)(call.start))
}

fn map_stack(this: CapSlot, kib: u64) -> Result<(), Error> {
    let pages = layout::pages(kib * 1024);
    let mem = sys::memory_create(this, pages)?;
    sys::memory_map(mem, this, layout::BIG_STACK_TOP - pages * layout::PAGE, Rights::READ | Rights::WRITE)
}

#[cfg(target_os = "none")]
mod panic {
    use core::panic::PanicInfo;
    use core::sync::atomic::{AtomicBool, Ordering};

    use crate::{logger, sys};

    static PANICKING: AtomicBool = AtomicBool::new(false);

    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        // A panic while reporting one ends the domain without more words.
        if !PANICKING.swap(true, Ordering::Relaxed) {
            match info.location() {
                Some(l) => {
                    logger::line(format_args!("panicked: {} at {}:{}", info.message(), l.file(), l.line()))
                }
                None => logger::line(format_args!("panicked: {}", info.message())),
            }
        }
        sys::exit(ipc::event::EXIT_PANIC)
    }
}
