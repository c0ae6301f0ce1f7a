//! What baton shows people and machines: the run events and their sinks (the terminal, the
//! run log, the JSON events, the JUnit report), and the status table and its JSON form.

pub mod agent_line;
pub mod event;
pub mod follow;
pub mod json;
pub mod junit;
mod live;
pub mod logs;
pub mod out;
pub mod render;
pub mod safe;
pub mod status;
pub mod style;
pub mod terminal;
pub mod wake;
pub mod watch;
