//! Connection tracking: the table of open flows, their states and their timeouts.
//!
//! A flow is keyed by the program it is charged to and its 5-tuple seen from the machine
//! (local address and port, remote address and port), so both directions of one connection
//! find the same entry and one program's flows are invisible to another's packets. Each entry
//! remembers which direction opened it: packets from the opener's side are the *originator's*,
//! the others are replies.
//!
//! TCP follows the handshake and teardown from the flags alone (no sequence-window checks,
//! yet): `SynSent` → `SynReceived` → `Established` → `FinWait` (one FIN) → `Closing` (both
//! FINs) → `TimeWait` (the last ACK); a RST in any state removes the flow (`Closed` is the
//! absence of an entry). A packet that does not fit the state is `Invalid` and leaves the
//! entry as it was. UDP and ICMP echo flows only have an idle timeout; an echo flow passes
//! requests from the originator and replies from the other side, nothing else.
//!
//! # Invariants
//! - `len() <= capacity`: [`Table::room`] says so and [`Table::insert`] refuses past it. Nothing is ever evicted to make
//!   room; only expired entries are reclaimed ([`Table::reclaim`]).
//! - `per_program[p]` is exactly the number of entries whose key names `p`, and absent when 0.
//! - `earliest` is at or before the expiry of every entry, so a reclaim before it is skipped.
//!
//! All three are kept by private fields and the four mutating methods.

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::packet::{FiveTuple, Kind, TcpFlags};
use crate::rule::{Direction, Protocol};
use crate::time::{Duration, Instant};
use crate::{Full, ProgramId};

/// Which end of a connection sent a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The side whose packet opened the flow.
    Originator,
    /// The other side.
    Responder,
}

/// The TCP states the firewall follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcpState {
    /// The originator's SYN passed; waiting for the SYN-ACK.
    SynSent,
    /// The responder's SYN-ACK passed; waiting for the originator's ACK.
    SynReceived,
    /// The handshake is complete.
    Established,
    /// `first` sent a FIN; the other side may still send data.
    FinWait {
        /// Who closed first.
        first: Side,
    },
    /// Both sides sent a FIN; waiting for `first` to acknowledge the second one.
    Closing {
        /// Who closed first (and so sends the last ACK).
        first: Side,
    },
    /// The last ACK passed; stray retransmissions still pass until the timeout, and a new
    /// SYN from the originator reopens the connection (through the rules again).
    TimeWait,
}

/// A tracked flow's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowState {
    /// A TCP connection.
    Tcp(TcpState),
    /// A UDP flow.
    Udp,
    /// An ICMP echo exchange (one identifier).
    IcmpEcho,
}

/// How long a flow lives without a packet, per state. A flow whose last accepted packet was
/// at `t` is alive while `now < t + timeout` and gone from `now == t + timeout` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timeouts {
    /// After the SYN (Linux: 120 s; we give a handshake 30 s).
    pub syn_sent: Duration,
    /// After the SYN-ACK.
    pub syn_received: Duration,
    /// An established connection's idle time (RFC 5382 asks at least 2 h 4 min).
    pub established: Duration,
    /// One FIN seen.
    pub fin_wait: Duration,
    /// Both FINs seen, the last ACK not yet.
    pub closing: Duration,
    /// After the last ACK (2 MSL).
    pub time_wait: Duration,
    /// A UDP flow's idle time.
    pub udp: Duration,
    /// An ICMP echo exchange's idle time.
    pub icmp: Duration,
}

impl Timeouts {
    /// The defaults: 30 s, 30 s, 7,440 s, 120 s, 60 s, 120 s, 60 s, 30 s.
    pub const DEFAULT: Timeouts = Timeouts {
        syn_sent: Duration::from_secs(30),
        syn_received: Duration::from_secs(30),
        established: Duration::from_secs(7_440),
        fin_wait: Duration::from_secs(120),
        closing: Duration::from_secs(60),
        time_wait: Duration::from_secs(120),
        udp: Duration::from_secs(60),
        icmp: Duration::from_secs(30),
    };

    /// The idle timeout of a flow in `state`.
    pub const fn of(&self, state: FlowState) -> Duration {
        match state {
            FlowState::Tcp(TcpState::SynSent) => self.syn_sent,
            FlowState::Tcp(TcpState::SynReceived) => self.syn_received,
            FlowState::Tcp(TcpState::Established) => self.established,
            FlowState::Tcp(TcpState::FinWait { .. }) => self.fin_wait,
            FlowState::Tcp(TcpState::Closing { .. }) => self.closing,
            FlowState::Tcp(TcpState::TimeWait) => self.time_wait,
            FlowState::Udp => self.udp,
            FlowState::IcmpEcho => self.icmp,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts::DEFAULT
    }
}

/// The table's key: a program and its flow, seen from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    program: ProgramId,
    protocol: Protocol,
    local: [u8; 4],
    local_port: u16,
    remote: [u8; 4],
    remote_port: u16,
}

impl Key {
    /// The key of a packet going `direction` for `program`.
    pub(crate) const fn new(program: ProgramId, direction: Direction, tuple: &FiveTuple) -> Key {
        let ((local, local_port), (remote, remote_port)) = local_remote(direction, tuple);
        Key { program, protocol: tuple.protocol, local, local_port, remote, remote_port }
    }
}

/// `((local address, local port), (remote address, remote port))` of a packet going `direction`.
pub(crate) const fn local_remote(direction: Direction, tuple: &FiveTuple) -> (([u8; 4], u16), ([u8; 4], u16)) {
    match direction {
        Direction::Out => ((tuple.src, tuple.src_port), (tuple.dst, tuple.dst_port)),
        Direction::In => ((tuple.dst, tuple.dst_port), (tuple.src, tuple.src_port)),
    }
}

/// A tracked flow, as [`crate::Firewall::flow`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flow {
    /// The direction of the packet that opened it.
    pub opened: Direction,
    /// Its state now.
    pub state: FlowState,
    /// When its last accepted packet passed (the idle timeout runs from here).
    pub last_seen: Instant,
    /// The rule (index in the program's policy) that opened it.
    pub rule: usize,
}

impl Flow {
    /// A new flow opened by a packet of `kind` going `direction`, passed by `rule`.
    pub(crate) const fn open(direction: Direction, kind: Kind, now: Instant, rule: usize) -> Flow {
        let state = match kind {
            Kind::Tcp(_) => FlowState::Tcp(TcpState::SynSent),
            Kind::Udp => FlowState::Udp,
            Kind::EchoRequest | Kind::EchoReply => FlowState::IcmpEcho,
        };
        Flow { opened: direction, state, last_seen: now, rule }
    }

    /// When the flow expires if no packet comes.
    pub(crate) fn expiry(&self, timeouts: &Timeouts) -> Instant {
        self.last_seen + timeouts.of(self.state)
    }

    /// Whether the flow is gone at `now`.
    pub(crate) fn expired(&self, now: Instant, timeouts: &Timeouts) -> bool {
        now >= self.expiry(timeouts)
    }
}

/// What a packet does to the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// It passes; the flow moves to this state.
    Pass(FlowState),
    /// It passes and ends the flow (a RST).
    Teardown,
    /// It does not fit the flow's state: drop, leave the flow alone.
    Invalid,
    /// A SYN from the originator after the connection closed: forget the old flow and treat the
    /// packet as an opener.
    Reopen,
}

/// The transition a packet of `kind` from `side` makes in `state`.
pub(crate) const fn step(state: FlowState, side: Side, kind: Kind) -> Step {
    match (state, kind) {
        (FlowState::Tcp(tcp), Kind::Tcp(flags)) => tcp_step(tcp, side, flags),
        (FlowState::Udp, Kind::Udp) => Step::Pass(FlowState::Udp),
        (FlowState::IcmpEcho, Kind::EchoRequest) if matches!(side, Side::Originator) => Step::Pass(FlowState::IcmpEcho),
        (FlowState::IcmpEcho, Kind::EchoReply) if matches!(side, Side::Responder) => Step::Pass(FlowState::IcmpEcho),
        _ => Step::Invalid,
    }
}

/// `Step::Pass` into TCP `state`.
const fn next(state: TcpState) -> Step {
    Step::Pass(FlowState::Tcp(state))
}

const fn tcp_step(state: TcpState, side: Side, flags: TcpFlags) -> Step {
    use TcpState::{Closing, Established, FinWait, SynReceived, SynSent, TimeWait};
    let originator = matches!(side, Side::Originator);
    if flags.rst {
        return Step::Teardown;
    }
    match state {
        SynSent => match (originator, flags.syn, flags.ack) {
            // The originator's SYN again (a retransmission).
            (true, true, false) => next(SynSent),
            (false, true, true) => next(SynReceived),
            _ => Step::Invalid,
        },
        SynReceived => match (originator, flags.syn, flags.ack) {
            // Retransmissions of either half of the handshake.
            (true, true, false) | (false, true, true) => next(SynReceived),
            (true, false, true) if flags.fin => next(FinWait { first: Side::Originator }),
            (true, false, true) => next(Established),
            _ => Step::Invalid,
        },
        Established if flags.syn => Step::Invalid,
        Established if flags.fin => next(FinWait { first: side }),
        Established => next(Established),
        FinWait { .. } if flags.syn => Step::Invalid,
        FinWait { first } if flags.fin && !same(first, side) => next(Closing { first }),
        FinWait { first } => next(FinWait { first }),
        Closing { .. } if flags.syn => Step::Invalid,
        Closing { first } if flags.ack && !flags.fin && same(first, side) => next(TimeWait),
        Closing { first } => next(Closing { first }),
        TimeWait if flags.syn && !flags.ack && originator => Step::Reopen,
        TimeWait if flags.syn => Step::Invalid,
        TimeWait => next(TimeWait),
    }
}

const fn same(a: Side, b: Side) -> bool {
    matches!((a, b), (Side::Originator, Side::Originator) | (Side::Responder, Side::Responder))
}

/// The tracking table: at most `capacity` flows, each charged to a program.
pub(crate) struct Table {
    flows: HashMap<Key, Flow, foldhash::fast::FixedState>,
    per_program: HashMap<ProgramId, u32, foldhash::fast::FixedState>,
    capacity: usize,
    earliest: Instant,
}

impl Table {
    /// An empty table for `capacity` flows, its memory taken now; `seed` keys the hash.
    pub(crate) fn new(capacity: usize, seed: u64) -> Table {
        let hasher = foldhash::fast::FixedState::with_seed(seed);
        Table {
            flows: HashMap::with_capacity_and_hasher(capacity, hasher.clone()),
            per_program: HashMap::with_hasher(hasher.clone()),
            capacity,
            earliest: Instant::ZERO,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// How many flows `program` has.
    pub(crate) fn count(&self, program: ProgramId) -> u32 {
        self.per_program.get(&program).copied().unwrap_or(0)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Flow> {
        self.flows.get(key).copied()
    }

    /// Replaces the flow at `key` (which must be there) with `flow`.
    pub(crate) fn update(&mut self, key: &Key, flow: Flow, timeouts: &Timeouts) {
        if let Some(entry) = self.flows.get_mut(key) {
            *entry = flow;
            self.earliest = self.earliest.min(flow.expiry(timeouts));
        }
    }

    /// Whether a new flow for `program` (allowed `max_flows`) fits; expired flows are reclaimed
    /// first if the table or the program is full. Nothing live is ever evicted.
    pub(crate) fn room(&mut self, program: ProgramId, max_flows: u32, now: Instant, timeouts: &Timeouts) -> Result<(), Full> {
        if self.flows.len() >= self.capacity || self.count(program) >= max_flows {
            self.reclaim(now, timeouts);
        }
        if self.flows.len() >= self.capacity {
            return Err(Full::Global);
        }
        if self.count(program) >= max_flows {
            return Err(Full::Program);
        }
        Ok(())
    }

    /// Adds a new flow; the caller checked [`Table::room`] just before. Refuses (does nothing)
    /// past the capacity all the same, so the bound never depends on the caller.
    pub(crate) fn insert(&mut self, key: Key, flow: Flow, timeouts: &Timeouts) {
        if self.flows.len() >= self.capacity && !self.flows.contains_key(&key) {
            return;
        }
        if self.flows.insert(key, flow).is_none() {
            let count = self.per_program.entry(key.program).or_insert(0);
            *count = count.saturating_add(1);
        }
        self.earliest = self.earliest.min(flow.expiry(timeouts));
    }

    pub(crate) fn remove(&mut self, key: &Key) {
        if self.flows.remove(key).is_some() {
            self.uncount(key.program);
        }
    }

    fn uncount(&mut self, program: ProgramId) {
        if let Some(count) = self.per_program.get_mut(&program) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_program.remove(&program);
            }
        }
    }

    /// Removes every flow of `program`.
    pub(crate) fn remove_program(&mut self, program: ProgramId) {
        self.flows.retain(|key, _| key.program != program);
        self.per_program.remove(&program);
    }

    /// Removes every flow expired at `now`; returns how many. Skipped (returns 0 at once) while
    /// `now` is before the earliest expiry any flow could have, so a flood of openers against a
    /// full table of live flows costs one scan per expiry, not one per packet.
    pub(crate) fn reclaim(&mut self, now: Instant, timeouts: &Timeouts) -> usize {
        if now < self.earliest {
            return 0;
        }
        let before = self.flows.len();
        let mut earliest = Instant::from_micros(u64::MAX);
        let per_program = &mut self.per_program;
        self.flows.retain(|key, flow| {
            if flow.expired(now, timeouts) {
                if let Some(count) = per_program.get_mut(&key.program) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        per_program.remove(&key.program);
                    }
                }
                false
            } else {
                earliest = earliest.min(flow.expiry(timeouts));
                true
            }
        });
        self.earliest = earliest;
        before.saturating_sub(self.flows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(syn: bool, ack: bool, fin: bool, rst: bool) -> Kind {
        Kind::Tcp(TcpFlags { syn, ack, fin, rst })
    }

    #[test]
    fn tcp_transitions_table() {
        use Side::{Originator as O, Responder as R};
        use TcpState::*;
        let syn = flags(true, false, false, false);
        let syn_ack = flags(true, true, false, false);
        let ack = flags(false, true, false, false);
        let fin = flags(false, true, true, false);
        let rst = flags(false, false, false, true);
        let tcp = |s| Step::Pass(FlowState::Tcp(s));
        let cases = [
            (SynSent, O, syn, tcp(SynSent)),
            (SynSent, R, syn_ack, tcp(SynReceived)),
            (SynSent, R, ack, Step::Invalid),
            (SynSent, O, ack, Step::Invalid),
            (SynSent, R, syn, Step::Invalid),
            (SynSent, R, rst, Step::Teardown),
            (SynReceived, O, ack, tcp(Established)),
            (SynReceived, O, fin, tcp(FinWait { first: Side::Originator })),
            (SynReceived, R, syn_ack, tcp(SynReceived)),
            (SynReceived, R, ack, Step::Invalid),
            (Established, O, ack, tcp(Established)),
            (Established, R, ack, tcp(Established)),
            (Established, R, syn, Step::Invalid),
            (Established, R, fin, tcp(FinWait { first: Side::Responder })),
            (Established, O, rst, Step::Teardown),
            (FinWait { first: O }, O, fin, tcp(FinWait { first: O })),
            (FinWait { first: O }, R, ack, tcp(FinWait { first: O })),
            (FinWait { first: O }, R, fin, tcp(Closing { first: O })),
            (FinWait { first: O }, R, syn, Step::Invalid),
            (Closing { first: O }, R, ack, tcp(Closing { first: O })),
            (Closing { first: O }, O, ack, tcp(TimeWait)),
            (Closing { first: R }, R, ack, tcp(TimeWait)),
            (Closing { first: O }, O, fin, tcp(Closing { first: O })),
            (TimeWait, O, ack, tcp(TimeWait)),
            (TimeWait, O, syn, Step::Reopen),
            (TimeWait, R, syn, Step::Invalid),
            (TimeWait, R, rst, Step::Teardown),
        ];
        for (state, side, kind, want) in cases {
            assert_eq!(step(FlowState::Tcp(state), side, kind), want, "{state:?} {side:?} {kind:?}");
        }
    }

    #[test]
    fn echo_flows_pass_requests_one_way_and_replies_the_other() {
        use Side::{Originator as O, Responder as R};
        let echo = FlowState::IcmpEcho;
        assert_eq!(step(echo, O, Kind::EchoRequest), Step::Pass(echo));
        assert_eq!(step(echo, R, Kind::EchoReply), Step::Pass(echo));
        assert_eq!(step(echo, R, Kind::EchoRequest), Step::Invalid);
        assert_eq!(step(echo, O, Kind::EchoReply), Step::Invalid);
        assert_eq!(step(FlowState::Udp, R, Kind::Udp), Step::Pass(FlowState::Udp));
    }
}
