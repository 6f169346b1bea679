//! Property tests: no bytes make the firewall panic or pass what it should not, and the table's
//! bounds and accounting hold over random traffic.

mod common;

use common::*;
use firewall::Direction::{In, Out};
use firewall::{Action, Config, Direction, Firewall, Instant, Policy, ProgramId, Protocol, Reason, ReasonKind, Rule, Timeouts};
use proptest::prelude::*;

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(In), Just(Out)]
}

/// A policy that passes every opener of every protocol, both ways.
fn permissive() -> Policy {
    let mut policy = Policy::new(1_000);
    for direction in [In, Out] {
        for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Icmp] {
            policy = policy.with(Rule::new(direction, protocol, Action::Pass));
        }
    }
    policy
}

/// Well-formed frames of every kind the firewall parses, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        tcp((REMOTE, 5000), (LOCAL, 80), SYN),
        tcp_with((LOCAL, 80), (REMOTE, 5000), ACK, b"payload"),
        udp((REMOTE, 53), (LOCAL, 40_000), b"an answer"),
        echo_request(REMOTE, LOCAL, 3),
        echo_reply(LOCAL, REMOTE, 3),
        port_unreachable(REMOTE, LOCAL),
        arp(REMOTE, LOCAL),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(Mutation::Extend),
    ]
}

fn mutate(frame: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::Set(at, byte) if !frame.is_empty() => {
            let len = frame.len();
            frame[at % len] = *byte;
        }
        Mutation::Set(..) => {}
        Mutation::Truncate(at) => frame.truncate(at % (frame.len() + 1)),
        Mutation::Extend(bytes) => frame.extend_from_slice(bytes),
    }
}

/// Every counter adds up to the number of frames checked.
fn counted_once(firewall: &Firewall, checked: u64) {
    let counters = firewall.counters();
    let by_reason: u64 = ReasonKind::ALL.iter().map(|kind| counters.reason(*kind).packets).sum();
    let by_action: u64 = [Action::Pass, Action::Drop, Action::Reject].iter().map(|action| counters.action(*action).packets).sum();
    assert_eq!((by_reason, by_action), (checked, checked));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Random bytes never panic, and with no policy nothing but ARP can pass.
    #[test]
    fn never_panics_on_random_bytes(frames in proptest::collection::vec((direction(), proptest::collection::vec(any::<u8>(), 0..128)), 1..8)) {
        let mut firewall = Firewall::new(Config::default());
        for (direction, frame) in &frames {
            let verdict = firewall.check(Instant::ZERO, *direction, A, frame);
            prop_assert!(!verdict.passes() || verdict.reason == Reason::Arp, "{verdict:?}");
        }
        counted_once(&firewall, frames.len() as u64);
    }

    /// Mutated real frames never panic, under a policy that passes anything well-formed.
    #[test]
    fn never_panics_on_mutated_frames(seed in 0usize..7, mutations in proptest::collection::vec(mutation(), 1..6), direction in direction()) {
        let mut frame = seeds()[seed].clone();
        for mutation in &mutations {
            mutate(&mut frame, mutation);
        }
        let mut firewall = Firewall::new(Config::default());
        firewall.set_policy(A, permissive());
        let verdict = firewall.check(Instant::ZERO, direction, A, &frame);
        // Whatever it was, it is counted, and a pass is a rule's, a flow's or ARP's.
        prop_assert!(matches!(verdict.reason, Reason::Rule(_) | Reason::Arp | Reason::Invalid | Reason::Malformed | Reason::Unsupported | Reason::NoRule), "{verdict:?}");
        counted_once(&firewall, 1);
    }
}

/// One step of random traffic between two programs and three remote ports.
#[derive(Clone, Debug)]
struct Packet {
    advance: u64,
    program: ProgramId,
    direction: Direction,
    kind: u8,
    port: u16,
}

fn packet() -> impl Strategy<Value = Packet> {
    (0u64..3_000_000, prop_oneof![Just(A), Just(B), Just(ProgramId(3))], direction(), 0u8..8, 1u16..4)
        .prop_map(|(advance, program, direction, kind, port)| Packet { advance, program, direction, kind, port })
}

fn frame_of(packet: &Packet) -> Vec<u8> {
    let local = (LOCAL, 40_000);
    let remote = (REMOTE, packet.port);
    let (src, dst) = if packet.direction == Out { (local, remote) } else { (remote, local) };
    match packet.kind {
        0 => tcp(src, dst, SYN),
        1 => tcp(src, dst, SYN_ACK),
        2 => tcp(src, dst, ACK),
        3 => tcp(src, dst, FIN),
        4 => tcp(src, dst, RST),
        5 => udp(src, dst, b"d"),
        6 => echo_request(src.0, dst.0, packet.port),
        _ => echo_reply(src.0, dst.0, packet.port),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Over random traffic: the table and each program's share stay within their bounds and
    /// add up; a tracked pass had a live flow before it; a rule pass leaves one after it; and a
    /// program with no policy (3) or an empty one (B) never gets anything through.
    #[test]
    fn bounds_and_accounting_hold_over_random_traffic(packets in proptest::collection::vec(packet(), 1..200)) {
        let timeouts = Timeouts {
            syn_sent: firewall::Duration::from_secs(2),
            established: firewall::Duration::from_secs(4),
            udp: firewall::Duration::from_secs(1),
            icmp: firewall::Duration::from_secs(1),
            ..Timeouts::DEFAULT
        };
        let mut firewall = Firewall::new(Config { max_flows: 4, timeouts, ..Config::default() });
        let mut policy = permissive();
        policy.max_flows = 3;
        firewall.set_policy(A, policy);
        firewall.set_policy(B, Policy::new(3));
        let mut now = 0u64;
        for (index, packet) in packets.iter().enumerate() {
            now += packet.advance;
            let at = Instant::from_micros(now);
            let frame = frame_of(packet);
            let tuple = tuple_of(packet);
            let before = firewall.flow(at, packet.program, packet.direction, &tuple);
            let verdict = firewall.check(at, packet.direction, packet.program, &frame);
            let after = firewall.flow(at, packet.program, packet.direction, &tuple);
            match verdict.reason {
                Reason::Tracked => prop_assert!(before.is_some(), "step {index}: tracked without a flow"),
                Reason::Rule(_) if verdict.passes() => prop_assert!(after.is_some(), "step {index}: a pass opened no flow"),
                _ => {}
            }
            if packet.program != A {
                prop_assert!(!verdict.passes(), "step {index}: {verdict:?} for {:?}", packet.program);
            }
            prop_assert!(firewall.flows() <= 4);
            prop_assert!(firewall.flows_of(A) <= 3);
            prop_assert_eq!(firewall.flows_of(B) + firewall.flows_of(ProgramId(3)), 0);
            prop_assert_eq!(firewall.flows_of(A) as usize, firewall.flows());
        }
        counted_once(&firewall, packets.len() as u64);
    }
}

fn tuple_of(packet: &Packet) -> firewall::FiveTuple {
    let local = (LOCAL, 40_000);
    let remote = (REMOTE, packet.port);
    let (src, dst) = if packet.direction == Out { (local, remote) } else { (remote, local) };
    match packet.kind {
        0..=4 => tuple(Protocol::Tcp, src, dst),
        5 => tuple(Protocol::Udp, src, dst),
        _ => tuple(Protocol::Icmp, (src.0, packet.port), (dst.0, packet.port)),
    }
}
