//! The process supervisor: every command baton starts — agents, hooks, smoke tests,
//! notification commands — runs through here, one way.
//!
//! A command starts in a process group of its own under the guard (`baton __guard`, a child
//! subreaper that ends the command and everything it started when it ends, when baton asks, or
//! when baton dies — even by `kill -9`), and is run and ended by one [`Policy`]: grace before
//! SIGKILL, leak timeout and drain cap for output after the end, whether leftovers are killed,
//! guarded or not, total and idle deadlines. The deadlines and a stop stay in force while
//! output drains.
//!
//! - `policy`: the [`Policy`] and its constructor per kind of command;
//! - `child`: [`Supervised`], one running command: spawn, lines, deadlines, terminate, kill;
//! - `run`: [`run_to_end`], a short command run to its end with its output handed over;
//! - `lines`: output read as bounded lines;
//! - `guard`: the guard process and its protocol with baton;
//! - `orphans`: baton as a child subreaper, sweeping up what a dead guard left.
//!
//! It must not know what a command is for, its output format, tasks or plans.

mod child;
pub mod guard;
mod lines;
pub mod orphans;
mod policy;
mod run;

pub use child::{CommandSpec, Deadline, ExitInfo, Input, Output, SpawnError, Supervised};
pub use lines::{Line, Stream};
pub use policy::{own_binary, Policy, DRAIN_CAP, LEAK_TIMEOUT};
pub use run::{run_to_end, Ended, Finished};
