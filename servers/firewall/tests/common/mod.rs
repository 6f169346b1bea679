//! Test frames, built with smoltcp's `wire` emitters (real bytes, real checksums), and the
//! one `check` helper the table-driven tests go through.
#![allow(dead_code)]

use firewall::{Direction, FiveTuple, Firewall, Instant, ProgramId, Protocol, Verdict};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    UdpPacket, UdpRepr, ETHERNET_HEADER_LEN,
};

/// The machine's address.
pub const LOCAL: [u8; 4] = [10, 0, 0, 2];
/// A remote peer, in 192.0.2.0/24.
pub const REMOTE: [u8; 4] = [192, 0, 2, 7];
/// Another remote peer, outside 192.0.2.0/24.
pub const OTHER: [u8; 4] = [198, 51, 100, 9];

pub const A: ProgramId = ProgramId(1);
pub const B: ProgramId = ProgramId(2);

/// TCP flags of a test segment.
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

pub const SYN: Flags = Flags { syn: true, ack: false, fin: false, rst: false };
pub const SYN_ACK: Flags = Flags { syn: true, ack: true, fin: false, rst: false };
pub const ACK: Flags = Flags { syn: false, ack: true, fin: false, rst: false };
pub const FIN: Flags = Flags { syn: false, ack: true, fin: true, rst: false };
pub const RST: Flags = Flags { syn: false, ack: false, fin: false, rst: true };
pub const BARE_FIN: Flags = Flags { syn: false, ack: false, fin: true, rst: false };

fn ethernet(ethertype: EthernetProtocol, payload_len: usize, fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut bytes = vec![0; ETHERNET_HEADER_LEN + payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    EthernetRepr {
        src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
        ethertype,
    }
    .emit(&mut frame);
    fill(frame.payload_mut());
    bytes
}

fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: IpProtocol, payload_len: usize, fill: impl FnOnce(&mut [u8], IpAddress, IpAddress)) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: Ipv4Address::from(src),
        dst_addr: Ipv4Address::from(dst),
        next_header: protocol,
        payload_len,
        hop_limit: 64,
    };
    ethernet(EthernetProtocol::Ipv4, repr.buffer_len() + payload_len, |buffer| {
        let mut packet = Ipv4Packet::new_unchecked(&mut *buffer);
        repr.emit(&mut packet, &ChecksumCapabilities::default());
        fill(packet.payload_mut(), IpAddress::Ipv4(repr.src_addr), IpAddress::Ipv4(repr.dst_addr));
    })
}

/// A TCP segment `src` → `dst` with `flags` and `payload`.
pub fn tcp_with(src: ([u8; 4], u16), dst: ([u8; 4], u16), flags: Flags, payload: &[u8]) -> Vec<u8> {
    let control = match (flags.syn, flags.fin, flags.rst) {
        (true, _, _) => TcpControl::Syn,
        (_, true, _) => TcpControl::Fin,
        (_, _, true) => TcpControl::Rst,
        _ => TcpControl::None,
    };
    let repr = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control,
        seq_number: TcpSeqNumber(1000),
        ack_number: flags.ack.then_some(TcpSeqNumber(2000)),
        window_len: 1024,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    ipv4(src.0, dst.0, IpProtocol::Tcp, repr.buffer_len(), |buffer, s, d| {
        repr.emit(&mut TcpPacket::new_unchecked(buffer), &s, &d, &ChecksumCapabilities::default());
    })
}

pub fn tcp(src: ([u8; 4], u16), dst: ([u8; 4], u16), flags: Flags) -> Vec<u8> {
    tcp_with(src, dst, flags, &[])
}

/// A UDP datagram `src` → `dst` carrying `payload`.
pub fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: src.1, dst_port: dst.1 };
    ipv4(src.0, dst.0, IpProtocol::Udp, repr.header_len() + payload.len(), |buffer, s, d| {
        repr.emit(
            &mut UdpPacket::new_unchecked(buffer),
            &s,
            &d,
            payload.len(),
            |out| out.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        );
    })
}

fn icmp(src: [u8; 4], dst: [u8; 4], repr: Icmpv4Repr<'_>) -> Vec<u8> {
    ipv4(src, dst, IpProtocol::Icmp, repr.buffer_len(), |buffer, _, _| {
        repr.emit(&mut Icmpv4Packet::new_unchecked(buffer), &ChecksumCapabilities::default());
    })
}

pub fn echo_request(src: [u8; 4], dst: [u8; 4], ident: u16) -> Vec<u8> {
    icmp(src, dst, Icmpv4Repr::EchoRequest { ident, seq_no: 1, data: b"ping" })
}

pub fn echo_reply(src: [u8; 4], dst: [u8; 4], ident: u16) -> Vec<u8> {
    icmp(src, dst, Icmpv4Repr::EchoReply { ident, seq_no: 1, data: b"ping" })
}

/// An ICMP port-unreachable about a UDP datagram `dst` once sent to `src`.
pub fn port_unreachable(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let header = Ipv4Repr {
        src_addr: Ipv4Address::from(dst),
        dst_addr: Ipv4Address::from(src),
        next_header: IpProtocol::Udp,
        payload_len: 8,
        hop_limit: 64,
    };
    icmp(
        src,
        dst,
        Icmpv4Repr::DstUnreachable { reason: smoltcp::wire::Icmpv4DstUnreachable::PortUnreachable, header, data: &[0; 8] },
    )
}

/// An ARP request: who has `target`, tell `sender`.
pub fn arp(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
        source_protocol_addr: Ipv4Address::from(sender),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Address::from(target),
    };
    ethernet(EthernetProtocol::Arp, repr.buffer_len(), |buffer| repr.emit(&mut ArpPacket::new_unchecked(buffer)))
}

/// A frame of `ethertype` with `payload` behind the Ethernet header, unparsed.
pub fn raw(ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    ethernet(ethertype, payload.len(), |buffer| buffer.copy_from_slice(payload))
}

/// An IPv4 packet of `protocol` with `payload` and a correct header checksum.
pub fn ip_raw(src: [u8; 4], dst: [u8; 4], protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    ipv4(src, dst, protocol, payload.len(), |buffer, _, _| buffer.copy_from_slice(payload))
}

/// The tuple of a frame as it is on the wire.
pub fn tuple(protocol: Protocol, src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> FiveTuple {
    FiveTuple { protocol, src: src.0, src_port: src.1, dst: dst.0, dst_port: dst.1 }
}

/// One step of a table-driven test: at `at` µs, a frame going `direction` for `program`, and
/// the verdict it must get.
pub struct Step<'a> {
    pub at: u64,
    pub direction: Direction,
    pub program: ProgramId,
    pub frame: &'a [u8],
    pub want: Verdict,
}

/// Runs the steps in order, failing with the step's index on the first wrong verdict.
pub fn check(firewall: &mut Firewall, steps: &[Step<'_>]) {
    for (index, step) in steps.iter().enumerate() {
        let got = firewall.check(Instant::from_micros(step.at), step.direction, step.program, step.frame);
        assert_eq!(got, step.want, "step {index} at {} µs ({:?}, {:?})", step.at, step.direction, step.program);
    }
}

/// `check` for one frame.
pub fn verdict(firewall: &mut Firewall, at: u64, direction: Direction, program: ProgramId, frame: &[u8]) -> Verdict {
    firewall.check(Instant::from_micros(at), direction, program, frame)
}
