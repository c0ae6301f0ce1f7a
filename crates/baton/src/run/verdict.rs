//! The task status protocol (agent → baton) and the verdict on one attempt.
//!
//! The agent reports through a JSON status file; when the file is missing, the same object may
//! stand in its final result text. This module reads that report and weighs it against how the
//! process ended and what the CLI itself said (limits, throttling, refusals). Pure except for
//! reading and removing the status file, which never blocks whatever the agent left there.
//! It also shapes an agent's message for the plan (one line, capped).

use std::path::Path;

use serde_json::Value;

use crate::agent::{Dialect, SessionOutcome, StreamSummary, Systemic};
use crate::plan::Status;
use crate::policy::limit::{self, LimitEvidence, LimitVerdict, Throttling, UsageLimit};

/// What the agent said in its status report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub status: Status,
    pub message: String,
    pub plan_modified: bool,
    /// Where the report was found, for messages.
    pub source: ReportSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSource {
    File,
    ResultText,
}

/// Why an attempt ended without the agent deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The agent exited by itself.
    Exited,
    TotalTimeout { seconds: u64 },
    IdleTimeout { seconds: u64 },
    /// baton ended it (second Ctrl+C, SIGTERM).
    Interrupted,
    /// The executor lost it before the agent ended (a cluster's node died): not the agent's
    /// doing, nothing of it is known.
    Lost { message: String },
}

/// The outcome of one attempt, as the engine acts on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Done(Report),
    /// Counts as a failed attempt.
    Failed { message: String },
    /// A usage limit: wait for the reset; not an attempt.
    Limited(UsageLimit),
    /// Server-side throttling: back off; not an attempt.
    Throttled(Throttling),
    /// The environment is broken; the run stops.
    Systemic(Systemic),
    /// baton ended the agent; the task goes back to pending, not an attempt.
    Interrupted,
    /// The session reached the spending cap baton gave it: the budget is spent; the task goes
    /// back to pending, not an attempt.
    Capped { message: String },
    /// The executor lost the attempt (a cluster's node died, the job never started): the task
    /// goes back to pending, not an attempt.
    Lost { message: String },
}

/// Everything known about a finished attempt.
pub struct Evidence<'a> {
    pub task_id: &'a str,
    pub status_file: &'a Path,
    /// The status file as the agent was told it (relative to its working copy), for messages.
    pub status_shown: &'a Path,
    pub ended: Ended,
    pub exit: Option<crate::run::process::ExitInfo>,
    /// How the agent's CLI speaks: its limit wording and its name, for messages.
    pub dialect: &'a dyn Dialect,
    pub summary: &'a StreamSummary,
    pub stderr_tail: &'a str,
    pub systemic: Option<Systemic>,
    /// The prompt the agent was given: a status JSON in its final answer that is the prompt's
    /// own example, echoed back, is no report.
    pub prompt: Option<&'a str>,
}

pub fn judge(e: &Evidence<'_>, now: &jiff::ZonedDateTime) -> Verdict {
    if e.ended != Ended::Exited && e.exit.is_some_and(|x| x.success()) {
        // baton asked the agent to end (a timeout, a stop), but it finished on its own first —
        // the real CLI ends a running tool on SIGTERM and carries on to the end of its task.
        // Work it reports done is done: running it again would waste it.
        let final_answer = e.dialect.final_answer(e.summary);
        if let Ok(report) = read_report(e.task_id, e.status_file, e.status_shown, final_answer, e.prompt) {
            if report.status != Status::Failed {
                return Verdict::Done(report);
            }
        }
    }
    match &e.ended {
        Ended::Interrupted => return Verdict::Interrupted,
        Ended::Lost { message } => return Verdict::Lost { message: message.clone() },
        Ended::TotalTimeout { seconds } => {
            return Verdict::Failed {
                message: format!("timed out: the attempt ran longer than the total timeout of {seconds} s and was ended"),
            }
        }
        Ended::IdleTimeout { seconds } => {
            return Verdict::Failed {
                message: format!("hung: no output from the agent for {seconds} s (idle timeout); it was ended"),
            }
        }
        Ended::Exited => {}
    }
    let final_answer = e.dialect.final_answer(e.summary);
    let report = read_report(e.task_id, e.status_file, e.status_shown, final_answer, e.prompt);
    // A program with no result event of its own judges its session by its exit code.
    if let Some(x) = e.exit.filter(|x| !x.success() && !e.dialect.has_result_event()) {
        return Verdict::Failed { message: failed_exit(x, e.stderr_tail, &report) };
    }
    // A valid report is the agent's word on its task and wins over anything the output hints.
    if let Ok(report) = report {
        return Verdict::Done(report);
    }
    if let Some(s) = &e.systemic {
        return Verdict::Systemic(s.clone());
    }
    if let Some(message) = e.dialect.spending_cap_reached(e.summary) {
        return Verdict::Capped { message };
    }
    let evidence = LimitEvidence {
        result_text: e.summary.result().and_then(|r| r.result.clone()),
        result_is_error: e.summary.result().is_some_and(|r| r.is_error),
        api_error_status: e.summary.result().and_then(|r| r.api_error_status),
        synthetic_texts: e.summary.synthetic_texts().to_vec(),
        rate_limit_rejected_resets_at: e.summary.rate_limit_rejected().and_then(|r| r.resets_at),
        stderr_tail: Some(e.stderr_tail.to_string()).filter(|s| !s.is_empty()),
    };
    match limit::classify(&evidence, e.dialect, now) {
        LimitVerdict::Usage(u) => return Verdict::Limited(u),
        LimitVerdict::Throttled(t) => return Verdict::Throttled(t),
        LimitVerdict::None => {}
    }
    match report {
        Ok(report) => Verdict::Done(report),
        Err(message) => {
            let exit = match e.exit {
                Some(x) if !x.success() => format!(" The agent ended with {x}."),
                _ => String::new(),
            };
            let cli = match e.summary.outcome() {
                SessionOutcome::ErrorResult { message: Some(m), .. } => {
                    format!(" {} reported an error: {}", e.dialect.cli_name(), crate::report::status::cut(&m, 300))
                }
                SessionOutcome::PermissionDenied { denials } => format!(
                    " Tool calls were refused: {}.",
                    denials.iter().map(|d| d.tool_name.as_str()).collect::<Vec<_>>().join(", ")
                ),
                // The Gemini CLI ends with exit 0 on SIGTERM or SIGINT, before its result.
                SessionOutcome::NoResult if e.exit.is_some_and(|x| x.success()) && e.dialect.has_result_event() => {
                    format!(" {} exited 0 without its final result event: it was stopped, not finished", e.dialect.cli_name())
                }
                _ => String::new(),
            };
            let stderr = last_line(e.stderr_tail)
                .map(|l| format!(" Last stderr line: {}", crate::report::status::cut(l, 200)))
                .unwrap_or_default();
            // The CLI's own error says most; it leads when there is one. Else an agent that
            // ended badly (a crash) leads with how it ended: that is the reason, and it must
            // survive the cut of a one-line view.
            let message = if !cli.is_empty() {
                format!("{}. Also: {message}.{exit}{stderr}", cli.trim().trim_end_matches('.'))
            } else if !exit.is_empty() {
                format!("{}{stderr}. Also: {message}.", exit.trim().trim_end_matches('.'))
            } else {
                format!("{message}.{stderr}")
            };
            Verdict::Failed { message }
        }
    }
}

/// How many of the last stderr lines a failed exit's message quotes.
const STDERR_LINES_QUOTED: usize = 3;

/// The failure of a program that ended with `exit`: the exit, its last stderr lines, and what
/// its report said, if it wrote one.
fn failed_exit(exit: crate::run::process::ExitInfo, stderr_tail: &str, report: &Result<Report, String>) -> String {
    let mut message = format!("the agent ended with {exit}");
    let mut lines: Vec<&str> = stderr_tail.lines().rev().map(str::trim).filter(|l| !l.is_empty()).take(STDERR_LINES_QUOTED).collect();
    lines.reverse();
    if !lines.is_empty() {
        let quoted: Vec<String> = lines.iter().map(|l| crate::report::status::cut(l, 200)).collect();
        message.push_str(&format!(". Last stderr lines: {}", quoted.join(" | ")));
    }
    if let Ok(r) = report {
        message.push_str(&format!(". Its report said {}: {}", r.status.as_str(), crate::report::status::cut(&r.message, 300)));
    }
    message.push('.');
    message
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// The most of a status file baton reads. A report is a few lines; the cap only keeps a
/// runaway agent (or a huge sparse file) from exhausting memory, and is wide enough that a
/// very long message still reaches the attempt record whole.
pub const STATUS_FILE_MAX_BYTES: u64 = 128 << 20;

/// Whether `report` is the example report of the agent's `prompt`, copied or echoed: the same
/// task, status and message (its placeholder text), whatever its time stamp or layout.
pub fn is_prompt_example(report: &Value, prompt: Option<&str>) -> bool {
    let Some(example) = prompt.and_then(find_status_json) else { return false };
    let text = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    ["task_id", "status", "message"].iter().all(|k| text(report, k) == text(&example, k))
}

/// Reads the status file, falling back to a JSON object in the result text. The error says
/// where baton looked and what it found.
pub fn read_report(task_id: &str, status_file: &Path, shown: &Path, result_text: Option<&str>, prompt: Option<&str>) -> Result<Report, String> {
    match read_status_file(status_file) {
        Ok(Some(text)) => {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                format!("the status file {} is not valid JSON ({e})", shown.display())
            })?;
            if is_prompt_example(&value, prompt) {
                return Err(format!("no status report: {} holds the example from the agent's prompt, copied", shown.display()));
            }
            report_from(task_id, &value, ReportSource::File)
                .map_err(|m| format!("the status file {}: {m}", shown.display()))
        }
        Ok(None) => {
            let found = result_text.and_then(find_status_json);
            // An agent that prints its input (a command agent, a CLI that echoes) shows the
            // prompt's example report: that is no report of its own.
            if found.as_ref().is_some_and(|f| is_prompt_example(f, prompt)) {
                return Err(format!(
                    "no status report: the agent wrote no {} and the only status JSON in its output is the example from its prompt, echoed back",
                    shown.display()
                ));
            }
            match found {
                Some(value) => report_from(task_id, &value, ReportSource::ResultText)
                    .map_err(|m| format!("the status JSON in the agent's final answer: {m}")),
                None => Err(format!(
                    "no status report: the agent wrote no {} and its final answer holds no status JSON",
                    shown.display()
                )),
            }
        }
        Err(e) => Err(format!("cannot read the status file {}: {e}", shown.display())),
    }
}

/// Why a status file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("it is larger than {} MiB", STATUS_FILE_MAX_BYTES >> 20)]
    TooLarge,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The status file's text; `None` when there is none. Nothing here can block: the agent may
/// leave anything at that path (a named pipe would block a plain open until a writer came, and
/// with it the whole runtime, signals included), so only a regular file is opened, without
/// following a symlink and without waiting, and only so much of it is read.
pub fn read_status_file(path: &Path) -> Result<Option<String>, StatusFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => return Err(StatusFileError::NotAFile(kind_of(&m))),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Swapped for a symlink since the look above.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(StatusFileError::NotAFile("a symbolic link")),
        Err(e) => return Err(e.into()),
    };
    // What was opened is what counts: the path may have been swapped since the look above.
    let m = file.metadata()?;
    if !m.file_type().is_file() {
        return Err(StatusFileError::NotAFile(kind_of(&m)));
    }
    let mut bytes = Vec::new();
    file.take(STATUS_FILE_MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > STATUS_FILE_MAX_BYTES {
        return Err(StatusFileError::TooLarge);
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| StatusFileError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")))
}

/// Removes the status file (whatever the agent left there, except a folder); whether there
/// was one. Unlinking never opens the file, so a named pipe cannot block it.
pub fn remove_status_file(path: &Path) -> Result<bool, StatusFileError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => Err(StatusFileError::NotAFile("a folder")),
        Ok(_) => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn kind_of(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The most of an agent's message that goes into the plan (`result_message`, `last_error`).
/// The plan is read by people and agents and committed after every task: a message is one
/// line there, and a long one is cut; the attempt record keeps it whole.
pub const PLAN_TEXT_MAX_BYTES: usize = 2048;

/// `message` as it goes into the plan: one line (line breaks and other control characters
/// become spaces), at most [`PLAN_TEXT_MAX_BYTES`] of it, and when cut, where the rest is:
/// `… (N bytes; full text: `<where>`)`.
pub fn plan_text(message: &str, full_text_at: &str) -> String {
    let mut line = String::with_capacity(message.len().min(PLAN_TEXT_MAX_BYTES + 1));
    for word in message.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()) {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        if line.len() > PLAN_TEXT_MAX_BYTES {
            break;
        }
    }
    if line.len() <= PLAN_TEXT_MAX_BYTES {
        return line;
    }
    let mut cut = PLAN_TEXT_MAX_BYTES;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line.truncate(cut);
    format!("{}… ({} bytes; full text: `{full_text_at}`)", line.trim_end(), message.len())
}


/// Finds the task status object (PRODUCT.md §2) in the agent's final text: the last JSON
/// object with both a `task_id` and a `status` key, wherever it stands — in a ```json fence,
/// amid prose, next to other braces. Its values are not checked here.
///
/// An object nested inside a matching one is part of it, not a separate candidate.
pub fn find_status_json(text: &str) -> Option<Value> {
    find_object_with(text, &["task_id", "status"])
}

/// The last JSON object in `text` that has every one of `keys` (see [`find_status_json`]):
/// also how a reviewer's verdict object is found in its final answer.
pub fn find_object_with(text: &str, keys: &[&str]) -> Option<Value> {
    let mut found = None;
    let mut from = 0;
    while let Some(offset) = text[from..].find('{') {
        let start = from + offset;
        // Objects delimit themselves, so the stream reader stops right after the first value,
        // whatever prose follows it.
        let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) if has_keys(&value, keys) => {
                from = start + values.byte_offset();
                found = Some(value);
            }
            // Not JSON from here, or another object: a status object may still start at the
            // next brace, inside it or after it. `{` is one byte, so this is a char boundary.
            _ => from = start + 1,
        }
    }
    found
}

fn has_keys(value: &Value, keys: &[&str]) -> bool {
    value.as_object().is_some_and(|object| keys.iter().all(|k| object.contains_key(*k)))
}

/// A status object and the task id it names (a number is read as its text): the shape both
/// an agent's report and a reviewer's verdict share.
pub(crate) fn object_of_task(v: &Value) -> Result<(&serde_json::Map<String, Value>, String), String> {
    let Some(obj) = v.as_object() else {
        return Err("it is not a JSON object".into());
    };
    let id = match obj.get("task_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("\"task_id\" is not a string".into()),
        None => return Err("it has no \"task_id\"".into()),
    };
    Ok((obj, id))
}

fn report_from(task_id: &str, v: &Value, source: ReportSource) -> Result<Report, String> {
    let (obj, reported_id) = object_of_task(v)?;
    if reported_id != task_id {
        return Err(format!("it reports task '{reported_id}', not the task that was run ('{task_id}')"));
    }
    let status = match obj.get("status").and_then(Value::as_str) {
        Some("completed") => Status::Completed,
        Some("failed") => Status::Failed,
        Some("skipped") => Status::Skipped,
        Some(other) => return Err(format!("unknown \"status\" '{other}' (expected completed, failed or skipped)")),
        None => return Err("it has no \"status\"".into()),
    };
    let message = obj.get("message").and_then(Value::as_str).unwrap_or("").trim().to_string();
    let plan_modified = obj.get("plan_modified").and_then(Value::as_bool).unwrap_or(false);
    Ok(Report {
        status,
        message,
        plan_modified,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Gemini CLI session cut short before its `result` line (0.61.0 exits 0 on SIGTERM).
    fn gemini_cut_short() -> StreamSummary {
        let mut s = StreamSummary::new();
        let lines = [
            r#"{"type":"init","timestamp":"2026-12-01T10:37:30.169Z","session_id":"s","model":"gemini-2.5-pro"}"#,
            r#"{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t","parameters":{"command":"sleep 30"}}"#,
        ];
        for line in lines {
            for ev in crate::agent::gemini::Gemini.parse_line(line) {
                s.observe(&ev);
            }
        }
        s
    }

    #[test]
    fn exit_0_without_a_result_is_not_success() {
        let d = tempfile::tempdir().unwrap();
        let status_file = d.path().join("task-status.json");
        let summary = gemini_cut_short();
        let evidence = |ended| Evidence {
            task_id: "1",
            status_file: &status_file,
            status_shown: Path::new(".claude/plans/task-status.json"),
            ended,
            exit: Some(crate::run::process::ExitInfo { code: Some(0), signal: None }),
            dialect: &crate::agent::gemini::Gemini,
            summary: &summary,
            stderr_tail: "",
            systemic: None,
            prompt: None,
        };
        let now: jiff::ZonedDateTime = "2026-12-01T10:40:00Z[UTC]".parse().unwrap();
        let Verdict::Failed { message } = judge(&evidence(Ended::Exited), &now) else { panic!("{:?}", judge(&evidence(Ended::Exited), &now)) };
        assert!(message.starts_with("Gemini CLI exited 0 without its final result event"), "{message}");
        assert_eq!(judge(&evidence(Ended::Interrupted), &now), Verdict::Interrupted, "baton's own stop");
        // The agent's report written before it was stopped still stands.
        std::fs::write(&status_file, r#"{"task_id":"1","status":"completed","message":"ok"}"#).unwrap();
        assert!(matches!(judge(&evidence(Ended::Exited), &now), Verdict::Done(_)));
    }

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("task-status.json");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_good_report_is_read() {
        let (_d, p) = file(r#"{"task_id": "1.10", "status": "completed", "message": "did it", "plan_modified": true}"#);
        let r = read_report("1.10", &p, &p, None, None).unwrap();
        assert_eq!((r.status, r.message.as_str(), r.plan_modified, r.source), (Status::Completed, "did it", true, ReportSource::File));
    }

    #[test]
    fn every_bad_report_says_what_is_wrong() {
        let cases = [
            ("{not json", "not valid JSON"),
            (r#"{"task_id": "1.1", "status": "completed"}"#, "reports task '1.1', not the task that was run ('1.10')"),
            (r#"{"status": "completed"}"#, "no \"task_id\""),
            (r#"{"task_id": "1.10", "status": "done"}"#, "unknown \"status\" 'done'"),
            ("[1]", "not a JSON object"),
        ];
        for (text, want) in cases {
            let (_d, p) = file(text);
            let e = read_report("1.10", &p, &p, None, None).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_missing_file_falls_back_to_the_result_text() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("none.json");
        let text = "Done.\n```json\n{\"task_id\": \"2\", \"status\": \"failed\", \"message\": \"no\"}\n```";
        let r = read_report("2", &p, &p, Some(text), None).unwrap();
        assert_eq!((r.status, r.source), (Status::Failed, ReportSource::ResultText));
        let e = read_report("2", &p, &p, Some("all done, trust me"), None).unwrap_err();
        assert!(e.contains("wrote no") && e.contains("final answer holds no status JSON"), "{e}");
        let e = read_report("2", &p, &p, Some("{\"task_id\": \"3\", \"status\": \"completed\"}"), None).unwrap_err();
        assert!(e.contains("final answer") && e.contains("'3'"), "{e}");
        // The prompt's own example, echoed back by an agent that prints its input, is no report.
        let example = r#"{"task_id": "2", "status": "completed", "message": "what was done, or why it failed", "timestamp": "2026-01-01T12:00:00Z", "plan_modified": false}"#;
        let prompt = crate::run::prompt::fill(crate::run::prompt::DEFAULT_TEMPLATE, &[("task_id", "2".into()), ("status_example", example.into())]);
        let echoed = format!("Received:\n{prompt}\nSorry, I could not do it.");
        assert!(find_status_json(&echoed).is_some(), "the prompt holds an example report");
        let e = read_report("2", &p, &p, Some(&echoed), Some(&prompt)).unwrap_err();
        assert!(e.contains("the example from its prompt, echoed back"), "{e}");
        assert!(read_report("2", &p, &p, Some(text), Some(&prompt)).is_ok(), "a report of its own still counts");
        // Copied into the status file, with a time of its own and the id as a number: still
        // the example.
        std::fs::write(&p, r#"{"task_id": 2, "status": "completed", "message": "what was done, or why it failed ", "timestamp": "2026-12-01T12:00:00Z"}"#).unwrap();
        let e = read_report("2", &p, &p, None, Some(&prompt)).unwrap_err();
        assert!(e.contains("holds the example from the agent's prompt, copied"), "{e}");
    }

    /// A command agent's session (plain text, no result event) ended with `code`, its status
    /// file `status` (when any), its stdout `lines` and its stderr `stderr`.
    fn command_session(code: i32, status: Option<&str>, lines: &[&str], stderr: &str) -> Verdict {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("task-status.json");
        if let Some(text) = status {
            std::fs::write(&p, text).unwrap();
        }
        let dialect = &crate::agent::command::Command;
        let mut summary = StreamSummary::new();
        for ev in lines.iter().flat_map(|l| dialect.parse_line(l)) {
            summary.observe(&ev);
        }
        let e = Evidence {
            task_id: "1.1",
            status_file: &p,
            status_shown: Path::new(".claude/plans/task-status.json"),
            ended: Ended::Exited,
            exit: Some(crate::run::process::ExitInfo { code: Some(code), signal: None }),
            dialect,
            summary: &summary,
            stderr_tail: stderr,
            systemic: None,
            prompt: None,
        };
        judge(&e, &jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(jiff::tz::TimeZone::UTC))
    }

    #[test]
    fn a_program_without_result_events_is_judged_by_its_exit_code_and_status_file() {
        let done = r#"{"task_id": "1.1", "status": "completed", "message": "wrote it"}"#;
        match command_session(0, Some(done), &["working"], "") {
            Verdict::Done(r) => assert_eq!((r.status, r.message.as_str(), r.source), (Status::Completed, "wrote it", ReportSource::File)),
            other => panic!("{other:?}"),
        }
        // Not 0: failed, whatever the file says, with the exit and the last stderr lines.
        let Verdict::Failed { message } = command_session(3, Some(done), &["working"], "one\ntwo\n\nthree\nfour\n") else { panic!() };
        assert!(message.starts_with("the agent ended with exit code 3"), "{message}");
        assert!(message.contains("Last stderr lines: two | three | four") && !message.contains("one"), "{message}");
        assert!(message.contains("Its report said completed: wrote it"), "{message}");
        let Verdict::Failed { message } = command_session(1, None, &[], "") else { panic!() };
        assert_eq!(message, "the agent ended with exit code 1.");
        // 0 and no report: failed, saying where baton looked.
        let Verdict::Failed { message } = command_session(0, None, &["all done, trust me"], "") else { panic!() };
        assert!(message.contains("wrote no .claude/plans/task-status.json") && message.contains("final answer holds no status JSON"), "{message}");
        // The status JSON among the last lines printed stands in for the file.
        let printed = ["did the work", "{", r#"  "task_id": "1.1", "status": "completed","#, r#"  "message": "printed""#, "}"];
        match command_session(0, None, &printed, "") {
            Verdict::Done(r) => assert_eq!((r.message.as_str(), r.source), ("printed", ReportSource::ResultText)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_named_pipe_is_refused_without_blocking_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("task-status.json");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read_report("1", &p, Path::new("shown.json"), None, None).unwrap_err();
        assert!(e.contains("shown.json") && e.contains("a named pipe, not a regular file"), "{e}");
        assert!(remove_status_file(&p).unwrap());
        assert!(!p.exists());
        assert!(!remove_status_file(&p).unwrap(), "nothing left to remove");
    }

    #[test]
    fn a_symlink_a_folder_and_a_huge_file_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("real.json");
        std::fs::write(&target, r#"{"task_id": "1", "status": "completed"}"#).unwrap();
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(read_status_file(&link), Err(StatusFileError::NotAFile("a symbolic link"))));
        assert!(remove_status_file(&link).unwrap());
        assert!(target.exists(), "removing the link removed its target");
        let dir = d.path().join("dir.json");
        std::fs::create_dir(&dir).unwrap();
        assert!(matches!(read_status_file(&dir), Err(StatusFileError::NotAFile("a folder"))));
        assert!(remove_status_file(&dir).is_err());
        // Sparse: costs no disk.
        let big = d.path().join("big.json");
        std::fs::File::create(&big).unwrap().set_len(STATUS_FILE_MAX_BYTES + 1).unwrap();
        assert!(matches!(read_status_file(&big), Err(StatusFileError::TooLarge)));
    }

    #[test]
    fn plan_text_is_one_bounded_line() {
        assert_eq!(plan_text("did it", "x"), "did it");
        assert_eq!(plan_text("  line one\n\tline two\r\n\u{1b}]0;title\u{7}", "x"), "line one line two ]0;title");
        let long = "é".repeat(3000);
        let t = plan_text(&long, "baton logs plan.yaml 1.1");
        assert!(t.len() < PLAN_TEXT_MAX_BYTES + 80, "{}", t.len());
        assert!(t.ends_with("… (6000 bytes; full text: `baton logs plan.yaml 1.1`)"), "{t}");
        assert!(t.starts_with("éé"));
        let exact = "a".repeat(PLAN_TEXT_MAX_BYTES);
        assert_eq!(plan_text(&exact, "x"), exact, "a message at the cap is kept whole");
    }

    #[test]
    fn status_json_in_a_fence_amid_prose() {
        let text = "Done. I could not write the file, so here it is:\n\n```json\n{\"task_id\": \"1.2\", \"status\": \"completed\", \"message\": \"added {braces} and \\\"quotes\\\" }\", \"plan_modified\": false}\n```\n\nLet me know {if anything} else is needed.";
        assert_eq!(
            find_status_json(text),
            Some(json!({
                "task_id": "1.2",
                "status": "completed",
                "message": "added {braces} and \"quotes\" }",
                "plan_modified": false
            }))
        );
    }

    #[test]
    fn status_json_bare_and_among_other_objects() {
        assert_eq!(
            find_status_json(r#"{"task_id":"3","status":"failed"}"#),
            Some(json!({"task_id": "3", "status": "failed"}))
        );
        // The last one wins; objects without both keys do not count.
        let text = r#"first {"task_id":"1","status":"failed"} then fn main() { } and
            {"task_id":"1","status":"completed","details":{"task_id":"sub","status":"ok"}}
            and finally {"status":"ok"} {"task_id":"9"}"#;
        assert_eq!(
            find_status_json(text),
            Some(json!({
                "task_id": "1",
                "status": "completed",
                "details": {"task_id": "sub", "status": "ok"}
            }))
        );
        // Nested in an object that is not a status object itself.
        assert_eq!(
            find_status_json(r#"{"file": {"task_id": "2", "status": "skipped"}}"#),
            Some(json!({"task_id": "2", "status": "skipped"}))
        );
    }

    #[test]
    fn status_json_absent() {
        for text in [
            "",
            "All done.",
            "{",
            "} {",
            r#"{"status":"completed","message":"no id"}"#,
            r#"{"task_id":"1","state":"completed"}"#,
            r#"["task_id", "status"]"#,
            r#"{'task_id': '1', 'status': 'completed'}"#,
            "{\"task_id\": \"1\", \"status\": \"completed\"",
        ] {
            assert_eq!(find_status_json(text), None, "{text}");
        }
    }
}
