//! Task control by hand — `baton retry`, `baton skip`, `baton reset` — and `baton stop`.
//!
//! A control command edits the plan the way the engine does: under the plan's lock, the owned
//! fields only (`PlanFile` rewrites their bytes and keeps everything else as written), read back
//! before an atomic save, and in a git repository the plan alone is committed
//! (`baton: retry 3.2`) — unless the plan had uncommitted edits of the user's, which are theirs
//! to commit.
//!
//! No edit is made while a run holds the plan. The run keeps the plan in memory and puts back
//! the owned fields someone else changes (a retried task would read failed again), and a task
//! that is about to start cannot be skipped without a race; so every control edit is refused
//! then, naming the run's pid (stop it with `baton stop`, then edit).
//!
//! Must not: print before the work is done. A report is built and printed once, after the save
//! and the commit, so a closed pipe cannot cut an edit short.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::error::Help;
use crate::exit::Exit;
use crate::plan::{PlanFile, SaveOutcome, Status, TaskField, TaskId};
use crate::root::GitUse;
use crate::run::lock::{self, CheckoutLock, LockError, PlanLock};

/// A change of task states asked for on the command line.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Back to `pending`: the named tasks and, with `failed`, every failed one. Attempts are kept
    /// (the count stays the task's history) unless `reset_attempts`.
    Retry { tasks: Vec<String>, failed: bool, reset_attempts: bool },
    /// `skipped`, with the reason as the task's `result_message`.
    Skip { task: String, reason: Option<String> },
    /// Back to `pending` with no attempts: the named tasks, or every task with `all`.
    Reset { tasks: Vec<String>, all: bool },
}

impl Edit {
    fn verb(&self) -> &'static str {
        match self {
            Edit::Retry { .. } => "retry",
            Edit::Skip { .. } => "skip",
            Edit::Reset { .. } => "reset",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The plan's diagnostics, rendered (file, line, fix).
    #[error("{0}")]
    Plan(String),
    #[error("{}", unknown_text(.plan, .ids))]
    UnknownTasks { plan: PathBuf, ids: Vec<(String, Vec<String>)> },
    #[error("plan {} is being run by baton (pid {pid}); `baton {verb}` does not change a plan while a run holds it", plan.display())]
    Running { plan: PathBuf, pid: String, verb: &'static str },
    #[error("cannot take the plan's lock")]
    Lock(#[source] LockError),
    /// Tasks the edit does not apply to, one line each; `help` says what does.
    #[error("{}", lines.join("\n"))]
    NotApplicable { lines: Vec<String>, help: String },
    #[error("the plan is saved, but committing it failed: {0}")]
    Commit(String),
    #[error("cannot write the stop file {}: {source}", path.display())]
    StopFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Help for ControlError {
    fn help(&self) -> Option<String> {
        Some(match self {
            ControlError::Config(_) => "fix or remove this setting (see README.md, \"Configuration\")".into(),
            ControlError::Plan(_) => return None,
            ControlError::UnknownTasks { plan, .. } => format!("`baton status {}` lists the task ids; nothing was changed", plan.display()),
            ControlError::Running { plan, .. } => format!(
                "wait for the run to end, or stop it with `baton stop {}` and run this again once it has exited; nothing was changed",
                plan.display()
            ),
            ControlError::Lock(_) => "check that baton may write in its logs folder ([paths] logs_dir); nothing was changed".into(),
            ControlError::NotApplicable { help, .. } => format!("{help}; nothing was changed"),
            ControlError::Commit(_) => "commit the plan yourself (`git commit PLAN`), or leave it: the next `baton run` commits the plan state".into(),
            ControlError::StopFile { source, .. } if source.kind() == std::io::ErrorKind::InvalidInput => "a symbolic link is never written through: remove it, then ask again".into(),
            ControlError::StopFile { .. } => "check the folder's permissions, or create the file by hand".into(),
        })
    }
}

fn unknown_text(plan: &Path, ids: &[(String, Vec<String>)]) -> String {
    ids.iter()
        .map(|(id, near)| format!("no task '{id}' in {}{}", plan.display(), did_you_mean(near)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `; did you mean '3.2' or '3.12'?` for an unknown id's close matches, or nothing.
pub fn did_you_mean(near: &[String]) -> String {
    let quoted: Vec<String> = near.iter().map(|n| format!("'{n}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

/// Runs a control edit and prints what it did; the exit code says how it went.
pub fn edit(plan: &Path, edit: &Edit) -> Exit {
    match apply(plan, edit) {
        Ok(report) => {
            crate::out!("{report}");
            Exit::Completed
        }
        Err(e) => {
            crate::errln!("{}", crate::error::render(&e));
            Exit::InvalidInput
        }
    }
}

/// One task's change.
struct Change {
    id: TaskId,
    from: Status,
    to: Status,
    attempts: u32,
    new_attempts: u32,
    max: u32,
}

impl Change {
    fn changes(&self) -> bool {
        self.from != self.to || self.attempts != self.new_attempts
    }
}

fn apply(plan: &Path, edit: &Edit) -> Result<String, ControlError> {
    let root = crate::root::root_for_plan(plan);
    let config = Config::load(&root)?;
    let logs_dir = root.join(&config.paths.logs_dir);
    if config.paths.logs_dir.starts_with(".baton") {
        crate::run::record::ignore_logs_root(&root.join(".baton"));
    }
    let _lock = PlanLock::acquire(&logs_dir.join("locks"), plan).map_err(|e| match e {
        LockError::Held { holder, .. } => ControlError::Running { plan: plan.to_path_buf(), pid: holder, verb: edit.verb() },
        other => ControlError::Lock(other),
    })?;
    let mut file = PlanFile::load(plan).map_err(|e| ControlError::Plan(e.render()))?;
    let changes = select(&file, plan, edit, config.run.max_attempts)?;

    let mut report = String::new();
    let todo: Vec<&Change> = changes.iter().filter(|c| c.changes()).collect();
    if changes.is_empty() {
        // Nothing named and nothing selected: `retry --failed` with no failed task, or
        // `reset --all` of a plan without tasks.
        let what = if matches!(edit, Edit::Retry { .. }) { "failed task" } else { "task" };
        let _ = writeln!(report, "no {what} in {}; nothing to {}", plan.display(), edit.verb());
        return Ok(report);
    }
    // Whether the plan is the user's to commit, asked before it is touched.
    let commit = commit_decision(&root, &config, plan);
    for c in &todo {
        file.set_status(c.id.as_str(), c.to).map_err(|e| ControlError::Plan(e.render()))?;
        if c.new_attempts != c.attempts {
            file.set_attempts(c.id.as_str(), c.new_attempts).map_err(|e| ControlError::Plan(e.render()))?;
        }
    }
    if let Edit::Reset { .. } = edit {
        // From scratch: what an earlier attempt said, and when it completed, no longer holds.
        for c in &todo {
            for field in [TaskField::CompletedAt, TaskField::ResultMessage, TaskField::LastError] {
                file.clear_text(c.id.as_str(), field).map_err(|e| ControlError::Plan(e.render()))?;
            }
        }
    }
    if let Edit::Skip { reason, .. } = edit {
        if let Some(c) = todo.first() {
            let text = reason.clone().unwrap_or_else(|| "skipped by hand (`baton skip`)".to_string());
            file.set_text(c.id.as_str(), TaskField::ResultMessage, &text).map_err(|e| ControlError::Plan(e.render()))?;
        }
    }
    let saved = if todo.is_empty() { SaveOutcome::Unchanged } else { file.save().map_err(|e| ControlError::Plan(e.render()))? };

    for c in &changes {
        let _ = writeln!(report, "{}", line(c, edit));
    }
    if todo.is_empty() {
        let _ = writeln!(report, "nothing to change in {}", plan.display());
        return Ok(report);
    }
    if let SaveOutcome::RejectedEdit { kept_at, .. } = &saved {
        let _ = writeln!(report, "warning: the plan had been edited into an invalid state meanwhile; that edit is kept at {}", kept_at.display());
    }
    tell_consequences(&mut report, &file, &todo, edit);
    match commit {
        Commit::Yes => {
            let message = commit_message(edit, &todo);
            let _checkout = match CheckoutLock::acquire(&root, plan) {
                Ok(l) => l,
                Err(LockError::CheckoutBusy { running, pid, .. }) => {
                    let _ = writeln!(
                        report,
                        "not committed: another baton (pid {pid}) is running {running} in this checkout; the next run of this plan commits its state"
                    );
                    return Ok(report);
                }
                Err(e) => return Err(ControlError::Commit(crate::exit::render_chain(&e))),
            };
            let path = std::path::absolute(plan).unwrap_or_else(|_| plan.to_path_buf());
            match crate::git::commit_file(&root, &path, &message) {
                Ok(crate::git::Committed::Yes) => {
                    let _ = writeln!(report, "committed: {message}");
                }
                Ok(crate::git::Committed::NothingToCommit) => {
                    let _ = writeln!(report, "not committed: git does not track {} (it is ignored)", plan.display());
                }
                Err(e) => return Err(ControlError::Commit(crate::exit::render_chain(&e))),
            }
        }
        Commit::No(why) => {
            let _ = writeln!(report, "not committed: {why}");
        }
    }
    if !matches!(edit, Edit::Skip { .. }) {
        let _ = writeln!(report, "next: baton run {}", plan.display());
    }
    Ok(report)
}

/// The tasks an edit is about and what it does to each. Unknown ids, and tasks the edit does not
/// apply to, are errors naming every one of them.
fn select(file: &PlanFile, plan_path: &Path, edit: &Edit, fallback_max: u32) -> Result<Vec<Change>, ControlError> {
    let plan = file.plan();
    let named: Vec<&String> = match edit {
        Edit::Retry { tasks, .. } | Edit::Reset { tasks, .. } => tasks.iter().collect(),
        Edit::Skip { task, .. } => vec![task],
    };
    let unknown: Vec<(String, Vec<String>)> = named
        .iter()
        .filter(|id| plan.task(id).is_none())
        .map(|id| ((*id).clone(), plan.similar_ids(id).into_iter().map(ToString::to_string).collect()))
        .collect();
    if !unknown.is_empty() {
        return Err(ControlError::UnknownTasks { plan: plan_path.to_path_buf(), ids: unknown });
    }
    let mut chosen: BTreeSet<&str> = named.iter().map(|s| s.as_str()).collect();
    match edit {
        Edit::Retry { failed: true, .. } => chosen.extend(plan.tasks().filter(|t| t.status.is_failure()).map(|t| t.id.as_str())),
        Edit::Reset { all: true, .. } => chosen.extend(plan.tasks().map(|t| t.id.as_str())),
        _ => {}
    }
    let mut changes = Vec::new();
    let mut refused = Vec::new();
    let mut refused_ids: Vec<&str> = Vec::new();
    // Plan order, whatever order the ids were named in.
    for t in plan.tasks().filter(|t| chosen.contains(t.id.as_str())) {
        let max = plan.max_attempts(t, fallback_max);
        let (to, attempts) = match edit {
            Edit::Retry { reset_attempts, .. } => {
                if t.status.is_done() {
                    refused.push(format!("{} is {}; `baton retry` is for failed, skipped, suspended or validation_exhausted tasks", t.id, t.status));
                    refused_ids.push(t.id.as_str());
                    continue;
                }
                (Status::Pending, if *reset_attempts { 0 } else { t.attempts })
            }
            Edit::Skip { .. } => {
                if t.status.is_done() {
                    refused.push(format!("{} is {}; there is nothing left to skip", t.id, t.status));
                    continue;
                }
                (Status::Skipped, t.attempts)
            }
            Edit::Reset { .. } => (Status::Pending, 0),
        };
        changes.push(Change { id: t.id.clone(), from: t.status, to, attempts: t.attempts, new_attempts: attempts, max });
    }
    if !refused.is_empty() {
        let help = match edit {
            Edit::Skip { task, .. } => format!("`baton reset {} {task}` first if its work must be done again", plan_path.display()),
            _ => format!(
                "`baton reset {} {}` runs {} again from scratch",
                plan_path.display(),
                refused_ids.join(" "),
                if refused_ids.len() == 1 { "it" } else { "them" }
            ),
        };
        return Err(ControlError::NotApplicable { lines: refused, help });
    }
    Ok(changes)
}

/// One task's line of the report.
fn line(c: &Change, edit: &Edit) -> String {
    if !c.changes() {
        return format!("{}: already {} with {} attempt(s); unchanged", c.id, c.from, c.attempts);
    }
    let mut text = format!("{}: {} → {}", c.id, c.from, c.to);
    match edit {
        Edit::Retry { reset_attempts: false, .. } if c.attempts > 0 => {
            let left = c.max.saturating_sub(c.attempts).max(1);
            let _ = write!(text, " (attempts kept at {} of {}: {} more attempt{}", c.attempts, c.max, left, if left == 1 { "" } else { "s" });
            if c.attempts >= c.max {
                let _ = write!(text, "; --reset-attempts gives it {} again", c.max);
            }
            text.push(')');
        }
        Edit::Retry { .. } | Edit::Reset { .. } if c.attempts != c.new_attempts => {
            let _ = write!(text, " (attempts {} → {})", c.attempts, c.new_attempts);
        }
        Edit::Skip { reason: Some(r), .. } => {
            let _ = write!(text, " (reason: {})", crate::report::safe::cut(&crate::report::safe::one_line(r), 100));
        }
        _ => {}
    }
    text
}

/// What the edit means for the rest of the plan: the errors kept, the tasks a skip blocks.
fn tell_consequences(report: &mut String, file: &PlanFile, todo: &[&Change], edit: &Edit) {
    let plan = file.plan();
    let ids: Vec<&TaskId> = todo.iter().map(|c| &c.id).collect();
    let waiting: Vec<&str> = plan
        .tasks()
        .filter(|t| !t.status.is_final() && !ids.contains(&&t.id) && t.depends_on.iter().any(|d| ids.contains(&d)))
        .map(|t| t.id.as_str())
        .collect();
    match edit {
        Edit::Retry { .. } | Edit::Reset { .. } => {
            if !waiting.is_empty() {
                let _ = writeln!(report, "{} wait{} on these and can run once they complete", waiting.join(", "), if waiting.len() == 1 { "s" } else { "" });
            }
            if ids.iter().any(|id| plan.task(id.as_str()).is_some_and(|t| t.last_error.is_some())) {
                let _ = writeln!(report, "the last error stays in the plan (`last_error`) until an attempt fails again; every attempt's transcript stays in `baton logs`");
            }
        }
        Edit::Skip { .. } => {
            if !waiting.is_empty() {
                let _ = writeln!(
                    report,
                    "warning: {} depend{} on it and can no longer run (a skipped dependency is not a completed one)",
                    waiting.join(", "),
                    if waiting.len() == 1 { "s" } else { "" }
                );
            }
        }
    }
}

fn commit_message(edit: &Edit, todo: &[&Change]) -> String {
    let ids: Vec<&str> = todo.iter().map(|c| c.id.as_str()).collect();
    let shown = if ids.len() > 6 { format!("{} and {} more", ids[..5].join(", "), ids.len() - 5) } else { ids.join(", ") };
    match edit {
        Edit::Skip { reason: Some(r), .. } => format!("baton: skip {shown} — {}", crate::report::safe::cut(&crate::report::safe::one_line(r), 60)),
        Edit::Reset { all: true, .. } => "baton: reset all tasks".to_string(),
        _ => format!("baton: {} {shown}", edit.verb()),
    }
}

enum Commit {
    Yes,
    /// Why not, for the report.
    No(String),
}

/// Whether the edited plan is committed: in a repository, when committing is on, and the plan
/// has no uncommitted changes of the user's (those are theirs to commit, with this edit).
fn commit_decision(root: &Path, config: &Config, plan: &Path) -> Commit {
    match crate::root::git_use(root, config) {
        Ok(GitUse::Commit) => {}
        Ok(GitUse::Off) => return Commit::No("`[run] commit = false` in baton.toml".into()),
        Err(_) => return Commit::No("not in a git repository".into()),
    }
    let abs = std::path::absolute(plan).unwrap_or_else(|_| plan.to_path_buf());
    let rel = abs.strip_prefix(root).unwrap_or(&abs);
    let literal = [("GIT_LITERAL_PATHSPECS", std::ffi::OsStr::new("1"))];
    let args = [std::ffi::OsStr::new("status"), "--porcelain".as_ref(), "-z".as_ref(), "--untracked-files=all".as_ref(), "--".as_ref(), rel.as_os_str()];
    match crate::git::git_output(root, &args, &literal, None) {
        Ok(out) if out.status.success() && out.stdout.is_empty() => Commit::Yes,
        Ok(out) if out.status.success() && out.stdout.starts_with(b"??") => {
            Commit::No(format!("git does not track {} yet; baton left it for you to add", plan.display()))
        }
        Ok(out) if out.status.success() => Commit::No(format!(
            "{} had uncommitted changes of yours, so baton left it for you to commit with them",
            plan.display()
        )),
        Ok(out) => Commit::No(format!("cannot tell whether the plan has changes of yours (git: {})", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Commit::No(format!("cannot tell whether the plan has changes of yours ({})", crate::exit::render_chain(&e))),
    }
}

/// `baton stop`: asks the run in the plan's checkout (or the current one) to stop gracefully,
/// through the stop file it watches. With no run, says so and leaves no stop file (a stale one
/// is removed): a stop file waiting for a run that has not started would only be cleared by it.
/// Exit 0 either way; the output says which.
pub fn stop(plan: Option<&Path>) -> Exit {
    let root = match plan {
        Some(p) => crate::root::root_for_plan(p),
        None => crate::root::repo_root(Path::new(".")),
    };
    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            crate::errln!("{}", crate::error::render(&ControlError::Config(e)));
            return Exit::InvalidInput;
        }
    };
    match ask_stop(&root, &config) {
        Ok(StopAsked::NoRun { removed_stale }) => {
            let mut text = format!("no baton run is active in {}; nothing to stop", root.display());
            if let Some(file) = removed_stale {
                text.push_str(&format!(" (removed a stale stop file {})", file.display()));
            }
            crate::outln!("{text}");
            Exit::Completed
        }
        Ok(StopAsked::Asked { pid, running, file }) => {
            crate::outln!(
                "stop requested: the baton running {running} (pid {pid}) starts no new task, lets running tasks finish, saves and exits ({})",
                file.display()
            );
            Exit::Completed
        }
        Err(e) => {
            crate::errln!("{}", crate::error::render(&e));
            Exit::InvalidInput
        }
    }
}

/// Makes the stop file, or leaves the one there as it is: never through a symbolic link (the
/// file is in the working copy; a link there must not empty a file elsewhere) and never
/// waiting on a pipe.
fn touch(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).map(drop).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "it is a symbolic link")
        } else {
            e
        }
    })
}

/// What asking a checkout's run to stop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopAsked {
    /// No run holds the checkout; a stop file a run left behind was removed.
    NoRun { removed_stale: Option<PathBuf> },
    /// The stop file is written: the run `pid` (running `running`) stops gracefully.
    Asked { pid: String, running: String, file: PathBuf },
}

/// Asks the run holding the checkout at `root` to stop gracefully, as `baton stop` does: writes
/// the stop file, which the run watches (it starts no new task, lets running ones finish, saves
/// and exits).
pub fn ask_stop(root: &Path, config: &Config) -> Result<StopAsked, ControlError> {
    let file = root.join(&config.paths.stop_file);
    let Some((pid, running)) = lock::checkout_holder(root) else {
        let removed = file.exists() && std::fs::remove_file(&file).is_ok();
        return Ok(StopAsked::NoRun { removed_stale: removed.then_some(file) });
    };
    file.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| touch(&file)).map_err(|source| ControlError::StopFile { path: file.clone(), source })?;
    Ok(StopAsked::Asked { pid, running, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_read_as_a_question() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["3.2".into()]), "; did you mean '3.2'?");
        assert_eq!(did_you_mean(&["3.2".into(), "3.12".into(), "3".into()]), "; did you mean '3.2', '3.12' or '3'?");
    }
}
