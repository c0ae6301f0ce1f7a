//! The circuit breaker: stop starting attempts after several failed in a row.
//!
//! When many attempts fail back to back the cause is usually systemic (the agent CLI is broken,
//! the network is down, the repository is in a bad state), and retrying every task would only
//! burn every task's attempts. After `threshold` consecutive failures the breaker opens for a
//! cool-down, then lets exactly one probe attempt through; its outcome closes or re-opens it.
//!
//! Owns only that state machine. It must not read the clock or sleep (the caller passes `now`
//! and does the waiting), and it knows nothing of rate limits: a rate-limited or stopped
//! attempt is neither a success nor a failure here (see [`CircuitBreaker::record_inconclusive`]).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What the breaker says about starting an attempt now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: start as many attempts as the scheduler wants.
    Admit,
    /// Half-open: this one attempt is the probe; its outcome decides whether the breaker closes.
    AdmitProbe,
    /// Open: start nothing before `until`.
    Wait { until: Instant },
    /// Half-open with the probe still running: start nothing until it reports.
    AwaitProbe,
}

/// The breaker's state, for display and for decisions a caller makes around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_running: bool },
}

/// Counts consecutive failed attempts and holds starts back when there are too many.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    phase: Phase,
    /// Failed attempts since the last success; kept through open and half-open so the
    /// description can say how many failures led here.
    consecutive_failures: u32,
}

impl Default for CircuitBreaker {
    /// 3 consecutive failures open it for 300 s.
    fn default() -> Self {
        CircuitBreaker::new(3, Duration::from_secs(300))
    }
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive failures (a threshold of 0 is
    /// taken as 1: "open before any failure" would never start anything) and stays open for
    /// `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cool_down,
            phase: Phase::Closed,
            consecutive_failures: 0,
        }
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    pub fn cool_down(&self) -> Duration {
        self.cool_down
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether an attempt may start at `now`. Takes `&mut self` because the first call after
    /// the cool-down hands out the single probe slot.
    pub fn may_start(&mut self, now: Instant) -> Admission {
        match self.phase {
            Phase::Closed => Admission::Admit,
            Phase::Open { until } if now < until => Admission::Wait { until },
            Phase::Open { .. }
            | Phase::HalfOpen {
                probe_running: false,
            } => {
                self.phase = Phase::HalfOpen {
                    probe_running: true,
                };
                Admission::AdmitProbe
            }
            Phase::HalfOpen {
                probe_running: true,
            } => Admission::AwaitProbe,
        }
    }

    /// An attempt succeeded: whatever was wrong is fixed, close the breaker. This includes a
    /// late success from an attempt started before the breaker opened — it is still evidence
    /// that attempts can succeed.
    pub fn record_success(&mut self) {
        self.phase = Phase::Closed;
        self.consecutive_failures = 0;
    }

    /// An attempt failed at `now`.
    pub fn record_failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.phase {
            Phase::Closed if self.consecutive_failures >= self.threshold => self.open(now),
            Phase::Closed => {}
            // The probe failed: the cause is still there.
            Phase::HalfOpen { .. } => self.open(now),
            // A failure from an attempt that started before the breaker opened says nothing
            // new about the time after the cool-down, so it does not extend it.
            Phase::Open { .. } => {}
        }
    }

    /// An admitted attempt ended without saying anything about the system's health (it was
    /// rate-limited, or stopped by the user). While half-open this gives the probe slot back,
    /// so the next start becomes the probe instead of waiting forever for a verdict.
    pub fn record_inconclusive(&mut self) {
        if let Phase::HalfOpen {
            probe_running: true,
        } = self.phase
        {
            self.phase = Phase::HalfOpen {
                probe_running: false,
            };
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed {
                consecutive_failures: self.consecutive_failures,
            },
            Phase::Open { until } => BreakerState::Open { until },
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// One line for a person, e.g.
    /// `circuit breaker open: 3 consecutive failures, retrying in 4m 12s`.
    pub fn describe(&self, now: Instant) -> String {
        let failures = failures_phrase(self.consecutive_failures);
        match self.phase {
            Phase::Closed if self.consecutive_failures == 0 => "circuit breaker closed".to_owned(),
            Phase::Closed => format!(
                "circuit breaker closed: {failures} (opens at {})",
                self.threshold
            ),
            Phase::Open { until } if now < until => format!(
                "circuit breaker open: {failures}, retrying in {}",
                human_duration(until - now)
            ),
            Phase::Open { .. } => format!("circuit breaker open: {failures}, retrying now"),
            Phase::HalfOpen {
                probe_running: true,
            } => {
                format!("circuit breaker half-open: {failures}, one probe attempt running")
            }
            Phase::HalfOpen {
                probe_running: false,
            } => {
                format!("circuit breaker half-open: {failures}, letting one probe attempt through")
            }
        }
    }

    fn open(&mut self, now: Instant) {
        // A cool-down too large for `Instant` (a configuration typo) would overflow; keep the
        // breaker open as long as can be represented rather than not at all.
        let until = now
            .checked_add(self.cool_down)
            .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
            .unwrap_or(now);
        self.phase = Phase::Open { until };
    }
}

fn failures_phrase(n: u32) -> String {
    if n == 1 {
        "1 consecutive failure".to_owned()
    } else {
        format!("{n} consecutive failures")
    }
}

/// A wait as a person reads it: `4m 12s`, `1h 0m 5s`, `45s`. Rounds up to the whole second so
/// a wait that has not quite ended never reads `0s`.
pub fn human_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if d.subsec_nanos() > 0 {
        secs = secs.saturating_add(1);
    }
    let (hours, minutes, seconds) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    // Writing to a String cannot fail.
    if hours > 0 {
        let _ = write!(out, "{hours}h {minutes}m {seconds}s");
    } else if minutes > 0 {
        let _ = write!(out, "{minutes}m {seconds}s");
    } else {
        let _ = write!(out, "{seconds}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(300);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A default breaker that has just opened at `t0`.
    fn opened_at(t0: Instant) -> CircuitBreaker {
        let mut breaker = CircuitBreaker::default();
        for _ in 0..3 {
            breaker.record_failure(t0);
        }
        breaker
    }

    #[test]
    fn defaults_are_three_failures_and_five_minutes() {
        let breaker = CircuitBreaker::default();
        assert_eq!(breaker.threshold(), 3);
        assert_eq!(breaker.cool_down(), COOL_DOWN);
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
    }

    #[test]
    fn closed_admits_and_counts_failures_below_the_threshold() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::default();
        assert_eq!(breaker.may_start(t0), Admission::Admit);
        breaker.record_failure(t0);
        breaker.record_failure(t0);
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 2
            }
        );
        assert_eq!(breaker.may_start(t0), Admission::Admit);
    }

    #[test]
    fn success_while_closed_resets_the_count() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::default();
        breaker.record_failure(t0);
        breaker.record_failure(t0);
        breaker.record_success();
        breaker.record_failure(t0);
        breaker.record_failure(t0);
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 2
            }
        );
        assert_eq!(breaker.may_start(t0), Admission::Admit);
    }

    #[test]
    fn threshold_failures_open_it_for_the_cool_down() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        let until = t0 + COOL_DOWN;
        assert_eq!(breaker.state(), BreakerState::Open { until });
        assert_eq!(breaker.may_start(t0), Admission::Wait { until });
        assert_eq!(
            breaker.may_start(until - secs(1)),
            Admission::Wait { until }
        );
    }

    #[test]
    fn late_failure_while_open_does_not_extend_the_cool_down() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        breaker.record_failure(t0 + secs(100));
        assert_eq!(
            breaker.state(),
            BreakerState::Open {
                until: t0 + COOL_DOWN
            }
        );
        assert_eq!(breaker.consecutive_failures(), 4);
    }

    #[test]
    fn late_success_while_open_closes_it() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        breaker.record_success();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(breaker.may_start(t0 + secs(1)), Admission::Admit);
    }

    #[test]
    fn after_the_cool_down_exactly_one_probe_is_admitted() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        let after = t0 + COOL_DOWN;
        assert_eq!(breaker.may_start(after), Admission::AdmitProbe);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.may_start(after), Admission::AwaitProbe);
        assert_eq!(breaker.may_start(after + secs(3600)), Admission::AwaitProbe);
    }

    #[test]
    fn probe_success_closes_it() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        let after = t0 + COOL_DOWN;
        assert_eq!(breaker.may_start(after), Admission::AdmitProbe);
        breaker.record_success();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 0
            }
        );
        assert_eq!(breaker.may_start(after), Admission::Admit);
        assert_eq!(breaker.may_start(after), Admission::Admit);
    }

    #[test]
    fn probe_failure_reopens_for_another_cool_down() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        let probe_start = t0 + COOL_DOWN + secs(10);
        assert_eq!(breaker.may_start(probe_start), Admission::AdmitProbe);
        let probe_end = probe_start + secs(50);
        breaker.record_failure(probe_end);
        let until = probe_end + COOL_DOWN;
        assert_eq!(breaker.state(), BreakerState::Open { until });
        assert_eq!(breaker.may_start(probe_end), Admission::Wait { until });
        assert_eq!(breaker.consecutive_failures(), 4);
        // And the next cool-down ends in another single probe.
        assert_eq!(breaker.may_start(until), Admission::AdmitProbe);
        assert_eq!(breaker.may_start(until), Admission::AwaitProbe);
    }

    #[test]
    fn inconclusive_probe_gives_the_slot_back() {
        let t0 = Instant::now();
        let mut breaker = opened_at(t0);
        let after = t0 + COOL_DOWN;
        assert_eq!(breaker.may_start(after), Admission::AdmitProbe);
        breaker.record_inconclusive();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.may_start(after), Admission::AdmitProbe);
        assert_eq!(breaker.may_start(after), Admission::AwaitProbe);
    }

    #[test]
    fn inconclusive_outside_half_open_changes_nothing() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::default();
        breaker.record_failure(t0);
        breaker.record_inconclusive();
        assert_eq!(
            breaker.state(),
            BreakerState::Closed {
                consecutive_failures: 1
            }
        );
        let mut open = opened_at(t0);
        open.record_inconclusive();
        assert_eq!(
            open.state(),
            BreakerState::Open {
                until: t0 + COOL_DOWN
            }
        );
    }

    #[test]
    fn threshold_zero_behaves_as_one() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::new(0, secs(10));
        assert_eq!(breaker.threshold(), 1);
        assert_eq!(breaker.may_start(t0), Admission::Admit);
        breaker.record_failure(t0);
        assert_eq!(
            breaker.may_start(t0),
            Admission::Wait {
                until: t0 + secs(10)
            }
        );
    }

    #[test]
    fn zero_cool_down_goes_straight_to_a_probe() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::new(1, Duration::ZERO);
        breaker.record_failure(t0);
        assert_eq!(breaker.may_start(t0), Admission::AdmitProbe);
    }

    #[test]
    fn enormous_cool_down_does_not_panic() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::new(1, Duration::MAX);
        breaker.record_failure(t0);
        assert!(matches!(breaker.may_start(t0), Admission::Wait { .. }));
    }

    #[test]
    fn describe_reads_well_in_every_state() {
        let t0 = Instant::now();
        let mut breaker = CircuitBreaker::default();
        assert_eq!(breaker.describe(t0), "circuit breaker closed");
        breaker.record_failure(t0);
        assert_eq!(
            breaker.describe(t0),
            "circuit breaker closed: 1 consecutive failure (opens at 3)"
        );
        breaker.record_failure(t0);
        breaker.record_failure(t0);
        assert_eq!(
            breaker.describe(t0 + secs(48)),
            "circuit breaker open: 3 consecutive failures, retrying in 4m 12s"
        );
        assert_eq!(
            breaker.describe(t0 + secs(48) + Duration::from_millis(300)),
            "circuit breaker open: 3 consecutive failures, retrying in 4m 12s"
        );
        assert_eq!(
            breaker.describe(t0 + COOL_DOWN),
            "circuit breaker open: 3 consecutive failures, retrying now"
        );
        assert_eq!(breaker.may_start(t0 + COOL_DOWN), Admission::AdmitProbe);
        assert_eq!(
            breaker.describe(t0 + COOL_DOWN),
            "circuit breaker half-open: 3 consecutive failures, one probe attempt running"
        );
        breaker.record_inconclusive();
        assert_eq!(
            breaker.describe(t0 + COOL_DOWN),
            "circuit breaker half-open: 3 consecutive failures, letting one probe attempt through"
        );
    }

    #[test]
    fn human_duration_forms() {
        assert_eq!(human_duration(Duration::ZERO), "0s");
        assert_eq!(human_duration(Duration::from_millis(1)), "1s");
        assert_eq!(human_duration(secs(45)), "45s");
        assert_eq!(human_duration(secs(60)), "1m 0s");
        assert_eq!(human_duration(secs(252)), "4m 12s");
        assert_eq!(human_duration(secs(3605)), "1h 0m 5s");
        assert_eq!(human_duration(secs(90_000)), "25h 0m 0s");
        assert_eq!(
            human_duration(Duration::MAX),
            human_duration(secs(u64::MAX))
        );
    }
}
