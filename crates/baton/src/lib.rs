//! baton: a plan orchestrator for AI coding agents.
//!
//! A YAML plan breaks software work into small tasks; baton gives each task to a coding-agent
//! CLI in a fresh session, reads back a structured result, records it in the plan, commits, and
//! goes on. The binary (`src/main.rs`) only parses the command line and maps results to exit
//! codes; everything else lives here.

pub mod after;
pub mod agent;
pub mod config;
pub mod control;
pub mod coord;
pub mod error;
pub mod exec;
pub mod exit;
pub mod fsx;
pub mod git;
pub mod init;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub(crate) mod procfs;
pub mod report;
pub mod root;
pub mod run;
pub mod serve;
pub mod store;
pub mod supervise;
