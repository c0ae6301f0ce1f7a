//! `baton init`: a commented example plan (`plan.yaml`) and `baton.toml` in the repository root
//! (the current folder outside git), a look at what running the real agent needs (the Claude
//! Code CLI, credentials), and the command to run next.
//!
//! It never overwrites a file unless told to (`--force`), checks everything before it writes
//! anything, and never downloads or installs anything: it says what is missing and how to get it.

use std::path::{Path, PathBuf};

use crate::agent::claude::{ClaudeCode, BIN_ENV};
use crate::exit::Exit;

/// The example plan's file name.
pub const PLAN_FILE: &str = "plan.yaml";

/// What `baton init` was asked for.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Where to start looking for the repository (the current folder).
    pub dir: PathBuf,
    /// Replace an existing `plan.yaml` / `baton.toml`.
    pub force: bool,
}

const PLAN: &str = r#"# An example baton plan, written by `baton init`. Edit it, or replace it with your own.
#
# baton gives each task to a fresh agent session, in plan order (or as `depends_on` allows),
# reads back the agent's report, records it here and commits. It edits only the fields it owns
# (status, attempts, last_error, completed_at, result_message) in place: your comments stay.
#
#   baton check plan.yaml                    # validate it
#   baton run plan.yaml --agent simulated    # try it: no model is called, no credentials needed
#   baton run plan.yaml                      # the real thing, with Claude Code
#   baton status plan.yaml                   # where it stands
meta:
  name: Example plan
  description: A small first plan that writes a greeting tool in three steps
  max_attempts_default: 2         # attempts per task before it is marked failed
sections:
- id: greeting
  name: Greeting
  status: pending                 # derived from its tasks; baton keeps it current
  tasks:
  - id: '1.1'                     # ids are text: quote them, 1.1 and 1.10 are different tasks
    name: Write the greeting
    status: pending               # pending | in_progress | completed | failed | skipped
    description: 'Create hello.txt containing the line "Hello from baton". Files: hello.txt'
  - id: '1.2'
    name: Add a greeting script
    status: pending
    depends_on: ['1.1']           # starts once 1.1 is completed
    description: >
      Create greet.sh, an executable shell script that prints the contents of hello.txt.
      Files: greet.sh
- id: docs
  name: Documentation
  status: pending
  tasks:
  - id: '2.1'
    name: Document the script
    status: pending
    depends_on: ['1.2']
    description: 'Create GREETING.md explaining how to run greet.sh. Files: GREETING.md'
"#;

const CONFIG_HEAD: &str = r#"# baton's settings for this repository, written by `baton init`. Every setting is optional:
# a commented line shows the default. See README.md, "Configuration".

[agent]
# Who does the tasks: "claude" (the Claude Code CLI), "codex" (the Codex CLI), "gemini" (the
# Gemini CLI), "command" (any program, see README.md "Agents") or "simulated" (baton's
# stand-in, which calls no model and writes a note per task; the same as
# `baton run PLAN --agent simulated`). More agents, a task's `agent: NAME` and failover when
# one hits its usage limit: [agents.NAME] tables and `fallback`, README.md "Agents".
# kind = "claude"
# The Claude Code CLI; `claude` on PATH when unset.
# binary = "/usr/local/bin/claude"
# model = "sonnet"
# The project's build and test command, named to the agent in its prompt.
# build_command = "cargo test"

[run]
# Per task: the longest an attempt may take, and the longest the agent may stay silent.
# timeout_seconds = 600
# idle_timeout_seconds = 300
# max_attempts = 3
# How many agents may run at once with --parallel.
# jobs = 3
"#;

const CONFIG_GIT: &str = r#"# Commit each task's work and the plan's state to git.
# commit = true
"#;

const CONFIG_NO_GIT: &str = r#"# Not a git repository when `baton init` ran: baton runs without git and commits nothing.
# Run `git init`, commit your files and delete this line to have each task committed.
commit = false
"#;

const CONFIG_TAIL: &str = r#"
[smoke]
# A command run once every task has completed (a failure ends the run with exit 5).
# command = "make test"

[verify]
# Checks run in the task's checkout after the agent reports it completed; a failing one fails
# the attempt, and its output goes into the next attempt's prompt.
# commands = ["cargo test"]
# timeout_seconds = 600
# A completion without any change: "warn" (recorded and shown), "fail" or "off".
# require_changes = "warn"

[budget]
# US dollars. A plan's budget over all its runs (a plan's meta.budget_usd wins), and one
# run's (`baton run --max-cost` wins). No attempt starts that the budget cannot pay for: the
# run ends with exit 6. `baton cost` and `baton history` show what was spent.
# plan_usd = 25.0
# run_usd = 5.0
# What an attempt is expected to cost until the plan has recorded attempts (0: any amount left).
# attempt_estimate_usd = 0.0
# Give each Claude Code session `--max-budget-usd` set to what remains.
# cap_sessions = true
"#;

/// The `baton.toml` that `init` writes.
fn config_text(git: bool) -> String {
    [CONFIG_HEAD, if git { CONFIG_GIT } else { CONFIG_NO_GIT }, CONFIG_TAIL].concat()
}

/// How the real agent could be used here: the CLI and the credentials, as far as baton can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReadiness {
    /// Where the Claude Code CLI was found, or what was tried.
    pub cli: Result<String, String>,
    /// Which credentials were found, or `None`.
    pub credentials: Option<String>,
}

impl AgentReadiness {
    /// Looks, touching nothing and calling no network: `[agent] binary`, `BATON_CLAUDE_BIN` or
    /// `claude` on PATH; `ANTHROPIC_API_KEY`, `CLAUDE_CODE_OAUTH_TOKEN` or a login kept in
    /// `~/.claude/.credentials.json`.
    pub fn look(configured: Option<&Path>, root: &Path) -> AgentReadiness {
        let cli = ClaudeCode::resolve(configured, root).map(|r| r.description).map_err(|e| e.to_string());
        let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
        let credentials = if set("ANTHROPIC_API_KEY") {
            Some("ANTHROPIC_API_KEY is set".to_string())
        } else if set("CLAUDE_CODE_OAUTH_TOKEN") {
            Some("CLAUDE_CODE_OAUTH_TOKEN is set".to_string())
        } else {
            std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".claude/.credentials.json"))
                .filter(|p| p.is_file())
                .map(|p| format!("a Claude Code login ({})", p.display()))
        };
        AgentReadiness { cli, credentials }
    }

    pub fn ready(&self) -> bool {
        self.cli.is_ok() && self.credentials.is_some()
    }

    /// What to tell the person, line by line.
    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.cli {
            Ok(at) => out.push(format!("Claude Code CLI: {at}")),
            Err(why) => {
                out.push(format!("Claude Code CLI: missing — {why}"));
                out.push(format!(
                    "  to install it: npm install -g @anthropic-ai/claude-code (needs Node.js), or name the binary in baton.toml [agent] binary or {BIN_ENV}"
                ));
            }
        }
        match &self.credentials {
            Some(what) => out.push(format!("credentials: {what}")),
            None => {
                out.push("credentials: missing — no ANTHROPIC_API_KEY, no CLAUDE_CODE_OAUTH_TOKEN, no login in ~/.claude".into());
                out.push("  to add them: run `claude` once and log in, or set ANTHROPIC_API_KEY".into());
            }
        }
        out
    }
}

/// `baton init`.
pub fn init(opts: &InitOptions) -> Exit {
    let start = std::path::absolute(&opts.dir).unwrap_or_else(|_| opts.dir.clone());
    let git = crate::git::is_repo(&start);
    if git && crate::git::git(&start, &["rev-parse", "--is-bare-repository"]).is_ok_and(|out| out.trim() == "true") {
        crate::errln!(
            "error: {} is a bare git repository: it has no working tree for a plan or for the agents' work\n  help: run `baton init` in a clone (`git clone {} work && cd work`)\nNothing was written.",
            start.display(),
            start.display()
        );
        return Exit::InvalidInput;
    }
    let root = match git {
        true => crate::root::repo_root(&start),
        false => start.clone(),
    };
    let plan = root.join(PLAN_FILE);
    let config = root.join(crate::config::FILE_NAME);
    let shown = |p: &Path| p.strip_prefix(&start).map_or_else(|_| p.display().to_string(), |r| r.display().to_string());

    let existing: Vec<&PathBuf> = [&plan, &config].into_iter().filter(|p| p.symlink_metadata().is_ok()).collect();
    if !opts.force && !existing.is_empty() {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        crate::errln!(
            "error: {} already exist{}; baton init overwrites nothing\n  help: pass --force to replace {}, or check your plan with `baton check {}`\nNothing was written.",
            names.join(" and "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" },
            shown(&plan),
        );
        return Exit::InvalidInput;
    }

    for (path, text) in [(&plan, PLAN.to_string()), (&config, config_text(git))] {
        if let Err(e) = crate::plan::write_atomic(path, text.as_bytes()) {
            crate::errln!("error: cannot write {}: {e}", path.display());
            return Exit::InvalidInput;
        }
    }
    let names = format!("{PLAN_FILE} and {}", crate::config::FILE_NAME);
    match git {
        true => crate::outln!("wrote {names} in the repository root {}", root.display()),
        false => {
            crate::outln!("wrote {names} in {}", root.display());
            crate::outln!("not a git repository: baton.toml sets `[run] commit = false`, so baton runs here without git and commits nothing");
        }
    }
    if git {
        let message = "baton init: example plan.yaml and baton.toml";
        match crate::git::commit_paths(&root, &[plan.clone(), config.clone()], message) {
            Ok(_) => crate::outln!("committed them (`{message}`): baton starts only on a clean working tree"),
            Err(e) => crate::outln!(
                "warning: could not commit them: {}\n  help: commit them yourself (`git add {} {} && git commit`): baton refuses to start while they are uncommitted",
                crate::exit::render_chain(&e),
                shown(&plan),
                shown(&config)
            ),
        }
    }

    let ready = AgentReadiness::look(None, &root);
    crate::outln!();
    for line in ready.lines() {
        crate::outln!("{line}");
    }
    crate::outln!();
    let plan_arg = crate::report::safe::shell_quote(&shown(&plan));
    if ready.ready() {
        crate::outln!("next: baton run {plan_arg}");
        crate::outln!("      (or try it first with no model called: baton run {plan_arg} --agent simulated)");
    } else {
        crate::outln!("next: baton run {plan_arg} --agent simulated");
        crate::outln!("      the simulated agent calls no model and needs no credentials: it writes a note per task saying so");
    }
    Exit::Completed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_plan_is_valid() {
        let plan = crate::plan::parse_plan(PLAN).expect("the example plan parses");
        assert_eq!(plan.tasks().count(), 3);
    }

    #[test]
    fn the_example_config_parses_with_and_without_git() {
        let c = crate::config::Config::parse(&config_text(true), Path::new("baton.toml")).unwrap();
        assert_eq!(c, crate::config::Config::default(), "every line commented: the defaults");
        let c = crate::config::Config::parse(&config_text(false), Path::new("baton.toml")).unwrap();
        assert!(!c.run.commit);
    }

    #[test]
    fn readiness_says_what_is_missing_and_how_to_get_it() {
        let r = AgentReadiness { cli: Err("no Claude Code CLI found".into()), credentials: None };
        assert!(!r.ready());
        let text = r.lines().join("\n");
        assert!(text.contains("npm install -g @anthropic-ai/claude-code"), "{text}");
        assert!(text.contains("ANTHROPIC_API_KEY") && text.contains("log in"), "{text}");
        let r = AgentReadiness { cli: Ok("/bin/claude (on PATH)".into()), credentials: Some("ANTHROPIC_API_KEY is set".into()) };
        assert!(r.ready());
        assert!(!r.lines().join("\n").contains("missing"));
    }
}
