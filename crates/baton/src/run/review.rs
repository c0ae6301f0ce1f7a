//! The reviewer session: a fresh agent session that judges an attempt the agent reported
//! `completed` — given the task, what the attempt changed and the checks' outcome — and writes
//! a verdict (`PASS`, `WARN` or `FAIL`, with findings) to the status file.
//!
//! This module decides whether a task is reviewed ([`review_for`]), gathers the attempt's diff
//! ([`attempt_diff`]), fills the reviewer's prompt ([`prompt`]), reads the verdict
//! ([`read_verdict`]) and runs the sessions ([`review`]). What a verdict does to the task is
//! the engine's business.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::attempt::{self, AttemptSpec};
use super::record::{CheckRecord, ReviewRecord};
use super::stop::Stop;
use super::verdict::{find_object_with, object_of_task, read_status_file, remove_status_file, Ended};
use crate::agent::{Agent, Invocation};
use crate::plan::{Plan, Task, TaskId};
use crate::policy::limit::{self, LimitEvidence, LimitVerdict};
use crate::report::event::{EventKind, Reporter};

pub use crate::config::Review as ReviewConfig;

/// Reviewer sessions per review: a session that writes no valid verdict is tried once more.
pub const SESSIONS: u32 = 2;
/// The most of an attempt's diff the reviewer is shown.
pub const DIFF_MAX_BYTES: usize = 100 * 1024;

/// How a task is reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPlan {
    pub model: Option<String>,
    /// The reviewer session's named agent (`--agent NAME`), when one is asked for; the engine
    /// decides whether the working copy defines it (`crate::agent::named_agent`).
    pub named_agent: Option<String>,
    /// Reviewer FAILs a task may get before it becomes `validation_exhausted`.
    pub max_fails: u32,
}

/// Whether `task` is reviewed, and how: `[review] enabled` reviews every task; the plan's
/// `meta.validation` with `enabled: true` reviews the tasks whose `agent:` is in `run_after`
/// (absent: all), with `validators[0]` as the reviewer's named agent and its
/// `max_validation_attempts`; with `enabled: false` no task of the plan is reviewed.
pub fn review_for(config: &ReviewConfig, plan: &Plan, task: &Task) -> Option<ReviewPlan> {
    let validation = plan.meta.validation.as_ref();
    if validation.is_some_and(|v| !v.enabled) {
        return None;
    }
    let max_fails = validation.and_then(|v| v.max_validation_attempts).unwrap_or(config.max_attempts);
    match validation {
        Some(v) if v.reviews(task.agent.as_deref()) => Some(ReviewPlan {
            model: config.model.clone(),
            named_agent: v.validators.first().cloned().or_else(|| config.agent.clone()),
            max_fails,
        }),
        _ if config.enabled => Some(ReviewPlan { model: config.model.clone(), named_agent: config.agent.clone(), max_fails }),
        _ => None,
    }
}

/// What the attempt changed in `cwd` since the commit `start`: `git diff <start>` (committed
/// and uncommitted changes of tracked files) and the names of new untracked files, without the
/// `ignore` paths (the plan file, baton's own files; relative to `cwd`, or absolute inside
/// it), at most [`DIFF_MAX_BYTES`] with a line saying how much was cut. Without git or `start`:
/// a line saying so.
pub fn attempt_diff(cwd: &Path, start: Option<&str>, ignore: &[PathBuf]) -> String {
    let Some(start) = start else {
        return "(no diff: the commit the attempt started from is not known — the run does not use git)".into();
    };
    let excludes: Vec<String> = ignore
        .iter()
        .map(|p| p.strip_prefix(cwd).unwrap_or(p))
        .filter(|p| !p.as_os_str().is_empty() && p.is_relative())
        .map(|p| format!(":(exclude,literal){}", p.display()))
        .collect();
    let mut diff_args = vec!["diff", "--no-color", "--no-ext-diff", start, "--", "."];
    diff_args.extend(excludes.iter().map(String::as_str));
    let diff = match crate::git::git(cwd, &diff_args) {
        Ok(d) => d,
        Err(e) => return format!("(no diff: {e})"),
    };
    let mut new_args = vec!["ls-files", "--others", "--exclude-standard", "--", "."];
    new_args.extend(excludes.iter().map(String::as_str));
    let untracked = crate::git::git(cwd, &new_args).unwrap_or_default();
    let mut text = diff;
    let new: Vec<&str> = untracked.lines().filter(|l| !l.is_empty()).collect();
    if !new.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("New untracked files (not in the diff above):\n");
        for name in new {
            text.push_str(&format!("  {name}\n"));
        }
    }
    if text.trim().is_empty() {
        return "(no changes: the attempt changed nothing since it started)".into();
    }
    cap(text, DIFF_MAX_BYTES)
}

/// `text` cut to at most `max` bytes at a line's end, with a line saying how much was cut.
fn cap(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(nl) = text[..cut].rfind('\n') {
        cut = nl + 1;
    }
    text.truncate(cut);
    text.push_str(&format!("[… {} more bytes of the diff cut: the reviewer is shown the first {} KB of {} bytes]\n", total - cut, max / 1024, total));
    text
}

/// Everything the reviewer's template can refer to.
pub struct ReviewVars<'a> {
    pub plan: &'a Plan,
    pub task: &'a Task,
    /// What the coding agent reported (its status message).
    pub agent_message: &'a str,
    /// The attempt's diff, from [`attempt_diff`].
    pub diff: &'a str,
    pub checks: &'a [CheckRecord],
    /// The status file, as the reviewer is told it (relative to its working directory).
    pub status_file: &'a Path,
}

pub const DEFAULT_TEMPLATE: &str = r#"You are reviewing one task of a plan, in a fresh session. Another agent worked on the task and reported it done. Judge whether the task, as described, is really done and correct. Do not change, create or delete any file other than the status file below, and do not commit.

Task ID: {task_id}
Task: {task_name}
Plan: {plan_name}
Status file: {status_file}

## The task

{description}

## What the agent reported

{agent_message}

## What the attempt changed

```diff
{diff}
```

## The checks

{checks}

## How to review

1. Read the task and the changed files (the working directory holds the result of the attempt).
2. Decide: is everything the task asks for there, does it work, and is it right? Run the project's tests if it helps; do not fix anything yourself.
3. Give one verdict:
   - "PASS": the task is done and right.
   - "WARN": the task is done, with remarks worth knowing.
   - "FAIL": the task is not done, or what was done is broken. The findings say what to fix: the next attempt gets them.

## Reporting back

Write this JSON object to `{status_file}` (create the folder if needed) as your very last step:

```json
{"task_id": "{task_id}", "verdict": "PASS", "findings": ["one finding per entry"]}
```

If you cannot write that file, end your final answer with the same JSON object.
"#;

/// Fills the reviewer's template (`template`, else [`DEFAULT_TEMPLATE`]). Every value goes in
/// once: a diff that holds `{task_id}` is not filled again.
pub fn prompt(template: Option<&str>, vars: &ReviewVars<'_>) -> String {
    let t = vars.task;
    let filled: [(&str, String); 8] = [
        ("task_id", t.id.to_string()),
        ("task_name", t.name.clone()),
        ("description", t.description.clone().unwrap_or_else(|| t.name.clone())),
        ("plan_name", vars.plan.meta.name.clone().unwrap_or_else(|| "(unnamed)".into())),
        (
            "agent_message",
            if vars.agent_message.trim().is_empty() { "(no message)".into() } else { vars.agent_message.trim().to_string() },
        ),
        ("diff", vars.diff.trim_end().to_string()),
        ("checks", checks_text(vars.checks)),
        ("status_file", vars.status_file.display().to_string()),
    ];
    super::prompt::fill(template.unwrap_or(DEFAULT_TEMPLATE), &filled)
}

/// Each check's command and outcome, with the last lines of a failed one's output.
fn checks_text(checks: &[CheckRecord]) -> String {
    if checks.is_empty() {
        return "(no checks were run)".into();
    }
    let mut out = String::new();
    for c in checks {
        let outcome = if c.passed {
            "passed".to_string()
        } else if c.timed_out {
            "failed: timed out".to_string()
        } else {
            match c.exit {
                Some(code) => format!("failed (exit {code})"),
                None => "failed (ended by a signal)".to_string(),
            }
        };
        out.push_str(&format!("- `{}` (from {}): {outcome} in {:.1} s\n", c.command, c.from, c.duration_seconds));
        if !c.passed && !c.tail.trim().is_empty() {
            for line in c.tail.trim_end().lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out.trim_end().to_string()
}

/// The reviewer's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }

    /// A verdict word, in any case.
    pub fn parse(word: &str) -> Option<Verdict> {
        // The usual inflections too: a reviewer that says FAILED means FAIL.
        match word.trim().to_ascii_uppercase().as_str() {
            "PASS" | "PASSED" | "PASSES" => Some(Verdict::Pass),
            "WARN" | "WARNING" | "WARNINGS" => Some(Verdict::Warn),
            "FAIL" | "FAILED" | "FAILS" | "FAILURE" => Some(Verdict::Fail),
            _ => None,
        }
    }
}

/// Reads the reviewer's verdict: the status file (read like the task's: a regular file only,
/// capped, never blocking), else the verdict object at the end of its final answer. The error
/// says where baton looked and what was wrong.
/// At most this many findings are kept, each at most this long.
pub const MAX_FINDINGS: usize = 50;
pub const MAX_FINDING_BYTES: usize = 2000;

pub fn read_verdict(status_file: &Path, task_id: &str, final_text: Option<&str>, prompt: Option<&str>) -> Result<(Verdict, Vec<String>), String> {
    match read_status_file(status_file) {
        Ok(Some(text)) => {
            let value: Value = serde_json::from_str(&text).map_err(|e| format!("the reviewer's status file is not valid JSON ({e})"))?;
            if is_example_verdict(&value, prompt) {
                return Err("no verdict: the reviewer's status file holds the example from its prompt, copied".into());
            }
            verdict_from(task_id, &value).map_err(|m| format!("the reviewer's status file: {m}"))
        }
        Ok(None) => match final_text.and_then(|t| find_object_with(t, &["task_id", "verdict"])) {
            // The prompt's example verdict, echoed back, is no verdict.
            Some(value) if is_example_verdict(&value, prompt) => {
                Err("no verdict: the only verdict JSON in the reviewer's output is the example from its prompt, echoed back".into())
            }
            Some(value) => verdict_from(task_id, &value).map_err(|m| format!("the verdict in the reviewer's final answer: {m}")),
            None => Err("no verdict: the reviewer wrote no status file and its final answer holds no verdict JSON".into()),
        },
        Err(e) => Err(format!("cannot read the reviewer's status file: {e}")),
    }
}

/// Whether `v` is the example verdict of the reviewer's `prompt`: its verdict and its
/// placeholder findings, whatever the layout.
fn is_example_verdict(v: &Value, prompt: Option<&str>) -> bool {
    let Some(example) = prompt.and_then(|p| find_object_with(p, &["task_id", "verdict"])) else { return false };
    let findings = |v: &Value| v.get("findings").map(|f| f.to_string().split_whitespace().collect::<String>());
    v.get("verdict") == example.get("verdict") && findings(v) == findings(&example)
}

fn verdict_from(task_id: &str, v: &Value) -> Result<(Verdict, Vec<String>), String> {
    let (obj, reported) = object_of_task(v)?;
    if reported != task_id {
        return Err(format!("it judges task '{reported}', not the task under review ('{task_id}')"));
    }
    let verdict = match obj.get("verdict") {
        Some(Value::String(w)) => Verdict::parse(w).ok_or_else(|| format!("unknown \"verdict\" '{w}' (expected PASS, WARN or FAIL)"))?,
        Some(_) => return Err("\"verdict\" is not a string (expected PASS, WARN or FAIL)".into()),
        None => return Err("it has no \"verdict\"".into()),
    };
    // Findings in another shape are still findings: a FAIL must not be lost over the form
    // of its reasons. One text stands for a list of one; an object is kept as its JSON.
    let as_text = |f: &Value| match f {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let mut findings: Vec<String> = match obj.get("findings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(as_text).filter(|s| !s.is_empty()).collect(),
        Some(other) => vec![as_text(other)].into_iter().filter(|s| !s.is_empty()).collect(),
    };
    // Bounded: the findings go into the plan's message, the record, the view and the next
    // prompt.
    if findings.len() > MAX_FINDINGS {
        let more = findings.len() - MAX_FINDINGS;
        findings.truncate(MAX_FINDINGS);
        findings.push(format!("(and {more} more findings, left out)"));
    }
    for f in &mut findings {
        if f.len() > MAX_FINDING_BYTES {
            *f = format!("{}… (cut)", crate::report::safe::cut(f, MAX_FINDING_BYTES));
        }
    }
    Ok((verdict, findings))
}

/// One review to run.
pub struct ReviewJob {
    pub task: TaskId,
    /// The task's checkout: the reviewer runs there.
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    /// The baton binary, which runs the guard (see `attempt::AttemptSpec`).
    pub guard_exe: PathBuf,
    pub prompt: String,
    pub model: Option<String>,
    pub named_agent: Option<String>,
    /// Session `k` keeps its transcript at `<transcript_prefix>-<k>.jsonl` (its prompt and
    /// stderr beside it).
    pub transcript_prefix: PathBuf,
    /// Absolute.
    pub status_file: PathBuf,
    pub total_timeout: Duration,
    pub idle_timeout: Duration,
    /// The spending cap of each reviewer session: what remains of the budget, when one is set.
    pub max_budget_usd: Option<f64>,
}

/// The start of [`ReviewRecord::problem`] when the run was stopped during the review.
pub const PROBLEM_STOPPED: &str = "the run was stopped during the review";
/// The start of [`ReviewRecord::problem`] when the reviewer met a usage limit.
pub const PROBLEM_LIMIT: &str = "the reviewer met a usage limit";
/// The start of [`ReviewRecord::problem`] when the reviewer reached its spending cap.
pub const PROBLEM_CAPPED: &str = "the reviewer reached its spending cap, what remained of the budget";

/// Whether the review ended at the reviewer's spending cap: the budget is spent.
pub fn capped(record: &ReviewRecord) -> bool {
    record.problem.as_deref().is_some_and(|p| p.starts_with(PROBLEM_CAPPED))
}

/// Whether the review ended because the run was stopped (the engine decides what follows).
pub fn stopped(record: &ReviewRecord) -> bool {
    record.problem.as_deref().is_some_and(|p| p.starts_with(PROBLEM_STOPPED))
}

/// Whether the review ended on a usage limit (the engine decides what follows).
pub fn limited(record: &ReviewRecord) -> bool {
    record.problem.as_deref().is_some_and(|p| p.starts_with(PROBLEM_LIMIT))
}

/// Runs the reviewer: a fresh session, and one more when it writes no valid verdict (a crash,
/// garbage, a timeout). The status file is removed before each session and after it is read.
/// A stop or a usage limit ends the review with its `problem` saying so; two sessions without
/// a valid verdict end it with `verdict: None` and the reasons.
pub async fn review(job: &ReviewJob, agent: Arc<dyn Agent>, reporter: &Reporter, stop: watch::Receiver<Stop>) -> ReviewRecord {
    reporter.emit(EventKind::ReviewStarted { task: job.task.clone(), model: job.model.clone() });
    let mut rec = ReviewRecord {
        verdict: None,
        findings: Vec::new(),
        problem: None,
        limit_resets_at: None,
        sessions: 0,
        model: job.model.clone(),
        cost_usd: None,
        transcripts: Vec::new(),
    };
    let mut reasons = Vec::new();
    for k in 1..=SESSIONS {
        let _ = remove_status_file(&job.status_file);
        let transcript = PathBuf::from(format!("{}-{k}.jsonl", job.transcript_prefix.display()));
        rec.sessions += 1;
        rec.transcripts.push(transcript.display().to_string());
        let spec = AttemptSpec {
            task: job.task.clone(),
            agent: agent.clone(),
            prompt: job.prompt.clone(),
            invocation: Invocation { model: job.model.clone(), agent: job.named_agent.clone(), max_budget_usd: job.max_budget_usd },
            cwd: job.cwd.clone(),
            total_timeout: job.total_timeout,
            idle_timeout: job.idle_timeout,
            transcript,
            guard_exe: job.guard_exe.clone(),
            env: job.env.clone(),
            heartbeat: None,
                executor: crate::exec::Executor::Local,
                place: crate::exec::AttemptPlace::here(job.task.clone()),
        };
        let run = match attempt::run(spec, reporter.clone(), stop.clone()).await {
            Ok(run) => run,
            Err(e) => {
                reasons.push(format!("session {k}: the reviewer could not start ({})", crate::exit::render_chain(&e)));
                continue;
            }
        };
        if let Some(c) = run.summary.cost_usd() {
            rec.cost_usd = Some(rec.cost_usd.unwrap_or(0.0) + c);
        }
        if let Some(m) = run.summary.model() {
            rec.model = Some(m.to_string());
        }
        let read = read_verdict(&job.status_file, job.task.as_str(), agent.dialect().final_answer(&run.summary), Some(&job.prompt));
        let _ = remove_status_file(&job.status_file);
        if run.ended == Ended::Interrupted {
            rec.problem = Some(PROBLEM_STOPPED.into());
            break;
        }
        match read {
            // A verdict written is the reviewer's word, however its session ended after.
            Ok((verdict, findings)) => {
                rec.verdict = Some(verdict.as_str().to_string());
                rec.findings = findings;
                break;
            }
            Err(why) => {
                if let Some(said) = agent.dialect().spending_cap_reached(&run.summary) {
                    rec.problem = Some(format!("{PROBLEM_CAPPED}: {said}"));
                    break;
                }
                let evidence = LimitEvidence {
                    result_text: run.summary.result().and_then(|r| r.result.clone()),
                    result_is_error: run.summary.result().is_some_and(|r| r.is_error),
                    api_error_status: run.summary.result().and_then(|r| r.api_error_status),
                    synthetic_texts: run.summary.synthetic_texts().to_vec(),
                    rate_limit_rejected_resets_at: run.summary.rate_limit_rejected().and_then(|r| r.resets_at),
                    stderr_tail: Some(run.stderr_tail.clone()).filter(|s| !s.is_empty()),
                };
                let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system());
                if let LimitVerdict::Usage(u) = limit::classify(&evidence, agent.dialect(), &now) {
                    rec.problem = Some(format!("{PROBLEM_LIMIT}: {}", u.message));
                    rec.limit_resets_at = u.resets_at.map(|t| t.as_second());
                    break;
                }
                let how = match run.ended {
                    Ended::Exited => match run.exit {
                        Some(x) if !x.success() => format!(" (the reviewer ended with {x})"),
                        _ => String::new(),
                    },
                    other => format!(" ({})", ended_text(other)),
                };
                reasons.push(format!("session {k}: {why}{how}"));
            }
        }
    }
    if rec.verdict.is_none() && rec.problem.is_none() {
        rec.problem = Some(format!("no valid verdict from {} reviewer sessions: {}", rec.sessions, reasons.join("; ")));
    }
    reporter.emit(EventKind::ReviewEnded {
        task: job.task.clone(),
        verdict: rec.verdict.clone(),
        findings: rec.findings.clone(),
        problem: rec.problem.clone(),
    });
    rec
}

fn ended_text(ended: Ended) -> String {
    match ended {
        Ended::Exited => "the reviewer ended".into(),
        Ended::TotalTimeout { seconds } => format!("the reviewer timed out after {seconds} s"),
        Ended::IdleTimeout { seconds } => format!("the reviewer hung: no output for {seconds} s"),
        Ended::Interrupted => PROBLEM_STOPPED.into(),
        Ended::Lost { message } => format!("the reviewer's session was lost: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(meta: &str) -> Plan {
        let text = format!(
            "meta:\n  name: P\n{meta}sections:\n- id: s\n  tasks:\n  - {{id: '1', name: One, agent: coder}}\n  - {{id: '2', name: Two, agent: writer}}\n  - {{id: '3', name: Three}}\n"
        );
        crate::plan::parse_plan(&text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn reviewed(config: &ReviewConfig, plan: &Plan) -> Vec<Option<ReviewPlan>> {
        ["1", "2", "3"].iter().map(|id| review_for(config, plan, plan.task(id).unwrap())).collect()
    }

    #[test]
    fn nothing_is_reviewed_unless_asked() {
        assert_eq!(reviewed(&ReviewConfig::default(), &plan("")), [None, None, None]);
        let off = plan("  validation:\n    enabled: false\n    validators: [rev]\n");
        assert_eq!(reviewed(&ReviewConfig::default(), &off), [None, None, None]);
    }

    #[test]
    fn the_config_reviews_every_task() {
        let config = ReviewConfig { enabled: true, model: Some("opus".into()), agent: Some("judge".into()), max_attempts: 3, ..Default::default() };
        let want = Some(ReviewPlan { model: Some("opus".into()), named_agent: Some("judge".into()), max_fails: 3 });
        assert_eq!(reviewed(&config, &plan("")), [want.clone(), want.clone(), want]);
    }

    #[test]
    fn a_plan_that_turns_validation_off_wins_over_the_config() {
        let config = ReviewConfig { enabled: true, ..Default::default() };
        let off = plan("  validation:\n    enabled: false\n");
        assert_eq!(reviewed(&config, &off), [None, None, None]);
    }

    #[test]
    fn meta_validation_reviews_the_agents_it_names_with_its_validator() {
        let p = plan("  validation:\n    enabled: true\n    run_after: [coder]\n    validators: [code-reviewer, other]\n    max_validation_attempts: 4\n");
        let by_plan = Some(ReviewPlan { model: None, named_agent: Some("code-reviewer".into()), max_fails: 4 });
        assert_eq!(reviewed(&ReviewConfig::default(), &p), [by_plan.clone(), None, None]);
        // With the config on too, every task is reviewed; the plan's count holds for all.
        let config = ReviewConfig { enabled: true, agent: Some("judge".into()), ..Default::default() };
        let by_config = Some(ReviewPlan { model: None, named_agent: Some("judge".into()), max_fails: 4 });
        assert_eq!(reviewed(&config, &p), [by_plan, by_config.clone(), by_config]);
    }

    #[test]
    fn meta_validation_without_run_after_reviews_all_with_the_defaults() {
        let p = plan("  validation:\n    enabled: true\n");
        let want = Some(ReviewPlan { model: None, named_agent: None, max_fails: 2 });
        assert_eq!(reviewed(&ReviewConfig::default(), &p), [want.clone(), want.clone(), want]);
        // The config's reviewer agent and count stand in for what the plan leaves out.
        let config = ReviewConfig { agent: Some("judge".into()), max_attempts: 5, model: Some("m".into()), ..Default::default() };
        let want = Some(ReviewPlan { model: Some("m".into()), named_agent: Some("judge".into()), max_fails: 5 });
        assert_eq!(reviewed(&config, &p)[2], want);
    }

    fn status(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("task-status.json");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_verdict_is_read_from_the_file_in_any_case() {
        for (word, want) in [("PASS", Verdict::Pass), ("warn", Verdict::Warn), ("Fail", Verdict::Fail)] {
            let (_d, p) = status(&format!(r#"{{"task_id": "1.2", "verdict": "{word}", "findings": ["a", "b"]}}"#));
            assert_eq!(read_verdict(&p, "1.2", Some("ignored"), None).unwrap(), (want, vec!["a".to_string(), "b".to_string()]));
        }
        let (_d, p) = status(r#"{"task_id": 3, "verdict": "PASS"}"#);
        assert_eq!(read_verdict(&p, "3", None, None).unwrap(), (Verdict::Pass, vec![]));
        assert_eq!(Verdict::Warn.as_str(), "WARN");
    }

    #[test]
    fn a_verdict_is_read_from_the_final_answer_without_a_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("none.json");
        let text = "Reviewed.\n```json\n{\"task_id\": \"1\", \"verdict\": \"fail\", \"findings\": [\"no tests\"]}\n```\nBye {x}.";
        assert_eq!(read_verdict(&p, "1", Some(text), None).unwrap(), (Verdict::Fail, vec!["no tests".to_string()]));
        let e = read_verdict(&p, "1", Some("looks fine"), None).unwrap_err();
        assert!(e.contains("no verdict"), "{e}");
        let e = read_verdict(&p, "1", None, None).unwrap_err();
        assert!(e.contains("no verdict"), "{e}");
        // A reviewer that echoes its prompt gives back the prompt's example verdict: none.
        let prompt = "Judge it.\nWrite:\n{\"task_id\": \"1\", \"verdict\": \"PASS\", \"findings\": [\"one finding per entry\"]}\n";
        let e = read_verdict(&p, "1", Some(&format!("You said: {prompt}")), Some(prompt)).unwrap_err();
        assert!(e.contains("echoed back"), "{e}");
        let (_d, copied) = status(r#"{"task_id": "1", "verdict": "PASS", "findings": [ "one finding per entry" ]}"#);
        let e = read_verdict(&copied, "1", None, Some(prompt)).unwrap_err();
        assert!(e.contains("copied"), "{e}");
        let e = read_verdict(&p, "1", Some(r#"{"task_id": "1", "verdict": "OK"}"#), None).unwrap_err();
        assert!(e.contains("final answer") && e.contains("unknown \"verdict\" 'OK'"), "{e}");
    }

    #[test]
    fn every_bad_verdict_says_what_is_wrong() {
        for (text, want) in [
            ("{garbage", "not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"verdict": "PASS"}"#, "no \"task_id\""),
            (r#"{"task_id": "9", "verdict": "PASS"}"#, "judges task '9', not the task under review ('1')"),
            (r#"{"task_id": "1", "verdict": "GOOD"}"#, "unknown \"verdict\" 'GOOD'"),
            (r#"{"task_id": "1", "verdict": 1}"#, "\"verdict\" is not a string"),
            (r#"{"task_id": "1"}"#, "no \"verdict\""),
        ] {
            let (_d, p) = status(text);
            let e = read_verdict(&p, "1", None, None).unwrap_err();
            assert!(e.contains("status file") && e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_fail_keeps_its_findings_whatever_their_shape_and_they_are_bounded() {
        for (text, want) in [
            (r#"{"task_id": "1", "verdict": "FAIL", "findings": "broken"}"#, vec!["broken".to_string()]),
            (r#"{"task_id": "1", "verdict": "failed", "findings": ["a", 2, {"file": "p.rs"}]}"#, vec!["a".into(), "2".into(), r#"{"file":"p.rs"}"#.into()]),
        ] {
            let (_d, p) = status(text);
            assert_eq!(read_verdict(&p, "1", None, None).unwrap(), (Verdict::Fail, want), "{text}");
        }
        let many: Vec<String> = (0..1000).map(|i| format!("finding {i} {}", "x".repeat(3000))).collect();
        let (_d, p) = status(&serde_json::json!({"task_id": "1", "verdict": "WARN", "findings": many}).to_string());
        let (v, findings) = read_verdict(&p, "1", None, None).unwrap();
        assert_eq!((v, findings.len()), (Verdict::Warn, MAX_FINDINGS + 1));
        assert!(findings.last().unwrap().contains("950 more findings"), "{:?}", findings.last());
        assert!(findings[0].chars().count() <= MAX_FINDING_BYTES + 10);
    }

    #[test]
    fn a_named_pipe_in_place_of_the_verdict_does_not_block() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("task-status.json");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read_verdict(&p, "1", Some(r#"{"task_id": "1", "verdict": "PASS"}"#), None).unwrap_err();
        assert!(e.contains("named pipe"), "{e}");
    }

    fn check(command: &str, passed: bool, exit: Option<i32>) -> CheckRecord {
        CheckRecord {
            command: command.into(),
            from: "task".into(),
            exit,
            timed_out: false,
            signal: None,
            passed,
            duration_seconds: 1.25,
            output: String::new(),
            tail: "error[E0425]: cannot find x\n".into(),
        }
    }

    #[test]
    fn the_prompt_carries_everything_and_fills_each_value_once() {
        let p = plan("");
        let checks = [check("cargo build", true, Some(0)), check("cargo test", false, Some(101))];
        let vars = ReviewVars {
            plan: &p,
            task: p.task("1").unwrap(),
            agent_message: "added it",
            diff: "+ let s = \"{task_id} {checks}\";\n",
            checks: &checks,
            status_file: Path::new(".claude/plans/task-status.json"),
        };
        let text = prompt(None, &vars);
        for want in [
            "Task ID: 1\n",
            "Task: One\n",
            "Plan: P\n",
            "Status file: .claude/plans/task-status.json\n",
            "added it",
            "+ let s = \"{task_id} {checks}\";",
            "- `cargo build` (from task): passed in 1.2 s",
            "- `cargo test` (from task): failed (exit 101) in 1.2 s\n    error[E0425]: cannot find x",
            r#"{"task_id": "1", "verdict": "PASS", "findings": ["one finding per entry"]}"#,
            "Do not change",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert_eq!(prompt(Some("{task_id}|{diff}|{nope}"), &vars), "1|+ let s = \"{task_id} {checks}\";|{nope}");
        let none = ReviewVars { checks: &[], agent_message: " ", ..vars };
        let text = prompt(Some("{checks}/{agent_message}"), &none);
        assert_eq!(text, "(no checks were run)/(no message)");
    }

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| crate::git::git(d.path(), args).unwrap();
        git(&["init", "-q", "-b", "main"]);
        git(&["config", "user.email", "t@example.com"]);
        git(&["config", "user.name", "t"]);
        std::fs::write(d.path().join("a.txt"), "one\n").unwrap();
        std::fs::write(d.path().join("plan.yaml"), "p: 1\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-qm", "start"]);
        d
    }

    #[test]
    fn the_diff_holds_commits_edits_and_new_files_but_not_baton_s() {
        let d = repo();
        let git = |args: &[&str]| crate::git::git(d.path(), args).unwrap();
        let start = git(&["rev-parse", "HEAD"]).trim().to_string();
        std::fs::write(d.path().join("b.txt"), "committed line\n").unwrap();
        git(&["add", "b.txt"]);
        git(&["commit", "-qm", "b"]);
        std::fs::write(d.path().join("a.txt"), "one\nuncommitted line\n").unwrap();
        std::fs::write(d.path().join("new.txt"), "x").unwrap();
        std::fs::write(d.path().join("plan.yaml"), "p: 2\n").unwrap();
        std::fs::create_dir_all(d.path().join(".baton")).unwrap();
        std::fs::write(d.path().join(".baton/status.json"), "{}").unwrap();
        let ignore = [PathBuf::from("plan.yaml"), d.path().join(".baton")];
        let diff = attempt_diff(d.path(), Some(&start), &ignore);
        for want in ["+committed line", "+uncommitted line", "New untracked files", "  new.txt"] {
            assert!(diff.contains(want), "missing {want:?} in:\n{diff}");
        }
        assert!(!diff.contains("plan.yaml") && !diff.contains("status.json"), "{diff}");
        // Nothing changed: said so.
        let head = git(&["rev-parse", "HEAD"]).trim().to_string();
        git(&["checkout", "-q", "--", "a.txt", "plan.yaml"]);
        std::fs::remove_file(d.path().join("new.txt")).unwrap();
        assert!(attempt_diff(d.path(), Some(&head), &ignore).contains("changed nothing"));
        assert!(attempt_diff(d.path(), None, &ignore).starts_with("(no diff"));
        assert!(attempt_diff(d.path(), Some("no-such-commit"), &ignore).starts_with("(no diff"));
    }

    #[test]
    fn a_huge_diff_is_cut_at_a_line_with_a_note() {
        let d = repo();
        let start = crate::git::git(d.path(), &["rev-parse", "HEAD"]).unwrap().trim().to_string();
        let big: String = (0..20_000).map(|i| format!("line {i} of a large change\n")).collect();
        std::fs::write(d.path().join("a.txt"), &big).unwrap();
        let diff = attempt_diff(d.path(), Some(&start), &[]);
        assert!(diff.len() <= DIFF_MAX_BYTES + 200, "{}", diff.len());
        let last = diff.lines().last().unwrap();
        assert!(last.starts_with("[… ") && last.contains("bytes of the diff cut"), "{last}");
        let before = diff.lines().rev().nth(1).unwrap();
        assert!(before.ends_with("of a large change"), "cut at a line's end: {before}");
    }
}
