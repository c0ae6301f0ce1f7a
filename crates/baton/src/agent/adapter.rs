//! The interfaces every agent kind implements — [`Dialect`] (how its output reads) and
//! [`Agent`] (a located CLI and how to invoke it) — and the agent a project's `baton.toml`
//! asks for.
//!
//! Adding an agent kind is adding a module beside [`super::claude`] that implements both, and
//! one arm in [`dialect_for`] and [`for_config`]; nothing in the engine names a kind.

use super::claude;
use super::codex;
use super::gemini;
use super::command;
use super::simulated;
use super::event::StreamEvent;
use super::summary::StreamSummary;
use crate::policy::limit::LimitWording;

use std::ffi::OsString;
use std::path::PathBuf;

/// A located agent program, and how it was found (shown in the start banner).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub program: PathBuf,
    /// Arguments that come before the agent's own (a wrapper's, say).
    pub prefix_args: Vec<String>,
    pub description: String,
}

impl Resolved {
    /// What a lenient look-up (a dry run's) gives for a program it could not find.
    pub const NOT_FOUND: &'static str = "not found";

    /// It was not found (a dry run goes on to show the plan, then says the run would stop).
    pub fn is_missing(&self) -> bool {
        self.description == Self::NOT_FOUND
    }

    pub fn plain(program: PathBuf, description: String) -> Resolved {
        Resolved {
            program,
            prefix_args: Vec::new(),
            description,
        }
    }
}

/// A failure that no retry can fix: the run stops at once instead of burning attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Systemic {
    pub message: String,
    pub help: String,
}

/// How one kind of agent CLI speaks: its output read into baton's agent-neutral events, and
/// what its own messages mean. Pure — no process, no binary, no clock — so that a transcript can
/// be read back (`baton logs`) without the CLI installed.
///
/// The usage-limit and throttling recognisers come from the [`LimitWording`] supertrait:
/// [`crate::policy::limit::classify`] applies them, with baton's precedence, to the CLI's own
/// messages only. The session's cost and token counts are read by the parser, into the
/// [`super::event::ResultEvent`] of the session.
pub trait Dialect: LimitWording + Send + Sync {
    /// The prefix of its lines in verbose output: `[Claude]`.
    fn name(&self) -> &'static str;
    /// The CLI's name in messages: "Claude Code reported an error: …".
    fn cli_name(&self) -> &'static str;
    /// Reads one line of the CLI's stdout (the caller keeps lines under
    /// [`super::event::MAX_LINE_BYTES`]). Never fails: a line it cannot read is
    /// [`StreamEvent::NotJson`] or [`StreamEvent::Other`]; a blank line carries no event.
    fn parse_line(&self, line: &str) -> Vec<StreamEvent>;
    /// A failure of the environment rather than of the task (not logged in, a refusal to run
    /// as root, an invocation this CLI version rejects), recognised from what the CLI printed
    /// outside its stream: its stderr and its stdout lines that were not stream events.
    fn systemic_failure(&self, stderr: &str, stdout_tail: &str) -> Option<Systemic>;

    /// The session ended because it reached the spending cap baton gave it (Claude Code's
    /// `--max-budget-usd`): what the CLI said, when it did.
    fn spending_cap_reached(&self, _summary: &StreamSummary) -> Option<String> {
        None
    }

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

    /// Whether the CLI ends a session with a result event of its own (Claude Code's `result`):
    /// its judgement of the session, and its final answer. A plain program has none (a command
    /// agent): its final answer is the last lines it printed ([`Dialect::final_answer`]), and
    /// its exit code is its judgement — an exit other than 0 fails the attempt, whatever its
    /// status file says.
    fn has_result_event(&self) -> bool {
        true
    }

    /// The session's final answer, where a status (or a reviewer's verdict) JSON is looked for
    /// when no file holds it: the result event's text, or without result events, the last
    /// lines of text the session printed.
    fn final_answer<'s>(&self, summary: &'s StreamSummary) -> Option<&'s str> {
        if self.has_result_event() {
            summary.result().and_then(|r| r.result.as_deref())
        } else {
            Some(summary.recent_text()).filter(|t| !t.trim().is_empty())
        }
    }
}

/// What one session asks of the agent besides its prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    /// The model, when the task, the plan or baton.toml names one.
    pub model: Option<String>,
    /// One of the CLI's named agents (Claude Code's `--agent NAME`), when the task names one
    /// that its working copy defines (see [`Agent::named_agent_file`]).
    pub agent: Option<String>,
    /// The most the session may spend, in US dollars (what remains of the budget), for a CLI
    /// that can hold itself to it (Claude Code's `--max-budget-usd`).
    pub max_budget_usd: Option<f64>,
}

/// A spending cap as a command-line amount: four decimals, rounded down (never above what
/// remains), and never zero.
pub fn usd_arg(amount: f64) -> String {
    format!("{:.4}", ((amount * 10_000.0).floor() / 10_000.0).max(0.0001))
}

/// One agent CLI, located: how to invoke it. What its output means is its [`Dialect`].
pub trait Agent: Send + Sync {
    /// How its output reads.
    fn dialect(&self) -> &'static dyn Dialect;
    fn binary(&self) -> &Resolved;
    /// Arguments for one fresh, non-interactive session. The prompt is not among them for a
    /// CLI that reads it on stdin ([`Agent::prompt_on_stdin`]: no argument-length limit, not
    /// shown in `ps`); `prompt` is there for the one that must have it as an argument (a
    /// command agent's `{prompt}`).
    fn args(&self, invocation: &Invocation, prompt: &str) -> Vec<OsString>;

    /// Whether the session reads its prompt on stdin (else stdin is empty).
    fn prompt_on_stdin(&self) -> bool {
        true
    }

    /// Environment variables set for the session, besides baton's own.
    fn env(&self) -> Vec<(OsString, OsString)> {
        Vec::new()
    }

    /// Why this session cannot be started at all (a prompt too long for the argument it would
    /// go in): the run stops with this message instead of a failed `exec`, and no attempt is
    /// spent.
    fn refusal(&self, _invocation: &Invocation, _prompt: &str) -> Option<Systemic> {
        None
    }

    /// Where this CLI defines a named agent in a working copy, relative to it (Claude Code:
    /// `.claude/agents/NAME.md`); `None` when the kind has no named agents. `name` is a plain
    /// name (the plan checks it), never a path.
    fn named_agent_file(&self, _name: &str) -> Option<PathBuf> {
        None
    }

    /// The prefix of its lines in verbose output: `[Claude]`.
    fn name(&self) -> &'static str {
        self.dialect().name()
    }
}

/// The dialect of an agent kind.
pub fn dialect_for(kind: crate::config::AgentKind) -> &'static dyn Dialect {
    use crate::config::AgentKind;
    match kind {
        AgentKind::Claude => &claude::Claude,
        AgentKind::Codex => &codex::Codex,
        AgentKind::Gemini => &gemini::Gemini,
        AgentKind::Simulated => &simulated::Simulated,
        AgentKind::Command => &command::Command,
    }
}

/// The file beside a transcript that says which kind of agent wrote it (`codex`), so that
/// `baton logs` reads each attempt in its agent's dialect.
pub fn kind_file(transcript: &std::path::Path) -> PathBuf {
    transcript.with_extension("agent")
}

/// Writes the [`kind_file`] of `transcript`: never through a symbolic link or into a pipe left
/// at its path. Best effort: without it, `baton logs` reads the transcript as the default
/// agent's.
pub fn write_kind_file(transcript: &std::path::Path, kind: crate::config::AgentKind) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = kind_file(transcript);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.file_type().is_file()) {
        return;
    }
    let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path);
    if let Ok(mut f) = file {
        let _ = f.write_all(kind.as_str().as_bytes());
    }
}

/// The dialect a transcript was written in, when its [`kind_file`] says.
pub fn dialect_of_transcript(transcript: &std::path::Path) -> Option<&'static dyn Dialect> {
    use crate::config::AgentKind;
    // Read as a status file is: a regular file only, never blocking, size capped (the logs are
    // in the working copy, where an agent can leave a pipe or a huge file at that path).
    let text = crate::run::verdict::read_status_file(&kind_file(transcript)).ok()??;
    Some(dialect_for(AgentKind::named(text.trim())?))
}

/// The agent `baton.toml` makes the default, located (see [`for_def`]).
pub fn for_config(config: &crate::config::Config, root: &std::path::Path, lenient: bool) -> Result<std::sync::Arc<dyn Agent>, String> {
    let name = config.default_agent();
    let def = config.agent_def(name).ok_or_else(|| format!("error: baton.toml names the agent \"{name}\", which it does not define"))?;
    for_def(name, &def, root, lenient)
}

/// The agent named `name`, as its `[agents.NAME]` table (or `[agent]`) defines it, located.
/// The error is a full message for a person. With `lenient` (dry runs) a missing binary is
/// only a warning.
pub fn for_def(name: &str, def: &crate::config::AgentDef, root: &std::path::Path, lenient: bool) -> Result<std::sync::Arc<dyn Agent>, String> {
    use crate::config::AgentKind;
    match def.kind {
        AgentKind::Claude => claude::ClaudeCode::for_def(def, root, lenient),
        AgentKind::Codex => codex::CodexCli::for_def(def, root, lenient),
        AgentKind::Gemini => gemini::GeminiCli::for_def(def, root, lenient),
        AgentKind::Simulated => simulated::SimulatedAgent::for_config(),
        AgentKind::Command => command::CommandAgent::for_def(name, def, root, lenient),
    }
}

/// What becomes of a task's `agent: NAME` in its working copy `cwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedAgent {
    /// The working copy defines it: the session runs as it.
    Use(String),
    /// The file that would define it (relative to the working copy) is not there, or is not a
    /// regular file.
    Missing { file: PathBuf },
    /// This kind of agent has no named agents.
    Unsupported,
}

/// Looks a task's named agent up in its working copy (the checkout, or its worktree).
pub fn named_agent(agent: &dyn Agent, name: &str, cwd: &std::path::Path) -> NamedAgent {
    match agent.named_agent_file(name) {
        // A symbolic link to a regular file is one: the CLI reads through it.
        Some(file) if std::fs::metadata(cwd.join(&file)).is_ok_and(|m| m.is_file()) => NamedAgent::Use(name.to_string()),
        Some(file) => NamedAgent::Missing { file },
        None => NamedAgent::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claude() -> claude::Claude {
        claude::Claude
    }

    fn session(lines: &[&str]) -> StreamSummary {
        let mut s = StreamSummary::new();
        for l in lines {
            for ev in claude().parse_line(l) {
                s.observe(&ev);
            }
        }
        s
    }

    #[test]
    fn a_session_ended_by_its_spending_cap_is_told_apart_from_other_errors() {
        // As Claude Code 2.1.332 ends a session past --max-budget-usd.
        let capped = session(&[
            r#"{"type":"result","subtype":"error_max_budget_usd","is_error":true,"num_turns":1,"terminal_reason":"budget_exhausted","errors":["Reached maximum budget ($0.0001)"],"total_cost_usd":0.0008,"session_id":"s"}"#,
        ]);
        assert_eq!(claude().spending_cap_reached(&capped).as_deref(), Some("Reached maximum budget ($0.0001)"));
        let max_turns = session(&[r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":9,"session_id":"s"}"#]);
        assert_eq!(claude().spending_cap_reached(&max_turns), None);
        assert_eq!(claude().spending_cap_reached(&session(&NOT_LOGGED_IN)), None);
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

    #[test]
    fn a_named_agent_is_used_only_when_its_file_is_a_regular_file() {
        let d = tempfile::tempdir().unwrap();
        let code = claude::ClaudeCode { binary: Resolved::plain("/bin/claude".into(), "test".into()), extra_args: vec![], env: vec![] };
        let missing = NamedAgent::Missing { file: PathBuf::from(".claude/agents/coder.md") };
        assert_eq!(named_agent(&code, "coder", d.path()), missing);
        std::fs::create_dir_all(d.path().join(".claude/agents/coder.md")).unwrap();
        assert_eq!(named_agent(&code, "coder", d.path()), missing, "a folder is not an agent");
        std::fs::create_dir_all(d.path().join(".claude/agents")).unwrap();
        std::fs::write(d.path().join(".claude/agents/reviewer.md"), "---\nname: reviewer\n---\n").unwrap();
        assert_eq!(named_agent(&code, "reviewer", d.path()), NamedAgent::Use("reviewer".into()));
        let sim = simulated::SimulatedAgent::for_config().unwrap();
        assert_eq!(named_agent(sim.as_ref(), "reviewer", d.path()), NamedAgent::Unsupported);
    }

    #[test]
    fn a_transcript_is_read_in_the_dialect_its_kind_file_names_and_nothing_else_blocks_or_is_read() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("attempt-1.jsonl");
        assert!(dialect_of_transcript(&t).is_none(), "no kind file");
        write_kind_file(&t, crate::config::AgentKind::Codex);
        assert_eq!(dialect_of_transcript(&t).map(|d| d.name()), Some("Codex"));
        std::fs::write(kind_file(&t), "../../etc/passwd").unwrap();
        assert!(dialect_of_transcript(&t).is_none(), "not a kind");
        // A named pipe at its path neither blocks the reader nor the writer.
        std::fs::remove_file(kind_file(&t)).unwrap();
        let fifo = std::ffi::CString::new(kind_file(&t).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(dialect_of_transcript(&t).is_none());
        write_kind_file(&t, crate::config::AgentKind::Codex);
        // Nor is a symbolic link followed, or a huge file read whole.
        std::fs::remove_file(kind_file(&t)).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), kind_file(&t)).unwrap();
        write_kind_file(&t, crate::config::AgentKind::Gemini);
        assert!(!d.path().join("elsewhere").exists(), "written through a symbolic link");
        std::fs::remove_file(kind_file(&t)).unwrap();
        std::fs::File::create(kind_file(&t)).unwrap().set_len(4 << 30).unwrap();
        assert!(dialect_of_transcript(&t).is_none());
    }

    #[test]
    fn only_built_kinds_have_a_dialect() {
        assert_eq!(dialect_for(crate::config::AgentKind::Claude).name(), "Claude");
        assert_eq!(dialect_for(crate::config::AgentKind::Codex).name(), "Codex");
        assert_eq!(dialect_for(crate::config::AgentKind::Gemini).cli_name(), "Gemini CLI");
    }
}
