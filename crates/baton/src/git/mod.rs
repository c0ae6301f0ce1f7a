//! git, driven through its command line: stdin null, `LC_ALL=C`, exit codes checked, stderr
//! carried into errors. Needs git 2.30 or newer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed in {}: {stderr}", dir.display())]
    Failed { args: String, dir: PathBuf, stderr: String },
}

/// Runs git in `dir`; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

pub fn is_repo(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--git-dir"]).is_ok()
}

/// What committing the plan did.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    Yes,
    /// The plan had no changes to commit.
    NothingToCommit,
}

/// Commits the current content of one file, and only that file (whatever else is staged or
/// changed stays as it is).
pub fn commit_file(root: &Path, file: &Path, message: &str) -> Result<Committed, GitError> {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let rel = rel.to_string_lossy();
    let status = git(root, &["status", "--porcelain", "--", &rel])?;
    if status.trim().is_empty() {
        return Ok(Committed::NothingToCommit);
    }
    git(root, &["add", "--", &rel])?;
    git(root, &["commit", "-q", "--no-verify", "-m", message, "--only", "--", &rel])?;
    Ok(Committed::Yes)
}
