//! The plan file: its YAML model, validation, the dependency graph and in-place editing.

mod check;
mod file;
pub mod graph;
mod model;
mod save;
pub(crate) mod yaml;

pub(crate) use check::parse_with_tree;
pub(crate) use model::edit_distance;
pub use check::{advice, parse_plan, warnings_in, Advice, Diagnostic, PlanError};
pub use file::{PlanFile, SaveOutcome, TaskField};
pub use model::{derived_section_status, Meta, Plan, Section, Status, Task, TaskId, Validation, MAX_SECONDS};
pub use save::{remove_stale_temps, write_atomic, write_atomic_via, TEMP_MARK};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
