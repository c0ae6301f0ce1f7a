//! After the plan: the smoke tests, the notification of how a run ended, and the hooks
//! around a run. Declarations and re-exports only.

pub mod hooks;
pub mod notify;
pub mod smoke;

pub use hooks::{run_hook, HookOutcome};
pub use notify::{
    redact, send, send_within, Counts, Notice, NotifyError, RunEnding, WebhookFailure,
    NOTIFY_TIMEOUT,
};
pub use smoke::{run_smoke, SmokeOutcome, SmokeSpec, COMPAT_PORTS, COMPAT_SPEC};
