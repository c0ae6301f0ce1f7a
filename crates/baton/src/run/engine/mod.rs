//! `baton run`'s engine: `setup` (everything before the first task), `state` (the run as
//! data: phase, breaker, back-offs, pauses, what may start, what an end means — pure),
//! `dispatch` (the loop between the state, the attempts and the effects), `record` (the
//! plan edits), `workspace` (where tasks run: the folder, in place, or worktrees), `after`
//! (hooks, smoke tests, the notification) and `dry_run`.

mod after;
mod dispatch;
mod dry_run;
mod record;
mod setup;
mod state;
mod verification;
mod workspace;

pub use setup::{run, run_plan, RunOptions};
pub use workspace::DirtyTree;
pub(crate) use workspace::refusal;
