//! Finding the repository a plan belongs to: baton's files (config, stop file, logs) live at its
//! root.

use std::path::{Path, PathBuf};

/// The nearest folder at or above `start` that holds `.git` (a folder, or a file in a worktree);
/// `start` itself when there is none.
pub fn repo_root(start: &Path) -> PathBuf {
    let start = if start.as_os_str().is_empty() { Path::new(".") } else { start };
    let abs = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    abs.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or(abs)
}

/// The root for a plan file: the repository holding the plan's folder.
pub fn root_for_plan(plan: &Path) -> PathBuf {
    repo_root(plan.parent().unwrap_or(Path::new(".")))
}
