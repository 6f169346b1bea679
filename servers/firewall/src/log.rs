//! The drop log: a bounded buffer of records for the server to print, rate-limited.
//!
//! The firewall writes a [`DropRecord`] for every packet it drops or rejects for a reason of
//! its own (no rule, invalid, table full, rate limited, malformed, unsupported) and for every
//! packet a rule with `log` decides (pass, drop or reject). At most `per_second` records are
//! kept per clock second (the fixed window of the `window` module), and at most
//! [`LOG_CAPACITY`] wait in the buffer; every record not kept, for either reason, is counted
//! in `suppressed`, so a flood shows up as a number and never costs more than a counter.
//!
//! # Invariants
//! `records.len() <= LOG_CAPACITY` (heapless); each `push` either stores the record or adds
//! one to `suppressed`, never both, never neither.

use serde::{Deserialize, Serialize};

use crate::packet::FiveTuple;
use crate::rule::Direction;
use crate::time::Instant;
use crate::window::Window;
use crate::{ProgramId, Verdict};

/// How many records wait in the buffer at most.
pub const LOG_CAPACITY: usize = 64;

/// One logged decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRecord {
    /// When the packet was checked.
    pub at: Instant,
    /// The program it was checked for.
    pub program: ProgramId,
    /// Which way it went.
    pub direction: Direction,
    /// Its addresses and ports, when the packet got far enough to have them.
    pub tuple: Option<FiveTuple>,
    /// What the firewall decided and why (the rule index, or the reason).
    pub verdict: Verdict,
}

/// The bounded, rate-limited buffer of [`DropRecord`]s.
#[derive(Clone, Debug)]
pub(crate) struct DropLog {
    records: heapless::Deque<DropRecord, LOG_CAPACITY>,
    window: Window,
    per_second: u32,
    suppressed: u64,
}

impl DropLog {
    pub(crate) const fn new(per_second: u32) -> DropLog {
        DropLog { records: heapless::Deque::new(), window: Window::new(), per_second, suppressed: 0 }
    }

    /// Keeps `record` if this second's allowance and the buffer have room, else counts it.
    pub(crate) fn push(&mut self, record: DropRecord) {
        if !self.window.admit(record.at, self.per_second) || self.records.push_back(record).is_err() {
            self.suppressed = self.suppressed.saturating_add(1);
        }
    }

    /// The oldest record waiting, taken out.
    pub(crate) fn pop(&mut self) -> Option<DropRecord> {
        self.records.pop_front()
    }

    /// The number of records not kept since the last call, and reset it to 0.
    pub(crate) fn take_suppressed(&mut self) -> u64 {
        core::mem::take(&mut self.suppressed)
    }

    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}
