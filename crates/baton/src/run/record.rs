//! Per-attempt records on disk: the raw transcript, the agent's stderr, the prompt that was sent
//! (the agent's stdin), and a small JSON record (outcome, time, cost) that `baton status` and
//! `baton logs` read.
//!
//! Layout: `<logs_dir>/<plan>/<task>/attempt-<n>.{jsonl,stderr,prompt,json}`, `n` counting every
//! session started for the task (also those that did not count as attempts, such as a usage
//! limit).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AttemptRecord {
    pub task: String,
    pub session: u32,
    /// The plan's attempt number this session counted as, if it counted.
    pub attempt: Option<u32>,
    pub started_at: String,
    pub ended_at: String,
    pub duration_seconds: f64,
    /// completed | failed | skipped | limited | throttled | interrupted | systemic
    pub outcome: String,
    pub message: String,
    pub cost_usd: Option<f64>,
    /// `cost_usd` was worked out by baton from the tokens and `[prices]`: the agent reports no
    /// cost of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cost_from_prices: bool,
    pub turns: Option<u32>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Prompt-cache tokens read and written, as the CLI counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    pub session_id: Option<String>,
    pub exit: Option<String>,
    /// For limits and throttling: how long baton waited before trying again.
    pub waited_seconds: Option<f64>,
    /// A session ended before its agent said what it cost: what the budget was charged for it
    /// (the plan's median attempt cost, at most its cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
    /// The named agent the session ran as (the task's `agent:`, passed as `--agent NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_agent: Option<String>,
    /// The agent it ran on, by its name in baton.toml (`claude`, `codex-main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The model the session ran with: the one the CLI reported, else the one baton asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Whether the attempt changed anything in its working copy (a commit, or a change to a
    /// file baton does not own); `None` when not looked at (no git, or the agent did not
    /// report `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    /// The checks run after the agent reported `completed`, in order (they stop at the first
    /// that fails).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRecord>,
    /// The reviewer session's judgement, when the task is reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewRecord>,
}

/// One check command's run, as kept in the attempt record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckRecord {
    pub command: String,
    /// Where the command came from: `config` (`[verify] commands`), `plan` (`meta.verify`) or
    /// `task` (the task's `verify`).
    pub from: String,
    /// The exit code; `None` when it ended by a signal or a timeout.
    pub exit: Option<i32>,
    /// The signal that ended it, when one did (not baton's timeout or stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub passed: bool,
    pub duration_seconds: f64,
    /// Its whole output (stdout and stderr as they came), beside the record.
    pub output: String,
    /// The last lines of its output, for messages and the next prompt.
    pub tail: String,
}

/// The reviewer's judgement of an attempt, as kept in the attempt record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReviewRecord {
    /// `PASS`, `WARN` or `FAIL`; `None` when no valid verdict came.
    pub verdict: Option<String>,
    pub findings: Vec<String>,
    /// Why there is no verdict (the reviewer crashed, wrote garbage, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// When the reviewer met a usage limit: its reset, as the CLI told it (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_resets_at: Option<i64>,
    /// Reviewer sessions started (a broken one is tried once more).
    pub sessions: u32,
    pub model: Option<String>,
    pub cost_usd: Option<f64>,
    /// The reviewer sessions' transcripts, beside the record.
    pub transcripts: Vec<String>,
}

/// Where one plan's records live.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

/// The largest attempt record read (a record is a few KiB; a review's findings add some).
const RECORD_MAX_BYTES: u64 = 16 << 20;

impl Records {
    pub fn new(logs_dir: &Path, plan: &Path) -> Records {
        let stem = plan.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
        Records {
            dir: logs_dir.join(safe(&stem)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn task_dir(&self, task: &str) -> PathBuf {
        self.dir.join(safe(task))
    }

    /// Removes the temporary files of atomic writes (journals, plan copies) a killed run left in
    /// this plan's folder and its tasks' folders. Only for the holder of the plan's lock.
    pub fn remove_stale_temps(&self) {
        let folders = std::iter::once(self.dir.clone()).chain(
            std::fs::read_dir(&self.dir).into_iter().flatten().flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()),
        );
        for folder in folders {
            for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().contains(crate::plan::TEMP_MARK) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// The next session number for a task.
    pub fn next_session(&self, task: &str) -> u32 {
        self.sessions(task).last().map_or(1, |n| n + 1)
    }

    /// Session numbers that have a transcript, ascending.
    pub fn sessions(&self, task: &str) -> Vec<u32> {
        let mut n: Vec<u32> = std::fs::read_dir(self.task_dir(task))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("attempt-")?.strip_suffix(".jsonl")?.parse().ok()
            })
            .collect();
        n.sort_unstable();
        n
    }

    pub fn transcript(&self, task: &str, session: u32) -> PathBuf {
        self.task_dir(task).join(format!("attempt-{session}.jsonl"))
    }

    pub fn record_path(&self, task: &str, session: u32) -> PathBuf {
        self.task_dir(task).join(format!("attempt-{session}.json"))
    }

    pub fn write(&self, rec: &AttemptRecord) -> std::io::Result<()> {
        let path = self.record_path(&rec.task, rec.session);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let text = serde_json::to_string_pretty(rec).map_err(std::io::Error::other)?;
        crate::plan::write_atomic(&path, text.as_bytes())
    }

    pub fn read(&self, task: &str, session: u32) -> Option<AttemptRecord> {
        // The logs are in the working copy: only a regular file of a sane size is a record.
        let text = crate::fsx::read_regular_text(&self.record_path(task, session), RECORD_MAX_BYTES).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every recorded session of a task, in order (sessions without a record left out).
    pub fn all(&self, task: &str) -> Vec<AttemptRecord> {
        self.sessions(task).into_iter().filter_map(|s| self.read(task, s)).collect()
    }

    /// Agent time, cost, waiting and the last outcome per task, over every recorded session.
    pub fn usage(&self, tasks: impl Iterator<Item = String>) -> HashMap<String, TaskUsage> {
        tasks
            .filter_map(|t| {
                let mut u = TaskUsage::default();
                for s in self.sessions(&t) {
                    if let Some(r) = self.read(&t, s) {
                        u.seconds += r.duration_seconds;
                        // The reviewer's sessions are spent on the task too.
                        u.cost_usd += r.cost_usd.unwrap_or(0.0) + r.review.as_ref().and_then(|v| v.cost_usd).unwrap_or(0.0);
                        u.waited_seconds += r.waited_seconds.unwrap_or(0.0);
                        u.sessions += 1;
                        u.last_outcome = Some(r.outcome);
                        if r.model.is_some() {
                            u.last_model = r.model;
                        }
                    }
                }
                (u.sessions > 0).then_some((t, u))
            })
            .collect()
    }
}

/// What the records say about one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskUsage {
    pub sessions: u32,
    pub seconds: f64,
    pub cost_usd: f64,
    /// Time spent waiting on usage limits and throttling.
    pub waited_seconds: f64,
    pub last_outcome: Option<String>,
    /// The model of the last recorded session (for the status table; not in `usage` JSON).
    #[serde(skip)]
    pub last_model: Option<String>,
}

/// Makes sure the logs folder keeps itself out of git.
pub fn ignore_logs_root(base: &Path) {
    let _ = std::fs::create_dir_all(base);
    let gi = base.join(".gitignore");
    if !gi.exists() {
        let _ = std::fs::write(gi, "# baton's run records and transcripts; not part of the project\n*\n");
    }
}

/// A file-name-safe form of an id: `1.1` stays, `a/b` becomes `a_b`.
fn safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    match out.as_str() {
        "" | "." | ".." => format!("_{out}"),
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_of_killed_writes_are_removed_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let records = Records::new(d.path(), Path::new("plan.yaml"));
        let task = records.task_dir("1.5");
        std::fs::create_dir_all(&task).unwrap();
        for name in [".plan-at-fork.yaml.baton-tmp-32076", "attempt-1.json", "plan-at-fork.yaml"] {
            std::fs::write(task.join(name), "x").unwrap();
        }
        std::fs::write(records.dir().join(".landing-journal.json.baton-tmp-7"), "x").unwrap();
        records.remove_stale_temps();
        let mut left: Vec<String> = std::fs::read_dir(&task).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["attempt-1.json", "plan-at-fork.yaml"]);
        assert!(!records.dir().join(".landing-journal.json.baton-tmp-7").exists());
    }

    #[test]
    fn sessions_count_up_and_totals_add() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::new(d.path(), Path::new("plans/p.yaml"));
        assert_eq!(r.next_session("1.1"), 1);
        for s in 1..=2 {
            std::fs::create_dir_all(r.task_dir("1.1")).unwrap();
            std::fs::write(r.transcript("1.1", s), "").unwrap();
            r.write(&AttemptRecord {
                task: "1.1".into(),
                session: s,
                attempt: Some(s),
                duration_seconds: 2.5,
                outcome: "failed".into(),
                cost_usd: Some(0.25),
                ..Default::default()
            })
            .unwrap();
        }
        assert_eq!(r.next_session("1.1"), 3);
        let t = r.usage(["1.1".to_string(), "2".to_string()].into_iter());
        let u = &t["1.1"];
        assert_eq!((u.sessions, u.seconds, u.cost_usd, u.last_outcome.as_deref()), (2, 5.0, 0.5, Some("failed")));
        assert!(!t.contains_key("2"));
        assert_eq!(safe("../x"), ".._x");
        assert_eq!(safe(".."), "_..");
    }
}
