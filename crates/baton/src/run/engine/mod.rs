//! The dispatcher of `baton run` (`dispatch`) and its parallel side (`parallel`).

mod dispatch;
mod parallel;

pub use dispatch::{run, run_plan, RunOptions};
