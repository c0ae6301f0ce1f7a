//! The Gemini CLI (`@google/gemini-cli`, observed with 0.61.0): where its binary is, how it is
//! invoked, and what its output and failures mean.
//!
//! [`GeminiCli`] is the located CLI (its command line and environment); [`Gemini`] is its
//! [`Dialect`]: the `-o stream-json` parser ([`stream`]), the wording of its limits and
//! throttling ([`limits`]) and the recognition of its refusals (here). Like Claude Code's
//! module, it never starts the process itself.
//!
//! Two habits of the CLI that baton relies on knowing: it takes its prompt from stdin when
//! stdin is not a terminal (no `-p`: a prompt of any length, never in `ps`), and SIGTERM or
//! SIGINT end it with exit 0 and no `result` line — which the summary reads as
//! [`crate::agent::SessionOutcome::NoResult`], never as success.

pub mod limits;
pub mod stream;

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use super::claude::env_of;
use super::event::StreamEvent;
use super::{Agent, Dialect, Invocation, Resolved, Systemic};

/// The environment variable that names the binary, after `[agent] binary` in baton.toml.
pub const BIN_ENV: &str = "BATON_GEMINI_BIN";

#[derive(Debug, Clone)]
pub struct GeminiCli {
    pub binary: Resolved,
    /// `[agents.NAME] args`, after baton's own.
    pub extra_args: Vec<String>,
    /// `[agents.NAME] env`.
    pub env: Vec<(OsString, OsString)>,
}

impl GeminiCli {
    /// The CLI an agent's definition asks for, located (see [`super::for_def`]): the configured
    /// binary, then `BATON_GEMINI_BIN`, then `gemini` on PATH, then the npm global
    /// prefix. With `lenient` (dry runs) a missing binary is only a warning.
    pub fn for_def(def: &crate::config::AgentDef, root: &Path, lenient: bool) -> Result<Arc<dyn Agent>, String> {
        let binary = CLI.for_run(def, root, lenient, "")?;
        Ok(Arc::new(GeminiCli { binary, extra_args: def.args.clone(), env: env_of(def) }))
    }

    /// Finds the CLI (see [`super::locate::Cli::resolve`]).
    pub fn resolve(configured: Option<&Path>, root: &Path) -> Result<Resolved, super::locate::ResolveError> {
        CLI.resolve(configured, root)
    }
}

/// Where the Gemini CLI is looked for.
pub const CLI: super::locate::Cli = super::locate::Cli { command: "gemini", title: "Gemini CLI", env: BIN_ENV, install: "npm install -g @google/gemini-cli" };

impl Agent for GeminiCli {
    fn dialect(&self) -> &'static dyn Dialect {
        &Gemini
    }

    fn binary(&self) -> &Resolved {
        &self.binary
    }

    /// `-o stream-json --yolo [-m MODEL] <args…>`. No prompt and no `-p`: with stdin not a
    /// terminal the CLI runs one non-interactive session on what stdin holds (checked with
    /// 0.61.0). `--yolo` approves every tool call, as Claude Code's
    /// `--dangerously-skip-permissions` does. The budget (the CLI has no spending cap) and a
    /// named agent (it has none) are not passed.
    fn args(&self, invocation: &Invocation, _prompt: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = self.binary.prefix_args.iter().map(OsString::from).collect();
        args.extend(["-o", "stream-json", "--yolo"].map(OsString::from));
        if let Some(m) = &invocation.model {
            args.push("-m".into());
            args.push(m.into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }

    /// `GEMINI_CLI_TRUST_WORKSPACE=true`: without it the CLI refuses a folder the user never
    /// trusted interactively (exit 55) — and every worktree baton makes is such a folder. It
    /// lifts the CLI's one guard against a project's own `.gemini/` settings and tools: with
    /// `--yolo` the session runs every tool call, in a working copy of the plan's repository,
    /// without asking; run baton only on repositories you trust, as with any agent.
    /// `GEMINI_CLI_NO_RELAUNCH=true`: one node process instead of two (by default the CLI
    /// relaunches itself with a bigger heap, and a SIGTERM to the first process does not stop
    /// the session). The agent's own `env` comes last and may override both.
    fn env(&self) -> Vec<(OsString, OsString)> {
        let mut env = vec![
            (OsString::from("GEMINI_CLI_TRUST_WORKSPACE"), OsString::from("true")),
            (OsString::from("GEMINI_CLI_NO_RELAUNCH"), OsString::from("true")),
        ];
        env.extend(self.env.iter().cloned());
        env
    }
}

/// How the Gemini CLI speaks: its `stream-json` output and its own messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gemini;

impl Dialect for Gemini {
    fn name(&self) -> &'static str {
        "Gemini"
    }

    fn cli_name(&self) -> &'static str {
        "Gemini CLI"
    }

    fn parse_line(&self, line: &str) -> Vec<StreamEvent> {
        stream::parse_line(line)
    }

    fn systemic_failure(&self, stderr: &str, stdout_tail: &str) -> Option<Systemic> {
        let text = format!("{stderr}\n{stdout_tail}");
        if text.contains("is not running in a trusted directory") {
            return Some(Systemic {
                message: "the Gemini CLI refuses to run in a folder it does not trust (exit 55)".into(),
                help: "baton sets GEMINI_CLI_TRUST_WORKSPACE=true for its sessions: check that the agent's `env` in baton.toml \
                       does not set it to something else"
                    .into(),
            });
        }
        if text.contains("must specify the GEMINI_API_KEY environment variable") || text.contains("Please set an Auth method") {
            return Some(Systemic {
                message: "the Gemini CLI has no credentials".into(),
                help: "set GEMINI_API_KEY in baton's environment (or the agent's `env` in baton.toml), or run `gemini` once and log in".into(),
            });
        }
        if text.contains("API key not valid") {
            return Some(Systemic {
                message: "the Gemini API rejects the API key".into(),
                help: "check GEMINI_API_KEY (https://aistudio.google.com/apikey)".into(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(env: &[(&str, &str)]) -> GeminiCli {
        GeminiCli {
            binary: Resolved::plain("/bin/gemini".into(), "test".into()),
            extra_args: vec!["--debug".into()],
            env: env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect(),
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn invocation_is_stream_json_yolo_with_the_prompt_on_stdin() {
        let a = agent(&[]);
        let invocation = Invocation { model: Some("gemini-2.5-pro".into()), agent: Some("coder".into()), max_budget_usd: Some(1.0) };
        assert_eq!(strings(a.args(&invocation, "the prompt")), ["-o", "stream-json", "--yolo", "-m", "gemini-2.5-pro", "--debug"]);
        assert_eq!(strings(a.args(&Invocation::default(), "p")), ["-o", "stream-json", "--yolo", "--debug"]);
        assert!(a.prompt_on_stdin());
        assert_eq!(a.named_agent_file("coder"), None);
        assert_eq!(a.name(), "Gemini");
    }

    #[test]
    fn the_session_trusts_its_folder_runs_in_one_process_and_the_agents_env_comes_last() {
        let env: Vec<(String, String)> = agent(&[("GEMINI_API_KEY", "k"), ("GEMINI_CLI_NO_RELAUNCH", "false")])
            .env()
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [("GEMINI_CLI_TRUST_WORKSPACE", "true"), ("GEMINI_CLI_NO_RELAUNCH", "true"), ("GEMINI_API_KEY", "k"), ("GEMINI_CLI_NO_RELAUNCH", "false")]
        );
    }

    const UNTRUSTED: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-untrusted.stderr.txt");
    const NO_KEY: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-no-api-key.stderr.txt");
    const RETRY_5H_ERR: &str = include_str!("../../../tests/fixtures/agent-transcripts/gemini-0.61-retry5h.stderr.txt");

    #[test]
    fn refusals_of_the_environment_are_systemic() {
        let s = Gemini.systemic_failure(UNTRUSTED, "").expect("untrusted folder");
        assert!(s.message.contains("does not trust") && s.help.contains("GEMINI_CLI_TRUST_WORKSPACE"), "{s:?}");
        let s = Gemini.systemic_failure(NO_KEY, "").expect("no key");
        assert!(s.help.contains("GEMINI_API_KEY"), "{s:?}");
        assert!(Gemini.systemic_failure(RETRY_5H_ERR, "").is_none());
        assert!(Gemini.systemic_failure("", "").is_none());
    }

    #[test]
    fn a_configured_binary_is_found_or_named_in_the_error() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tools")).unwrap();
        let bin = d.path().join("tools/gemini");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = GeminiCli::resolve(Some(Path::new("tools/gemini")), d.path()).unwrap();
        assert_eq!(r.program, bin);
        let e = GeminiCli::resolve(Some(Path::new("/nonexistent/gemini")), d.path()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/gemini") && e.to_string().contains("baton.toml"), "{e}");
    }
}
