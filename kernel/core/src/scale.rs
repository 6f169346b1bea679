//! `x * numerator / denominator` for a fixed ratio, without a division per call.
//!
//! The scheduler converts the TSC to microseconds at every context switch. Written as
//! `u128` arithmetic, that is a call of `__udivti3`, a software 128-bit division of about a
//! hundred instructions, on the IPC path. Here the ratio is turned once into a 64-bit
//! fixed-point reciprocal; each conversion is then one 64×64→128 multiply, and a second
//! multiply that corrects the one case where rounding the reciprocal down lost a unit, so
//! the result is exactly the rounded-down quotient, never one off.

/// A ratio below one, `numerator / denominator`, ready for [`Scale::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    numerator: u64,
    denominator: u64,
    /// `floor(numerator * 2^64 / denominator)`, below 2^64 because the ratio is below one.
    reciprocal: u64,
}

impl Scale {
    /// `None` unless `0 < numerator < denominator`.
    pub fn new(numerator: u64, denominator: u64) -> Option<Scale> {
        if numerator == 0 || numerator >= denominator {
            return None;
        }
        let reciprocal = u64::try_from((u128::from(numerator) << 64) / u128::from(denominator)).ok()?;
        Some(Scale { numerator, denominator, reciprocal })
    }

    /// `floor(x * numerator / denominator)`, exactly.
    pub fn apply(&self, x: u64) -> u64 {
        // The reciprocal is at most one unit of 2^-64 short, so for x < 2^64 the product is
        // less than one short of the true quotient: `estimate` is exact or one too small.
        let estimate = ((u128::from(x) * u128::from(self.reciprocal)) >> 64) as u64;
        let next = u128::from(estimate) + 1;
        if next * u128::from(self.denominator) <= u128::from(x) * u128::from(self.numerator) {
            estimate + 1
        } else {
            estimate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(x: u64, numerator: u64, denominator: u64) -> u64 {
        (u128::from(x) * u128::from(numerator) / u128::from(denominator)) as u64
    }

    #[test]
    fn ratios_of_one_or_more_and_zero_are_refused() {
        assert_eq!(Scale::new(0, 5), None);
        assert_eq!(Scale::new(5, 5), None);
        assert_eq!(Scale::new(6, 5), None);
        assert!(Scale::new(1000, 1_000_003).is_some());
    }

    #[test]
    fn edges_are_exact() {
        for (numerator, denominator) in [(1, 2), (1000, 1_000_003), (1000, 1001), (1, u64::MAX), (u64::MAX - 1, u64::MAX)] {
            let scale = Scale::new(numerator, denominator).unwrap();
            for x in [0, 1, 2, 999, 1000, 1001, denominator - 1, denominator, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                assert_eq!(scale.apply(x), exact(x, numerator, denominator), "{x} * {numerator} / {denominator}");
            }
        }
    }

    proptest! {
        #[test]
        fn apply_is_the_rounded_down_quotient(numerator in 1u64..u64::MAX, extra in 1u64..u64::MAX, x: u64) {
            let denominator = numerator.saturating_add(extra).max(numerator + 1);
            let scale = Scale::new(numerator, denominator).unwrap();
            prop_assert_eq!(scale.apply(x), exact(x, numerator, denominator));
        }

        #[test]
        fn tsc_rates_convert_exactly(rate in 1_001u64..10_000_000, x: u64) {
            // The kernel's use: TSC ticks to microseconds, `rate` in kHz.
            let scale = Scale::new(1000, rate).unwrap();
            prop_assert_eq!(scale.apply(x), exact(x, 1000, rate));
        }
    }
}
