//! `net_echo` (tests/systems/net.toml): the network driver domain takes a
//! DHCP lease from QEMU's user network and serves a TCP echo, which the
//! harness reaches through the host loopback port the runner forwarded
//! into that network. The harness waits for the lease line, has a few KiB
//! of pseudo-random bytes echoed byte for byte, then plays the hostile
//! peer: more connections at once than `net` has sockets (the extra ones
//! refused, none left hanging) and a stream past its limit (cut, what came
//! back before the cut still the stream's own bytes), an echo after each;
//! then it shuts the system down over the control channel. Meanwhile
//! `net-client` uses `net`'s frame service (`ipc::net`): its MAC, the
//! link, bad frames refused, and a DHCP lease of its own through it; last
//! it breaks its ring, and `net` drops it and echoes on.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::expect::{never, says, says_prefix};
use super::MGMT;
use crate::cases::{Image, SystemTest};
use crate::control::Session;
use crate::emulator::{Emulator, Qemu};
use crate::judge::{Outcome, Verdict};

/// `net`'s sockets on its echo port, and the most bytes one connection may
/// have echoed (domains/net/src/echo.rs).
const SOCKETS: usize = 4;
const LIMIT: usize = 64 * 1024;
const SOCKET_BUFFER: usize = 8 * 1024;
/// The connections the hostile peer opens at once.
const CROWD: usize = 12;
/// The bytes of each good echo, and of the stream past the limit.
const ECHO: usize = 6 * 1024;
const FLOOD: usize = 4 * LIMIT;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `net` lets a connection send nothing.
const IDLE: Duration = Duration::from_secs(5);

/// What `net-client` asks of the frame service, each answer to be "as owed".
pub(super) const CLIENT_ANSWERS: [&str; 6] = [
    "its MAC, net's plus one",
    "the link up",
    "a frame from another address refused",
    "a frame too long refused",
    "a frame too short refused",
    "every frame sent taken",
];

pub fn case() -> SystemTest {
    SystemTest {
        name: "net_echo",
        image: Image::System("tests/systems/net.toml"),
        emulator: Emulator::Qemu(Qemu::with_control()),
        check,
        drive: Some(drive),
        prepare: None,
    }
}

/// `net_echo` under AMD-Vi.
pub fn amdvi_case() -> SystemTest {
    SystemTest {
        name: "amdvi_net_echo",
        emulator: super::amd(Qemu::with_control()),
        check: check_amdvi,
        ..case()
    }
}

/// `n` pseudo-random bytes from `seed` (xorshift64*).
pub(super) fn stream(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let c = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connecting to port {port}: {e}"))?;
    c.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    c.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    Ok(c)
}

/// Sends `ECHO` bytes from `seed` on a new connection and reads them back,
/// byte for byte; then closes its side and finds the echo closing too.
fn echo(port: u16, seed: u64) -> Result<(), String> {
    let data = stream(seed, ECHO);
    let mut c = connect(port)?;
    c.write_all(&data).map_err(|e| format!("echo: sending: {e}"))?;
    let mut back = vec![0u8; ECHO];
    c.read_exact(&mut back).map_err(|e| format!("echo: reading back: {e}"))?;
    if let Some(i) = (0..ECHO).find(|&i| back[i] != data[i]) {
        return Err(format!("echo: byte {i} came back {:#04x}, not {:#04x}", back[i], data[i]));
    }
    c.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    let mut rest = Vec::new();
    match c.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(()),
        Ok(_) => Err(format!("echo: {} bytes more than were sent came back", rest.len())),
        Err(e) => Err(format!("echo: the close was not answered with a close: {e}")),
    }
}

/// The echo works again within a few seconds (sockets of the connections
/// just ended may still be closing).
fn echo_again(port: u16, seed: u64) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match echo(port, seed) {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() > Duration::from_secs(10) => {
                return Err(format!("after the hostile peer: {e}"))
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Opens `CROWD` connections at once and sends a byte on each: at most
/// `SOCKETS` are echoed, every other one is refused (reset or closed),
/// none hangs.
fn crowd(port: u16) -> Result<(), String> {
    let mut all = Vec::new();
    for _ in 0..CROWD {
        all.push(connect(port)?);
    }
    let (mut echoed, mut refused) = (0, 0);
    for (k, c) in all.iter_mut().enumerate() {
        let byte = [k as u8];
        let mut back = [0u8; 1];
        let got = c.write_all(&byte).and_then(|_| c.read(&mut back));
        match got {
            Ok(1) if back == byte => echoed += 1,
            Ok(1) => return Err(format!("crowd: connection {k} got {:#04x} back, not {k:#04x}", back[0])),
            Ok(_) => refused += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("crowd: connection {k} was neither echoed nor refused within 10 s"))
            }
            Err(_) => refused += 1,
        }
    }
    if echoed == 0 || echoed > SOCKETS || echoed + refused != CROWD {
        return Err(format!(
            "crowd: of {CROWD} connections at once {echoed} were echoed and {refused} refused \
             (net has {SOCKETS} sockets)"
        ));
    }
    Ok(())
}

/// Sends `FLOOD` bytes on one connection, reading meanwhile: the echo is
/// cut once `LIMIT` bytes have passed (what was still in its socket's
/// buffers then is dropped with it, and at most one read of 2 KiB past
/// the limit is echoed), and all that came back is the stream's own.
fn flood(port: u16) -> Result<(), String> {
    let data = stream(0xf100d, FLOOD);
    let c = connect(port)?;
    let mut reader = c.try_clone().map_err(|e| e.to_string())?;
    let want = data.clone();
    let read = thread::spawn(move || -> Result<usize, String> {
        let mut got = 0;
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => {
                    if got + n > want.len() || buf[..n] != want[got..got + n] {
                        return Err(format!("flood: bytes {got}..{} came back otherwise", got + n));
                    }
                    got += n;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(format!("flood: neither echoed nor cut within 10 s, after {got} bytes"))
                }
                Err(_) => return Ok(got), // reset: cut
            }
        }
    });
    let mut w = c;
    let _ = w.write_all(&data); // fails once the connection is cut
    let got = read.join().map_err(|_| "flood: the reader panicked".to_string())??;
    if got + 2 * SOCKET_BUFFER < LIMIT || got > LIMIT + 2048 {
        return Err(format!("flood: {got} of {FLOOD} bytes came back before the cut (the limit is {LIMIT})"));
    }
    Ok(())
}

/// Holds every socket with connections that send nothing: each is cut
/// within `IDLE` and a little, not left open.
fn idle(port: u16) -> Result<(), String> {
    let mut all = Vec::new();
    for _ in 0..SOCKETS {
        all.push(connect(port)?);
    }
    let start = Instant::now();
    for (k, c) in all.iter_mut().enumerate() {
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => {}
            Ok(_) => return Err(format!("idle: connection {k} got a byte it never sent")),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("idle: connection {k} still open after {} s", start.elapsed().as_secs()))
            }
            Err(_) => {}
        }
    }
    if start.elapsed() + Duration::from_millis(500) < IDLE {
        return Err(format!(
            "idle: cut after {} ms, before {} s",
            start.elapsed().as_millis(),
            IDLE.as_secs()
        ));
    }
    Ok(())
}

fn drive(s: &Session) -> Result<(), String> {
    let port = s.host_port.ok_or("the run has no forwarded port")?;
    s.wait_for("[net] net: DHCP lease: address ", Duration::from_secs(90))?;
    echo(port, 1)?;
    crowd(port)?;
    echo_again(port, 2)?;
    flood(port)?;
    echo_again(port, 3)?;
    idle(port)?;
    s.wait_for("[mgmt] net-client exited with code", Duration::from_secs(30))?;
    s.wait_for("[net] net: client net-client broke its ring", Duration::from_secs(10))?;
    echo_again(port, 4)?;
    let out = s.run(&["shutdown"])?;
    if !out.ok {
        return Err(format!("`ryokan shutdown` failed: {}", out.stderr));
    }
    Ok(())
}

/// As [`check`], and the kernel drove AMD-Vi, whose unit blocked none of
/// the device's DMA.
fn check_amdvi(o: &Outcome) -> Result<(), String> {
    check(o)?;
    super::kernel_says(&o.serial, super::AMDVI.unit)?;
    match o.serial.lines().find(|l| l.contains("iommu: DMA fault")) {
        Some(l) => Err(format!("the device's own DMA faulted: {l}")),
        None => Ok(()),
    }
}

/// The lease from QEMU's user network (10.0.2.15, gateway 10.0.2.2), the
/// cut, `net-client`'s answers and its own lease (10.0.2.16) through the
/// frame service, no failure, and the end after `ryokan shutdown`.
pub(super) fn check(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    let s = &o.serial;
    says(
        s,
        MGMT,
        "net: device 00:05.0 (1af4:1041) given with DMA (confined where the kernel programs an IOMMU; unconfined_dma: even where it does not)",
    )?;
    says_prefix(s, "net", "net: virtio-net, MAC 52:54:00:")?;
    says(s, "net", "net: DHCP lease: address 10.0.2.15/24, gateway 10.0.2.2")?;
    says(s, "net", &format!("net: echo: a connection passed {LIMIT} bytes: cut"))?;
    says(s, "net", &format!("net: echo: a connection idle for {} s: cut", IDLE.as_secs()))?;
    says_prefix(s, "net", &format!("net: echo: a connection ended after {ECHO} bytes"))?;
    says_prefix(s, "net", "net: serving frames to net-client as 52:54:00:")?;
    for what in CLIENT_ANSWERS {
        says(s, "net-client", &format!("net-client: {what}: as owed"))?;
    }
    says(s, "net-client", "net-client: DHCP lease: address 10.0.2.16/24, gateway 10.0.2.2")?;
    says(s, MGMT, "net-client exited with code 0")?;
    says(s, "net", "net: client net-client broke its ring (PeerMisbehaved): no longer served")?;
    for who in ["net", "net-client"] {
        never(s, who, |m| m.contains("FAIL"), "failure")?;
    }
    says(s, MGMT, "control: shutdown asked for")?;
    says(s, MGMT, "all domains stopped: shutting down")?;
    if s.contains("faulted:") {
        return Err("a domain faulted".to_string());
    }
    Ok(())
}
