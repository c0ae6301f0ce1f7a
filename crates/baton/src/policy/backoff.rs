//! How long to wait before trying again.
//!
//! Owns two delay schedules — [`RetryBackoff`] between failed attempts of a task and
//! [`ThrottleBackoff`] after the model API throttled us — and the small [`Throttle`] state a
//! scheduler keeps to run fewer agents at once while the API pushes back.
//!
//! Must not read the clock, sleep, or draw randomness: `now` and the jitter value come from the
//! caller, so every schedule is reproducible in tests.

use std::time::{Duration, Instant};

/// The delay before retrying a task whose attempt failed: exponential, capped.
///
/// The default (5 s doubling, capped at 120 s) is the one the original tool used; plans that
/// were tuned against it keep behaving the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Growth per further failed attempt.
    pub factor: u32,
    /// No delay is ever longer than this.
    pub cap: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        RetryBackoff {
            initial: Duration::from_secs(5),
            factor: 2,
            cap: Duration::from_secs(120),
        }
    }
}

impl RetryBackoff {
    /// The wait before the next attempt, after `failed_attempts` failures so far
    /// (1 → `initial`, 2 → `initial × factor`, …, never above `cap`). Zero failures, zero wait.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        exponential(self.initial, self.factor, self.cap, failed_attempts)
    }
}

/// The delay after the model API throttled an attempt (server-side limiting, plain 429, 529
/// overloaded): longer than [`RetryBackoff`] because the pressure is shared by every agent, and
/// jittered so that parallel agents do not come back in lockstep and get throttled together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleBackoff {
    /// Delay after the first throttle in a row.
    pub initial: Duration,
    /// Growth per further consecutive throttle.
    pub factor: u32,
    /// No delay is ever longer than this, jitter included.
    pub cap: Duration,
    /// How far jitter moves the delay either way, as a fraction of it (0.2 = ±20 %).
    pub spread: f64,
}

impl Default for ThrottleBackoff {
    fn default() -> Self {
        ThrottleBackoff {
            initial: Duration::from_secs(30),
            factor: 2,
            cap: Duration::from_secs(600),
            spread: 0.2,
        }
    }
}

impl ThrottleBackoff {
    /// The wait after `consecutive_throttles` throttles in a row (0 → no wait).
    ///
    /// `jitter` is a caller-supplied value in `0..=1` (see [`jitter_from_seed`]); 0.5 means
    /// "no jitter". Out-of-range values are clamped and NaN counts as 0.5, so a bad source of
    /// randomness can never produce a negative or unbounded wait. The result lies in
    /// `[base × (1 − spread), min(base × (1 + spread), cap)]`: at the cap the window only
    /// narrows downwards, so waits stay spread out instead of all landing on the cap.
    pub fn delay(&self, consecutive_throttles: u32, jitter: f64) -> Duration {
        let base = exponential(self.initial, self.factor, self.cap, consecutive_throttles);
        if base.is_zero() {
            return Duration::ZERO;
        }
        let jitter = if jitter.is_nan() {
            0.5
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let spread = if self.spread.is_nan() {
            0.0
        } else {
            self.spread.clamp(0.0, 1.0)
        };
        let base_secs = base.as_secs_f64();
        let low = base_secs * (1.0 - spread);
        let high = (base_secs * (1.0 + spread)).min(self.cap.as_secs_f64());
        let secs = low + (high - low).max(0.0) * jitter;
        // `try_from` rejects only negative/non-finite/huge values, which the clamps above
        // rule out; fall back to the unjittered base rather than panic.
        Duration::try_from_secs_f64(secs).unwrap_or(base)
    }
}

/// What a scheduler remembers about server-side throttling across attempts: how many throttles
/// came in a row (for [`ThrottleBackoff::delay`]), when the last one was, and how far the number
/// of agents started at once has been cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Throttled attempts since the last attempt that got through.
    pub consecutive: u32,
    /// When the most recent throttle was seen.
    pub last_throttle: Option<Instant>,
    /// How many times the allowed concurrency is currently halved. Grows by one per throttle
    /// and shrinks by one per success, so recovery is gradual: one success after a storm must
    /// not release every agent at once into the same pressure.
    pub halvings: u32,
}

impl Throttle {
    /// Note that an attempt was throttled at `now`.
    pub fn record_throttle(&mut self, now: Instant) {
        self.consecutive = self.consecutive.saturating_add(1);
        // Past 63 halvings every `usize` is already down to 1; stop counting so recovery
        // does not take forever after a very long storm.
        self.halvings = (self.halvings + 1).min(usize::BITS - 1);
        self.last_throttle = Some(now);
    }

    /// Note that an attempt got through to the model without being throttled.
    pub fn record_success(&mut self) {
        self.consecutive = 0;
        self.halvings = self.halvings.saturating_sub(1);
    }

    /// How many agents may run at once, given the configured `max_jobs`: halved per step of
    /// throttling still in effect, never below 1 (baton must keep making progress).
    pub fn concurrency_limit(&self, max_jobs: usize) -> usize {
        max_jobs.checked_shr(self.halvings).unwrap_or(0).max(1)
    }

    /// The wait before the next start, per `backoff`, given the throttles so far.
    pub fn delay(&self, backoff: &ThrottleBackoff, jitter: f64) -> Duration {
        backoff.delay(self.consecutive, jitter)
    }

    /// The earliest instant at which a new attempt should start, or `None` when nothing is
    /// holding starts back.
    pub fn resume_at(&self, backoff: &ThrottleBackoff, jitter: f64) -> Option<Instant> {
        if self.consecutive == 0 {
            return None;
        }
        let last = self.last_throttle?;
        let delay = self.delay(backoff, jitter);
        // An `Instant` that far out cannot be represented; waiting "as long as we can say"
        // is the honest fallback.
        Some(last.checked_add(delay).unwrap_or(last))
    }
}

/// A jitter value in `0..1` derived from `seed` (splitmix64), for callers that want
/// [`ThrottleBackoff::delay`] spread without a random-number dependency. Different seeds (an
/// attempt counter, a task index mixed with the time) give well-scattered values; the same seed
/// always gives the same value.
pub fn jitter_from_seed(seed: u64) -> f64 {
    // The top 53 bits fill an f64 mantissa exactly, giving evenly spaced values in [0, 1).
    (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64
}

/// One step of the splitmix64 generator (Steele, Lea & Flood): a cheap, well-mixing bijection
/// on `u64`.
pub fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `initial × factor^(n − 1)`, capped; 0 for `n == 0`. Saturates instead of overflowing, since
/// the attempt count comes from configuration and history.
fn exponential(initial: Duration, factor: u32, cap: Duration, n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let growth = factor.checked_pow(n - 1);
    match growth.and_then(|g| initial.checked_mul(g)) {
        Some(delay) => delay.min(cap),
        None => cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn retry_backoff_doubles_from_five_seconds_up_to_the_cap() {
        let backoff = RetryBackoff::default();
        let delays: Vec<u64> = (0..=8).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 5, 10, 20, 40, 80, 120, 120, 120]);
    }

    #[test]
    fn retry_backoff_saturates_instead_of_overflowing() {
        let backoff = RetryBackoff::default();
        assert_eq!(backoff.delay(64), secs(120));
        assert_eq!(backoff.delay(u32::MAX), secs(120));
        let huge = RetryBackoff {
            initial: Duration::MAX,
            factor: 3,
            cap: secs(7),
        };
        assert_eq!(huge.delay(2), secs(7));
    }

    #[test]
    fn retry_backoff_with_factor_one_is_constant() {
        let backoff = RetryBackoff {
            initial: secs(3),
            factor: 1,
            cap: secs(60),
        };
        assert_eq!(backoff.delay(1), secs(3));
        assert_eq!(backoff.delay(50), secs(3));
    }

    #[test]
    fn throttle_backoff_without_jitter_doubles_from_thirty_seconds_up_to_the_cap() {
        let backoff = ThrottleBackoff::default();
        let delays: Vec<u64> = (0..=7).map(|n| backoff.delay(n, 0.5).as_secs()).collect();
        // 0.5 is the middle of the window; at the cap the window is [480, 600].
        assert_eq!(delays, [0, 30, 60, 120, 240, 480, 540, 540]);
    }

    #[test]
    fn throttle_backoff_jitter_spreads_twenty_percent_either_way() {
        let backoff = ThrottleBackoff::default();
        assert_eq!(backoff.delay(1, 0.0), secs(24));
        assert_eq!(backoff.delay(1, 1.0), secs(36));
        assert_eq!(backoff.delay(2, 0.0), secs(48));
        assert_eq!(backoff.delay(2, 1.0), secs(72));
    }

    #[test]
    fn throttle_backoff_never_exceeds_the_cap_even_with_jitter() {
        let backoff = ThrottleBackoff::default();
        for n in [5, 6, 10, 40, u32::MAX] {
            for jitter in [0.0, 0.3, 0.999, 1.0] {
                let delay = backoff.delay(n, jitter);
                assert!(delay <= secs(600), "n={n} jitter={jitter} gave {delay:?}");
                assert!(delay >= secs(384), "n={n} jitter={jitter} gave {delay:?}");
            }
        }
        assert_eq!(backoff.delay(6, 0.0), secs(480));
        assert_eq!(backoff.delay(6, 1.0), secs(600));
    }

    #[test]
    fn throttle_backoff_tolerates_bad_jitter_values() {
        let backoff = ThrottleBackoff::default();
        assert_eq!(backoff.delay(1, f64::NAN), secs(30));
        assert_eq!(backoff.delay(1, -3.0), secs(24));
        assert_eq!(backoff.delay(1, 7.0), secs(36));
        assert_eq!(backoff.delay(1, f64::INFINITY), secs(36));
        let odd = ThrottleBackoff {
            spread: f64::NAN,
            ..ThrottleBackoff::default()
        };
        assert_eq!(odd.delay(1, 1.0), secs(30));
        let wide = ThrottleBackoff {
            spread: 5.0,
            ..ThrottleBackoff::default()
        };
        assert_eq!(wide.delay(1, 0.0), Duration::ZERO);
        assert_eq!(wide.delay(1, 1.0), secs(60));
    }

    #[test]
    fn throttle_halves_concurrency_per_throttle_down_to_one() {
        let now = Instant::now();
        let mut throttle = Throttle::default();
        assert_eq!(throttle.concurrency_limit(8), 8);
        let mut limits = Vec::new();
        for _ in 0..5 {
            throttle.record_throttle(now);
            limits.push(throttle.concurrency_limit(8));
        }
        assert_eq!(limits, [4, 2, 1, 1, 1]);
        assert_eq!(throttle.consecutive, 5);
        assert_eq!(throttle.last_throttle, Some(now));
    }

    #[test]
    fn throttle_recovers_one_step_per_success() {
        let now = Instant::now();
        let mut throttle = Throttle::default();
        for _ in 0..3 {
            throttle.record_throttle(now);
        }
        assert_eq!(throttle.concurrency_limit(8), 1);
        throttle.record_success();
        assert_eq!(throttle.consecutive, 0);
        assert_eq!(throttle.concurrency_limit(8), 2);
        throttle.record_success();
        assert_eq!(throttle.concurrency_limit(8), 4);
        throttle.record_success();
        assert_eq!(throttle.concurrency_limit(8), 8);
        throttle.record_success();
        assert_eq!(throttle.concurrency_limit(8), 8);
    }

    #[test]
    fn throttle_concurrency_is_never_zero() {
        let now = Instant::now();
        let mut throttle = Throttle::default();
        assert_eq!(throttle.concurrency_limit(0), 1);
        for _ in 0..200 {
            throttle.record_throttle(now);
        }
        assert_eq!(throttle.concurrency_limit(usize::MAX), 1);
        // A long storm still recovers in a bounded number of successes.
        for _ in 0..usize::BITS {
            throttle.record_success();
        }
        assert_eq!(throttle.concurrency_limit(3), 3);
    }

    #[test]
    fn throttle_resume_at_is_last_throttle_plus_backoff() {
        let backoff = ThrottleBackoff::default();
        let start = Instant::now();
        let mut throttle = Throttle::default();
        assert_eq!(throttle.resume_at(&backoff, 0.5), None);
        throttle.record_throttle(start);
        assert_eq!(throttle.resume_at(&backoff, 0.5), Some(start + secs(30)));
        let later = start + secs(40);
        throttle.record_throttle(later);
        assert_eq!(throttle.delay(&backoff, 0.5), secs(60));
        assert_eq!(throttle.resume_at(&backoff, 0.5), Some(later + secs(60)));
        throttle.record_success();
        assert_eq!(throttle.resume_at(&backoff, 0.5), None);
    }

    #[test]
    fn jitter_from_seed_is_deterministic_in_range_and_scattered() {
        assert_eq!(jitter_from_seed(42), jitter_from_seed(42));
        let values: Vec<f64> = (0..1000).map(jitter_from_seed).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        // Consecutive seeds must not give clustered values: every tenth of [0, 1) is hit.
        for decile in 0..10 {
            let low = f64::from(decile) / 10.0;
            let hits = values
                .iter()
                .filter(|v| (low..low + 0.1).contains(*v))
                .count();
            assert!(
                (50..150).contains(&hits),
                "decile {decile} got {hits} of 1000"
            );
        }
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // Reference: the first outputs of splitmix64 seeded with 0, where each call advances
        // the state by the golden-ratio constant before mixing.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }
}
