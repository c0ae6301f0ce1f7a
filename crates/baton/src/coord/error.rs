use std::path::PathBuf;

/// What can go wrong while coordinating agents.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {waited_ms} ms waiting for the claims lock {} (held by {holder})", lock.display())]
    LockTimeout { lock: PathBuf, waited_ms: u128, holder: String },
    #[error("cannot encode {}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is outside the repository; claim files by their path inside the repository (e.g. src/main.rs)")]
    OutsideRepo { path: String },
    #[error("{path:?} does not name a file in the repository")]
    NotAFile { path: String },
    #[error("{path} is inside .git; only working-tree files can be claimed")]
    GitInternal { path: String },
    #[error(
        "{path} is inside another agent's worktree; claim files by their path inside the repository (e.g. src/main.rs)"
    )]
    OtherWorktree { path: String },
    #[error("{} is not valid UTF-8; only UTF-8 paths can be claimed", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("invalid agent id {id:?}: use letters, digits, '.', '_' and '-', not starting with '.'")]
    InvalidAgentId { id: String },
    #[error("{path} is claimed by agent {agent_id} (task {task_id}), not by {caller}; only the holder can release it")]
    NotHolder { path: String, agent_id: String, task_id: String, caller: String },
    #[error("cannot run git")]
    GitSpawn(#[source] std::io::Error),
    #[error("cannot find the main checkout from {}: `git {args}` failed: {stderr}", dir.display())]
    Git { args: String, dir: PathBuf, stderr: String },
}

impl CoordError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CoordError {
        let path = path.into();
        move |source| CoordError::Io { action, path, source }
    }
}
