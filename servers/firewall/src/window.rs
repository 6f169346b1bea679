//! The one rate limiter: a fixed window of one clock second.
//!
//! A window admits at most `limit` events whose instants fall in the same whole second of the
//! caller's clock, `[k s, (k+1) s)`; the count starts again at the first event of a later
//! second. This is exact and cheap (two words, no division by the limit) and easy to test at the
//! boundary: the `limit`-th event at `k s + 999_999 µs` is admitted, the next one refused, and
//! one at `(k+1) s` admitted. The price, stated candidly: up to `2 × limit` events can pass in
//! a one-second span that straddles a boundary. A token bucket would smooth that, but its
//! refill rounding is harder to state exactly; the new-connection limits and the drop log are
//! about bounding work per second, which the fixed window does.

use crate::time::Instant;

/// The state of one window: which second it counts, and how many events it admitted there.
///
/// # Invariants
/// `used <= limit` of the last `admit` call; `used` counts admitted events of second `second` only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Window {
    second: u64,
    used: u32,
}

impl Window {
    /// A window that has admitted nothing.
    pub(crate) const fn new() -> Window {
        Window { second: 0, used: 0 }
    }

    /// Admits one event at `now` if fewer than `limit` were admitted in `now`'s second.
    pub(crate) fn admit(&mut self, now: Instant, limit: u32) -> bool {
        let second = now.second();
        if second != self.second {
            self.second = second;
            self.used = 0;
        }
        if self.used < limit {
            self.used = self.used.saturating_add(1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_exactly_limit_per_clock_second() {
        let mut window = Window::new();
        for _ in 0..3 {
            assert!(window.admit(Instant::from_micros(1_000_000), 3));
        }
        assert!(!window.admit(Instant::from_micros(1_999_999), 3));
        assert!(window.admit(Instant::from_micros(2_000_000), 3));
    }

    #[test]
    fn a_zero_limit_admits_nothing() {
        let mut window = Window::new();
        assert!(!window.admit(Instant::ZERO, 0));
        assert!(!window.admit(Instant::from_secs(5), 0));
    }
}
