//! git, driven through its command line. Needs git 2.30 or newer.

mod command;
pub mod copyback;
pub mod worktree;

pub use command::{commit_file, commit_paths, exclude_locally, git, git_bytes, git_output, is_repo, take_notices, Committed, GitError};
