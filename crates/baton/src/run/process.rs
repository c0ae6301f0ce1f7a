//! The old home of the agent's process layer, now the process supervisor
//! ([`crate::supervise`]). Kept as re-exports only, for the engine's imports.

pub use crate::supervise::{orphans, ExitInfo, SpawnError};
