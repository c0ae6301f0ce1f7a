//! The dispatcher of `baton run` (`dispatch`), its parallel side (`parallel`), the working
//! tree of a sequential run (`workspace`), and what runs around the plan (`after`: hooks, smoke
//! tests, notifications).

mod after;
mod dispatch;
mod parallel;
mod workspace;

pub use dispatch::{run, run_plan, RunOptions};
pub use workspace::DirtyTree;
