//! What baton shows people and machines: the run events and their sinks (the terminal, the
//! run log, the JSON events, the JUnit report), the status table and its JSON form, and the
//! run history read back (`history`, `cost`).

pub mod agent_line;
pub mod event;
pub mod follow;
pub mod history;
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
