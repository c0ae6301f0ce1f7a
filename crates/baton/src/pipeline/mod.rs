//! The backlog daemon (`baton pipeline`): backlog folders → design and plan → run → archive.

pub mod backlog;
mod create;
mod daemon;

pub use daemon::{run, PipelineOptions};
