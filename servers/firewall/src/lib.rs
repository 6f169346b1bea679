//! The stateful, default-deny firewall the network server calls for every frame in and out.
//!
//! # Design
//! The network server (not written yet) resolves which program a frame belongs to, by the badge
//! of the socket cap the program holds, and asks [`Firewall::check`] with the frame's bytes,
//! its direction and the clock. The answer is a [`Verdict`]: pass, drop or reject, and why.
//!
//! 1. **Parse with smoltcp, trust nothing.** The frame is classified by smoltcp's `wire`
//!    parsers ([`packet`]); truncated, inconsistent or badly checksummed bytes are
//!    [`Reason::Malformed`]. Well-formed traffic the firewall does not govern (IPv6, other IP
//!    protocols, fragments, ICMP other than echo) is [`Reason::Unsupported`] and dropped.
//! 2. **ARP is a separate, explicit decision** ([`Config::arp`], pass by default, verdict
//!    [`Reason::Arp`]): the stack needs ARP to reach anyone, ARP has no ports or programs to
//!    match, and the firewall governs IP. A well-formed ARP packet gets the configured action;
//!    a malformed one is dropped like any malformed frame.
//! 3. **Tracked flows first.** A packet of a flow already in the table ([`track`]) passes as
//!    [`Reason::Tracked`] if it fits the flow's state, in either direction, without consulting
//!    any rule; if it does not fit (a SYN in an established connection, an echo reply from the
//!    pinging side) it is [`Reason::Invalid`]. A RST passes and removes the flow.
//! 4. **Only an opener reaches the rules.** A packet with no flow that could not open one (a
//!    TCP segment other than a bare SYN, an echo reply) is [`Reason::Invalid`]. An opener is
//!    matched against its program's rules in order ([`rule`]); the first match decides, and no
//!    match is [`Reason::NoRule`], a drop. There is no implicit pass anywhere: an empty policy,
//!    or a program with no policy, drops everything in both directions.
//! 5. **A pass opens a flow, charged to the program.** The table has a global capacity and
//!    each policy a `max_flows`; when either is reached, expired flows are reclaimed and, if
//!    that frees nothing, the new flow is refused with [`Reason::TableFull`]. Live flows are
//!    never evicted. A rule's rate limit refuses openers past N per clock second
//!    ([`Reason::RateLimited`]).
//! 6. **Everything is counted, drops are logged at a bounded rate** ([`counters`], [`log`]).
//!
//! Time is passed in ([`Instant`], microseconds), never read, so the host tests drive the
//! timeouts and rate limits with a fake clock.
//!
//! # Invariants
//! - **Default deny.** The only verdicts that pass are `Rule(i)` of a `Pass` rule of the
//!   packet's own program, `Tracked` for a flow such a rule opened, and `Arp` by the
//!   configured decision.
//! - **One program's rules and flows never decide another program's packets**: flows are
//!   keyed by program id, and rules are looked up by it.
//! - **No panic from bytes.** Every frame is parsed through smoltcp's checked constructors
//!   (property tests `never_panics_on_random_bytes`, `never_panics_on_mutated_frames`); the
//!   crate has no `unsafe` and no indexing of frames.
//! - **Bounded.** At most `Config::max_flows` flows (memory reserved at construction), at most
//!   [`rule::MAX_RULES`] rules a program, at most [`log::LOG_CAPACITY`] log records waiting.
//! - **Counted once.** Every checked frame adds to exactly one reason counter and one action
//!   counter (checked after every property-test run).
//!
//! # Example
//! ```
//! use firewall::{Action, Config, Direction, Firewall, Instant, Policy, PortRange, ProgramId, Protocol, Reason, Rule};
//!
//! let web = ProgramId(7); // the badge of the web server's socket cap
//! let mut firewall = Firewall::new(Config { hash_seed: 0x5eed, ..Config::default() });
//! firewall.set_policy(
//!     web,
//!     Policy::new(256)
//!         .with(Rule::new(Direction::In, Protocol::Tcp, Action::Pass).local_ports(PortRange::single(80)).rate_limited(100))
//!         .with(Rule::new(Direction::In, Protocol::Tcp, Action::Reject).logged()),
//! );
//! // Whatever arrives, the answer is a verdict, never a panic.
//! let verdict = firewall.check(Instant::from_secs(1), Direction::In, web, &[0x45, 0x00]);
//! assert!(!verdict.passes());
//! assert_eq!(verdict.reason, Reason::Malformed);
//! assert!(firewall.pop_log().is_some());
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod counters;
pub mod log;
pub mod packet;
pub mod rule;
pub mod time;
pub mod track;
mod window;

use alloc::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use counters::{Count, Counters, ReasonKind};
pub use log::{DropRecord, LOG_CAPACITY};
pub use packet::FiveTuple;
pub use rule::{Action, Cidr, Direction, Policy, PortRange, Protocol, RateLimit, Rule, RuleError, MAX_RULES};
pub use time::{Duration, Instant};
pub use track::{Flow, FlowState, Side, TcpState, Timeouts};

use counters::action_index;
use log::DropLog;
use packet::{Frame, Refusal};
use track::{Key, Step, Table};
use window::Window;

/// A program, as the network server knows it: the badge of the socket cap it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProgramId(pub u64);

/// What the firewall decided about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Pass, drop, or reject (drop and tell the sender).
    pub action: Action,
    /// Why.
    pub reason: Reason,
}

impl Verdict {
    /// Whether the frame may go on.
    pub const fn passes(&self) -> bool {
        matches!(self.action, Action::Pass)
    }

    const fn drop(reason: Reason) -> Verdict {
        Verdict { action: Action::Drop, reason }
    }
}

/// Why a [`Verdict`] is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Rule `index` of the program's policy matched first; the action is the rule's.
    Rule(usize),
    /// The packet belongs to a tracked flow and fits its state: passed without a rule.
    Tracked,
    /// An ARP packet, decided by [`Config::arp`].
    Arp,
    /// No flow, and not a packet that may open one; or a packet that does not fit its flow's state.
    Invalid,
    /// A `Pass` rule matched but the table (or the program's share) is full of live flows.
    TableFull(Full),
    /// A `Pass` rule (index) matched but its new-connection rate limit is spent for this second.
    RateLimited(usize),
    /// An opener no rule of the program matches: the default, drop.
    NoRule,
    /// Not a well-formed Ethernet/ARP/IPv4/TCP/UDP/ICMP frame (truncated, bad lengths, bad checksum).
    Malformed,
    /// Well-formed, but not something the firewall governs: IPv6 and other ethertypes, IP
    /// protocols other than TCP/UDP/ICMP, fragments, ICMP other than echo. Dropped.
    Unsupported,
}

/// Which limit a refused new flow ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Full {
    /// The whole table holds [`Config::max_flows`] live flows.
    Global,
    /// The program holds its policy's `max_flows` live flows.
    Program,
}

/// What the firewall does with ARP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArpDecision {
    /// Let well-formed ARP through (the stack needs it to resolve neighbours).
    Pass,
    /// Drop all ARP (a machine with static neighbour entries).
    Drop,
}

/// The firewall's fixed parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// How many flows the table holds, all programs together; its memory is taken up front.
    pub max_flows: usize,
    /// Idle timeouts per flow state.
    pub timeouts: Timeouts,
    /// What ARP gets.
    pub arp: ArpDecision,
    /// Drop-log records kept per clock second; the rest are counted as suppressed.
    pub log_per_second: u32,
    /// Keys the tracking table's hash, so remote senders cannot aim their flows at one bucket
    /// without knowing it; the server should pass a random word.
    pub hash_seed: u64,
}

impl Default for Config {
    /// 4,096 flows, [`Timeouts::DEFAULT`], ARP passes, 10 log records a second, seed 0.
    fn default() -> Config {
        Config { max_flows: 4_096, timeouts: Timeouts::DEFAULT, arp: ArpDecision::Pass, log_per_second: 10, hash_seed: 0 }
    }
}

/// One program's policy with the state that goes with it.
#[derive(Clone, Debug)]
struct Program {
    policy: Policy,
    counts: heapless::Vec<Count, MAX_RULES>,
    windows: heapless::Vec<Window, MAX_RULES>,
}

impl Program {
    fn new(policy: Policy) -> Program {
        let counts = policy.rules.iter().map(|_| Count::default()).collect();
        let windows = policy.rules.iter().map(|_| Window::new()).collect();
        Program { policy, counts, windows }
    }
}

/// The firewall: policies, the tracking table, counters and the drop log.
pub struct Firewall {
    config: Config,
    programs: BTreeMap<ProgramId, Program>,
    table: Table,
    by_reason: [Count; ReasonKind::ALL.len()],
    by_action: [Count; 3],
    log: DropLog,
}

/// What `decide` found: the verdict, the packet's tuple if it had one, and whether the deciding
/// rule asked for a log record.
struct Decision {
    verdict: Verdict,
    tuple: Option<FiveTuple>,
    rule_logs: bool,
}

impl Decision {
    const fn new(verdict: Verdict, tuple: Option<FiveTuple>) -> Decision {
        Decision { verdict, tuple, rule_logs: false }
    }
}

impl Firewall {
    /// A firewall with no policies (everything but ARP is dropped) and an empty table.
    pub fn new(config: Config) -> Firewall {
        Firewall {
            config,
            programs: BTreeMap::new(),
            table: Table::new(config.max_flows, config.hash_seed),
            by_reason: [Count::default(); ReasonKind::ALL.len()],
            by_action: [Count::default(); 3],
            log: DropLog::new(config.log_per_second),
        }
    }

    /// The configuration it was built with.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Gives `program` the policy `policy`, replacing any earlier one with its rule counters and
    /// rate-limit windows. Flows the program already has stay tracked until they end or expire.
    pub fn set_policy(&mut self, program: ProgramId, policy: Policy) {
        self.programs.insert(program, Program::new(policy));
    }

    /// Forgets `program`'s policy and every flow charged to it: from now on its packets are
    /// dropped, replies of its old connections included.
    pub fn remove_program(&mut self, program: ProgramId) {
        self.programs.remove(&program);
        self.table.remove_program(program);
    }

    /// Decides one frame going `direction` for `program` at `now`, updates the tracking table,
    /// the counters and the drop log, and says what to do with it. Never panics on any bytes.
    pub fn check(&mut self, now: Instant, direction: Direction, program: ProgramId, frame: &[u8]) -> Verdict {
        let decision = self.decide(now, direction, program, frame);
        let verdict = decision.verdict;
        if let Some(count) = self.by_reason.get_mut(verdict.reason.kind().index()) {
            count.add(frame.len());
        }
        if let Some(count) = self.by_action.get_mut(action_index(verdict.action)) {
            count.add(frame.len());
        }
        let logged = match verdict.reason {
            Reason::Rule(_) => decision.rule_logs,
            Reason::Tracked => false,
            Reason::Arp => !verdict.passes(),
            _ => true,
        };
        if logged {
            self.log.push(DropRecord { at: now, program, direction, tuple: decision.tuple, verdict });
        }
        verdict
    }

    fn decide(&mut self, now: Instant, direction: Direction, program: ProgramId, frame: &[u8]) -> Decision {
        let ip = match packet::parse(frame) {
            Ok(Frame::Ip(ip)) => ip,
            Ok(Frame::Arp) => {
                let action = match self.config.arp {
                    ArpDecision::Pass => Action::Pass,
                    ArpDecision::Drop => Action::Drop,
                };
                return Decision::new(Verdict { action, reason: Reason::Arp }, None);
            }
            Err(Refusal::Malformed) => return Decision::new(Verdict::drop(Reason::Malformed), None),
            Err(Refusal::Unsupported(tuple)) => return Decision::new(Verdict::drop(Reason::Unsupported), tuple),
        };
        let tuple = Some(ip.tuple);
        let timeouts = self.config.timeouts;
        let key = Key::new(program, direction, &ip.tuple);
        match self.table.get(&key) {
            Some(flow) if !flow.expired(now, &timeouts) => {
                let side = if flow.opened == direction { Side::Originator } else { Side::Responder };
                match track::step(flow.state, side, ip.kind) {
                    Step::Pass(state) => {
                        self.table.update(&key, Flow { state, last_seen: now, ..flow }, &timeouts);
                        return Decision::new(Verdict { action: Action::Pass, reason: Reason::Tracked }, tuple);
                    }
                    Step::Teardown => {
                        self.table.remove(&key);
                        return Decision::new(Verdict { action: Action::Pass, reason: Reason::Tracked }, tuple);
                    }
                    Step::Invalid => return Decision::new(Verdict::drop(Reason::Invalid), tuple),
                    // The old connection is over: this SYN goes through the rules as a new one.
                    Step::Reopen => self.table.remove(&key),
                }
            }
            // Expired: gone, whatever this packet is.
            Some(_) => self.table.remove(&key),
            None => {}
        }
        if !ip.kind.is_opener() {
            return Decision::new(Verdict::drop(Reason::Invalid), tuple);
        }
        let Some(state) = self.programs.get_mut(&program) else {
            return Decision::new(Verdict::drop(Reason::NoRule), tuple);
        };
        let ((_, local_port), (remote, remote_port)) = track::local_remote(direction, &ip.tuple);
        let matched = state
            .policy
            .rules
            .iter()
            .position(|rule| rule.matches(direction, ip.tuple.protocol, local_port, remote, remote_port));
        let Some((index, rule)) = matched.and_then(|index| Some((index, *state.policy.rules.get(index)?))) else {
            return Decision::new(Verdict::drop(Reason::NoRule), tuple);
        };
        if let Some(count) = state.counts.get_mut(index) {
            count.add(frame.len());
        }
        let decided = |verdict| Decision { verdict, tuple, rule_logs: rule.log };
        if rule.action != Action::Pass {
            return decided(Verdict { action: rule.action, reason: Reason::Rule(index) });
        }
        let max_flows = state.policy.max_flows;
        // Room first (no side effects but reclaiming), then the rate limit (which spends a
        // token), then the insert, which cannot fail after a successful room check.
        if let Err(full) = self.table.room(program, max_flows, now, &timeouts) {
            return Decision::new(Verdict::drop(Reason::TableFull(full)), tuple);
        }
        if let Some(limit) = rule.rate_limit {
            let admitted = state.windows.get_mut(index).is_some_and(|window| window.admit(now, limit.per_second));
            if !admitted {
                return Decision::new(Verdict::drop(Reason::RateLimited(index)), tuple);
            }
        }
        self.table.insert(key, Flow::open(direction, ip.kind, now, index), &timeouts);
        decided(Verdict { action: Action::Pass, reason: Reason::Rule(index) })
    }

    /// The live flow a packet going `direction` for `program` with `tuple` would belong to.
    pub fn flow(&self, now: Instant, program: ProgramId, direction: Direction, tuple: &FiveTuple) -> Option<Flow> {
        self.table.get(&Key::new(program, direction, tuple)).filter(|flow| !flow.expired(now, &self.config.timeouts))
    }

    /// How many flows are in the table (expired ones not yet reclaimed included).
    pub fn flows(&self) -> usize {
        self.table.len()
    }

    /// How many flows are charged to `program` (expired ones not yet reclaimed included).
    pub fn flows_of(&self, program: ProgramId) -> u32 {
        self.table.count(program)
    }

    /// Removes every flow expired at `now`; returns how many. The server may call it on a timer;
    /// `check` also does when the table or a program is full.
    pub fn expire(&mut self, now: Instant) -> usize {
        self.table.reclaim(now, &self.config.timeouts)
    }

    /// The oldest drop record waiting, taken out of the buffer.
    pub fn pop_log(&mut self) -> Option<DropRecord> {
        self.log.pop()
    }

    /// How many drop records wait in the buffer.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// How many drop records were not kept since the last call (over the per-second limit or
    /// with the buffer full); resets the count.
    pub fn take_suppressed(&mut self) -> u64 {
        self.log.take_suppressed()
    }

    /// A snapshot of every counter.
    pub fn counters(&self) -> Counters {
        Counters {
            by_reason: self.by_reason,
            by_action: self.by_action,
            rules: self.programs.iter().map(|(id, program)| (*id, program.counts.clone())).collect(),
            flows: self.table.len(),
            log_suppressed: self.log.suppressed(),
        }
    }
}
