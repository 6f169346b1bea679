//! net-driver: the virtio-net driver, in user space, on the `virtio-drivers` crate.
//!
//! It holds exactly what its manifest entry gives it: the NIC's one-function PCI cap
//! (`caps::NIC`, from `device = { pci = "virtio-net" }`), a device frame per memory BAR it
//! asked for (`device = { pci = ..., bar = N }`), and a heap through the memory server,
//! from which `libcap::virtio` takes the DMA rings and bounce buffers (contiguous, below
//! 4 GiB). It maps every device frame it holds, turns on memory decoding and bus mastering
//! in the command register (from then on the device can DMA anywhere in RAM: there is no
//! IOMMU, SECURITY.md), negotiates features and sets up the receive and transmit queues
//! through the modern PCI transport, prints the MAC, transmits one ARP request for QEMU's
//! gateway 10.0.2.2 and waits, bounded, for frames, printing what it saw.
//!
//! This slice polls the used rings (with a yield between polls) rather than taking the
//! interrupt: on q35, INTx reaches the I/O APIC at a GSI (16..23) that only ACPI's AML
//! names, and the kernel's IRQ caps cover the ISA lines. No TCP/IP yet: the stack
//! (servers/net) will sit behind this driver, and the driver will parse nothing.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::virtio::{LibcapHal, PciConfig};
use libcap::virtio_drivers::device::net::VirtIONet;
use libcap::virtio_drivers::transport::pci::PciTransport;
use libcap::virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use libcap::virtio_drivers::transport::Transport;
use libcap::{CapSlot, ErrorCode, println, slots, sys};

libcap::entry!(main, caps);
libcap::caps!();

/// Receive and transmit queues of this many descriptors.
const QUEUE_SIZE: usize = 8;
/// Each receive buffer: an Ethernet frame and the virtio-net header.
const BUFFER_BYTES: usize = 2048;
/// How long to wait for frames: polls, a yield apart.
const POLLS: u32 = 200_000;
/// How many frames to report before stopping.
const FRAMES: u32 = 2;
/// One past the last slot a manifest `caps` entry can fill (`manifest::SPACE_SLOTS`): the
/// driver maps every device frame among them, its BARs.
const MANIFEST_SLOTS: u32 = 64;
/// The address QEMU's user-mode network gives the guest, and its gateway.
const OUR_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];

fn main() -> Result<(), ErrorCode> {
    let nic = caps::NIC.slot();
    let bars: Vec<CapSlot> = (2..MANIFEST_SLOTS)
        .map(CapSlot::new)
        .filter(|&slot| sys::frame_info(slot).is_ok_and(|info| info.device))
        .collect();
    libcap::virtio::init(slots::HEAP_SPACE, &bars)?;
    // Memory space and bus master on: the device's registers decode and it may DMA. I/O
    // space stays off (the kernel refuses it: no I/O BAR is placed).
    let command = sys::pci_config_read(nic, 0, 0x04, 2)?;
    sys::pci_config_write(nic, 0, 0x04, 2, (command | 0b110) & !1)?;
    let mut root = PciRoot::new(PciConfig::new(nic)?);
    let function = DeviceFunction { bus: 0, device: 0, function: 0 };
    let transport = match PciTransport::new::<LibcapHal, _>(&mut root, function) {
        Ok(transport) => transport,
        Err(error) => {
            println!("net-driver: not a modern virtio PCI device: {error}");
            return Err(ErrorCode::IllegalOperation);
        }
    };
    let device_type = transport.device_type();
    let mut net = match VirtIONet::<LibcapHal, PciTransport, QUEUE_SIZE>::new(transport, BUFFER_BYTES) {
        Ok(net) => net,
        Err(error) => {
            println!("net-driver: {device_type:?} device refused to come up: {error}");
            return Err(ErrorCode::IllegalOperation);
        }
    };
    let mac = net.mac_address();
    println!("net-driver: virtio-net {} up, 2 queues of {QUEUE_SIZE}, {} BAR(s) mapped uncached", Mac(mac), bars.len());

    let request = arp_request(mac);
    let mut tx = net.new_tx_buffer(request.len());
    tx.packet_mut().copy_from_slice(&request);
    if let Err(error) = net.send(tx) {
        println!("net-driver: transmit failed: {error}");
        return Err(ErrorCode::IllegalOperation);
    }
    println!("net-driver: sent {} bytes: ARP who-has {} tell {}", request.len(), Ip(GATEWAY_IP), Ip(OUR_IP));

    let mut seen = 0;
    for _ in 0..POLLS {
        match net.receive() {
            Ok(rx) => {
                describe(rx.packet());
                seen += 1;
                let _ = net.recycle_rx_buffer(rx);
                if seen == FRAMES {
                    break;
                }
            }
            Err(_) => {
                let _ = sys::yield_now();
            }
        }
    }
    if seen == 0 {
        println!("net-driver: no frame received in {POLLS} polls");
        return Err(ErrorCode::TimedOut);
    }
    println!("net-driver: received {seen} frame(s); done");
    Ok(())
}


/// An ARP request (Ethernet broadcast): who has the gateway, tell our address.
fn arp_request(mac: [u8; 6]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&[0x08, 0x06]); // ARP
    frame.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&OUR_IP);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&GATEWAY_IP);
    frame.resize(60, 0); // the minimum frame, without the FCS
    frame
}

/// Prints a frame's Ethernet header, and an ARP packet's meaning.
fn describe(frame: &[u8]) {
    let field = |range: core::ops::Range<usize>| frame.get(range).unwrap_or(&[]);
    let mac = |range| <[u8; 6]>::try_from(field(range)).map(Mac).ok();
    let (Some(source), Some(kind)) = (mac(6..12), field(12..14).try_into().ok().map(u16::from_be_bytes)) else {
        println!("net-driver: received a runt frame of {} bytes", frame.len());
        return;
    };
    let ip = |range| <[u8; 4]>::try_from(field(range)).map(Ip).ok();
    match (kind, field(20..22)) {
        (0x0806, [0, 2]) => match (ip(28..32), mac(22..28)) {
            (Some(sender), Some(sender_mac)) => {
                println!("net-driver: received {} bytes from {source}: ARP reply {sender} is-at {sender_mac}", frame.len())
            }
            _ => println!("net-driver: received {} bytes from {source}: a short ARP reply", frame.len()),
        },
        (0x0806, _) => println!("net-driver: received {} bytes from {source}: ARP (not a reply)", frame.len()),
        _ => println!("net-driver: received {} bytes from {source}: ethertype {kind:#06x}", frame.len()),
    }
}

struct Mac([u8; 6]);

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

struct Ip([u8; 4]);

impl core::fmt::Display for Ip {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}
