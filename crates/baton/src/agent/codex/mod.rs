//! The Codex CLI (`@openai/codex`): where its binary is, how it is invoked, and what its
//! output and failures mean.
//!
//! [`CodexCli`] is the located CLI (its command line); [`Codex`] is its [`Dialect`]: the
//! `exec --json` parser ([`stream`]), the wording of its limits and throttling ([`limits`]) and
//! the recognition of its refusals (here). Its configuration (model provider, key variable)
//! is the user's `CODEX_HOME/config.toml`; baton passes the environment through.

pub mod limits;
pub mod stream;

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use super::claude::env_of;
use super::event::StreamEvent;
use super::{Agent, Dialect, Invocation, Resolved, Systemic};

/// The environment variable that names the binary, after `[agent] binary` in baton.toml.
pub const BIN_ENV: &str = "BATON_CODEX_BIN";

#[derive(Debug, Clone)]
pub struct CodexCli {
    pub binary: Resolved,
    pub extra_args: Vec<String>,
    /// `[agents.NAME] env`.
    pub env: Vec<(OsString, OsString)>,
}

impl CodexCli {
    /// The CLI an agent's definition asks for, located (see [`super::for_def`]): the configured
    /// binary, then `BATON_CODEX_BIN`, then `codex` on PATH, then the npm global
    /// prefix. With `lenient` (dry runs) a missing binary is only a warning.
    pub fn for_def(def: &crate::config::AgentDef, root: &Path, lenient: bool) -> Result<Arc<dyn Agent>, String> {
        let binary = CLI.for_run(def, root, lenient, "")?;
        Ok(Arc::new(CodexCli { binary, extra_args: def.args.clone(), env: env_of(def) }))
    }

    /// Finds the CLI (see [`super::locate::Cli::resolve`]).
    pub fn resolve(configured: Option<&Path>, root: &Path) -> Result<Resolved, super::locate::ResolveError> {
        CLI.resolve(configured, root)
    }
}

/// Where the Codex CLI is looked for.
pub const CLI: super::locate::Cli = super::locate::Cli { command: "codex", title: "Codex CLI", env: BIN_ENV, install: "npm install -g @openai/codex" };

impl Agent for CodexCli {
    fn dialect(&self) -> &'static dyn Dialect {
        &Codex
    }

    fn binary(&self) -> &Resolved {
        &self.binary
    }

    /// `exec --json --dangerously-bypass-approvals-and-sandbox --skip-git-repo-check [-m MODEL]
    /// <args…> -`: the last `-` makes the CLI read the whole prompt from stdin (checked with
    /// 0.171.0). The named agent and the spending cap have no Codex equivalent.
    fn args(&self, invocation: &Invocation, _prompt: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = self.binary.prefix_args.iter().map(OsString::from).collect();
        args.extend(["exec", "--json", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check"].map(OsString::from));
        if let Some(m) = &invocation.model {
            args.push("-m".into());
            args.push(m.into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args.push("-".into());
        args
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        self.env.clone()
    }
}

/// How the Codex CLI speaks: its `exec --json` output and its own messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codex;

impl Dialect for Codex {
    fn name(&self) -> &'static str {
        "Codex"
    }

    fn cli_name(&self) -> &'static str {
        "Codex CLI"
    }

    fn parse_line(&self, line: &str) -> Vec<StreamEvent> {
        stream::parse_line(line)
    }

    fn systemic_failure(&self, stderr: &str, stdout_tail: &str) -> Option<Systemic> {
        let text = format!("{stderr}\n{stdout_tail}");
        if let Some(at) = text.find("Missing environment variable: `") {
            let rest = &text[at + "Missing environment variable: `".len()..];
            let name = rest.split('`').next().unwrap_or_default();
            return Some(Systemic {
                message: format!("the Codex CLI has no API key: its model provider reads it from the environment variable {name}, which is not set"),
                help: format!("set {name} in baton's environment, or in baton.toml `[agent] env`"),
            });
        }
        if let Some(at) = text.find("Error loading config").or_else(|| text.find("Error loading configuration")) {
            let line = text[at..].lines().take(2).collect::<Vec<_>>().join(" ");
            return Some(Systemic {
                message: format!("the Codex CLI cannot read its configuration: {}", crate::report::safe::cut(&line, 300)),
                help: "fix the file it names (CODEX_HOME/config.toml, by default ~/.codex/config.toml)".into(),
            });
        }
        let unauthorized = stream::http_status(&text) == Some(401)
            || ["Not logged in", "not logged in", "no Codex credentials were found", "Run codex login", "run `codex login`", "Incorrect API key", "invalid_api_key"]
                .iter()
                .any(|s| text.contains(s));
        if unauthorized {
            return Some(Systemic {
                message: "the Codex CLI is not logged in, or its API key was refused".into(),
                help: "run `codex login` (or `printenv OPENAI_API_KEY | codex login --with-api-key`), or set the key its model provider reads".into(),
            });
        }
        if text.contains("To use Codex with your ChatGPT plan, upgrade to Plus") {
            return Some(Systemic {
                message: "this ChatGPT plan does not include Codex".into(),
                help: "upgrade the plan, or log the Codex CLI in with an API key (`codex login --with-api-key`)".into(),
            });
        }
        if text.contains("Quota exceeded. Check your plan and billing details.") {
            return Some(Systemic {
                message: "the OpenAI account's quota is exhausted (Quota exceeded)".into(),
                help: "check the account's plan and billing details".into(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::StreamSummary;

    fn agent(extra: &[&str]) -> CodexCli {
        CodexCli { binary: Resolved::plain("/bin/codex".into(), "test".into()), extra_args: extra.iter().map(|s| s.to_string()).collect(), env: vec![] }
    }

    fn args(a: &CodexCli, model: Option<&str>) -> Vec<String> {
        let invocation = Invocation { model: model.map(str::to_string), agent: Some("coder".into()), max_budget_usd: Some(1.0) };
        a.args(&invocation, "the prompt").iter().map(|a| a.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn invocation_reads_the_prompt_from_stdin() {
        assert_eq!(
            args(&agent(&[]), Some("gpt-5.5")),
            ["exec", "--json", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check", "-m", "gpt-5.5", "-"]
        );
        let plain = args(&agent(&["-c", "model_reasoning_effort=high"]), None);
        assert_eq!(plain[4..], ["-c", "model_reasoning_effort=high", "-"]);
        assert!(!plain.iter().any(|a| a.contains("prompt")), "the prompt is never an argument");
        assert!(agent(&[]).prompt_on_stdin());
        assert_eq!(agent(&[]).named_agent_file("coder"), None);
    }

    #[test]
    fn the_environment_is_recognised_when_broken() {
        let key = Codex.systemic_failure("", "Missing environment variable: `FAKE_API_KEY`.").expect("recognised");
        assert!(key.message.contains("FAKE_API_KEY") && key.help.contains("FAKE_API_KEY"), "{key:?}");
        let config = Codex
            .systemic_failure("Error loading config.toml:\n/h/config.toml:1:11: unexpected key or value, expected newline, `#`\n  |\n", "")
            .expect("recognised");
        assert!(config.message.contains("/h/config.toml:1:11"), "{config:?}");
        let login = Codex.systemic_failure("", "unexpected status 401 Unauthorized: Incorrect API key provided").expect("recognised");
        assert!(login.help.contains("codex login"), "{login:?}");
        assert!(Codex.systemic_failure("", "We’re currently experiencing high demand, which may cause temporary errors.").is_none());
        assert!(Codex.systemic_failure("", "Model metadata for `fake-model` not found. Defaulting to fallback metadata").is_none());
    }

    #[test]
    fn a_missing_key_said_in_the_session_is_systemic() {
        let mut s = StreamSummary::new();
        for line in [
            r#"{"type":"thread.started","thread_id":"t"}"#,
            r#"{"type":"turn.started"}"#,
            r#"{"type":"error","message":"Missing environment variable: `FAKE_API_KEY`."}"#,
            r#"{"type":"turn.failed","error":{"message":"Missing environment variable: `FAKE_API_KEY`."}}"#,
        ] {
            for ev in Codex.parse_line(line) {
                s.observe(&ev);
            }
        }
        assert!(Codex.systemic_in_session(&s).is_some_and(|s| s.message.contains("FAKE_API_KEY")));
    }

    #[test]
    fn a_configured_binary_that_does_not_exist_is_an_error() {
        let e = CodexCli::resolve(Some(Path::new("/nonexistent/codex")), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/codex"), "{e}");
    }
}
