//! The backlog daemon (`baton pipeline`): backlog folders → design and plan → run → archive.

pub mod backlog;
mod create;
mod daemon;
mod digest;
mod ledger;
mod settle;

pub use daemon::{run, waiting, PipelineOptions};
