//! Agent CLIs as data: how to invoke one ([`Agent`]), and how to read what it prints
//! ([`Dialect`]: its stream parser, its limit and throttle wording, its refusals), behind one
//! interface, into agent-neutral events ([`event`]) and a session summary ([`summary`]).
//!
//! Claude Code is the first implementation ([`claude`]); [`simulated`] is baton's own stand-in
//! that calls no model (to try baton without credentials); another CLI is another module beside
//! them, and nothing outside this module names a kind.

mod adapter;
pub mod claude;
pub mod codex;
pub mod command;
pub mod event;
mod roster;
pub mod gemini;
pub mod locate;
pub mod simulated;
pub mod summary;

pub use adapter::{dialect_for, dialect_of_transcript, for_config, for_def, kind_file, named_agent, write_kind_file, Agent, Dialect, Invocation, NamedAgent, Resolved, Systemic};
pub use event::StreamEvent;
pub use roster::{Member, Roster};
pub use summary::{SessionOutcome, StreamSummary};
