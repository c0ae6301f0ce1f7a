//! The task status protocol (agent → baton) and the verdict on one attempt.
//!
//! The agent reports through a JSON status file; when the file is missing, the same object may
//! stand in its final result text. This module reads that report and weighs it against how the
//! process ended and what the CLI itself said (limits, throttling, refusals). Pure except for
//! reading the status file.

use std::path::Path;

use serde_json::Value;

use crate::agent::stream::{self, StreamSummary};
use crate::agent::Systemic;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The agent exited by itself.
    Exited,
    TotalTimeout { seconds: u64 },
    IdleTimeout { seconds: u64 },
    /// baton ended it (second Ctrl+C, SIGTERM).
    Interrupted,
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
}

/// Everything known about a finished attempt.
pub struct Evidence<'a> {
    pub task_id: &'a str,
    pub status_file: &'a Path,
    /// The status file as the agent was told it (relative to its working copy), for messages.
    pub status_shown: &'a Path,
    pub ended: Ended,
    pub exit: Option<crate::run::process::ExitInfo>,
    pub summary: &'a StreamSummary,
    pub stderr_tail: &'a str,
    pub systemic: Option<Systemic>,
}

pub fn judge(e: &Evidence<'_>, now: &jiff::ZonedDateTime) -> Verdict {
    match e.ended {
        Ended::Interrupted => return Verdict::Interrupted,
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
    let result_text = e.summary.result().and_then(|r| r.result.as_deref());
    // A valid report is the agent's word on its task and wins over anything the output hints.
    let report = read_report(e.task_id, e.status_file, e.status_shown, result_text);
    if let Ok(report) = report {
        return Verdict::Done(report);
    }
    if let Some(s) = &e.systemic {
        return Verdict::Systemic(s.clone());
    }
    let evidence = LimitEvidence {
        result_text: e.summary.result().and_then(|r| r.result.clone()),
        result_is_error: e.summary.result().is_some_and(|r| r.is_error),
        api_error_status: e.summary.result().and_then(|r| r.api_error_status),
        synthetic_texts: e.summary.synthetic_texts().to_vec(),
        rate_limit_rejected_resets_at: e.summary.rate_limit_rejected().and_then(|r| r.resets_at),
        stderr_tail: Some(e.stderr_tail.to_string()).filter(|s| !s.is_empty()),
    };
    match limit::classify(&evidence, now) {
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
                stream::SessionOutcome::ErrorResult { message: Some(m), .. } => {
                    format!(" Claude Code reported an error: {}", crate::report::status::cut(&m, 300))
                }
                stream::SessionOutcome::PermissionDenied { denials } => format!(
                    " Tool calls were refused: {}.",
                    denials.iter().map(|d| d.tool_name.as_str()).collect::<Vec<_>>().join(", ")
                ),
                _ => String::new(),
            };
            let stderr = last_line(e.stderr_tail)
                .map(|l| format!(" Last stderr line: {}", crate::report::status::cut(l, 200)))
                .unwrap_or_default();
            // The CLI's own error says most; it leads when there is one.
            let message = if cli.is_empty() {
                format!("{message}.{exit}{stderr}")
            } else {
                format!("{}. Also: {message}.{exit}{stderr}", cli.trim().trim_end_matches('.'))
            };
            Verdict::Failed { message }
        }
    }
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// Reads the status file, falling back to a JSON object in the result text. The error says
/// where baton looked and what it found.
pub fn read_report(task_id: &str, status_file: &Path, shown: &Path, result_text: Option<&str>) -> Result<Report, String> {
    match std::fs::read_to_string(status_file) {
        Ok(text) => {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                format!("the status file {} is not valid JSON ({e})", shown.display())
            })?;
            report_from(task_id, &value, ReportSource::File)
                .map_err(|m| format!("the status file {}: {m}", shown.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let found = result_text.and_then(stream::find_status_json);
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

fn report_from(task_id: &str, v: &Value, source: ReportSource) -> Result<Report, String> {
    let Some(obj) = v.as_object() else {
        return Err("it is not a JSON object".into());
    };
    let reported_id = match obj.get("task_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("\"task_id\" is not a string".into()),
        None => return Err("it has no \"task_id\"".into()),
    };
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

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("task-status.json");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_good_report_is_read() {
        let (_d, p) = file(r#"{"task_id": "1.10", "status": "completed", "message": "did it", "plan_modified": true}"#);
        let r = read_report("1.10", &p, &p, None).unwrap();
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
            let e = read_report("1.10", &p, &p, None).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_missing_file_falls_back_to_the_result_text() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("none.json");
        let text = "Done.\n```json\n{\"task_id\": \"2\", \"status\": \"failed\", \"message\": \"no\"}\n```";
        let r = read_report("2", &p, &p, Some(text)).unwrap();
        assert_eq!((r.status, r.source), (Status::Failed, ReportSource::ResultText));
        let e = read_report("2", &p, &p, Some("all done, trust me")).unwrap_err();
        assert!(e.contains("wrote no") && e.contains("final answer holds no status JSON"), "{e}");
        let e = read_report("2", &p, &p, Some("{\"task_id\": \"3\", \"status\": \"completed\"}")).unwrap_err();
        assert!(e.contains("final answer") && e.contains("'3'"), "{e}");
    }
}
