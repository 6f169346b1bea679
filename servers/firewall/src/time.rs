//! Time as the caller tells it: microseconds on a clock the firewall never reads itself.
//!
//! The network server passes `now` into every call, so the core is deterministic and the host
//! tests drive it with a fake clock. Arithmetic saturates: a clock near `u64::MAX` µs (half a
//! million years) stops instead of wrapping.

/// A point in time, in microseconds since an origin the caller chooses (boot, say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Instant(u64);

/// A length of time, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Duration(u64);

/// Microseconds in a second: the length of every rate-limit window.
pub(crate) const MICROS_PER_SECOND: u64 = 1_000_000;

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// The instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant(micros)
    }

    /// The instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis.saturating_mul(1_000))
    }

    /// The instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(MICROS_PER_SECOND))
    }

    /// Microseconds since the origin.
    pub const fn micros(self) -> u64 {
        self.0
    }

    /// The whole second this instant falls in (the rate limits' window number).
    pub(crate) const fn second(self) -> u64 {
        self.0 / MICROS_PER_SECOND
    }

    /// `self + duration`, stopping at the end of time.
    pub const fn saturating_add(self, duration: Duration) -> Instant {
        Instant(self.0.saturating_add(duration.0))
    }

    /// `self - duration`, stopping at the origin.
    pub const fn saturating_sub(self, duration: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Duration {
        Duration(micros)
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration(millis.saturating_mul(1_000))
    }

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs.saturating_mul(MICROS_PER_SECOND))
    }

    /// The length in microseconds.
    pub const fn micros(self) -> u64 {
        self.0
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;

    /// Saturating, like [`Instant::saturating_add`].
    fn add(self, duration: Duration) -> Instant {
        self.saturating_add(duration)
    }
}

impl core::ops::Sub<Duration> for Instant {
    type Output = Instant;

    /// Saturating, like [`Instant::saturating_sub`].
    fn sub(self, duration: Duration) -> Instant {
        self.saturating_sub(duration)
    }
}
