//! What baton shows people and machines: the run events and their sinks (the terminal, the
//! run log), and the status table and its JSON form.

pub mod event;
mod live;
pub mod logs;
pub mod out;
pub mod status;
pub mod terminal;
