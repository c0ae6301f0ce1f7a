//! Integration tests: the real `baton` binary, run in temporary folders and git repositories.

mod after;
mod cli;
mod engine;
mod hostile;
mod parallel;
mod pipeline;
mod processes;
mod parallel_limits;
mod real_claude;
mod support;
