//! The errors that end a run or the pipeline (or stop it from starting), each with the help a
//! person needs to get past it, and the one place they become exit codes.
//!
//! The engine and the pipeline return [`Error`]; it reaches the terminal and the run log as an
//! event (`Reporter::error`), or the terminal alone when it happens before there is a run log.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::exit::Exit;

/// An error with a way out.
pub trait Help: std::fmt::Display {
    /// What to do about it, when there is something to say.
    fn help(&self) -> Option<String>;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// A plan that cannot be read or is not valid; the text is its rendered diagnostics (file,
    /// line, fix), and ends with what was (not) changed.
    #[error("{0}")]
    Plan(String),
    #[error("--resume-from {id}: no task '{id}' in {}{}", plan.display(), crate::control::did_you_mean(near))]
    NoSuchTask { id: String, plan: PathBuf, near: Vec<String> },
    /// The agent baton.toml asks for cannot be used; the text says why and how to fix it.
    #[error("{0}")]
    Agent(String),
    #[error("{error}")]
    GitUse { error: String, help: &'static str },
    #[error("--parallel needs git (each task runs in its own worktree), and baton.toml sets `[run] commit = false`")]
    ParallelNeedsGit,
    #[error("{0}")]
    PlanLocked(String),
    #[error("{0}")]
    CheckoutLocked(String),
    #[error("{}", crate::run::engine::refusal(.0))]
    Dirty(BTreeSet<PathBuf>),
    #[error("cannot read the working tree's state: {0}")]
    TreeState(String),
    #[error("{0}")]
    Setup(String),
    #[error("{message}")]
    Systemic { message: String, help: String },
    #[error("cannot start the agent: {0}")]
    AgentSpawn(String),
    #[error("{what}")]
    Protected { what: String, help: String },
    #[error("{0}; no task was started")]
    BeforeHook(String),
    #[error("{0}")]
    Prompt(String),
    #[error("{0}")]
    Worktree(String),
    #[error("{0}; the run stops (no new task starts)")]
    Commit(String),
    /// The run history cannot be opened and a budget depends on it.
    #[error("{error}")]
    Store { error: String, help: String },
    #[error("an attempt ended abnormally (a bug in baton): {0}")]
    Bug(String),
    // The pipeline's own.
    #[error("{0} is not inside a git repository; the pipeline commits each item it finishes")]
    PipelineNeedsGit(PathBuf),
    #[error("another baton pipeline is already running in {0}")]
    PipelineRunning(PathBuf),
    #[error("{message}")]
    PipelineSystemic { message: String, help: String },
}

impl Help for Error {
    fn help(&self) -> Option<String> {
        Some(match self {
            // Each problem carries its own help.
            Error::Config(crate::config::ConfigError::Invalid { .. }) => return None,
            Error::Config(crate::config::ConfigError::Read { .. }) => "check the file's permissions".into(),
            Error::Plan(_) | Error::Agent(_) | Error::Dirty(_) | Error::Setup(_) | Error::TreeState(_) | Error::Bug(_) => return None,
            Error::NoSuchTask { plan, .. } => format!("`baton status {}` lists the task ids", plan.display()),
            Error::GitUse { help, .. } => format!("{help}\nNothing was run or changed."),
            Error::ParallelNeedsGit => "run without --parallel, or remove `commit = false`".into(),
            Error::PlanLocked(_) => "wait for it to finish, or stop it with `baton stop`".into(),
            Error::CheckoutLocked(_) => {
                "wait for it to finish or stop it (`baton stop`), or run this plan in a checkout of its own (`git worktree add …`)".into()
            }
            Error::Systemic { help, .. } => format!("{help}\nThe run stopped; no attempt was spent. Fix this, then run again."),
            Error::AgentSpawn(_) => "check the agent's `binary` in baton.toml ([agent], or its [agents.NAME]), or BATON_CLAUDE_BIN / BATON_CODEX_BIN / BATON_GEMINI_BIN".into(),
            Error::Protected { help, .. } | Error::Store { help, .. } => help.clone(),
            Error::BeforeHook(_) => "fix `[run] before_command` in baton.toml, or remove it".into(),
            Error::Prompt(m) if m.contains("[review]") => "fix `[review] prompt_template` in baton.toml, or remove it".into(),
            Error::Prompt(_) => "fix `[agent] prompt_template` in baton.toml, or remove it".into(),
            Error::Worktree(_) => "see `git worktree list`; `git worktree prune` clears worktrees whose folder is gone".into(),
            Error::Commit(_) => "the work is in the working tree, and the next `baton run` commits it".into(),
            Error::PipelineNeedsGit(_) => {
                "run it in a git repository (`git init` makes one), or set `[run] commit = false` in baton.toml; nothing was created or changed".into()
            }
            Error::PipelineRunning(_) => "stop it with `baton stop`".into(),
            Error::PipelineSystemic { help, .. } => format!("{help}\nThe pipeline stopped; fix this, then start it again."),
        })
    }
}

impl Error {
    /// The exit code this error ends the command with: one table for every command.
    pub fn exit(&self) -> Exit {
        match self {
            // Not a broken set-up: the task waits for the user's change to be committed.
            Error::Protected { .. } => Exit::Stopped,
            _ => Exit::InvalidInput,
        }
    }
}

impl From<crate::plan::PlanError> for Error {
    fn from(e: crate::plan::PlanError) -> Error {
        Error::Plan(e.render())
    }
}

/// Tells the error that ended a command — to every sink of its reporter, or to the terminal
/// alone when it ended before it had one — and gives its exit code.
pub fn end(reporter: Option<crate::report::event::Reporter>, e: Error) -> Exit {
    let reporter = reporter.unwrap_or_else(crate::report::terminal::error_reporter);
    reporter.error(&e);
    reporter.emit(crate::report::event::EventKind::Exit { code: e.exit().code() });
    reporter.finish();
    e.exit()
}

/// `error: …` and its `help: …` lines, as the terminal and the run log show them.
pub fn render(e: &dyn Help) -> String {
    let mut out = e.to_string();
    if !out.starts_with("error:") {
        out = format!("error: {out}");
    }
    if let Some(help) = e.help() {
        let mut lines = help.lines();
        if let Some(first) = lines.next() {
            out.push_str(&format!("\n  help: {first}"));
        }
        for l in lines {
            out.push_str(&format!("\n{l}"));
        }
    }
    out
}
