//! Reading untrusted frames, through smoltcp's `wire` module only.
//!
//! Nothing here indexes a frame by hand: smoltcp's `new_checked` constructors bound every
//! length, and its `Repr::parse` functions check versions, header lengths and checksums. What
//! this module adds is the firewall's classification of the result: ARP, an IPv4 packet the
//! firewall understands (TCP, UDP, ICMP echo), something it does not handle (another
//! ethertype, another IP protocol, a fragment, an ICMP type other than echo), or malformed.
//!
//! Checksums are verified in both directions: the stack computes them in software, and an
//! outbound packet with a wrong checksum would be dropped by its receiver anyway.

use serde::{Deserialize, Serialize};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

use crate::rule::Protocol;

/// A packet's addresses and ports as they are on the wire. For ICMP echo both ports are the
/// echo identifier, which is what pairs a reply with its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FiveTuple {
    /// The transport protocol.
    pub protocol: Protocol,
    /// Source address.
    pub src: [u8; 4],
    /// Source port (the echo identifier for ICMP).
    pub src_port: u16,
    /// Destination address.
    pub dst: [u8; 4],
    /// Destination port (the echo identifier for ICMP).
    pub dst_port: u16,
}

/// The TCP flags connection tracking reads. smoltcp refuses the contradictory combinations
/// (SYN with FIN or RST, FIN with RST) as malformed before they get here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpFlags {
    pub(crate) syn: bool,
    pub(crate) ack: bool,
    pub(crate) fin: bool,
    pub(crate) rst: bool,
}

/// What kind of transport packet an IPv4 packet carries, as tracking needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp(TcpFlags),
    Udp,
    EchoRequest,
    EchoReply,
}

impl Kind {
    /// Whether a packet of this kind may open a new flow: a bare SYN, any UDP datagram, an
    /// echo request.
    pub(crate) const fn is_opener(self) -> bool {
        match self {
            Kind::Tcp(flags) => flags.syn && !flags.ack && !flags.fin && !flags.rst,
            Kind::Udp | Kind::EchoRequest => true,
            Kind::EchoReply => false,
        }
    }
}

/// An IPv4 packet the firewall understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ip {
    pub(crate) tuple: FiveTuple,
    pub(crate) kind: Kind,
}

/// A frame, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A well-formed ARP packet.
    Arp,
    /// An IPv4 packet of TCP, UDP or ICMP echo.
    Ip(Ip),
}

/// Why a frame was not classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Truncated, inconsistent lengths, a bad checksum, a bad version: not a packet.
    Malformed,
    /// Well-formed but outside what the firewall handles; the tuple when it got that far.
    Unsupported(Option<FiveTuple>),
}

/// Classifies an Ethernet frame. Never panics, whatever the bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Frame, Refusal> {
    let frame = EthernetFrame::new_checked(bytes).map_err(|_| Refusal::Malformed)?;
    match frame.ethertype() {
        EthernetProtocol::Arp => {
            let packet = ArpPacket::new_checked(frame.payload()).map_err(|_| Refusal::Malformed)?;
            ArpRepr::parse(&packet).map_err(|_| Refusal::Malformed)?;
            Ok(Frame::Arp)
        }
        EthernetProtocol::Ipv4 => parse_ipv4(frame.payload()).map(Frame::Ip),
        _ => Err(Refusal::Unsupported(None)),
    }
}

fn parse_ipv4(bytes: &[u8]) -> Result<Ip, Refusal> {
    let checksums = ChecksumCapabilities::default();
    let packet = Ipv4Packet::new_checked(bytes).map_err(|_| Refusal::Malformed)?;
    // Fragments carry no (or a partial) transport header to match: refused whole, before
    // smoltcp (built without fragmentation) would call them malformed.
    if packet.version() == 4 && (packet.more_frags() || packet.frag_offset() != 0) && packet.verify_checksum() {
        return Err(Refusal::Unsupported(None));
    }
    let ip = Ipv4Repr::parse(&packet, &checksums).map_err(|_| Refusal::Malformed)?;
    let (src, dst) = (ip.src_addr, ip.dst_addr);
    let (src_ip, dst_ip) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
    let payload = packet.payload();
    let tuple = |protocol, src_port, dst_port| FiveTuple { protocol, src: src.octets(), src_port, dst: dst.octets(), dst_port };
    match ip.next_header {
        IpProtocol::Tcp => {
            let segment = TcpPacket::new_checked(payload).map_err(|_| Refusal::Malformed)?;
            let repr = TcpRepr::parse(&segment, &src_ip, &dst_ip, &checksums).map_err(|_| Refusal::Malformed)?;
            let flags = TcpFlags {
                syn: repr.control == TcpControl::Syn,
                ack: repr.ack_number.is_some(),
                fin: repr.control == TcpControl::Fin,
                rst: repr.control == TcpControl::Rst,
            };
            Ok(Ip { tuple: tuple(Protocol::Tcp, repr.src_port, repr.dst_port), kind: Kind::Tcp(flags) })
        }
        IpProtocol::Udp => {
            let datagram = UdpPacket::new_checked(payload).map_err(|_| Refusal::Malformed)?;
            let repr = UdpRepr::parse(&datagram, &src_ip, &dst_ip, &checksums).map_err(|_| Refusal::Malformed)?;
            Ok(Ip { tuple: tuple(Protocol::Udp, repr.src_port, repr.dst_port), kind: Kind::Udp })
        }
        IpProtocol::Icmp => {
            let message = Icmpv4Packet::new_checked(payload).map_err(|_| Refusal::Malformed)?;
            if !message.verify_checksum() {
                return Err(Refusal::Malformed);
            }
            let kind = match (message.msg_type(), message.msg_code()) {
                (Icmpv4Message::EchoRequest, 0) => Kind::EchoRequest,
                (Icmpv4Message::EchoReply, 0) => Kind::EchoReply,
                // Errors (unreachable, time exceeded) and the rest: not matched to flows yet.
                _ => return Err(Refusal::Unsupported(Some(tuple(Protocol::Icmp, 0, 0)))),
            };
            let ident = message.echo_ident();
            Ok(Ip { tuple: tuple(Protocol::Icmp, ident, ident), kind })
        }
        _ => Err(Refusal::Unsupported(None)),
    }
}
