//! `net`: the network driver domain. It drives the virtio-net PCI function
//! it was given (`device:00:05.0`) with `virtio-drivers` (its
//! configuration space, BARs and DMA through `ryokan_virtio`, which `blk`
//! shares; receive and send completions raise MSI-X entry 0), runs
//! `smoltcp` over it (`nic.rs`), takes a DHCP lease and says its address
//! and gateway, and serves a TCP echo on port 7 (`echo.rs`) until it is
//! shut down.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

extern crate alloc;

mod echo;
mod frames;
mod nic;
mod station;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};
use station::{now, Mac, Station};
use user::{sys, Caps, StartInfo};

user::entry!(main, heap_kib = 512);

const DEVICE: &str = "device:00:05.0";
/// Its INTx line, if the system file gave one: a function without MSI-X's.
const INTX: &str = "intx:00:05.0";
/// The notification's bit for the timer (the device's MSI-X entry 0 is
/// bit 0, `ryokan_virtio::interrupts_to_notification`).
const TIMER: u64 = 2;
/// The longest sleep with nothing due (the lease's renewal is sooner).
const MAX_SLEEP_US: u64 = 1_000_000;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::info!("net: FAIL: {why}");
            1
        }
    }
}

fn run(start: &'static StartInfo) -> Result<(), &'static str> {
    let me = start.slot("self").ok_or("no self capability")?;
    let (dev, transport) = ryokan_virtio::open(start, DEVICE, 5, 0)?;
    // virtio 1.2 §5.1.4: the status field (after the MAC), bit 0 link up.
    let link = virtio_drivers::transport::Transport::read_config_space::<u16>(&transport, 6)
        .is_ok_and(|s| s & 1 != 0);
    let driver = nic::Driver::new(transport).map_err(|_| "virtio-net setup")?;
    if !ryokan_virtio::transport::accepted() {
        return Err("the device refused the features offered (FEATURES_OK)");
    }
    let mut nic = nic::Nic::new(driver)?;
    // Queue 0 receives, queue 1 sends: both on MSI-X entry 0, raising the
    // notification the frame service's client rings too (if there is one).
    let ntfn = match start.slot("notification:net-req") {
        Some(n) => n,
        None => sys::notification_create(me).map_err(|_| "no notification")?,
    };
    let irqs = ryokan_virtio::interrupts_to_notification(dev, ntfn, &[0, 1], start.slot(INTX))?;
    if let ryokan_virtio::Interrupts::Intx(_) = irqs {
        log::info!("net: no MSI-X: its interrupts come on its INTx line");
    }
    let mut client = frames::attach(start, nic.mac())?;
    let mac = nic.mac();
    log::info!("net: virtio-net, MAC {}", Mac(mac));
    let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let mut iface = Interface::new(config, &mut Station(&mut nic), now());
    let mut sockets = SocketSet::new(alloc::vec::Vec::new());
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let mut echo = echo::Echo::new(&mut sockets);
    let (mut leased, mut heard) = (false, false);
    loop {
        let t = now();
        iface.poll(t, &mut Station(&mut nic), &mut sockets);
        match sockets.get_mut::<dhcpv4::Socket>(dhcp).poll() {
            Some(dhcpv4::Event::Configured(c)) => {
                iface.update_ip_addrs(|a| {
                    a.clear();
                    let _ = a.push(IpCidr::Ipv4(c.address));
                });
                iface.routes_mut().remove_default_ipv4_route();
                if let Some(router) = c.router {
                    let _ = iface.routes_mut().add_default_ipv4_route(router);
                }
                match c.router {
                    Some(r) => log::info!("net: DHCP lease: address {}, gateway {r}", c.address),
                    None => log::info!("net: DHCP lease: address {}, no gateway", c.address),
                }
                leased = true;
                // The client is served once this interface is configured
                // (so that QEMU's DHCP server gives this one its first address).
                if let Some(c) = client.take() {
                    log::info!("net: serving frames to net-client as {}", Mac(c.mac));
                    nic.client = Some(c);
                }
            }
            Some(dhcpv4::Event::Deconfigured) => {
                iface.update_ip_addrs(|a| a.clear());
                iface.routes_mut().remove_default_ipv4_route();
                if leased {
                    log::info!("net: DHCP lease lost");
                }
                leased = false;
            }
            None => {}
        }
        if echo.serve(&mut sockets, t) {
            continue; // it moved bytes: let smoltcp send them now
        }
        if let Some(mut c) = nic.client.take() {
            let moved = c.serve(|f| nic.send(f), link);
            nic.client = Some(c);
            if moved {
                continue;
            }
        }
        if nic.has_frame() || nic.client.as_mut().is_some_and(|c| !c.sleepy()) {
            continue;
        }
        let t = now();
        let delay =
            iface.poll_delay(t, &sockets).map_or(MAX_SLEEP_US, |d| d.total_micros().min(MAX_SLEEP_US));
        if delay == 0 {
            continue;
        }
        sys::timer_set(ntfn, TIMER, delay, 0).map_err(|_| "setting a timer")?;
        let bits = sys::wait(ntfn).map_err(|_| "waiting")?;
        if let ryokan_virtio::Interrupts::Intx(_) = irqs {
            if bits & irqs.bit() != 0 && !heard {
                heard = true;
                log::info!("net: its first interrupt came on its INTx line");
            }
            // The ISR's read lowers the line; then it is unmasked.
            nic.ack_interrupt();
            irqs.ack()?;
        }
    }
}
