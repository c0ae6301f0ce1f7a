//! `baton run`: the dispatcher, one attempt's executor (its process is `crate::supervise`'s), the
//! stop signal, the per-plan lock, the status protocol, and the attempt records.

pub(crate) mod attempt;
pub mod engine;
pub mod lock;
pub mod process;
pub mod prompt;
pub mod record;
pub mod review;
pub mod schedule;
pub mod stop;
pub mod verdict;
pub mod verify;

pub use engine::{run, run_plan, RunOptions};
