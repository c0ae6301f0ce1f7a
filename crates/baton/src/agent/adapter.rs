//! The interface every agent CLI implements, where its binary was found, and the agent a
//! project's `baton.toml` asks for.

use super::claude;

use std::ffi::OsString;
use std::path::PathBuf;

/// A located agent program, and how it was found (shown in the start banner).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub program: PathBuf,
    /// Arguments that come before the agent's own (e.g. `npx`'s package name).
    pub prefix_args: Vec<String>,
    pub description: String,
}

impl Resolved {
    pub fn plain(program: PathBuf, description: String) -> Resolved {
        Resolved {
            program,
            prefix_args: Vec::new(),
            description,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the agent binary {} (set in {origin}) does not exist or is not executable", path.display())]
    Configured { path: PathBuf, origin: &'static str },
    #[error("no Claude Code CLI found; tried {}", tried.join(", "))]
    NotFound { tried: Vec<String> },
}

/// A failure that no retry can fix: the run stops at once instead of burning attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Systemic {
    pub message: String,
    pub help: String,
}

/// One agent CLI.
pub trait Agent: Send + Sync {
    /// The prefix of its lines in verbose output: `[Claude]`.
    fn name(&self) -> &'static str;
    fn binary(&self) -> &Resolved;
    /// Arguments for one fresh, non-interactive session. The prompt is not among them: it
    /// comes on the agent's stdin (no argument-length limit, not shown in `ps`).
    fn args(&self, model: Option<&str>) -> Vec<OsString>;
    /// A failure of the environment rather than of the task, recognised from the output.
    fn systemic_failure(&self, stderr: &str, stdout_tail: &str) -> Option<Systemic>;
}

/// The agent `baton.toml` asks for, located. The error is a full message for a person. With
/// `lenient` (dry runs) a missing binary is only a warning.
pub fn for_config(config: &crate::config::Config, root: &std::path::Path, lenient: bool) -> Result<std::sync::Arc<dyn Agent>, String> {
    use crate::config::AgentKind;
    match config.agent.kind {
        AgentKind::Claude => match claude::ClaudeCode::resolve(config.agent.binary.as_deref(), root) {
            Ok(binary) => Ok(std::sync::Arc::new(claude::ClaudeCode { binary, extra_args: config.agent.extra_args.clone() })),
            Err(e) if lenient => {
                eprintln!("warning: {e}");
                Ok(std::sync::Arc::new(claude::ClaudeCode {
                    binary: Resolved::plain("claude".into(), "not found".into()),
                    extra_args: Vec::new(),
                }))
            }
            Err(e) => Err(format!(
                "error: {e}\n  help: install Claude Code (npm install -g @anthropic-ai/claude-code), or name the binary in baton.toml `[agent] binary` or {}",
                claude::BIN_ENV
            )),
        },
        other => Err(format!(
            "error: baton.toml `[agent] kind = \"{}\"` is not built yet; use \"claude\"",
            format!("{other:?}").to_lowercase()
        )),
    }
}
