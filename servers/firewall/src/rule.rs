//! Rules: what one program may send and receive, as data the boot manifest can carry.
//!
//! A [`Policy`] is one program's ordered rule list and its cap on tracked connections. Rules
//! are matched only against a flow's *opener* (a TCP SYN, any UDP datagram that is not part of
//! a tracked flow, an ICMP echo request); everything after that is decided by connection
//! tracking. The first rule that matches decides; when none matches the packet is dropped, so
//! an empty policy drops everything in both directions (default deny is the absence of a rule).
//!
//! Every type here is serde, so `system.toml` can compile rules into the manifest blob with
//! postcard. The two types with an invariant, [`PortRange`] and [`Cidr`], keep it through
//! deserialisation too (`serde(try_from)`), so a hostile or stale blob cannot smuggle in an
//! inverted range or a prefix longer than 32.

use serde::{Deserialize, Serialize};

/// How many rules one program's policy holds at most.
pub const MAX_RULES: usize = 32;

/// Which way a frame goes, seen from the machine: `In` arrived from the wire, `Out` is leaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Arrived from the network: the source is the remote side.
    In,
    /// Leaving for the network: the source is the local side (the program).
    Out,
}

impl Direction {
    /// The other direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::In => Direction::Out,
            Direction::Out => Direction::In,
        }
    }
}

/// The transport protocols the firewall understands (over IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP, tracked through its connection states.
    Tcp,
    /// UDP, tracked as flows with an idle timeout.
    Udp,
    /// ICMP echo (ping): a rule opens request/reply exchanges; no other ICMP type passes yet.
    Icmp,
}

/// What a matching rule does with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Let it through and track the flow it opens, so the replies pass too.
    Pass,
    /// Discard it silently.
    Drop,
    /// Discard it and tell the sender (the server answers with a TCP RST or an ICMP
    /// port-unreachable inbound, a refused connection to the program outbound).
    Reject,
}

/// Why a [`PortRange`] or [`Cidr`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// `first > last`.
    InvertedRange,
    /// A prefix longer than 32 bits.
    PrefixTooLong,
    /// Address bits set past the prefix (`10.0.0.1/8`): almost always a typo for a host rule.
    HostBitsSet,
}

impl core::fmt::Display for RuleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RuleError::InvertedRange => "port range ends before it starts",
            RuleError::PrefixTooLong => "IPv4 prefix longer than 32 bits",
            RuleError::HostBitsSet => "address has bits set past its prefix",
        })
    }
}

/// An inclusive range of ports.
///
/// # Invariants
/// `first <= last`. Private fields; [`PortRange::new`] (and deserialisation, through it) is the
/// only way to build one from two ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "(u16, u16)", into = "(u16, u16)")]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// Every port, 0 to 65535.
    pub const ANY: PortRange = PortRange { first: 0, last: u16::MAX };

    /// `first..=last`, refused if inverted.
    pub const fn new(first: u16, last: u16) -> Result<PortRange, RuleError> {
        if first > last {
            return Err(RuleError::InvertedRange);
        }
        Ok(PortRange { first, last })
    }

    /// Exactly `port`.
    pub const fn single(port: u16) -> PortRange {
        PortRange { first: port, last: port }
    }

    /// Whether `port` is in the range.
    pub const fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// The first port of the range.
    pub const fn first(self) -> u16 {
        self.first
    }

    /// The last port of the range.
    pub const fn last(self) -> u16 {
        self.last
    }
}

impl TryFrom<(u16, u16)> for PortRange {
    type Error = RuleError;

    fn try_from((first, last): (u16, u16)) -> Result<PortRange, RuleError> {
        PortRange::new(first, last)
    }
}

impl From<PortRange> for (u16, u16) {
    fn from(range: PortRange) -> (u16, u16) {
        (range.first, range.last)
    }
}

/// An IPv4 network: an address and a prefix length (`0.0.0.0/0` is every address).
///
/// # Invariants
/// `prefix <= 32`, and no address bit past the prefix is set. Private fields;
/// [`Cidr::new`] (and deserialisation, through it) is the only checked constructor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "([u8; 4], u8)", into = "([u8; 4], u8)")]
pub struct Cidr {
    addr: [u8; 4],
    prefix: u8,
}

impl Cidr {
    /// Every IPv4 address.
    pub const ANY: Cidr = Cidr { addr: [0; 4], prefix: 0 };

    /// `addr/prefix`, refused if the prefix is too long or host bits are set.
    pub const fn new(addr: [u8; 4], prefix: u8) -> Result<Cidr, RuleError> {
        if prefix > 32 {
            return Err(RuleError::PrefixTooLong);
        }
        if u32::from_be_bytes(addr) & !mask(prefix) != 0 {
            return Err(RuleError::HostBitsSet);
        }
        Ok(Cidr { addr, prefix })
    }

    /// Exactly one address (`/32`).
    pub const fn host(addr: [u8; 4]) -> Cidr {
        Cidr { addr, prefix: 32 }
    }

    /// Whether `addr` is in this network.
    pub const fn contains(self, addr: [u8; 4]) -> bool {
        u32::from_be_bytes(addr) & mask(self.prefix) == u32::from_be_bytes(self.addr)
    }

    /// The network address.
    pub const fn addr(self) -> [u8; 4] {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub const fn prefix(self) -> u8 {
        self.prefix
    }
}

/// The netmask of a prefix length (`prefix <= 32`; longer ones are treated as 32).
const fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p as u32),
    }
}

impl TryFrom<([u8; 4], u8)> for Cidr {
    type Error = RuleError;

    fn try_from((addr, prefix): ([u8; 4], u8)) -> Result<Cidr, RuleError> {
        Cidr::new(addr, prefix)
    }
}

impl From<Cidr> for ([u8; 4], u8) {
    fn from(cidr: Cidr) -> ([u8; 4], u8) {
        (cidr.addr, cidr.prefix)
    }
}

/// A limit on the new connections one rule opens: at most `per_second` openers admitted in each
/// whole second of the firewall's clock (a fixed window; see the `window` module). Openers past
/// it get [`crate::Reason::RateLimited`]; packets of flows already open are not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateLimit {
    /// New connections admitted per clock second; 0 admits none.
    pub per_second: u32,
}

/// One rule. It matches an opener going `direction`, of `protocol`, whose local port is in
/// `local_ports` and whose remote side is in `remote` and `remote_ports`. For ICMP echo the
/// ports are not consulted (an echo has none); only direction and remote address are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// `In`: the remote side opens (a server's listening port). `Out`: the program opens.
    pub direction: Direction,
    /// The transport protocol.
    pub protocol: Protocol,
    /// The program's own port (destination inbound, source outbound).
    pub local_ports: PortRange,
    /// The other side's network.
    pub remote: Cidr,
    /// The other side's port.
    pub remote_ports: PortRange,
    /// What to do with a match.
    pub action: Action,
    /// Record every match in the drop log (passes as well as drops: the opening of a flow).
    pub log: bool,
    /// An optional cap on new connections per second, for `Pass` rules.
    pub rate_limit: Option<RateLimit>,
}

impl Rule {
    /// A rule matching every opener of `protocol` going `direction`, doing `action`, unlogged
    /// and unlimited; narrow it with the builder methods.
    pub const fn new(direction: Direction, protocol: Protocol, action: Action) -> Rule {
        Rule {
            direction,
            protocol,
            local_ports: PortRange::ANY,
            remote: Cidr::ANY,
            remote_ports: PortRange::ANY,
            action,
            log: false,
            rate_limit: None,
        }
    }

    /// Only local ports in `ports`.
    pub const fn local_ports(mut self, ports: PortRange) -> Rule {
        self.local_ports = ports;
        self
    }

    /// Only remote addresses in `remote`.
    pub const fn remote(mut self, remote: Cidr) -> Rule {
        self.remote = remote;
        self
    }

    /// Only remote ports in `ports`.
    pub const fn remote_ports(mut self, ports: PortRange) -> Rule {
        self.remote_ports = ports;
        self
    }

    /// Record matches in the drop log.
    pub const fn logged(mut self) -> Rule {
        self.log = true;
        self
    }

    /// At most `per_second` new connections per clock second.
    pub const fn rate_limited(mut self, per_second: u32) -> Rule {
        self.rate_limit = Some(RateLimit { per_second });
        self
    }

    /// Whether this rule matches an opener going `direction` of `protocol`, between local port
    /// `local_port` and `remote:remote_port` (ports ignored for ICMP).
    pub fn matches(&self, direction: Direction, protocol: Protocol, local_port: u16, remote: [u8; 4], remote_port: u16) -> bool {
        self.direction == direction
            && self.protocol == protocol
            && self.remote.contains(remote)
            && (protocol == Protocol::Icmp || (self.local_ports.contains(local_port) && self.remote_ports.contains(remote_port)))
    }
}

/// One program's rules, in order (first match wins), and how many flows it may have tracked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The rules, first match wins; no match drops.
    pub rules: heapless::Vec<Rule, MAX_RULES>,
    /// The most connections this program may have in the tracking table at once; a new flow
    /// past it is refused with [`crate::Reason::TableFull`] (`Full::Program`).
    pub max_flows: u32,
}

impl Policy {
    /// An empty policy (drops everything) allowing `max_flows` tracked flows once rules exist.
    pub const fn new(max_flows: u32) -> Policy {
        Policy { rules: heapless::Vec::new(), max_flows }
    }

    /// Appends `rule` after the existing ones; gives it back if the policy already holds
    /// [`MAX_RULES`].
    pub fn push(&mut self, rule: Rule) -> Result<(), Rule> {
        self.rules.push(rule)
    }

    /// Builder form of [`Policy::push`]; panics past [`MAX_RULES`] (for tests and consts of
    /// known size, not for rules from outside).
    #[must_use]
    pub fn with(mut self, rule: Rule) -> Policy {
        assert!(self.rules.push(rule).is_ok(), "more than MAX_RULES rules");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains_and_edges() {
        let net = Cidr::new([10, 1, 0, 0], 16).unwrap();
        assert!(net.contains([10, 1, 255, 255]));
        assert!(!net.contains([10, 2, 0, 0]));
        assert!(Cidr::ANY.contains([255, 255, 255, 255]));
        assert!(Cidr::host([1, 2, 3, 4]).contains([1, 2, 3, 4]));
        assert!(!Cidr::host([1, 2, 3, 4]).contains([1, 2, 3, 5]));
        assert_eq!(Cidr::new([10, 0, 0, 1], 8), Err(RuleError::HostBitsSet));
        assert_eq!(Cidr::new([10, 0, 0, 0], 33), Err(RuleError::PrefixTooLong));
    }

    #[test]
    fn port_range_is_inclusive_and_checked() {
        let range = PortRange::new(1000, 1010).unwrap();
        assert!(range.contains(1000) && range.contains(1010));
        assert!(!range.contains(999) && !range.contains(1011));
        assert_eq!(PortRange::new(2, 1), Err(RuleError::InvertedRange));
    }
}
