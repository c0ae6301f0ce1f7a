//! The interface every agent CLI implements, where its binary was found, and the agent a
//! project's `baton.toml` asks for.

use super::claude;
use super::stream::StreamSummary;

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

    /// The same, said by the CLI inside its session rather than on stderr: Claude Code reports
    /// "Not logged in · Please run /login" as a synthetic assistant message and an error
    /// result. Only the CLI's own words are weighed — synthetic messages, and the text of an
    /// error result of a session that made no tool call — never the agent's prose, which may
    /// quote such a message from the project it works on.
    fn systemic_in_session(&self, summary: &StreamSummary) -> Option<Systemic> {
        let mut said = summary.synthetic_texts().join("\n");
        if let Some(text) = summary.result().filter(|r| r.is_error && summary.tool_uses() == 0).and_then(|r| r.result.as_deref()) {
            said.push('\n');
            said.push_str(text);
        }
        if said.trim().is_empty() {
            return None;
        }
        self.systemic_failure("", &said)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::stream::parse_line;

    fn claude() -> claude::ClaudeCode {
        claude::ClaudeCode { binary: Resolved::plain("/bin/claude".into(), "test".into()), extra_args: vec![] }
    }

    fn session(lines: &[&str]) -> StreamSummary {
        let mut s = StreamSummary::new();
        for l in lines {
            for ev in parse_line(l) {
                s.observe(&ev);
            }
        }
        s
    }

    /// What the real CLI prints without credentials: a synthetic assistant message and an
    /// error result with the same text, then exit 1.
    const NOT_LOGGED_IN: [&str; 3] = [
        r#"{"type":"system","subtype":"init","session_id":"s","model":"claude-sonnet-4-5","cwd":"/w","tools":[]}"#,
        r#"{"type":"assistant","message":{"id":"m","model":"<synthetic>","role":"assistant","type":"message","content":[{"type":"text","text":"Not logged in · Please run /login"}]},"session_id":"s","error":"authentication_failed"}"#,
        r#"{"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"Not logged in · Please run /login","total_cost_usd":0,"session_id":"s"}"#,
    ];

    #[test]
    fn not_logged_in_said_in_the_session_is_systemic() {
        let s = claude().systemic_in_session(&session(&NOT_LOGGED_IN)).expect("recognised");
        assert!(s.message.contains("not logged in"), "{s:?}");
        assert!(s.help.contains("ANTHROPIC_API_KEY") && s.help.contains("log in"), "{s:?}");
        // The error result alone (no synthetic message) is enough.
        assert!(claude().systemic_in_session(&session(&[NOT_LOGGED_IN[0], NOT_LOGGED_IN[2]])).is_some());
    }

    #[test]
    fn the_agent_quoting_the_message_is_not_systemic() {
        let quoting = [
            r#"{"type":"assistant","message":{"model":"claude-sonnet-4-5","content":[{"type":"text","text":"Fixed the 'Not logged in · Please run /login' banner"}]}}"#,
            r#"{"type":"result","subtype":"success","is_error":false,"num_turns":4,"result":"Fixed the 'Not logged in · Please run /login' banner"}"#,
        ];
        assert!(claude().systemic_in_session(&session(&quoting)).is_none());
        let worked_then_errored = [
            r#"{"type":"assistant","message":{"model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"t","name":"Bash","input":{"command":"grep -r 'Not logged in' src"}}]}}"#,
            r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":9,"result":"src/ui.ts: Not logged in · Please run /login"}"#,
        ];
        assert!(claude().systemic_in_session(&session(&worked_then_errored)).is_none());
    }
}
