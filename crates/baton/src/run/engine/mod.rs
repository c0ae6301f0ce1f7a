//! The dispatcher of `baton run` (`dispatch`), its parallel side (`parallel`), and what runs
//! around the plan (`after`: hooks, smoke tests, notifications).

mod after;
mod dispatch;
mod parallel;

pub use dispatch::{run, run_plan, RunOptions};
