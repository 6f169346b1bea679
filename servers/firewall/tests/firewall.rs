//! The firewall's behaviour through its public API, on real frames and a fake clock.

mod common;

use common::*;
use firewall::Direction::{In, Out};
use firewall::{
    Action, ArpDecision, Cidr, Config, Direction, Duration, Firewall, Flow, FlowState, Full, Instant, Policy, PortRange,
    Protocol, Reason, ReasonKind, Rule, Side, TcpState, Timeouts, Verdict, LOG_CAPACITY,
};
use smoltcp::wire::{EthernetProtocol, IpProtocol};

const fn pass(reason: Reason) -> Verdict {
    Verdict { action: Action::Pass, reason }
}

const fn drop(reason: Reason) -> Verdict {
    Verdict { action: Action::Drop, reason }
}

const TRACKED: Verdict = pass(Reason::Tracked);
const INVALID: Verdict = drop(Reason::Invalid);
const NO_RULE: Verdict = drop(Reason::NoRule);

const S: u64 = 1_000_000;

/// The local client port and a remote server port used throughout.
const CLIENT: ([u8; 4], u16) = (LOCAL, 40_000);
const SERVER: ([u8; 4], u16) = (REMOTE, 80);

fn firewall() -> Firewall {
    Firewall::new(Config::default())
}

fn with_policy(policy: Policy) -> Firewall {
    let mut firewall = firewall();
    firewall.set_policy(A, policy);
    firewall
}

fn on(program: firewall::ProgramId, at: u64, direction: Direction, frame: &[u8], want: Verdict) -> Step<'_> {
    Step { at, direction, program, frame, want }
}

fn step(at: u64, direction: Direction, frame: &[u8], want: Verdict) -> Step<'_> {
    Step { at, direction, program: A, frame, want }
}

/// Outbound TCP to anywhere passes (rule 0).
fn tcp_client() -> Policy {
    Policy::new(16).with(Rule::new(Out, Protocol::Tcp, Action::Pass))
}

fn tcp_state(firewall: &Firewall, at: u64) -> Option<FlowState> {
    firewall.flow(Instant::from_micros(at), A, Out, &tuple(Protocol::Tcp, CLIENT, SERVER)).map(|flow| flow.state)
}

#[test]
fn an_empty_rule_set_drops_everything() {
    let frames = [
        (Out, tcp(CLIENT, SERVER, SYN), NO_RULE),
        (In, tcp(SERVER, CLIENT, SYN), NO_RULE),
        (Out, udp(CLIENT, (REMOTE, 53), b"q"), NO_RULE),
        (In, udp((REMOTE, 53), CLIENT, b"q"), NO_RULE),
        (Out, echo_request(LOCAL, REMOTE, 7), NO_RULE),
        (In, echo_request(REMOTE, LOCAL, 7), NO_RULE),
        (In, tcp(SERVER, CLIENT, ACK), INVALID),
        (In, echo_reply(REMOTE, LOCAL, 7), INVALID),
    ];
    // No policy at all, an empty policy, and another program's permissive policy: all alike.
    for setup in 0..3 {
        let mut firewall = firewall();
        match setup {
            1 => firewall.set_policy(A, Policy::new(16)),
            2 => firewall.set_policy(B, Policy::new(16).with(Rule::new(Out, Protocol::Tcp, Action::Pass))),
            _ => {}
        }
        for (direction, frame, want) in &frames {
            assert_eq!(verdict(&mut firewall, 0, *direction, A, frame), *want, "setup {setup}");
        }
        assert_eq!(firewall.flows(), 0);
        assert_eq!(firewall.counters().action(Action::Pass).packets, 0);
    }
}

#[test]
fn first_match_wins() {
    let mut firewall = with_policy(
        Policy::new(16)
            .with(Rule::new(Out, Protocol::Tcp, Action::Drop).remote(Cidr::new([192, 0, 2, 0], 24).unwrap()).remote_ports(PortRange::single(80)))
            .with(Rule::new(Out, Protocol::Tcp, Action::Reject).remote_ports(PortRange::new(80, 81).unwrap()))
            .with(Rule::new(Out, Protocol::Tcp, Action::Pass)),
    );
    let reject = Verdict { action: Action::Reject, reason: Reason::Rule(1) };
    check(
        &mut firewall,
        &[
            step(0, Out, &tcp(CLIENT, (REMOTE, 80), SYN), drop(Reason::Rule(0))),
            step(0, Out, &tcp(CLIENT, (OTHER, 80), SYN), reject),
            step(0, Out, &tcp(CLIENT, (REMOTE, 81), SYN), reject),
            step(0, Out, &tcp(CLIENT, (REMOTE, 443), SYN), pass(Reason::Rule(2))),
        ],
    );
    // The same rules in the other order: the pass rule shadows the rest.
    let mut firewall = with_policy(
        Policy::new(16)
            .with(Rule::new(Out, Protocol::Tcp, Action::Pass))
            .with(Rule::new(Out, Protocol::Tcp, Action::Drop).remote_ports(PortRange::single(80))),
    );
    check(&mut firewall, &[step(0, Out, &tcp(CLIENT, (REMOTE, 80), SYN), pass(Reason::Rule(0)))]);
}

#[test]
fn rules_match_direction_protocol_ports_and_remote_network() {
    let mut firewall = with_policy(
        Policy::new(16).with(
            Rule::new(In, Protocol::Tcp, Action::Pass)
                .local_ports(PortRange::new(8000, 8080).unwrap())
                .remote(Cidr::new([192, 0, 2, 0], 24).unwrap())
                .remote_ports(PortRange::new(1024, 65535).unwrap()),
        ),
    );
    check(
        &mut firewall,
        &[
            step(0, In, &tcp((REMOTE, 5000), (LOCAL, 8000), SYN), pass(Reason::Rule(0))),
            step(0, In, &tcp((REMOTE, 5001), (LOCAL, 8080), SYN), pass(Reason::Rule(0))),
            step(0, In, &tcp((REMOTE, 5002), (LOCAL, 8081), SYN), NO_RULE),
            step(0, In, &tcp((REMOTE, 1023), (LOCAL, 8000), SYN), NO_RULE),
            step(0, In, &tcp((OTHER, 5000), (LOCAL, 8000), SYN), NO_RULE),
            // Right ports, wrong direction and wrong protocol.
            step(0, Out, &tcp((LOCAL, 8000), (REMOTE, 5003), SYN), NO_RULE),
            step(0, In, &udp((REMOTE, 5000), (LOCAL, 8000), b"x"), NO_RULE),
        ],
    );
}

#[test]
fn reject_and_drop_are_different_verdicts() {
    let mut firewall = with_policy(
        Policy::new(16)
            .with(Rule::new(In, Protocol::Tcp, Action::Reject).local_ports(PortRange::single(23)))
            .with(Rule::new(In, Protocol::Tcp, Action::Drop).local_ports(PortRange::single(25)))
            .with(Rule::new(In, Protocol::Udp, Action::Reject)),
    );
    check(
        &mut firewall,
        &[
            step(0, In, &tcp((REMOTE, 5000), (LOCAL, 23), SYN), Verdict { action: Action::Reject, reason: Reason::Rule(0) }),
            step(0, In, &tcp((REMOTE, 5000), (LOCAL, 25), SYN), drop(Reason::Rule(1))),
            step(0, In, &udp((REMOTE, 5000), (LOCAL, 161), b"x"), Verdict { action: Action::Reject, reason: Reason::Rule(2) }),
        ],
    );
    assert!(!firewall.check(Instant::ZERO, In, A, &tcp((REMOTE, 5000), (LOCAL, 23), SYN)).passes());
    assert_eq!(firewall.flows(), 0, "drop and reject open no flow");
}

#[test]
fn tcp_client_connection_goes_through_every_state_and_closes() {
    let mut firewall = with_policy(tcp_client());
    let out = |flags| tcp(CLIENT, SERVER, flags);
    let back = |flags| tcp(SERVER, CLIENT, flags);
    let data_out = tcp_with(CLIENT, SERVER, ACK, b"GET /");
    let data_in = tcp_with(SERVER, CLIENT, ACK, b"200 OK");
    let plan: [(Direction, Vec<u8>, Verdict, FlowState); 10] = [
        (Out, out(SYN), pass(Reason::Rule(0)), FlowState::Tcp(TcpState::SynSent)),
        (Out, out(SYN), TRACKED, FlowState::Tcp(TcpState::SynSent)),
        (In, back(SYN_ACK), TRACKED, FlowState::Tcp(TcpState::SynReceived)),
        (Out, out(ACK), TRACKED, FlowState::Tcp(TcpState::Established)),
        (Out, data_out, TRACKED, FlowState::Tcp(TcpState::Established)),
        (In, data_in, TRACKED, FlowState::Tcp(TcpState::Established)),
        (Out, out(FIN), TRACKED, FlowState::Tcp(TcpState::FinWait { first: Side::Originator })),
        (In, back(FIN), TRACKED, FlowState::Tcp(TcpState::Closing { first: Side::Originator })),
        (Out, out(ACK), TRACKED, FlowState::Tcp(TcpState::TimeWait)),
        (In, back(FIN), TRACKED, FlowState::Tcp(TcpState::TimeWait)),
    ];
    for (index, (direction, frame, want, state)) in plan.iter().enumerate() {
        let at = index as u64 * S;
        assert_eq!(verdict(&mut firewall, at, *direction, A, frame), *want, "step {index}");
        assert_eq!(tcp_state(&firewall, at), Some(*state), "step {index}");
    }
    // TIME-WAIT ends: the same retransmitted FIN is now unsolicited.
    let end = 9 * S + Timeouts::DEFAULT.time_wait.micros();
    assert_eq!(verdict(&mut firewall, end, In, A, &back(FIN)), INVALID);
    assert_eq!(firewall.flows(), 0);
}

#[test]
fn tcp_server_connection_closed_by_the_server_first() {
    let mut firewall = with_policy(Policy::new(16).with(Rule::new(In, Protocol::Tcp, Action::Pass).local_ports(PortRange::single(22))));
    let peer = (REMOTE, 50_000);
    let ssh = (LOCAL, 22);
    let plan = [
        (In, tcp(peer, ssh, SYN), pass(Reason::Rule(0)), TcpState::SynSent),
        (Out, tcp(ssh, peer, SYN_ACK), TRACKED, TcpState::SynReceived),
        (In, tcp(peer, ssh, ACK), TRACKED, TcpState::Established),
        (Out, tcp(ssh, peer, FIN), TRACKED, TcpState::FinWait { first: Side::Responder }),
        (In, tcp(peer, ssh, ACK), TRACKED, TcpState::FinWait { first: Side::Responder }),
        (In, tcp(peer, ssh, FIN), TRACKED, TcpState::Closing { first: Side::Responder }),
        (Out, tcp(ssh, peer, ACK), TRACKED, TcpState::TimeWait),
    ];
    for (index, (direction, frame, want, state)) in plan.iter().enumerate() {
        assert_eq!(verdict(&mut firewall, 0, *direction, A, frame), *want, "step {index}");
        let flow = firewall.flow(Instant::ZERO, A, In, &tuple(Protocol::Tcp, peer, ssh));
        assert_eq!(flow.map(|flow| flow.state), Some(FlowState::Tcp(*state)), "step {index}");
        assert_eq!(flow.map(|flow| flow.opened), Some(In));
    }
}

#[test]
fn a_fin_with_the_handshake_ack_goes_straight_to_fin_wait() {
    let mut firewall = with_policy(tcp_client());
    check(
        &mut firewall,
        &[
            step(0, Out, &tcp(CLIENT, SERVER, SYN), pass(Reason::Rule(0))),
            step(1, In, &tcp(SERVER, CLIENT, SYN_ACK), TRACKED),
            step(2, Out, &tcp(CLIENT, SERVER, FIN), TRACKED),
        ],
    );
    assert_eq!(tcp_state(&firewall, 2), Some(FlowState::Tcp(TcpState::FinWait { first: Side::Originator })));
}

#[test]
fn a_rst_tears_the_flow_down_in_every_state() {
    // Bring a connection to each state, send a RST from either side: it passes, the flow is
    // gone, and the next segment of the old connection is invalid.
    let prefixes: [&[(Direction, Flags)]; 5] = [
        &[(Out, SYN)],
        &[(Out, SYN), (In, SYN_ACK)],
        &[(Out, SYN), (In, SYN_ACK), (Out, ACK)],
        &[(Out, SYN), (In, SYN_ACK), (Out, ACK), (Out, FIN)],
        &[(Out, SYN), (In, SYN_ACK), (Out, ACK), (Out, FIN), (In, FIN), (Out, ACK)],
    ];
    for prefix in prefixes {
        for rst_from in [In, Out] {
            let mut firewall = with_policy(tcp_client());
            let frame = |direction: Direction, flags| match direction {
                Out => tcp(CLIENT, SERVER, flags),
                In => tcp(SERVER, CLIENT, flags),
            };
            for (direction, flags) in prefix {
                assert!(verdict(&mut firewall, 0, *direction, A, &frame(*direction, *flags)).passes(), "{prefix:?}");
            }
            assert_eq!(verdict(&mut firewall, 0, rst_from, A, &frame(rst_from, RST)), TRACKED, "{prefix:?}");
            assert_eq!(firewall.flows(), 0, "{prefix:?}");
            assert_eq!(verdict(&mut firewall, 0, In, A, &frame(In, ACK)), INVALID, "{prefix:?}");
        }
    }
}

#[test]
fn packets_without_state_that_cannot_open_a_flow_are_invalid() {
    // Even with rules that pass everything, in and out.
    let mut firewall = with_policy(
        Policy::new(16)
            .with(Rule::new(In, Protocol::Tcp, Action::Pass))
            .with(Rule::new(Out, Protocol::Tcp, Action::Pass))
            .with(Rule::new(In, Protocol::Icmp, Action::Pass))
            .with(Rule::new(Out, Protocol::Icmp, Action::Pass)),
    );
    let from_remote = |flags| tcp(SERVER, CLIENT, flags);
    for flags in [ACK, FIN, BARE_FIN, RST, SYN_ACK] {
        assert_eq!(verdict(&mut firewall, 0, In, A, &from_remote(flags)), INVALID, "{flags:?} in");
        assert_eq!(verdict(&mut firewall, 0, Out, A, &tcp(CLIENT, SERVER, flags)), INVALID, "{flags:?} out");
    }
    assert_eq!(verdict(&mut firewall, 0, In, A, &echo_reply(REMOTE, LOCAL, 9)), INVALID);
    assert_eq!(verdict(&mut firewall, 0, Out, A, &echo_reply(LOCAL, REMOTE, 9)), INVALID);
    assert_eq!(firewall.flows(), 0);
    assert_eq!(firewall.counters().reason(ReasonKind::Invalid).packets, 12);
}

#[test]
fn a_packet_that_does_not_fit_its_flow_is_invalid_and_leaves_the_flow_alone() {
    let mut firewall = with_policy(tcp_client());
    check(
        &mut firewall,
        &[
            step(0, Out, &tcp(CLIENT, SERVER, SYN), pass(Reason::Rule(0))),
            // An ACK from the server before its SYN-ACK, the client's ACK too early.
            step(1, In, &tcp(SERVER, CLIENT, ACK), INVALID),
            step(2, Out, &tcp(CLIENT, SERVER, ACK), INVALID),
            step(3, In, &tcp(SERVER, CLIENT, SYN_ACK), TRACKED),
            step(4, Out, &tcp(CLIENT, SERVER, ACK), TRACKED),
            // A SYN inside an established connection.
            step(5, In, &tcp(SERVER, CLIENT, SYN), INVALID),
            step(6, Out, &tcp(CLIENT, SERVER, SYN), INVALID),
        ],
    );
    let flow = firewall.flow(Instant::from_micros(6), A, Out, &tuple(Protocol::Tcp, CLIENT, SERVER)).unwrap();
    assert_eq!(flow.state, FlowState::Tcp(TcpState::Established));
    assert_eq!(flow.last_seen, Instant::from_micros(4), "an invalid packet does not refresh the flow");
}

#[test]
fn a_new_syn_in_time_wait_reopens_through_the_rules() {
    let mut firewall = with_policy(tcp_client());
    for (direction, flags) in [(Out, SYN), (In, SYN_ACK), (Out, ACK), (Out, FIN), (In, FIN), (Out, ACK)] {
        let frame = if direction == Out { tcp(CLIENT, SERVER, flags) } else { tcp(SERVER, CLIENT, flags) };
        assert!(verdict(&mut firewall, 0, direction, A, &frame).passes());
    }
    assert_eq!(tcp_state(&firewall, 0), Some(FlowState::Tcp(TcpState::TimeWait)));
    // The server may not reopen; the client may, and its SYN is judged by the rules.
    assert_eq!(verdict(&mut firewall, 1, In, A, &tcp(SERVER, CLIENT, SYN)), INVALID);
    assert_eq!(verdict(&mut firewall, 1, Out, A, &tcp(CLIENT, SERVER, SYN)), pass(Reason::Rule(0)));
    assert_eq!(tcp_state(&firewall, 1), Some(FlowState::Tcp(TcpState::SynSent)));
    assert_eq!(firewall.flows(), 1);
    // Same again, but the rules changed meanwhile: the reopening SYN is refused.
    let mut firewall = with_policy(tcp_client());
    for (direction, flags) in [(Out, SYN), (In, SYN_ACK), (Out, ACK), (In, FIN), (Out, FIN), (In, ACK)] {
        let frame = if direction == Out { tcp(CLIENT, SERVER, flags) } else { tcp(SERVER, CLIENT, flags) };
        assert!(verdict(&mut firewall, 0, direction, A, &frame).passes());
    }
    assert_eq!(tcp_state(&firewall, 0), Some(FlowState::Tcp(TcpState::TimeWait)));
    firewall.set_policy(A, Policy::new(16));
    assert_eq!(verdict(&mut firewall, 1, Out, A, &tcp(CLIENT, SERVER, SYN)), NO_RULE);
    assert_eq!(firewall.flows(), 0);
}

/// A frame and the way it goes.
type Packet = (Direction, Vec<u8>);

/// Distinct timeouts per state, so using one state's timeout for another fails the test.
const TIMEOUTS: Timeouts = Timeouts {
    syn_sent: Duration::from_secs(11),
    syn_received: Duration::from_secs(12),
    established: Duration::from_secs(13),
    fin_wait: Duration::from_secs(14),
    closing: Duration::from_secs(15),
    time_wait: Duration::from_secs(16),
    udp: Duration::from_secs(17),
    icmp: Duration::from_secs(18),
};

#[test]
fn each_timeout_holds_just_before_its_limit_and_ends_exactly_at_it() {
    let policy = Policy::new(16)
        .with(Rule::new(Out, Protocol::Tcp, Action::Pass))
        .with(Rule::new(Out, Protocol::Udp, Action::Pass))
        .with(Rule::new(Out, Protocol::Icmp, Action::Pass));
    let out = |flags| tcp(CLIENT, SERVER, flags);
    let back = |flags| tcp(SERVER, CLIENT, flags);
    let dns = (REMOTE, 53);
    // (what, the packets that set the state up at t = 0, the probe: a packet the state passes,
    // its direction, the timeout that applies). Once the flow is gone the probe is invalid (it
    // cannot open a flow), except the UDP reply: it is an inbound opener no rule passes.
    let cases: Vec<(&str, Vec<Packet>, Packet, Duration)> = vec![
        ("syn sent", vec![(Out, out(SYN))], (In, back(SYN_ACK)), TIMEOUTS.syn_sent),
        ("syn received", vec![(Out, out(SYN)), (In, back(SYN_ACK))], (Out, out(ACK)), TIMEOUTS.syn_received),
        ("established", vec![(Out, out(SYN)), (In, back(SYN_ACK)), (Out, out(ACK))], (In, back(ACK)), TIMEOUTS.established),
        (
            "fin wait",
            vec![(Out, out(SYN)), (In, back(SYN_ACK)), (Out, out(ACK)), (Out, out(FIN))],
            (In, back(ACK)),
            TIMEOUTS.fin_wait,
        ),
        (
            "closing",
            vec![(Out, out(SYN)), (In, back(SYN_ACK)), (Out, out(ACK)), (Out, out(FIN)), (In, back(FIN))],
            (In, back(ACK)),
            TIMEOUTS.closing,
        ),
        (
            "time wait",
            vec![(Out, out(SYN)), (In, back(SYN_ACK)), (Out, out(ACK)), (Out, out(FIN)), (In, back(FIN)), (Out, out(ACK))],
            (In, back(FIN)),
            TIMEOUTS.time_wait,
        ),
        ("udp", vec![(Out, udp(CLIENT, dns, b"q"))], (In, udp(dns, CLIENT, b"a")), TIMEOUTS.udp),
        ("icmp echo", vec![(Out, echo_request(LOCAL, REMOTE, 5))], (In, echo_reply(REMOTE, LOCAL, 5)), TIMEOUTS.icmp),
    ];
    for (what, setup, (direction, probe), timeout) in cases {
        let gone = if what == "udp" { NO_RULE } else { INVALID };
        for (offset, want) in [(timeout.micros() - 1, TRACKED), (timeout.micros(), gone)] {
            let mut firewall = Firewall::new(Config { timeouts: TIMEOUTS, ..Config::default() });
            firewall.set_policy(A, policy.clone());
            for (setup_direction, frame) in &setup {
                assert!(verdict(&mut firewall, 0, *setup_direction, A, frame).passes(), "{what}: setup");
            }
            assert_eq!(verdict(&mut firewall, offset, direction, A, &probe), want, "{what} at {offset} µs");
        }
    }
}

#[test]
fn every_passed_packet_restarts_the_idle_timeout() {
    let mut firewall = Firewall::new(Config { timeouts: TIMEOUTS, ..Config::default() });
    firewall.set_policy(A, Policy::new(16).with(Rule::new(Out, Protocol::Udp, Action::Pass)));
    let dns = (REMOTE, 53);
    let udp_limit = TIMEOUTS.udp.micros();
    check(
        &mut firewall,
        &[
            step(0, Out, &udp(CLIENT, dns, b"q"), pass(Reason::Rule(0))),
            step(udp_limit - 1, In, &udp(dns, CLIENT, b"a"), TRACKED),
            step(2 * udp_limit - 2, In, &udp(dns, CLIENT, b"a"), TRACKED),
            step(3 * udp_limit - 2, In, &udp(dns, CLIENT, b"a"), NO_RULE),
        ],
    );
}

#[test]
fn a_reply_of_a_tracked_flow_passes_and_the_same_packet_unsolicited_is_dropped() {
    let policy = Policy::new(16)
        .with(Rule::new(Out, Protocol::Udp, Action::Pass).remote_ports(PortRange::single(53)))
        .with(Rule::new(Out, Protocol::Tcp, Action::Pass));
    let dns = (REMOTE, 53);
    let answer = udp(dns, CLIENT, b"answer");
    let syn_ack = tcp(SERVER, CLIENT, SYN_ACK);
    let mut firewall = with_policy(policy);
    check(
        &mut firewall,
        &[
            // Before the client asked: an inbound UDP opener with no inbound rule, a SYN-ACK
            // with no SYN.
            step(0, In, &answer, NO_RULE),
            step(0, In, &syn_ack, INVALID),
            step(1, Out, &udp(CLIENT, dns, b"query"), pass(Reason::Rule(0))),
            step(1, Out, &tcp(CLIENT, SERVER, SYN), pass(Reason::Rule(1))),
            step(2, In, &answer, TRACKED),
            step(2, In, &syn_ack, TRACKED),
            // Same shape from another address or port: not the tracked flow.
            step(3, In, &udp((OTHER, 53), CLIENT, b"answer"), NO_RULE),
            step(3, In, &udp((REMOTE, 54), CLIENT, b"answer"), NO_RULE),
            step(3, In, &udp(dns, (LOCAL, 40_001), b"answer"), NO_RULE),
            step(3, In, &tcp((OTHER, 80), CLIENT, SYN_ACK), INVALID),
        ],
    );
}

#[test]
fn one_programs_rules_and_flows_never_decide_another_programs_packets() {
    let mut firewall = firewall();
    firewall.set_policy(A, tcp_client());
    firewall.set_policy(B, Policy::new(16).with(Rule::new(In, Protocol::Tcp, Action::Pass).local_ports(PortRange::single(80))));
    check(
        &mut firewall,
        &[
            // A may connect out, B may not; B may accept on 80, A may not.
            on(A, 0, Out, &tcp(CLIENT, SERVER, SYN), pass(Reason::Rule(0))),
            on(B, 0, Out, &tcp((LOCAL, 40_002), SERVER, SYN), NO_RULE),
            on(B, 0, In, &tcp((REMOTE, 5000), (LOCAL, 80), SYN), pass(Reason::Rule(0))),
            on(A, 0, In, &tcp((REMOTE, 5001), (LOCAL, 80), SYN), NO_RULE),
            // A's flow does not let its reply through as B's, nor B's as A's.
            on(B, 1, In, &tcp(SERVER, CLIENT, SYN_ACK), INVALID),
            on(A, 1, Out, &tcp((LOCAL, 80), (REMOTE, 5000), SYN_ACK), INVALID),
            on(A, 1, In, &tcp(SERVER, CLIENT, SYN_ACK), TRACKED),
            on(B, 1, Out, &tcp((LOCAL, 80), (REMOTE, 5000), SYN_ACK), TRACKED),
        ],
    );
    assert_eq!((firewall.flows_of(A), firewall.flows_of(B)), (1, 1));
}

#[test]
fn a_full_table_refuses_new_flows_and_keeps_the_established_ones() {
    let mut firewall = Firewall::new(Config { max_flows: 2, timeouts: TIMEOUTS, ..Config::default() });
    firewall.set_policy(A, tcp_client());
    firewall.set_policy(B, tcp_client());
    let server = |port| (REMOTE, port);
    let open = |firewall: &mut Firewall, program, port, at| {
        assert_eq!(verdict(firewall, at, Out, program, &tcp(CLIENT, server(port), SYN)), pass(Reason::Rule(0)));
        assert_eq!(verdict(firewall, at, In, program, &tcp(server(port), CLIENT, SYN_ACK)), TRACKED);
        assert_eq!(verdict(firewall, at, Out, program, &tcp(CLIENT, server(port), ACK)), TRACKED);
    };
    open(&mut firewall, A, 1, 0);
    open(&mut firewall, B, 2, 0);
    // Full, all flows live: the new one is refused, by either program.
    for program in [A, B] {
        assert_eq!(verdict(&mut firewall, 1, Out, program, &tcp(CLIENT, server(3), SYN)), drop(Reason::TableFull(Full::Global)));
    }
    assert_eq!(firewall.flows(), 2);
    // The established flows go on.
    assert_eq!(verdict(&mut firewall, 2, In, A, &tcp(server(1), CLIENT, ACK)), TRACKED);
    assert_eq!(verdict(&mut firewall, 3, In, B, &tcp(server(2), CLIENT, ACK)), TRACKED);
    // B's flow expires (last seen at 3 µs): it is reclaimed just in time for a new one, and
    // not a microsecond before.
    let b_expiry = 3 + TIMEOUTS.established.micros();
    assert_eq!(verdict(&mut firewall, 10 * S, In, A, &tcp(server(1), CLIENT, ACK)), TRACKED);
    assert_eq!(
        verdict(&mut firewall, b_expiry - 1, Out, A, &tcp(CLIENT, server(3), SYN)),
        drop(Reason::TableFull(Full::Global))
    );
    assert_eq!(verdict(&mut firewall, b_expiry, Out, A, &tcp(CLIENT, server(3), SYN)), pass(Reason::Rule(0)));
    assert_eq!((firewall.flows(), firewall.flows_of(A), firewall.flows_of(B)), (2, 2, 0));
}

#[test]
fn a_programs_cap_refuses_its_new_flows_and_no_one_elses() {
    let mut firewall = firewall();
    firewall.set_policy(A, Policy::new(2).with(Rule::new(Out, Protocol::Udp, Action::Pass)));
    firewall.set_policy(B, Policy::new(5).with(Rule::new(Out, Protocol::Udp, Action::Pass)));
    let query = |port| udp(CLIENT, (REMOTE, port), b"q");
    for port in [1, 2] {
        assert_eq!(verdict(&mut firewall, 0, Out, A, &query(port)), pass(Reason::Rule(0)));
    }
    assert_eq!(verdict(&mut firewall, 0, Out, A, &query(3)), drop(Reason::TableFull(Full::Program)));
    // A's existing flows still pass both ways; B is not affected.
    assert_eq!(verdict(&mut firewall, 0, Out, A, &query(1)), TRACKED);
    assert_eq!(verdict(&mut firewall, 0, In, A, &udp((REMOTE, 2), CLIENT, b"a")), TRACKED);
    for port in [1, 2, 3] {
        assert_eq!(verdict(&mut firewall, 0, Out, B, &query(port)), pass(Reason::Rule(0)));
    }
    assert_eq!((firewall.flows_of(A), firewall.flows_of(B)), (2, 3));
    // Once one of A's flows is gone (expired), A may open another.
    let expiry = Timeouts::DEFAULT.udp.micros();
    assert_eq!(verdict(&mut firewall, expiry - 1, Out, A, &query(1)), TRACKED);
    assert_eq!(verdict(&mut firewall, expiry, Out, A, &query(3)), pass(Reason::Rule(0)));
    assert_eq!(firewall.flows_of(A), 2);
}

#[test]
fn a_rst_frees_a_programs_share_at_once() {
    let mut firewall = with_policy(Policy::new(1).with(Rule::new(Out, Protocol::Tcp, Action::Pass)));
    check(
        &mut firewall,
        &[
            step(0, Out, &tcp(CLIENT, SERVER, SYN), pass(Reason::Rule(0))),
            step(0, Out, &tcp(CLIENT, (REMOTE, 81), SYN), drop(Reason::TableFull(Full::Program))),
            step(0, In, &tcp(SERVER, CLIENT, RST), TRACKED),
            step(0, Out, &tcp(CLIENT, (REMOTE, 81), SYN), pass(Reason::Rule(0))),
        ],
    );
}

#[test]
fn the_rate_limit_is_exact_at_the_second_boundary() {
    let mut firewall = with_policy(Policy::new(64).with(Rule::new(In, Protocol::Tcp, Action::Pass).local_ports(PortRange::single(80)).rate_limited(3)));
    let syn = |port| tcp((REMOTE, port), (LOCAL, 80), SYN);
    let limited = drop(Reason::RateLimited(0));
    check(
        &mut firewall,
        &[
            step(5 * S, In, &syn(1), pass(Reason::Rule(0))),
            step(5 * S + 1, In, &syn(2), pass(Reason::Rule(0))),
            step(6 * S - 2, In, &syn(3), pass(Reason::Rule(0))),
            step(6 * S - 1, In, &syn(4), limited),
            // Packets of flows already open are not limited.
            step(6 * S - 1, Out, &tcp((LOCAL, 80), (REMOTE, 1), SYN_ACK), TRACKED),
            step(6 * S, In, &syn(5), pass(Reason::Rule(0))),
            step(6 * S + 1, In, &syn(6), pass(Reason::Rule(0))),
            step(6 * S + 2, In, &syn(7), pass(Reason::Rule(0))),
            step(7 * S - 1, In, &syn(8), limited),
            step(7 * S, In, &syn(8), pass(Reason::Rule(0))),
        ],
    );
    assert_eq!(firewall.counters().reason(ReasonKind::RateLimited).packets, 2);
    // A limit of zero admits no new connection at all.
    let mut firewall = with_policy(Policy::new(64).with(Rule::new(In, Protocol::Tcp, Action::Pass).rate_limited(0)));
    assert_eq!(verdict(&mut firewall, 0, In, A, &syn(1)), limited);
}

#[test]
fn icmp_echo_passes_only_when_a_rule_allows_it() {
    let mut firewall = firewall();
    check(&mut firewall, &[step(0, In, &echo_request(REMOTE, LOCAL, 1), NO_RULE)]);
    firewall.set_policy(A, Policy::new(16).with(Rule::new(In, Protocol::Icmp, Action::Pass).remote(Cidr::new([192, 0, 2, 0], 24).unwrap())));
    check(
        &mut firewall,
        &[
            step(1, In, &echo_request(REMOTE, LOCAL, 1), pass(Reason::Rule(0))),
            step(2, Out, &echo_reply(LOCAL, REMOTE, 1), TRACKED),
            step(2, Out, &echo_reply(LOCAL, REMOTE, 2), INVALID),
            step(2, Out, &echo_reply(LOCAL, OTHER, 1), INVALID),
            // Outside the allowed network; and the program pinging out has no rule.
            step(3, In, &echo_request(OTHER, LOCAL, 1), NO_RULE),
            step(3, Out, &echo_request(LOCAL, REMOTE, 3), NO_RULE),
            // The echo flow carries requests one way and replies the other, nothing else.
            step(4, Out, &echo_request(LOCAL, REMOTE, 1), INVALID),
            step(4, In, &echo_reply(REMOTE, LOCAL, 1), INVALID),
        ],
    );
}

#[test]
fn icmp_errors_and_other_traffic_are_unsupported_and_dropped() {
    let mut firewall = with_policy(Policy::new(16).with(Rule::new(In, Protocol::Icmp, Action::Pass)).with(Rule::new(In, Protocol::Udp, Action::Pass)));
    let unsupported = drop(Reason::Unsupported);
    let mut fragment = udp((REMOTE, 53), CLIENT, b"a fragment of a datagram");
    {
        // More-fragments set, header checksum refilled: a well-formed first fragment.
        let mut packet = smoltcp::wire::Ipv4Packet::new_unchecked(&mut fragment[14..]);
        packet.set_more_frags(true);
        packet.set_dont_frag(false);
        packet.fill_checksum();
    }
    check(
        &mut firewall,
        &[
            step(0, In, &port_unreachable(REMOTE, LOCAL), unsupported),
            step(0, In, &raw(EthernetProtocol::Ipv6, &[0x60; 40]), unsupported),
            step(0, In, &raw(EthernetProtocol::Unknown(0x88cc), &[0; 46]), unsupported),
            step(0, In, &ip_raw(REMOTE, LOCAL, IpProtocol::Unknown(47), &[0; 8]), unsupported),
            step(0, In, &fragment, unsupported),
        ],
    );
}

#[test]
fn malformed_frames_are_dropped_as_malformed() {
    let mut firewall = with_policy(Policy::new(16).with(Rule::new(In, Protocol::Tcp, Action::Pass)).with(Rule::new(In, Protocol::Udp, Action::Pass)));
    let good = tcp((REMOTE, 5000), (LOCAL, 80), SYN);
    let malformed = drop(Reason::Malformed);
    let mut bad_ip_checksum = good.clone();
    bad_ip_checksum[14 + 10] ^= 0xff;
    let mut bad_tcp_checksum = good.clone();
    let last = bad_tcp_checksum.len() - 1;
    bad_tcp_checksum[last] ^= 0x01;
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    let mut syn_fin = good.clone();
    {
        let mut packet = smoltcp::wire::Ipv4Packet::new_unchecked(&mut syn_fin[14..]);
        let (src, dst) = (packet.src_addr().into(), packet.dst_addr().into());
        let mut segment = smoltcp::wire::TcpPacket::new_unchecked(packet.payload_mut());
        segment.set_fin(true);
        segment.fill_checksum(&src, &dst);
    }
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short ethernet", good[..13].to_vec()),
        ("no ip header", good[..14].to_vec()),
        ("truncated ip header", good[..30].to_vec()),
        ("truncated tcp header", good[..14 + 20 + 10].to_vec()),
        ("ip checksum", bad_ip_checksum),
        ("tcp checksum", bad_tcp_checksum),
        ("ip version", bad_version),
        ("syn with fin", syn_fin),
        ("truncated arp", arp(REMOTE, LOCAL)[..20].to_vec()),
        ("truncated udp", udp((REMOTE, 53), CLIENT, b"x")[..14 + 20 + 4].to_vec()),
    ];
    for (what, frame) in &frames {
        assert_eq!(verdict(&mut firewall, 0, In, A, frame), malformed, "{what}");
    }
    assert_eq!(verdict(&mut firewall, 0, In, A, &good), pass(Reason::Rule(0)), "the unbroken frame passes");
    assert_eq!(firewall.counters().reason(ReasonKind::Malformed).packets, frames.len() as u64);
}

#[test]
fn arp_is_a_separate_explicit_decision() {
    // Passed by default, with no policy at all, for any program.
    let mut firewall = firewall();
    let request = arp(REMOTE, LOCAL);
    let arp_pass = pass(Reason::Arp);
    check(&mut firewall, &[step(0, In, &request, arp_pass), step(0, Out, &arp(LOCAL, REMOTE), arp_pass)]);
    assert_eq!(firewall.log_len(), 0, "a passed ARP packet is not logged");
    let mut firewall = Firewall::new(Config { arp: ArpDecision::Drop, ..Config::default() });
    firewall.set_policy(A, Policy::new(16).with(Rule::new(In, Protocol::Udp, Action::Pass)));
    check(&mut firewall, &[step(0, In, &request, drop(Reason::Arp))]);
    assert_eq!(firewall.pop_log().map(|record| record.verdict), Some(drop(Reason::Arp)));
}

#[test]
fn counters_count_every_packet_once_by_reason_and_action_and_rules_by_match() {
    let mut firewall = with_policy(
        Policy::new(16).with(Rule::new(Out, Protocol::Udp, Action::Drop).remote_ports(PortRange::single(9))).with(Rule::new(Out, Protocol::Udp, Action::Pass)),
    );
    let discard = udp(CLIENT, (REMOTE, 9), b"0123456789");
    let query = udp(CLIENT, (REMOTE, 53), b"q");
    let answer = udp((REMOTE, 53), CLIENT, b"answer");
    let junk = vec![0u8; 5];
    for frame in [&discard, &discard, &query, &query] {
        firewall.check(Instant::ZERO, Out, A, frame);
    }
    firewall.check(Instant::ZERO, In, A, &answer);
    firewall.check(Instant::ZERO, In, A, &junk);
    firewall.check(Instant::ZERO, In, A, &tcp(SERVER, CLIENT, ACK));
    let counters = firewall.counters();
    let len = |frame: &Vec<u8>| frame.len() as u64;
    assert_eq!(counters.rule(A, 0).packets, 2);
    assert_eq!(counters.rule(A, 0).bytes, 2 * len(&discard));
    assert_eq!(counters.rule(A, 1).packets, 1, "the second query is tracked, not matched");
    assert_eq!(counters.rule(A, 1).bytes, len(&query));
    assert_eq!(counters.rule(A, 2).packets, 0, "no such rule");
    assert_eq!(counters.reason(ReasonKind::Rule).packets, 3);
    assert_eq!(counters.reason(ReasonKind::Tracked).packets, 2);
    assert_eq!(counters.reason(ReasonKind::Tracked).bytes, len(&query) + len(&answer));
    assert_eq!(counters.reason(ReasonKind::Malformed).bytes, 5);
    assert_eq!(counters.reason(ReasonKind::Invalid).packets, 1);
    assert_eq!(counters.action(Action::Pass).packets, 3);
    assert_eq!(counters.action(Action::Drop).packets, 4);
    let total: u64 = ReasonKind::ALL.iter().map(|kind| counters.reason(*kind).packets).sum();
    assert_eq!(total, 7);
    assert_eq!(counters.flows(), 1);
    assert_eq!(counters.rules().count(), 1);
    // A snapshot is a copy: later traffic does not change it.
    firewall.check(Instant::ZERO, Out, A, &discard);
    assert_eq!(counters.rule(A, 0).packets, 2);
    assert_eq!(firewall.counters().rule(A, 0).packets, 3);
}

#[test]
fn the_drop_log_keeps_n_records_a_second_and_counts_the_rest() {
    let mut firewall = Firewall::new(Config { log_per_second: 2, ..Config::default() });
    let probe = |port| tcp((REMOTE, port), (LOCAL, 22), SYN);
    for port in 1..=5 {
        firewall.check(Instant::from_micros(S - 1), In, A, &probe(port));
    }
    assert_eq!(firewall.log_len(), 2);
    assert_eq!(firewall.counters().log_suppressed(), 3);
    let first = firewall.pop_log().unwrap();
    assert_eq!(first.program, A);
    assert_eq!(first.direction, In);
    assert_eq!(first.at, Instant::from_micros(S - 1));
    assert_eq!(first.tuple, Some(tuple(Protocol::Tcp, (REMOTE, 1), (LOCAL, 22))));
    assert_eq!(first.verdict, NO_RULE);
    assert_eq!(firewall.pop_log().unwrap().tuple.unwrap().src_port, 2);
    assert_eq!(firewall.pop_log(), None);
    assert_eq!(firewall.take_suppressed(), 3);
    assert_eq!(firewall.take_suppressed(), 0);
    // The next second has its own allowance.
    for port in 6..=8 {
        firewall.check(Instant::from_micros(S), In, A, &probe(port));
    }
    assert_eq!((firewall.log_len(), firewall.take_suppressed()), (2, 1));
}

#[test]
fn the_drop_log_is_bounded_whatever_the_rate() {
    let mut firewall = Firewall::new(Config { log_per_second: u32::MAX, ..Config::default() });
    for port in 0..LOG_CAPACITY as u16 + 10 {
        firewall.check(Instant::ZERO, In, A, &tcp((REMOTE, port + 1), (LOCAL, 22), SYN));
    }
    assert_eq!(firewall.log_len(), LOG_CAPACITY);
    assert_eq!(firewall.take_suppressed(), 10);
}

#[test]
fn rules_log_only_when_asked_and_the_firewalls_own_drops_always() {
    let mut firewall = with_policy(
        Policy::new(16)
            .with(Rule::new(In, Protocol::Tcp, Action::Drop).local_ports(PortRange::single(23)))
            .with(Rule::new(In, Protocol::Tcp, Action::Reject).local_ports(PortRange::single(25)).logged())
            .with(Rule::new(In, Protocol::Tcp, Action::Pass).local_ports(PortRange::single(80)).logged())
            .with(Rule::new(In, Protocol::Tcp, Action::Pass).local_ports(PortRange::single(443))),
    );
    let syn = |port| tcp((REMOTE, 5000), (LOCAL, port), SYN);
    for port in [23, 25, 80, 443, 8080] {
        firewall.check(Instant::ZERO, In, A, &syn(port));
    }
    firewall.check(Instant::ZERO, Out, A, &tcp((LOCAL, 80), (REMOTE, 5000), SYN_ACK));
    firewall.check(Instant::ZERO, Out, A, &[1, 2, 3]);
    let mut verdicts = Vec::new();
    while let Some(record) = firewall.pop_log() {
        verdicts.push(record.verdict);
    }
    assert_eq!(
        verdicts,
        [Verdict { action: Action::Reject, reason: Reason::Rule(1) }, pass(Reason::Rule(2)), NO_RULE, drop(Reason::Malformed)]
    );
}

#[test]
fn removing_a_program_forgets_its_rules_and_its_flows() {
    let mut firewall = with_policy(tcp_client());
    firewall.set_policy(B, tcp_client());
    for program in [A, B] {
        assert!(verdict(&mut firewall, 0, Out, program, &tcp(CLIENT, SERVER, SYN)).passes());
    }
    firewall.remove_program(A);
    assert_eq!((firewall.flows_of(A), firewall.flows_of(B), firewall.flows()), (0, 1, 1));
    assert_eq!(verdict(&mut firewall, 1, In, A, &tcp(SERVER, CLIENT, SYN_ACK)), INVALID);
    assert_eq!(verdict(&mut firewall, 1, Out, A, &tcp(CLIENT, SERVER, SYN)), NO_RULE);
    assert_eq!(verdict(&mut firewall, 1, In, B, &tcp(SERVER, CLIENT, SYN_ACK)), TRACKED);
}

#[test]
fn expire_reclaims_exactly_the_expired_flows() {
    let mut firewall = Firewall::new(Config { timeouts: TIMEOUTS, ..Config::default() });
    firewall.set_policy(A, Policy::new(16).with(Rule::new(Out, Protocol::Udp, Action::Pass)).with(Rule::new(Out, Protocol::Icmp, Action::Pass)));
    firewall.check(Instant::ZERO, Out, A, &udp(CLIENT, (REMOTE, 53), b"q"));
    firewall.check(Instant::ZERO, Out, A, &echo_request(LOCAL, REMOTE, 1));
    assert_eq!(firewall.expire(Instant::from_micros(TIMEOUTS.udp.micros() - 1)), 0);
    assert_eq!(firewall.expire(Instant::from_micros(TIMEOUTS.udp.micros())), 1);
    assert_eq!(firewall.flows_of(A), 1);
    let echo = firewall.flow(Instant::from_micros(TIMEOUTS.udp.micros()), A, Out, &tuple(Protocol::Icmp, (LOCAL, 1), (REMOTE, 1)));
    assert_eq!(echo.map(|flow: Flow| (flow.state, flow.rule)), Some((FlowState::IcmpEcho, 1)));
    assert_eq!(firewall.expire(Instant::from_micros(TIMEOUTS.icmp.micros())), 1);
    assert_eq!(firewall.flows(), 0);
}

#[test]
fn policies_round_trip_through_postcard_and_bad_blobs_are_refused() {
    let policy = Policy::new(8)
        .with(
            Rule::new(In, Protocol::Tcp, Action::Pass)
                .local_ports(PortRange::new(8000, 8080).unwrap())
                .remote(Cidr::new([10, 0, 0, 0], 8).unwrap())
                .logged()
                .rate_limited(5),
        )
        .with(Rule::new(Out, Protocol::Icmp, Action::Reject));
    let bytes = postcard::to_allocvec(&policy).unwrap();
    assert_eq!(postcard::from_bytes::<Policy>(&bytes).unwrap(), policy);
    // A range encoded inverted, a prefix of 33, host bits past the prefix: all refused.
    let range = postcard::to_allocvec(&(9u16, 1u16)).unwrap();
    assert!(postcard::from_bytes::<PortRange>(&range).is_err());
    for (addr, prefix) in [([10u8, 0, 0, 0], 33u8), ([10, 0, 0, 1], 8)] {
        let cidr = postcard::to_allocvec(&(addr, prefix)).unwrap();
        assert!(postcard::from_bytes::<Cidr>(&cidr).is_err());
    }
}

#[test]
fn a_flow_whose_timeout_shortens_is_reclaimed_on_time_when_the_table_is_full() {
    // The table skips reclaiming before the earliest expiry it knows of; a state change that
    // brings a flow's expiry forward (established 100 s → time-wait 5 s) must move that bound.
    let timeouts = Timeouts { established: Duration::from_secs(100), time_wait: Duration::from_secs(5), ..Timeouts::DEFAULT };
    let mut firewall = Firewall::new(Config { max_flows: 1, timeouts, ..Config::default() });
    firewall.set_policy(A, tcp_client());
    let other = (OTHER, 443);
    check(
        &mut firewall,
        &[
            step(0, Out, &tcp(CLIENT, SERVER, SYN), pass(Reason::Rule(0))),
            step(0, In, &tcp(SERVER, CLIENT, SYN_ACK), TRACKED),
            step(0, Out, &tcp(CLIENT, SERVER, ACK), TRACKED),
            // Full: a reclaim runs and finds the earliest expiry at 100 s.
            step(S, Out, &tcp(CLIENT, other, SYN), drop(Reason::TableFull(Full::Global))),
            step(2 * S, Out, &tcp(CLIENT, SERVER, FIN), TRACKED),
            step(2 * S, In, &tcp(SERVER, CLIENT, FIN), TRACKED),
            step(2 * S, Out, &tcp(CLIENT, SERVER, ACK), TRACKED),
            step(7 * S - 1, Out, &tcp(CLIENT, other, SYN), drop(Reason::TableFull(Full::Global))),
            step(7 * S, Out, &tcp(CLIENT, other, SYN), pass(Reason::Rule(0))),
        ],
    );
    assert_eq!(firewall.flows(), 1);
}
