//! Agent CLIs behind one interface: how to invoke one, and how to read what it prints.
//!
//! Claude Code is the first implementation; other CLIs plug in behind [`Agent`].

mod adapter;
pub mod claude;
pub mod stream;

pub use adapter::{for_config, Agent, ResolveError, Resolved, Systemic};
