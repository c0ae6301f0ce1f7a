//! Retry/backoff, the circuit breaker and the rate-limit verdict: plain data and pure
//! functions. Nothing here reads the clock, sleeps or does I/O; callers pass `now` in.

pub mod backoff;
pub mod budget;
pub mod breaker;
pub mod failover;
pub mod limit;

pub use backoff::{jitter_from_seed, RetryBackoff, Throttle, ThrottleBackoff};
pub use breaker::{Admission, BreakerState, CircuitBreaker};
pub use limit::{
    classify, wake_at, LimitEvidence, LimitVerdict, LimitWording, Throttling, UsageLimit, WAKE_FALLBACK,
    WAKE_MARGIN,
};
