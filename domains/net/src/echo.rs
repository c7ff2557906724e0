//! The TCP echo on port 7: `SOCKETS` sockets listen, so that many peers
//! are served at once; a peer past them finds none listening and is
//! refused (`smoltcp` answers its SYN with a reset). What a peer sends is
//! sent back as send room allows (TCP's window holds the peer back
//! meanwhile); a connection that carries more than `LIMIT` bytes, or
//! sends nothing for `IDLE`, is cut (reset), and its socket listens again
//! (so that peers holding every socket idle lock nobody out for long).

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{Socket, SocketBuffer, State};
use smoltcp::time::{Duration, Instant};

pub const PORT: u16 = 7;
pub const SOCKETS: usize = 4;
/// The most bytes one connection may have echoed.
pub const LIMIT: u64 = 64 * 1024;
/// The longest a connection may send nothing.
pub const IDLE: Duration = Duration::from_secs(5);
const BUFFER: usize = 8 * 1024;

pub struct Echo {
    /// Each socket, the bytes its connection had echoed, and when it last
    /// had any (or began).
    sockets: [(SocketHandle, u64, Instant); SOCKETS],
}

impl Echo {
    pub fn new(set: &mut SocketSet<'static>) -> Self {
        let sockets = [(); SOCKETS].map(|_| {
            let rx = SocketBuffer::new(alloc::vec![0; BUFFER]);
            let tx = SocketBuffer::new(alloc::vec![0; BUFFER]);
            (set.add(Socket::new(rx, tx)), 0, Instant::ZERO)
        });
        Echo { sockets }
    }

    /// Moves each connection on at `now`: listens again where one ended,
    /// echoes what came, closes after the peer did, cuts one past `LIMIT`
    /// or idle for `IDLE`. Whether any bytes moved.
    pub fn serve(&mut self, set: &mut SocketSet<'static>, now: Instant) -> bool {
        let mut moved = false;
        for (handle, echoed, last) in self.sockets.iter_mut() {
            let s = set.get_mut::<Socket>(*handle);
            if s.state() == State::Closed {
                if *echoed > 0 {
                    log::info!("net: echo: a connection ended after {echoed} bytes");
                }
                *echoed = 0;
                if s.listen(PORT).is_err() {
                    log::info!("net: FAIL: a socket could not listen on port {PORT}");
                }
                continue;
            }
            if matches!(s.state(), State::Listen | State::SynReceived) {
                *last = now;
                continue;
            }
            if s.state() == State::Established && now - *last > IDLE {
                log::info!("net: echo: a connection idle for {} s: cut", IDLE.secs());
                s.abort();
                *echoed = 0;
                continue;
            }
            let mut buf = [0u8; 2048];
            while s.can_recv() && s.can_send() {
                let room = (s.send_capacity() - s.send_queue()).min(buf.len());
                let Ok(n) = s.recv_slice(&mut buf[..room]) else { break };
                if n == 0 {
                    break;
                }
                let _ = s.send_slice(&buf[..n]);
                *echoed += n as u64;
                *last = now;
                moved = true;
                if *echoed > LIMIT {
                    log::info!("net: echo: a connection passed {LIMIT} bytes: cut");
                    s.abort();
                    *echoed = 0;
                    break;
                }
            }
            if !s.may_recv() && s.may_send() && s.send_queue() == 0 {
                s.close(); // the peer is done and has everything back
            }
        }
        moved
    }
}
