//! Checks: the commands run after an agent reports a task `completed`, before baton records it
//! (`[verify] commands`, `meta.verify`, the task's `verify`), and the no-op detection that asks
//! whether the attempt changed anything at all.
//!
//! Each check is `sh -c COMMAND` in the task's checkout, run through the one process supervisor
//! ([`crate::supervise`]) under the guard with [`Policy::check`]: a process group of its own,
//! the total timeout, nothing it starts outliving it, ended at once by an immediate stop. Its
//! output (stdout and stderr as they came) goes to a file beside the attempt's record; its last
//! lines are kept in the [`CheckRecord`] for `last_error` and the next attempt's prompt.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::VerifyConfig;
use crate::plan::{Plan, Task, TaskId};
use crate::report::event::{EventKind, Reporter};
use crate::run::record::CheckRecord;
use crate::run::stop::{self, Stop};
use crate::supervise::{run_to_end, CommandSpec, Ended, Policy, Stream};

/// The last lines of a check's output kept in its record, and how many bytes they may take.
const TAIL_LINES: usize = 40;
const TAIL_BYTES: usize = 4 * 1024;

/// Between SIGTERM and SIGKILL when a check is ended (its timeout, a stop).
const CHECK_GRACE: Duration = Duration::from_secs(5);

/// Where a check command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckSource {
    /// `[verify] commands` in `baton.toml`.
    Config,
    /// The plan's `meta.verify`.
    Plan,
    /// The task's own `verify`.
    Task,
}

impl CheckSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckSource::Config => "config",
            CheckSource::Plan => "plan",
            CheckSource::Task => "task",
        }
    }

    /// Where it is written, for a person: `[verify] commands in baton.toml`.
    fn place(from: &str) -> &'static str {
        match from {
            "config" => "`[verify] commands` in baton.toml",
            "plan" => "the plan's `meta.verify`",
            "task" => "the task's `verify`",
            _ => "the checks",
        }
    }
}

/// One check command and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub command: String,
    pub from: CheckSource,
}

/// The checks of `task`, all of them, in the order they run: `[verify] commands`, then
/// `meta.verify`, then the task's `verify`.
pub fn checks_for(config: &VerifyConfig, plan: &Plan, task: &Task) -> Vec<Check> {
    let sources = [
        (&config.commands, CheckSource::Config),
        (&plan.meta.verify, CheckSource::Plan),
        (&task.verify, CheckSource::Task),
    ];
    sources
        .into_iter()
        .flat_map(|(commands, from)| commands.iter().map(move |c| Check { command: c.clone(), from }))
        .collect()
}

/// Where and how the checks of one attempt run.
#[derive(Debug, Clone)]
pub struct CheckJob {
    pub task: TaskId,
    /// The task's checkout: the repository, or its worktree in a parallel run.
    pub cwd: PathBuf,
    /// Added to baton's environment for each command.
    pub env: Vec<(OsString, OsString)>,
    /// baton's own binary, which guards each command (`baton __guard`).
    pub guard_exe: PathBuf,
    /// The longest one command may run (`[verify] timeout_seconds`).
    pub timeout: Duration,
    /// Check k's output goes to `<log_prefix>-<k>.log` (k from 1).
    pub log_prefix: PathBuf,
}

/// What running the checks of an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// One per check that ran, in order; the last is the one that failed, if one did.
    pub records: Vec<CheckRecord>,
    /// The index (into the checks and `records`) of the check that failed.
    pub failed: Option<usize>,
    /// An immediate stop ended a check: not a failure of the task.
    pub interrupted: bool,
}

impl Checked {
    pub fn passed(&self) -> bool {
        self.failed.is_none() && !self.interrupted
    }
}

/// Runs `checks` in order in `job.cwd`, stopping at the first that fails (exit ≠ 0, a signal,
/// its timeout, or it could not be started) or when an immediate stop comes. Emits
/// `CheckStarted` and `CheckEnded` for each.
pub async fn run_checks(checks: &[Check], job: &CheckJob, reporter: &Reporter, stop: watch::Receiver<Stop>) -> Checked {
    run_guarded(checks, job, Some(job.guard_exe.clone()), reporter, stop).await
}

/// [`run_checks`] with the guard given apart: `None` only for the module's tests, which have no
/// baton binary.
async fn run_guarded(checks: &[Check], job: &CheckJob, guard: Option<PathBuf>, reporter: &Reporter, mut stop: watch::Receiver<Stop>) -> Checked {
    let policy = Policy::check(guard, job.timeout, CHECK_GRACE);
    let mut checked = Checked { records: Vec::new(), failed: None, interrupted: false };
    for (index, check) in checks.iter().enumerate() {
        if stop::level(&stop) >= Stop::Now {
            checked.interrupted = true;
            break;
        }
        reporter.emit(EventKind::CheckStarted {
            task: job.task.clone(),
            command: check.command.clone(),
            index: index + 1,
            count: checks.len(),
        });
        let log = log_file(&job.log_prefix, index + 1);
        let (record, interrupted) = run_one(check, job, &policy, &log, &mut stop).await;
        if !interrupted {
            reporter.emit(EventKind::CheckEnded {
                task: job.task.clone(),
                command: check.command.clone(),
                passed: record.passed,
                exit: record.exit,
                signal: record.signal,
                timed_out: record.timed_out,
                duration: Duration::from_secs_f64(record.duration_seconds),
            });
        }
        let passed = record.passed;
        checked.records.push(record);
        if interrupted {
            checked.interrupted = true;
            break;
        }
        if !passed {
            checked.failed = Some(index);
            break;
        }
    }
    checked
}

/// `<prefix>-<k>.log`.
fn log_file(prefix: &Path, k: usize) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(format!("-{k}.log"));
    PathBuf::from(name)
}

/// Runs one check to its end, or until an immediate stop (then `true`).
async fn run_one(check: &Check, job: &CheckJob, policy: &Policy, log: &Path, stop: &mut watch::Receiver<Stop>) -> (CheckRecord, bool) {
    let mut spec = CommandSpec::shell(&check.command, job.cwd.clone());
    spec.env = job.env.clone();
    let mut record = CheckRecord {
        command: check.command.clone(),
        from: check.from.as_str().to_string(),
        exit: None,
        signal: None,
        timed_out: false,
        passed: false,
        duration_seconds: 0.0,
        output: log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        tail: String::new(),
    };
    let mut file = match std::fs::File::create(log) {
        Ok(f) => Some(std::io::BufWriter::new(f)),
        Err(e) => {
            record.tail = format!("baton could not create the check's output file {}: {e}", log.display());
            return (record, false);
        }
    };
    let mut tail = Tail::default();
    let start = Instant::now();
    let finished = {
        let mut on_line = |_: Stream, line: &str| {
            if let Some(f) = file.as_mut() {
                if writeln!(f, "{line}").is_err() {
                    file = None;
                }
            }
            tail.push(line);
        };
        let run = run_to_end(&spec, policy, &mut on_line);
        tokio::pin!(run);
        loop {
            tokio::select! {
                finished = &mut run => break Some(finished),
                changed = stop.changed() => {
                    // A closed channel is no stop; only an immediate one ends a check.
                    if changed.is_err() {
                        break Some(run.await);
                    }
                    if stop::level(stop) >= Stop::Now {
                        // Dropping the run ends the command and everything it started.
                        break None;
                    }
                }
            }
        }
    };
    if let Some(mut f) = file {
        let _ = f.flush();
    }
    record.tail = tail.render();
    let Some(finished) = finished else {
        record.duration_seconds = start.elapsed().as_secs_f64();
        return (record, true);
    };
    record.duration_seconds = finished.duration.as_secs_f64();
    match finished.ended {
        Ended::Exited(exit) => {
            record.exit = exit.code;
            record.signal = exit.signal;
            record.passed = exit.success();
        }
        Ended::TimedOut => {
            record.timed_out = true;
            record.duration_seconds = job.timeout.as_secs_f64();
        }
        Ended::Error(e) => {
            let mut message = format!("baton could not start `sh -c {}`: {}", crate::report::safe::shell_quote(&check.command), e);
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            record.tail = message;
        }
    }
    (record, false)
}

/// The last lines of a check's output: at most [`TAIL_LINES`] lines and [`TAIL_BYTES`] bytes.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &str) {
        let line = crate::report::safe::cut(line, TAIL_BYTES);
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn render(&self) -> String {
        let mut kept: Vec<&str> = Vec::new();
        let mut bytes = 0;
        for line in self.lines.iter().rev() {
            if bytes + line.len() + 1 > TAIL_BYTES && !kept.is_empty() {
                break;
            }
            bytes += line.len() + 1;
            kept.push(line);
        }
        kept.reverse();
        let mut text = kept.join("\n");
        if text.len() > TAIL_BYTES {
            // One line longer than the cap: its end is what matters.
            let mut cut = text.len() - TAIL_BYTES;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text = format!("…{}", &text[cut..]);
        }
        text
    }
}

/// How a check ended, in words: `failed (exit 101)`, `timed out after 600 s`.
fn how_it_ended(r: &CheckRecord) -> String {
    if r.passed {
        "passed".to_string()
    } else if r.timed_out {
        format!("timed out after {} s", r.duration_seconds.round() as u64)
    } else if let Some(code) = r.exit {
        format!("failed (exit {code})")
    } else if let Some(signo) = r.signal {
        format!("ended by signal {signo}")
    } else {
        "could not be run".to_string()
    }
}

/// One line for the plan's `last_error`: ``check `cargo test` failed (exit 101): <the last
/// non-empty output line>``.
pub fn failure_line(r: &CheckRecord) -> String {
    let command = crate::report::safe::one_line(&r.command);
    let mut line = format!("check `{command}` {}", how_it_ended(r));
    if let Some(last) = r.tail.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        line.push_str(": ");
        line.push_str(&crate::report::safe::cut(&crate::report::safe::one_line(last), 300));
    }
    line
}

/// The text for the next attempt's prompt: the command, where it came from, how it ended, and
/// its last lines.
pub fn failure_feedback(r: &CheckRecord) -> String {
    let mut text = format!(
        "The check `{}` (from {}) {} after you reported the task completed, so the task is not done yet.\n",
        r.command,
        CheckSource::place(&r.from),
        how_it_ended(r)
    );
    if r.tail.trim().is_empty() {
        text.push_str("It printed nothing.\n");
    } else {
        let fence = if r.tail.contains("```") { "~~~~" } else { "```" };
        text.push_str(&format!("The last lines of its output:\n{fence}\n{}\n{fence}\n", r.tail));
    }
    text.push_str("Fix what it reports; baton runs the check again when you report the task completed.\n");
    text
}

/// HEAD's commit id in `cwd`; `None` outside git or before the first commit.
pub fn start_point(cwd: &Path) -> Option<String> {
    crate::git::git(cwd, &["rev-parse", "--verify", "-q", "HEAD^{commit}"])
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Whether anything changed in `cwd`'s repository since `start` (from [`start_point`]): a
/// commit since then, or the working tree, changed a path (tracked modification, staged,
/// untracked file git does not ignore) outside the `ignore` paths (relative to `cwd`: the plan
/// file, baton's own files). `None` when it cannot tell (not a git repository, git failing).
pub fn changed_since(cwd: &Path, start: Option<&str>, ignore: &[PathBuf]) -> Option<bool> {
    if !crate::git::is_repo(cwd) {
        return None;
    }
    let prefix = crate::git::git(cwd, &["rev-parse", "--show-prefix"]).ok()?;
    let prefix = PathBuf::from(prefix.trim_end_matches('\n'));
    let ignore: Vec<PathBuf> = ignore.iter().map(|p| normal(&prefix.join(p))).collect();
    let ignored = |path: &[u8]| {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        ignore.iter().any(|i| path.starts_with(i))
    };
    let head = start_point(cwd);
    if head.as_deref() != start {
        // Commits made: what they changed counts, but not the plan or baton's own files (an
        // agent's `git add -A` commits baton's `in_progress` edit of the plan with its work).
        let (Some(from), Some(to)) = (start, head.as_deref()) else { return Some(true) };
        let out = crate::git::git_bytes(cwd, &["diff", "--name-only", "-z", "--no-renames", from, to, "--"], &[], None).ok()?;
        if out.split(|b| *b == 0).any(|p| !p.is_empty() && !ignored(p)) {
            return Some(true);
        }
    }
    let out = crate::git::git_bytes(cwd, &["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none"], &[], None).ok()?;
    let mut entries = out.split(|b| *b == 0).filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        if entry.len() < 4 {
            continue;
        }
        let (xy, path) = (&entry[..2], &entry[3..]);
        let mut paths = vec![path];
        // A rename or copy names its source next.
        if xy.contains(&b'R') || xy.contains(&b'C') {
            if let Some(from) = entries.next() {
                paths.push(from);
            }
        }
        if paths.into_iter().any(|p| !ignored(p)) {
            return Some(true);
        }
    }
    Some(false)
}

/// `p` without `.` components.
fn normal(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

/// What a check or a reviewer must leave as it found it: HEAD, the branch, and the content of
/// tracked files (a digest of `git diff HEAD`). New untracked files — a check's by-products —
/// are not part of it. `None` outside git.
pub fn tracked_state(cwd: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let head = crate::git::git(cwd, &["rev-parse", "-q", "--verify", "HEAD"]).ok()?;
    let branch = crate::git::git(cwd, &["symbolic-ref", "-q", "HEAD"]).unwrap_or_default();
    let diff = crate::git::git(cwd, &["diff", "--no-ext-diff", "--no-color", "--binary", "HEAD"]).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    diff.hash(&mut h);
    Some(format!("{} {} {:016x}", head.trim(), branch.trim(), h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use baton_testkit::TempRepo;

    fn check(command: &str, from: CheckSource) -> Check {
        Check { command: command.to_string(), from }
    }

    fn job(cwd: &Path, logs: &Path, timeout: Duration) -> CheckJob {
        CheckJob {
            task: TaskId("1.2".into()),
            cwd: cwd.to_path_buf(),
            env: vec![("BATON_CHECK_TEST".into(), "yes".into())],
            guard_exe: PathBuf::from("/nonexistent/baton"),
            timeout,
            log_prefix: logs.join("attempt-1-check"),
        }
    }

    /// Events seen by a test's reporter.
    #[derive(Clone, Default)]
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<EventKind>>>);

    impl crate::report::event::Sink for Seen {
        fn event(&mut self, ev: &crate::report::event::RunEvent) {
            self.0.lock().unwrap().push(ev.kind.clone());
        }
    }

    /// Runs unguarded: a test binary is not a baton binary (the guarded path is tested through
    /// the real binary in the integration tests).
    async fn run(checks: &[Check], job: &CheckJob) -> (Checked, Vec<EventKind>) {
        let seen = Seen::default();
        let reporter = Reporter::new(vec![Box::new(seen.clone())]);
        let (_tx, rx) = watch::channel(Stop::Running);
        let checked = run_guarded(checks, job, None, &reporter, rx).await;
        let events = seen.0.lock().unwrap().clone();
        (checked, events)
    }

    fn plan_with(meta_verify: &[&str], task_verify: &[&str]) -> (Plan, Task) {
        let yaml = format!(
            "meta:\n  name: p\n  verify: [{}]\nsections:\n- id: s\n  tasks:\n  - id: '1.1'\n    name: t\n    status: pending\n    verify: [{}]\n",
            meta_verify.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", "),
            task_verify.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", "),
        );
        let plan = crate::plan::parse_plan(&yaml).expect("the test plan parses");
        let task = plan.sections[0].tasks[0].clone();
        (plan, task)
    }

    #[test]
    fn checks_come_from_config_then_plan_then_task() {
        let (plan, task) = plan_with(&["make lint", "make doc"], &["test -f out.txt"]);
        let config = VerifyConfig { commands: vec!["cargo test".into()], ..VerifyConfig::default() };
        let checks = checks_for(&config, &plan, &task);
        assert_eq!(
            checks,
            [
                check("cargo test", CheckSource::Config),
                check("make lint", CheckSource::Plan),
                check("make doc", CheckSource::Plan),
                check("test -f out.txt", CheckSource::Task),
            ]
        );
        assert_eq!(checks.iter().map(|c| c.from.as_str()).collect::<Vec<_>>(), ["config", "plan", "plan", "task"]);
        let (plan, task) = plan_with(&[], &[]);
        assert!(checks_for(&VerifyConfig::default(), &plan, &task).is_empty());
    }

    #[tokio::test]
    async fn checks_run_in_order_in_the_checkout_and_stop_at_the_first_failure() {
        let repo = TempRepo::new();
        let logs = tempfile::tempdir().unwrap();
        let checks = [
            check("echo first >> order; echo \"env=$BATON_CHECK_TEST\"", CheckSource::Config),
            check("echo second >> order; echo 'broken: 3 tests failed' >&2; exit 101", CheckSource::Plan),
            check("echo third >> order", CheckSource::Task),
        ];
        let (checked, events) = run(&checks, &job(repo.path(), logs.path(), Duration::from_secs(60))).await;
        assert_eq!(checked.failed, Some(1));
        assert!(!checked.interrupted && !checked.passed());
        assert_eq!(checked.records.len(), 2, "the third never ran");
        assert_eq!(std::fs::read_to_string(repo.path().join("order")).unwrap(), "first\nsecond\n");
        let (ok, bad) = (&checked.records[0], &checked.records[1]);
        assert!(ok.passed && ok.exit == Some(0) && ok.tail == "env=yes", "{ok:?}");
        assert_eq!((bad.passed, bad.exit, bad.timed_out, bad.from.as_str()), (false, Some(101), false, "plan"));
        assert_eq!(bad.output, "attempt-1-check-2.log");
        assert_eq!(std::fs::read_to_string(logs.path().join("attempt-1-check-2.log")).unwrap(), "broken: 3 tests failed\n");
        assert_eq!(failure_line(bad), "check `echo second >> order; echo 'broken: 3 tests failed' >&2; exit 101` failed (exit 101): broken: 3 tests failed");
        let feedback = failure_feedback(bad);
        assert!(feedback.contains("the plan's `meta.verify`") && feedback.contains("failed (exit 101)"), "{feedback}");
        assert!(feedback.contains("```\nbroken: 3 tests failed\n```"), "{feedback}");

        let kinds: Vec<String> = events
            .iter()
            .map(|e| match e {
                EventKind::CheckStarted { index, count, .. } => format!("start {index}/{count}"),
                EventKind::CheckEnded { passed, exit, .. } => format!("end {passed} {exit:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["start 1/3", "end true Some(0)", "start 2/3", "end false Some(101)"]);

        let all_pass = [check("true", CheckSource::Config), check("exit 0", CheckSource::Task)];
        let (checked, _) = run(&all_pass, &job(repo.path(), logs.path(), Duration::from_secs(60))).await;
        assert!(checked.passed() && checked.records.len() == 2, "{checked:?}");
    }

    #[tokio::test]
    async fn a_check_past_its_timeout_fails_and_says_so() {
        let repo = TempRepo::new();
        let logs = tempfile::tempdir().unwrap();
        let (checked, events) = run(&[check("echo waiting; sleep 30", CheckSource::Task)], &job(repo.path(), logs.path(), Duration::from_secs(1))).await;
        assert_eq!(checked.failed, Some(0));
        let r = &checked.records[0];
        assert!(r.timed_out && !r.passed && r.exit.is_none(), "{r:?}");
        assert_eq!(failure_line(r), "check `echo waiting; sleep 30` timed out after 1 s: waiting");
        assert!(matches!(events.last(), Some(EventKind::CheckEnded { timed_out: true, passed: false, .. })), "{events:?}");
    }

    #[tokio::test]
    async fn the_output_goes_to_its_file_and_the_tail_keeps_the_last_40_lines() {
        let repo = TempRepo::new();
        let logs = tempfile::tempdir().unwrap();
        let (checked, _) = run(&[check("seq 1 200; exit 2", CheckSource::Config)], &job(repo.path(), logs.path(), Duration::from_secs(60))).await;
        let r = &checked.records[0];
        let file = std::fs::read_to_string(logs.path().join("attempt-1-check-1.log")).unwrap();
        assert_eq!(file.lines().count(), 200);
        let tail: Vec<&str> = r.tail.lines().collect();
        assert_eq!(tail.len(), 40);
        assert_eq!((tail[0], tail[39]), ("161", "200"));
        assert_eq!(failure_line(r), "check `seq 1 200; exit 2` failed (exit 2): 200");

        // Long lines: the tail stays within 4 KiB.
        let (checked, _) = run(&[check("for i in $(seq 1 50); do head -c 500 /dev/zero | tr '\\0' x; echo; done", CheckSource::Config)], &job(repo.path(), logs.path(), Duration::from_secs(60))).await;
        let r = &checked.records[0];
        assert!(r.passed, "{r:?}");
        assert!(r.tail.len() <= TAIL_BYTES && r.tail.lines().count() >= 7, "{}", r.tail.len());
    }

    #[tokio::test]
    async fn a_check_that_cannot_start_is_a_failure_with_its_reason() {
        let repo = TempRepo::new();
        let logs = tempfile::tempdir().unwrap();
        let gone = repo.path().join("no-such-dir");
        let (checked, events) = run(&[check("true", CheckSource::Task), check("true", CheckSource::Task)], &job(&gone, logs.path(), Duration::from_secs(60))).await;
        assert_eq!(checked.failed, Some(0));
        let r = &checked.records[0];
        assert!(!r.passed && r.exit.is_none() && !r.timed_out, "{r:?}");
        assert!(r.tail.contains("could not start") && r.tail.contains("no-such-dir"), "{}", r.tail);
        assert!(failure_line(r).starts_with("check `true` could not be run: baton could not start"), "{}", failure_line(r));
        assert_eq!(events.len(), 2, "{events:?}");
    }

    #[tokio::test]
    async fn a_check_ended_by_a_signal_says_which() {
        let repo = TempRepo::new();
        let logs = tempfile::tempdir().unwrap();
        let (checked, _) = run(&[check("kill -9 $$", CheckSource::Task)], &job(repo.path(), logs.path(), Duration::from_secs(60))).await;
        let r = &checked.records[0];
        assert_eq!((r.signal, r.passed), (Some(9), false), "{r:?}");
        assert_eq!(failure_line(r), "check `kill -9 $$` ended by signal 9");
    }

    #[tokio::test]
    async fn an_immediate_stop_ends_a_check_without_failing_it() {
        let repo = TempRepo::new();
        let logs = tempfile::tempdir().unwrap();
        let job = job(repo.path(), logs.path(), Duration::from_secs(120));
        let ready = repo.path().join("ready");
        let command = format!("touch {}; sleep 60", ready.display());
        let checks = [check(&command, CheckSource::Task), check("touch never", CheckSource::Task)];
        let (tx, rx) = watch::channel(Stop::Running);
        let reporter = Reporter::new(Vec::new());
        let stopper = async {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !ready.exists() {
                assert!(std::time::Instant::now() < deadline, "the check never started");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // A graceful stop lets the check go on; only an immediate one ends it.
            tx.send(Stop::Graceful).unwrap();
            tokio::task::yield_now().await;
            tx.send(Stop::Now).unwrap();
        };
        let (checked, ()) = tokio::join!(run_guarded(&checks, &job, None, &reporter, rx), stopper);
        assert!(checked.interrupted, "{checked:?}");
        assert_eq!(checked.failed, None);
        assert_eq!(checked.records.len(), 1);
        assert!(!repo.path().join("never").exists());
    }

    #[test]
    fn changes_are_seen_and_baton_s_own_files_are_not() {
        let repo = TempRepo::new();
        repo.write("README.md", "hello\n");
        repo.write(".claude/plans/plan.yaml", "meta: {}\n");
        repo.commit_all("start");
        let ignore = [PathBuf::from(".claude/plans/plan.yaml"), PathBuf::from(".baton")];
        let start = start_point(repo.path());
        assert!(start.is_some());
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(false));

        // Only baton's files changed.
        repo.write(".claude/plans/plan.yaml", "meta: {name: x}\n");
        repo.write(".baton/logs/1.1/attempt-1.json", "{}");
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(false));

        // An untracked file.
        repo.write("out.txt", "done\n");
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(true));
        std::fs::remove_file(repo.path().join("out.txt")).unwrap();
        // A file git ignores is no change.
        repo.write(".gitignore", "target/\n");
        repo.commit_all("ignore target");
        let start = start_point(repo.path());
        repo.write("target/debug/x", "bin");
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(false));
        // A tracked modification, staged or not.
        repo.write("README.md", "changed\n");
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(true));
        repo.git(&["add", "README.md"]);
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(true));
        // A commit, with a clean tree after it.
        repo.commit_all("the work");
        assert_eq!(changed_since(repo.path(), start.as_deref(), &ignore), Some(true));
        let now = start_point(repo.path());
        assert_ne!(now, start);
        assert_eq!(changed_since(repo.path(), now.as_deref(), &ignore), Some(false));
        // A commit of nothing but baton's edit of the plan (an agent's `git add -A`) is none.
        repo.write(".claude/plans/plan.yaml", "meta: {name: in_progress}\n");
        repo.commit_all("task 1: done (nothing)");
        assert_eq!(changed_since(repo.path(), now.as_deref(), &ignore), Some(false));
        // An empty commit neither.
        repo.git(&["commit", "-q", "--allow-empty", "-m", "empty"]);
        assert_eq!(changed_since(repo.path(), now.as_deref(), &ignore), Some(false));
    }

    #[test]
    fn outside_git_nothing_can_be_told() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(start_point(dir.path()), None);
        assert_eq!(changed_since(dir.path(), None, &[]), None);
    }

    #[test]
    fn the_tail_keeps_whole_lines_within_its_bytes() {
        let mut tail = Tail::default();
        for i in 0..100 {
            tail.push(&format!("{i:03} {}", "y".repeat(200)));
        }
        let text = tail.render();
        assert!(text.len() <= TAIL_BYTES);
        assert!(text.lines().all(|l| l.len() == 204), "whole lines only");
        assert!(text.ends_with(&format!("099 {}", "y".repeat(200))));
    }
}
