//! Finding the repository a plan belongs to: baton's files (config, stop file, logs) live at its
//! root. And whether a run may use git there.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// The nearest folder at or above `start` that holds `.git` (a folder, or a file in a worktree);
/// outside git (`[run] commit = false`), the nearest that holds `baton.toml`; else `start`.
pub fn repo_root(start: &Path) -> PathBuf {
    let start = if start.as_os_str().is_empty() { Path::new(".") } else { start };
    let abs = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let holding = |name: &str| abs.ancestors().find(|d| d.join(name).exists()).map(Path::to_path_buf);
    holding(".git").or_else(|| holding(crate::config::FILE_NAME)).unwrap_or(abs)
}

/// The root for a plan file: the repository holding the plan's folder.
pub fn root_for_plan(plan: &Path) -> PathBuf {
    repo_root(plan.parent().unwrap_or(Path::new(".")))
}

/// How a run treats git.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitUse {
    /// In a repository: each task's work and the plan state are committed.
    Commit,
    /// `[run] commit = false`: the user wants no git; baton makes no git call at all.
    Off,
}

/// Committing was asked for (the default) but `root` is not in a git repository. A run that
/// went on would report success and leave no history, so it must not start.
#[derive(Debug, thiserror::Error)]
#[error("{} is not in a git repository, and baton commits each task's work there", root.display())]
pub struct NotARepository {
    pub root: PathBuf,
}

impl NotARepository {
    /// What the person can do about it.
    pub fn help(&self) -> &'static str {
        "run `git init` there (and commit your files first), or set `commit = false` under `[run]` in baton.toml to run without git"
    }
}

/// Whether a run at `root` uses git. Decided before anything is written, so a refusal leaves
/// the folder as it was. With `[run] commit = false` git is not even looked for.
pub fn git_use(root: &Path, config: &Config) -> Result<GitUse, NotARepository> {
    if !config.run.commit {
        return Ok(GitUse::Off);
    }
    if crate::git::is_repo(root) {
        Ok(GitUse::Commit)
    } else {
        Err(NotARepository { root: root.to_path_buf() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_outside_git_is_refused_unless_commits_are_off() {
        let d = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        let e = git_use(d.path(), &config).unwrap_err();
        assert!(e.to_string().contains("not in a git repository"), "{e}");
        assert!(e.help().contains("commit = false"));
        config.run.commit = false;
        assert_eq!(git_use(d.path(), &config).unwrap(), GitUse::Off);
    }
}
