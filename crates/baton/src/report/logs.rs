//! `baton logs PLAN TASK`: an attempt's transcript, readable — the verbose line of every event,
//! then the agent's stderr — and the prompt that was sent to it (`--prompt`).
//!
//! Reads the records `run::record` and `run::attempt` keep; writes nothing. The pieces are
//! shared with `--follow` (`report::follow`), which prints the same lines as they arrive.

use std::path::{Path, PathBuf};

use crate::agent::Dialect;
use crate::report::agent_line::verbose_line;
use crate::report::safe::{terminal_line, terminal_text};
use crate::run::record::{AttemptRecord, Records};

/// Which recorded session `asked` means (the latest when `None`), or why there is none.
pub fn pick(records: &Records, task: &str, asked: Option<u32>) -> Result<(u32, usize), String> {
    let sessions = records.sessions(task);
    let Some(&last) = sessions.last() else {
        return Err(format!(
            "no recorded attempts for task '{task}' (looked in {})",
            records.task_dir(task).display()
        ));
    };
    let n = asked.unwrap_or(last);
    if !sessions.contains(&n) {
        let list: Vec<String> = sessions.iter().map(u32::to_string).collect();
        return Err(format!("task '{task}' has no attempt {n}; recorded: {}", list.join(", ")));
    }
    Ok((n, sessions.len()))
}

/// The text to print, or what is missing. The transcript is read in the dialect of the agent
/// that wrote it (its kind file), else `dialect` (the default agent's).
pub fn render(logs_dir: &Path, plan: &Path, task: &str, session: Option<u32>, dialect: &dyn Dialect) -> Result<String, String> {
    let records = Records::new(logs_dir, plan);
    let (n, count) = pick(&records, task, session)?;
    let transcript = records.transcript(task, n);
    let mut out = head(&records, task, n, count);
    match records.read(task, n) {
        Some(r) => {
            out.push_str(&outcome_line(&r));
            out.push_str(&verification_lines(&r));
        }
        None => out.push_str("outcome: not recorded (the attempt was interrupted, or is still running)\n"),
    }
    // Shown the latest, a reader also sees at a glance how the earlier attempts went.
    if session.is_none() {
        out.push_str(&earlier(&records, task, n));
    }
    out.push('\n');
    let text = crate::fsx::open_regular(&transcript).and_then(crate::fsx::read_text).map_err(|e| format!("cannot read {}: {e}", transcript.display()))?;
    let dialect = crate::agent::dialect_of_transcript(&transcript).unwrap_or(dialect);
    for line in text.lines() {
        out.push_str(&event_lines(line, dialect));
    }
    out.push_str(&stderr_block(&transcript));
    Ok(out)
}

/// The prompt baton sent to the agent for that attempt, as it was sent.
pub fn prompt(logs_dir: &Path, plan: &Path, task: &str, session: Option<u32>) -> Result<String, String> {
    let records = Records::new(logs_dir, plan);
    let (n, _) = pick(&records, task, session)?;
    let path = prompt_file(&records, task, n);
    match crate::fsx::open_regular(&path).and_then(crate::fsx::read_text) {
        // Text baton wrote, but with the plan's words in it: printed as text, never as terminal
        // commands.
        Ok(text) => Ok(terminal_text(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("attempt {n} of task '{task}' has no saved prompt (looked for {})", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Where the prompt of a session is kept (beside its transcript).
pub fn prompt_file(records: &Records, task: &str, session: u32) -> PathBuf {
    crate::run::attempt::prompt_path(&records.transcript(task, session))
}

/// The first lines: which attempt, where its transcript and prompt are.
pub fn head(records: &Records, task: &str, n: u32, count: usize) -> String {
    let mut out = format!("task {task} · attempt {n} of {count} recorded · {}\n", records.transcript(task, n).display());
    let prompt = prompt_file(records, task, n);
    if prompt.is_file() {
        out.push_str(&format!("prompt: {} (shown by --prompt)\n", prompt.display()));
    }
    out
}

/// How the attempt ended, from its record.
pub fn outcome_line(r: &AttemptRecord) -> String {
    format!(
        "outcome: {}{} · {:.1}s{}{}\n",
        r.outcome,
        if r.message.is_empty() { String::new() } else { format!(" — {}", terminal_line(&r.message)) },
        r.duration_seconds,
        r.cost_usd.map(|c| format!(" · ${c:.4}")).unwrap_or_default(),
        r.waited_seconds.map(|w| format!(" · baton then waited {}", crate::report::event::human_secs(w))).unwrap_or_default()
    )
}

/// One line per recorded session before `n`: its outcome, model, checks and verdict.
fn earlier(records: &Records, task: &str, n: u32) -> String {
    let lines: Vec<String> = records.all(task).iter().filter(|r| r.session < n).map(summary_line).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!("earlier attempts (shown by --attempt N):\n{}", lines.concat())
}

/// `  1  failed · sonnet · check `test -f out.txt` failed (exit 1) · review FAIL`
pub fn summary_line(r: &AttemptRecord) -> String {
    let mut parts = vec![r.outcome.clone()];
    if let Some(m) = r.model.as_deref() {
        parts.push(terminal_line(m));
    }
    if r.changed == Some(false) {
        parts.push("no changes".into());
    }
    match r.checks.iter().find(|c| !c.passed) {
        Some(c) if c.timed_out => parts.push(format!("check `{}` timed out", terminal_line(&c.command))),
        Some(c) => parts.push(format!(
            "check `{}` failed{}",
            terminal_line(&c.command),
            c.exit.map(|e| format!(" (exit {e})")).unwrap_or_default()
        )),
        None if !r.checks.is_empty() => parts.push(format!("{} check{} ok", r.checks.len(), if r.checks.len() == 1 { "" } else { "s" })),
        None => {}
    }
    if let Some(review) = &r.review {
        parts.push(format!("review {}", review.verdict.as_deref().map_or_else(|| "gave no verdict".to_string(), terminal_line)));
    }
    format!("  {}  {}\n", r.session, parts.join(" · "))
}

/// What else the record says of the attempt: the model it ran with, whether it changed
/// anything, each check (a failed one with the tail of its output and where the whole is), and
/// the reviewer's verdict and findings. Empty for a record with none of these.
pub fn verification_lines(r: &AttemptRecord) -> String {
    let mut out = String::new();
    if let Some(m) = r.model.as_deref() {
        out.push_str(&format!("model: {}
", terminal_line(m)));
    }
    if r.changed == Some(false) {
        out.push_str("changes: none (no commit and no change in its checkout)
");
    }
    for c in &r.checks {
        let how = if c.passed {
            "ok".to_string()
        } else if c.timed_out {
            "timed out".to_string()
        } else {
            match c.exit {
                Some(code) => format!("failed (exit {code})"),
                None => "failed (killed by a signal)".to_string(),
            }
        };
        out.push_str(&format!("check: {} [{}] — {how} · {:.1}s
", terminal_line(&c.command), c.from, c.duration_seconds));
        if !c.passed {
            if !c.output.is_empty() {
                out.push_str(&format!("  output: {}
", terminal_line(&c.output)));
            }
            // The command's own output: printed as text, never as terminal commands.
            for line in terminal_text(&c.tail).lines() {
                out.push_str(&format!("  | {line}
"));
            }
        }
    }
    if let Some(review) = &r.review {
        let verdict = review.verdict.as_deref().map_or_else(|| "no verdict".to_string(), terminal_line);
        let mut about = Vec::new();
        if let Some(m) = review.model.as_deref() {
            about.push(format!("model {}", terminal_line(m)));
        }
        if review.sessions > 1 {
            about.push(format!("{} sessions", review.sessions));
        }
        if let Some(c) = review.cost_usd {
            about.push(format!("${c:.4}"));
        }
        let about = if about.is_empty() { String::new() } else { format!(" ({})", about.join(" · ")) };
        out.push_str(&format!("review: {verdict}{about}
"));
        if let Some(problem) = review.problem.as_deref() {
            out.push_str(&format!("  problem: {}
", terminal_line(problem)));
        }
        for f in &review.findings {
            out.push_str(&format!("  - {}
", terminal_line(f)));
        }
        for t in &review.transcripts {
            out.push_str(&format!("  transcript: {}
", terminal_line(t)));
        }
    }
    out
}

/// The verbose lines of one transcript line (none for events not worth a line).
pub fn event_lines(line: &str, dialect: &dyn Dialect) -> String {
    let mut out = String::new();
    for ev in dialect.parse_line(line) {
        if let Some(l) = verbose_line(&ev) {
            // The agent's text under its own name (`[Codex] …`).
            match l.strip_prefix("[Claude]") {
                Some(rest) => out.push_str(&format!("[{}]{rest}", dialect.name())),
                None => out.push_str(&l),
            }
            out.push('\n');
        }
    }
    out
}

/// The agent's stderr after its events, if it wrote any.
pub fn stderr_block(transcript: &Path) -> String {
    let stderr = crate::fsx::open_regular(&transcript.with_extension("stderr")).and_then(crate::fsx::read_text).unwrap_or_default();
    let mut out = String::new();
    if !stderr.trim().is_empty() {
        out.push_str("\n--- stderr ---\n");
        // The agent's own stderr: printed as text, never as terminal commands.
        out.push_str(&terminal_text(&stderr));
        if !stderr.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::record::{CheckRecord, ReviewRecord};

    fn check(command: &str, passed: bool, exit: Option<i32>, timed_out: bool) -> CheckRecord {
        CheckRecord {
            command: command.into(),
            from: "task".into(),
            exit,
            timed_out,
            signal: None,
            passed,
            duration_seconds: 2.0,
            output: format!("/logs/{command}.out"),
            tail: "line one\n\u{1b}[31mline two\n".into(),
        }
    }

    #[test]
    fn checks_and_review_are_told_with_a_failed_checks_output() {
        let r = AttemptRecord {
            task: "1.1".into(),
            session: 1,
            attempt: Some(1),
            duration_seconds: 3.0,
            outcome: "failed".into(),
            model: Some("sonnet".into()),
            changed: Some(false),
            checks: vec![check("fmt", true, Some(0), false), check("test", false, Some(101), false), check("slow", false, None, true)],
            review: Some(ReviewRecord {
                verdict: Some("FAIL".into()),
                findings: vec!["no test for the empty case".into()],
                problem: None,
                limit_resets_at: None,
                sessions: 1,
                model: Some("opus".into()),
                cost_usd: Some(0.02),
                transcripts: vec!["/logs/review.jsonl".into()],
            }),
            ..Default::default()
        };
        let text = verification_lines(&r);
        assert!(text.starts_with("model: sonnet\nchanges: none"), "{text}");
        assert!(text.contains("check: fmt [task] — ok · 2.0s\ncheck: test [task] — failed (exit 101) · 2.0s\n  output: /logs/test.out\n  | line one\n  | "), "{text}");
        assert!(!text.contains("fmt.out"), "a passed check's output is not shown:\n{text}");
        assert!(!text.contains('\u{1b}'), "the output is text, not terminal commands:\n{text}");
        assert!(text.contains("check: slow [task] — timed out"), "{text}");
        assert!(text.contains("review: FAIL (model opus · $0.0200)\n  - no test for the empty case\n  transcript: /logs/review.jsonl\n"), "{text}");

        assert_eq!(summary_line(&r), "  1  failed · sonnet · no changes · check `test` failed (exit 101) · review FAIL\n");
        let bare = AttemptRecord { model: None, changed: None, checks: Vec::new(), review: None, ..r };
        assert_eq!(summary_line(&bare), "  1  failed\n");
        assert_eq!(verification_lines(&bare), "");
    }
}
