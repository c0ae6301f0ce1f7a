//! Claude Code: where its binary is, how it is invoked, and what its output and failures mean.
//!
//! [`ClaudeCode`] is the located CLI (its command line); [`Claude`] is its [`Dialect`]: the
//! `stream-json` parser ([`stream`]), the wording of its limits and throttling ([`limits`]) and
//! the recognition of its refusals (here). It never starts the process itself (that is
//! `run::process`).

pub mod limits;
pub mod stream;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::event::StreamEvent;
use super::{Agent, Dialect, Invocation, Resolved, Systemic};

pub use super::locate::ResolveError;

/// The environment variable that names the binary, after `[agent] binary` in baton.toml.
pub const BIN_ENV: &str = "BATON_CLAUDE_BIN";

#[derive(Debug, Clone)]
pub struct ClaudeCode {
    pub binary: Resolved,
    pub extra_args: Vec<String>,
    /// `[agents.NAME] env`.
    pub env: Vec<(OsString, OsString)>,
}

/// An agent definition's `env`, as the session's environment.
pub(crate) fn env_of(def: &crate::config::AgentDef) -> Vec<(OsString, OsString)> {
    def.env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
}

impl ClaudeCode {
    /// The CLI an agent's definition asks for, located (see [`super::for_def`]).
    pub fn for_def(def: &crate::config::AgentDef, root: &Path, lenient: bool) -> Result<std::sync::Arc<dyn Agent>, String> {
        let also = "; to try baton without it, `baton run PLAN --agent simulated` (no model is called)";
        let binary = CLI.for_run(def, root, lenient, also)?;
        Ok(std::sync::Arc::new(ClaudeCode { binary, extra_args: def.args.clone(), env: env_of(def) }))
    }

    /// Finds the CLI (see [`super::locate::Cli::resolve`]).
    pub fn resolve(configured: Option<&Path>, root: &Path) -> Result<Resolved, ResolveError> {
        CLI.resolve(configured, root)
    }
}

/// Where Claude Code is looked for.
pub const CLI: super::locate::Cli = super::locate::Cli {
    command: "claude",
    title: "Claude Code CLI",
    env: BIN_ENV,
    install: "npm install -g @anthropic-ai/claude-code",
};

impl Agent for ClaudeCode {
    fn dialect(&self) -> &'static dyn Dialect {
        &Claude
    }

    fn binary(&self) -> &Resolved {
        &self.binary
    }

    fn args(&self, invocation: &Invocation, _prompt: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = self.binary.prefix_args.iter().map(OsString::from).collect();
        // No prompt argument: in --print mode the CLI reads the prompt from stdin.
        args.extend(
            ["--dangerously-skip-permissions", "--print", "--output-format", "stream-json", "--verbose"].map(OsString::from),
        );
        if let Some(m) = &invocation.model {
            args.push("--model".into());
            args.push(m.into());
        }
        if let Some(a) = &invocation.agent {
            args.push("--agent".into());
            args.push(a.into());
        }
        if let Some(usd) = invocation.max_budget_usd {
            args.push("--max-budget-usd".into());
            args.push(super::adapter::usd_arg(usd).into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        self.env.clone()
    }

    /// The project's subagents, which `--agent NAME` makes the session's own agent.
    fn named_agent_file(&self, name: &str) -> Option<PathBuf> {
        Some(Path::new(".claude/agents").join(format!("{name}.md")))
    }
}

/// How Claude Code speaks: its `stream-json` output and its own messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claude;

impl Dialect for Claude {
    fn name(&self) -> &'static str {
        "Claude"
    }

    fn cli_name(&self) -> &'static str {
        "Claude Code"
    }

    fn parse_line(&self, line: &str) -> Vec<StreamEvent> {
        stream::parse_line(line)
    }

    /// `--max-budget-usd` ended the session: `subtype: error_max_budget_usd`, `terminal_reason:
    /// budget_exhausted`, `errors: ["Reached maximum budget ($0.0001)"]` (2.1.332).
    fn spending_cap_reached(&self, summary: &crate::agent::StreamSummary) -> Option<String> {
        let r = summary.result()?;
        let capped = r.subtype == "error_max_budget_usd" || r.terminal_reason.as_deref() == Some("budget_exhausted");
        capped.then(|| r.errors.first().cloned().unwrap_or_else(|| "reached its maximum budget".into()))
    }

    fn systemic_failure(&self, stderr: &str, stdout_tail: &str) -> Option<Systemic> {
        let text = format!("{stderr}\n{stdout_tail}");
        if text.contains("cannot be used with root/sudo privileges") {
            return Some(Systemic {
                message: "Claude Code refuses --dangerously-skip-permissions when run as root".into(),
                help: "if this machine is a sandbox (CI, a container), set IS_SANDBOX=1 in baton's environment, \
                       e.g. `IS_SANDBOX=1 baton run PLAN`; otherwise run baton as an ordinary user"
                    .into(),
            });
        }
        if text.contains("--output-format=stream-json requires --verbose") {
            return Some(Systemic {
                message: "this Claude Code version rejects baton's invocation".into(),
                help: "update Claude Code (npm install -g @anthropic-ai/claude-code)".into(),
            });
        }
        if text.contains("Invalid API key") || text.contains("Please run /login") || text.contains("Not logged in") {
            return Some(Systemic {
                message: "Claude Code is not logged in".into(),
                help: "run `claude` once and log in, or set ANTHROPIC_API_KEY".into(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> ClaudeCode {
        ClaudeCode {
            binary: Resolved::plain("/bin/claude".into(), "test".into()),
            extra_args: vec![],
            env: vec![],
        }
    }

    fn args(model: Option<&str>, named: Option<&str>) -> Vec<String> {
        let invocation = Invocation { model: model.map(str::to_string), agent: named.map(str::to_string), max_budget_usd: None };
        agent().args(&invocation, "").iter().map(|a| a.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn invocation_matches_the_documented_command_line() {
        assert_eq!(
            args(Some("opus"), None),
            ["--dangerously-skip-permissions", "--print", "--output-format", "stream-json", "--verbose", "--model", "opus"]
        );
        assert!(!args(None, None).iter().any(|a| a == "--model" || a == "--agent" || a == "--max-budget-usd"));
    }

    #[test]
    fn a_spending_cap_is_passed_rounded_down_to_a_hundredth_of_a_cent() {
        let capped = |usd: f64| {
            let invocation = Invocation { max_budget_usd: Some(usd), ..Invocation::default() };
            let a: Vec<String> = agent().args(&invocation, "").iter().map(|a| a.to_str().unwrap().to_string()).collect();
            a[a.iter().position(|x| x == "--max-budget-usd").unwrap() + 1].clone()
        };
        assert_eq!(capped(0.0177), "0.0177");
        assert_eq!(capped(1.23456), "1.2345");
        assert_eq!(capped(0.00001), "0.0001", "never a cap of zero");
    }

    #[test]
    fn a_named_agent_is_passed_as_agent() {
        assert_eq!(
            args(Some("opus"), Some("code-reviewer")),
            ["--dangerously-skip-permissions", "--print", "--output-format", "stream-json", "--verbose", "--model", "opus", "--agent", "code-reviewer"]
        );
        assert_eq!(args(None, Some("coder"))[5..], ["--agent", "coder"]);
        assert_eq!(agent().named_agent_file("coder"), Some(PathBuf::from(".claude/agents/coder.md")));
    }

    #[test]
    fn root_refusal_is_recognised_and_explained() {
        let s = Claude
            .systemic_failure("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n", "")
            .unwrap();
        assert!(s.help.contains("IS_SANDBOX=1"));
        assert!(Claude.systemic_failure("some other error", "").is_none());
    }

    #[test]
    fn a_relative_configured_binary_is_taken_from_the_repository_root() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tools")).unwrap();
        let bin = d.path().join("tools/claude");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = ClaudeCode::resolve(Some(Path::new("tools/claude")), d.path()).unwrap();
        assert_eq!(r.program, bin);
        assert!(r.program.is_absolute());
    }

    #[test]
    fn a_configured_binary_that_does_not_exist_is_an_error() {
        let e = ClaudeCode::resolve(Some(Path::new("/nonexistent/claude")), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/claude"), "{e}");
    }
}
