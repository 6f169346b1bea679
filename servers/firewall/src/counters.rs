//! Counters: per rule, per verdict reason and per action, read as one snapshot.
//!
//! Every packet [`crate::Firewall::check`] sees is counted exactly once by reason and once by
//! action (packets, and bytes of the whole frame). A rule's counter counts the openers it was
//! the first match for, whatever happened next (a `Pass` rule's opener refused for a full table
//! or its rate limit is counted there and under its reason too). [`Counters`] is a copy: the
//! server can print or send it while the firewall goes on.

use alloc::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rule::{Action, MAX_RULES};
use crate::{ProgramId, Reason};

/// Packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// How many packets.
    pub packets: u64,
    /// How many bytes, whole frames.
    pub bytes: u64,
}

impl Count {
    pub(crate) fn add(&mut self, bytes: usize) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
    }
}

/// A [`Reason`] without its payload: what the per-reason counters are indexed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReasonKind {
    /// [`Reason::Rule`].
    Rule,
    /// [`Reason::Tracked`].
    Tracked,
    /// [`Reason::Arp`].
    Arp,
    /// [`Reason::Invalid`].
    Invalid,
    /// [`Reason::TableFull`].
    TableFull,
    /// [`Reason::RateLimited`].
    RateLimited,
    /// [`Reason::NoRule`].
    NoRule,
    /// [`Reason::Malformed`].
    Malformed,
    /// [`Reason::Unsupported`].
    Unsupported,
}

impl ReasonKind {
    /// Every kind, in counter order.
    pub const ALL: [ReasonKind; 9] = [
        ReasonKind::Rule,
        ReasonKind::Tracked,
        ReasonKind::Arp,
        ReasonKind::Invalid,
        ReasonKind::TableFull,
        ReasonKind::RateLimited,
        ReasonKind::NoRule,
        ReasonKind::Malformed,
        ReasonKind::Unsupported,
    ];

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl Reason {
    /// The reason without its payload.
    pub const fn kind(self) -> ReasonKind {
        match self {
            Reason::Rule(_) => ReasonKind::Rule,
            Reason::Tracked => ReasonKind::Tracked,
            Reason::Arp => ReasonKind::Arp,
            Reason::Invalid => ReasonKind::Invalid,
            Reason::TableFull(_) => ReasonKind::TableFull,
            Reason::RateLimited(_) => ReasonKind::RateLimited,
            Reason::NoRule => ReasonKind::NoRule,
            Reason::Malformed => ReasonKind::Malformed,
            Reason::Unsupported => ReasonKind::Unsupported,
        }
    }
}

pub(crate) const fn action_index(action: Action) -> usize {
    match action {
        Action::Pass => 0,
        Action::Drop => 1,
        Action::Reject => 2,
    }
}

/// A read-only snapshot of every counter ([`crate::Firewall::counters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub(crate) by_reason: [Count; ReasonKind::ALL.len()],
    pub(crate) by_action: [Count; 3],
    pub(crate) rules: BTreeMap<ProgramId, heapless::Vec<Count, MAX_RULES>>,
    pub(crate) flows: usize,
    pub(crate) log_suppressed: u64,
}

impl Counters {
    /// Packets decided for `kind` of reason.
    pub fn reason(&self, kind: ReasonKind) -> Count {
        self.by_reason.get(kind.index()).copied().unwrap_or_default()
    }

    /// Packets given `action`.
    pub fn action(&self, action: Action) -> Count {
        self.by_action.get(action_index(action)).copied().unwrap_or_default()
    }

    /// Openers that rule `index` of `program`'s policy matched first (zero for no such rule).
    pub fn rule(&self, program: ProgramId, index: usize) -> Count {
        self.rules.get(&program).and_then(|rules| rules.get(index)).copied().unwrap_or_default()
    }

    /// The per-rule counters of every program with a policy.
    pub fn rules(&self) -> impl Iterator<Item = (ProgramId, &[Count])> {
        self.rules.iter().map(|(program, counts)| (*program, counts.as_slice()))
    }

    /// Flows tracked when the snapshot was taken.
    pub fn flows(&self) -> usize {
        self.flows
    }

    /// Drop records not kept (over the per-second limit or the buffer full) and not yet taken
    /// with [`crate::Firewall::take_suppressed`].
    pub fn log_suppressed(&self) -> u64 {
        self.log_suppressed
    }
}
