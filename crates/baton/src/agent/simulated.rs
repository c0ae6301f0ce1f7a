//! The simulated agent: baton's own stand-in for an agent CLI, to try baton with no
//! credentials, no agent CLI and no network (`baton run PLAN --agent simulated`, or
//! `[agent] kind = "simulated"` in `baton.toml`).
//!
//! It is a real child process run the way any agent is: baton starts itself again as
//! `baton __simulated-agent` ([`AGENT_ARG`]) under the same supervisor, with the prompt on
//! stdin. That process ([`agent_main`]) reads the task id, name, description and status file
//! from the prompt, appends a note to `baton-simulated/<task>.md` saying that it is a simulation
//! and quoting the task, writes the status file the prompt asks for, and speaks Claude Code's
//! `stream-json` while it does — so the stream, the verdict and the commit are baton's real ones.
//! As the prompt asks, it commits that note with git when it works in a git checkout (only that
//! file, `--no-verify`). Every text it prints starts with `simulated:`; its model is
//! `simulated`, its cost 0. It never opens a network connection, and runs
//! no program but git.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::claude;
use super::event::StreamEvent;
use super::{Agent, Dialect, Invocation, Resolved, Systemic};
use crate::policy::limit::LimitWording;

/// The hidden first argument that makes the `baton` binary act as the simulated agent.
pub const AGENT_ARG: &str = "__simulated-agent";

/// The folder, relative to the task's working copy, where the agent writes its notes.
pub const NOTES_DIR: &str = "baton-simulated";

const MODEL: &str = "simulated";

/// The simulated agent, located: this same `baton` binary.
#[derive(Debug, Clone)]
pub struct SimulatedAgent {
    binary: Resolved,
}

impl SimulatedAgent {
    /// The simulated agent for a run (see [`super::for_config`]): needs nothing but baton's own
    /// binary.
    pub fn for_config() -> Result<Arc<dyn Agent>, String> {
        let exe = std::env::current_exe().map_err(|e| format!("error: cannot find baton's own binary to run the simulated agent: {e}"))?;
        Ok(Arc::new(SimulatedAgent { binary: Resolved::plain(exe, "no model is called".into()) }))
    }
}

impl Agent for SimulatedAgent {
    fn dialect(&self) -> &'static dyn Dialect {
        &Simulated
    }

    fn binary(&self) -> &Resolved {
        &self.binary
    }

    /// Neither the model nor a named agent is passed: there are none.
    fn args(&self, _invocation: &Invocation, _prompt: &str) -> Vec<OsString> {
        vec![OsString::from(AGENT_ARG)]
    }
}

/// How the simulated agent speaks: Claude Code's `stream-json`, under its own name, so that each
/// of its lines in baton's output is labelled `[simulated]`. It has no limits and no refusals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simulated;

impl Dialect for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn cli_name(&self) -> &'static str {
        "the simulated agent"
    }

    fn parse_line(&self, line: &str) -> Vec<StreamEvent> {
        claude::stream::parse_line(line)
    }

    fn systemic_failure(&self, _stderr: &str, _stdout_tail: &str) -> Option<Systemic> {
        None
    }
}

impl LimitWording for Simulated {
    fn is_usage_limit(&self, _text: &str) -> bool {
        false
    }

    fn printed_reset(&self, _text: &str, _now: &jiff::ZonedDateTime) -> Option<(jiff::Timestamp, Option<String>)> {
        None
    }

    fn throttle_status(&self, _text: &str) -> Option<Option<u16>> {
        None
    }
}

/// What the prompt tells the simulated agent.
#[derive(Debug, Default, PartialEq)]
struct Task {
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    status_file: Option<String>,
}

/// The value of a `Label: value` line of the prompt (the built-in template's header lines).
fn field(prompt: &str, label: &str) -> Option<String> {
    prompt.lines().find_map(|line| {
        let value = line.trim_start().strip_prefix(label)?.trim();
        // A custom template may quote the value as Markdown code; an id's own backticks stay.
        let value = value.strip_prefix('`').and_then(|v| v.strip_suffix('`')).filter(|v| !v.contains('`')).unwrap_or(value).trim();
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The text under the prompt's `## The task` heading, up to the next heading.
fn description(prompt: &str) -> Option<String> {
    let mut lines = prompt.lines().skip_while(|l| l.trim() != "## The task").skip(1);
    let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("## ")).collect();
    let text = body.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn read_task(prompt: &str) -> Task {
    Task {
        id: field(prompt, "Task ID:"),
        name: field(prompt, "Task:"),
        description: description(prompt),
        status_file: field(prompt, "Status file:"),
    }
}

/// A task id as a file name: `[A-Za-z0-9._-]` kept, anything else `_`, never `.` or `..`.
fn file_name(task_id: &str) -> String {
    let safe: String = task_id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if safe.trim_matches('.').is_empty() {
        format!("task-{}.md", safe.replace('.', "_"))
    } else {
        format!("{safe}.md")
    }
}

/// The note appended for one attempt at a task.
fn note(task: &Task, id: &str, at: &str, first: bool) -> String {
    let name = task.name.as_deref().unwrap_or("(no name)");
    let quoted = task.description.as_deref().unwrap_or(name).lines().map(|l| format!("> {l}").trim_end().to_string()).collect::<Vec<_>>().join("\n");
    let head = if first { format!("# Task {id}: {name} (simulated)\n\n") } else { "\n---\n\n".to_string() };
    format!(
        "{head}This is a simulation. baton's simulated agent (`baton run --agent simulated`) wrote this \
         note at {at} instead of doing the task: no model was called, and nothing else in the \
         repository was changed. The task it stands in for:\n\n{quoted}\n"
    )
}

/// The stream-json lines of one session, printed as they happen.
struct Stream {
    session: String,
    cwd: PathBuf,
}

impl Stream {
    fn emit(&self, event: Value) {
        let mut out = std::io::stdout().lock();
        // A reader that went away (baton ended the attempt) is no reason to stop writing files.
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }

    fn init(&self) {
        self.emit(json!({
            "type": "system", "subtype": "init", "session_id": self.session, "model": MODEL,
            "cwd": self.cwd, "tools": ["Write"], "claude_code_version": concat!("baton-simulated ", env!("CARGO_PKG_VERSION")),
        }));
    }

    fn assistant(&self, block: Value) {
        self.emit(json!({
            "type": "assistant", "session_id": self.session,
            "message": {"role": "assistant", "type": "message", "model": MODEL, "content": [block],
                "usage": {"input_tokens": 0, "output_tokens": 0}},
        }));
    }

    fn text(&self, text: &str) {
        self.assistant(json!({"type": "text", "text": text}));
    }

    fn write_tool(&self, n: u32, path: &Path, content: &str, result: Result<(), String>) {
        let id = format!("simulated-tool-{n}");
        self.assistant(json!({"type": "tool_use", "id": id, "name": "Write", "input": {"file_path": path, "content": content}}));
        let (text, is_error) = match result {
            Ok(()) => (format!("simulated: wrote {}", path.display()), false),
            Err(e) => (e, true),
        };
        self.emit(json!({
            "type": "user", "session_id": self.session,
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": text, "is_error": is_error}]},
        }));
    }

    fn bash_tool(&self, n: u32, command: &str, result: Result<(), String>) {
        let id = format!("simulated-tool-{n}");
        self.assistant(json!({"type": "tool_use", "id": id, "name": "Bash", "input": {"command": command, "description": "simulated: commit the note"}}));
        let (text, is_error) = match result {
            Ok(()) => ("simulated: committed".to_string(), false),
            Err(e) => (e, true),
        };
        self.emit(json!({
            "type": "user", "session_id": self.session,
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": text, "is_error": is_error}]},
        }));
    }

    fn result(&self, text: &str, is_error: bool, turns: u32) {
        self.emit(json!({
            "type": "result", "subtype": "success", "is_error": is_error, "num_turns": turns, "result": text,
            "session_id": self.session, "total_cost_usd": 0.0, "terminal_reason": "completed", "api_error_status": null,
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            "permission_denials": [],
        }));
    }
}

/// Appends `text` to `path`, creating its folder.
fn append(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("simulated: cannot create {}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("simulated: cannot open {}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("simulated: cannot write {}: {e}", path.display()))
}

/// Runs git in `dir` (stdin null, `LC_ALL=C`); its stdout, or its stderr as the error.
fn git(dir: &Path, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("simulated: cannot run git: {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(format!("simulated: git failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// Commits the note at `rel` (and nothing else), when `dir` is a git checkout; `None` outside
/// git, where there is nothing to commit to.
fn commit(dir: &Path, rel: &Path, message: &str) -> Option<Result<(), String>> {
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    if git(dir, &[os("rev-parse"), os("--is-inside-work-tree")]).ok()? != "true" {
        return None;
    }
    Some(
        git(dir, &[os("add"), os("--"), rel.as_os_str()])
            .and_then(|_| git(dir, &[os("commit"), os("-q"), os("--no-verify"), os("-m"), std::ffi::OsStr::new(message), os("--"), rel.as_os_str()]))
            .map(|_| ()),
    )
}

/// The simulated agent's process: `baton __simulated-agent`, the prompt on stdin. Returns the
/// exit code (0 when it reported, 1 when the prompt did not say what to do or a file could not
/// be written).
pub fn agent_main() -> i32 {
    let mut prompt = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut prompt) {
        let _ = writeln!(std::io::stderr(), "simulated agent: cannot read the prompt on stdin: {e}");
        return 1;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let stream = Stream { session: format!("simulated-{}", std::process::id()), cwd: cwd.clone() };
    stream.init();
    let task = read_task(&prompt);
    let (Some(id), Some(status_file)) = (task.id.clone(), task.status_file.clone()) else {
        let text = "simulated: the prompt has no `Task ID:` and `Status file:` line (a custom [agent] prompt_template?), \
                    so the simulated agent cannot tell which task to report on; it did nothing";
        stream.text(text);
        stream.result(text, true, 1);
        return 1;
    };
    if prompt.starts_with("You are reviewing") {
        return review(&stream, &cwd, &id, Path::new(&status_file));
    }
    stream.text(&format!(
        "simulated: no model is called. Standing in for task {id}: writing a note that quotes the task to {NOTES_DIR}/{}",
        file_name(&id)
    ));

    let now = jiff::Timestamp::now();
    let at = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now).to_string();
    let rel = Path::new(NOTES_DIR).join(file_name(&id));
    let path = cwd.join(&rel);
    let text = note(&task, &id, &at, !path.exists());
    let wrote = append(&path, &text);
    stream.write_tool(1, &path, &text, wrote.clone());
    let mut turns = 2;
    if wrote.is_ok() {
        let message = format!("{id}: simulated note (no model was called)");
        if let Some(done) = commit(&cwd, &rel, &message) {
            let quote = |s: &str| crate::report::safe::shell_quote(s);
            let file = quote(&rel.display().to_string());
            stream.bash_tool(2, &format!("git add -- {file} && git commit -q --no-verify -m {} -- {file}", quote(&message)), done);
            turns += 1;
        }
    }
    let (status, message) = match &wrote {
        Ok(()) => ("completed", format!("simulated: wrote {} (no model was called; the task itself was not done)", rel.display())),
        Err(e) => ("failed", e.clone()),
    };
    let report = json!({"task_id": id, "status": status, "message": message, "timestamp": at, "plan_modified": false});
    let report_text = serde_json::to_string_pretty(&report).unwrap_or_default();
    let status_path = cwd.join(&status_file);
    if let Err(e) = std::fs::create_dir_all(status_path.parent().unwrap_or(&cwd)).and_then(|()| std::fs::write(&status_path, format!("{report_text}\n"))) {
        // The report is in the final answer too, which baton reads when the file is missing.
        stream.text(&format!("simulated: cannot write the status file {}: {e}", status_path.display()));
    }
    stream.result(&format!("{message}\n\n```json\n{report_text}\n```"), wrote.is_err(), turns);
    i32::from(wrote.is_err())
}

/// Standing in for a reviewer: no model reads anything, so the verdict is WARN with a finding
/// that says so — never PASS, which would mark the task `verified`.
fn review(stream: &Stream, cwd: &Path, id: &str, status_file: &Path) -> i32 {
    let finding = "simulated reviewer: no model was called, nothing was reviewed";
    stream.text(&format!("simulated: no model is called. Standing in for the reviewer of task {id}: WARN"));
    let verdict = json!({"task_id": id, "verdict": "WARN", "findings": [finding]});
    let text = serde_json::to_string_pretty(&verdict).unwrap_or_default();
    let path = cwd.join(status_file);
    if let Err(e) = std::fs::create_dir_all(path.parent().unwrap_or(cwd)).and_then(|()| std::fs::write(&path, format!("{text}\n"))) {
        stream.text(&format!("simulated: cannot write the status file {}: {e}", path.display()));
    }
    stream.result(&format!("{finding}\n\n```json\n{text}\n```"), false, 1);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt() -> String {
        let plan = crate::plan::parse_plan(
            "meta:\n  name: P\nsections:\n- id: s\n  name: S\n  tasks:\n  - id: '1.1'\n    name: Greet\n    description: |\n      Write hello.txt.\n      Files: hello.txt\n",
        )
        .unwrap();
        crate::run::prompt::render(
            crate::run::prompt::DEFAULT_TEMPLATE,
            &crate::run::prompt::PromptVars {
                plan: &plan,
                task: plan.task("1.1").unwrap(),
                plan_file: Path::new("plan.yaml"),
                status_file: Path::new(".claude/plans/task-status.json"),
                build_command: None,
                extra: "",
                feedback: None,
            },
        )
    }

    #[test]
    fn reads_the_task_from_the_built_in_prompt() {
        let t = read_task(&prompt());
        assert_eq!(t.id.as_deref(), Some("1.1"));
        assert_eq!(t.name.as_deref(), Some("Greet"));
        assert_eq!(t.description.as_deref(), Some("Write hello.txt.\nFiles: hello.txt"));
        assert_eq!(t.status_file.as_deref(), Some(".claude/plans/task-status.json"));
        assert_eq!(read_task("do something"), Task::default());
    }

    #[test]
    fn a_task_id_keeps_its_own_backticks() {
        // Ids may hold backticks; only a pair wrapping the whole value is Markdown.
        assert_eq!(field("Task ID: a;`id`\n", "Task ID:").as_deref(), Some("a;`id`"));
        assert_eq!(field("Task ID: `id`x\n", "Task ID:").as_deref(), Some("`id`x"));
        assert_eq!(field("Task ID: `1.1`\n", "Task ID:").as_deref(), Some("1.1"));
        assert_eq!(field("Status file: `.claude/s.json`\n", "Status file:").as_deref(), Some(".claude/s.json"));
    }

    #[test]
    fn the_note_says_it_is_a_simulation_and_quotes_the_task() {
        let t = read_task(&prompt());
        let n = note(&t, "1.1", "2026-12-01T00:00:00Z", true);
        assert!(n.starts_with("# Task 1.1: Greet (simulated)\n"), "{n}");
        assert!(n.contains("This is a simulation") && n.contains("no model was called"), "{n}");
        assert!(n.contains("> Write hello.txt.\n> Files: hello.txt\n"), "{n}");
        assert!(note(&t, "1.1", "x", false).starts_with("\n---\n"), "a retry appends");
    }

    #[test]
    fn task_ids_become_safe_file_names() {
        assert_eq!(file_name("1.1"), "1.1.md");
        assert_eq!(file_name("../x/y"), ".._x_y.md");
        assert_eq!(file_name(".."), "task-__.md");
        assert!(!file_name("a/b").contains('/'));
    }

    #[test]
    fn its_lines_read_as_claude_code_stream_json_under_its_own_name() {
        assert_eq!(Simulated.name(), "simulated");
        let ev = Simulated.parse_line(r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"simulated: done","total_cost_usd":0}"#);
        assert!(matches!(ev.as_slice(), [StreamEvent::Result(r)] if !r.is_error), "{ev:?}");
        assert!(!Simulated.is_usage_limit("You've hit your limit · resets 6pm (America/Toronto)"));
        let a = SimulatedAgent { binary: Resolved::plain("/bin/baton".into(), "no model is called".into()) };
        assert_eq!(a.args(&Invocation { model: Some("opus".into()), agent: Some("coder".into()), max_budget_usd: Some(1.0) }, "p"), vec![OsString::from(AGENT_ARG)]);
    }
}
