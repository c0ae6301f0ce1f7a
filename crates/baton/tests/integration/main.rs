//! Integration tests: the real `baton` binary, run in temporary folders and git repositories.

mod after;
mod attempt_view;
mod agent_names;
mod check_runs;
mod ci_output;
mod cli;
mod compat;
mod control;
mod engine;
mod history;
mod hostile;
mod landing;
mod live_view;
mod manners;
mod older_plans;
mod parallel;
mod parallel_limits;
mod pipeline;
mod processes;
mod real_claude;
mod review;
mod safety;
mod support;
mod try_it;
mod verification;
mod watching;
