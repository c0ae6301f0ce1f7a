//! The working tree of a sequential run, which the user and the agent share: baton refuses to
//! start on uncommitted changes unless `--allow-dirty` (then it notes them and never commits
//! them), and commits each task's own changes under that task's name — including what its
//! agent left uncommitted, and what an attempt cut short left (at the end of the run, or at the
//! next start after a crash).
//!
//! A task's changes are what changed in the working tree since it started: every uncommitted
//! path that was clean then (or has changed since), and is neither the user's nor baton's own
//! file. Sequential tasks run one at a time and each one's changes are committed before the
//! next starts, so what a task leaves is never taken for the next one's.
//!
//! Must not: decide how the run ends, or edit the plan (the dispatcher does both).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::git::{self, GitError};
use crate::plan::{PlanFile, SaveOutcome, TaskId};
use crate::report::event::{Note, Reporter};

/// What to do when the working tree has uncommitted changes as the run starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DirtyTree {
    /// Note the user's changed paths and never commit them (`baton run --allow-dirty`; the
    /// pipeline, which runs unattended in a tree that holds its own backlog items).
    #[default]
    Protect,
    /// Refuse to start, naming the files (`baton run` without `--allow-dirty`).
    Refuse,
}

/// baton's own files in a checkout: never the user's change, never a task's work.
#[derive(Debug, Clone)]
pub(in crate::run::engine) struct OwnFiles {
    plan: PathBuf,
    folders: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl OwnFiles {
    /// `plan` relative to the root; the rest from the configuration and baton's fixed layout.
    pub(in crate::run::engine) fn new(plan: &Path, config: &Config) -> OwnFiles {
        let p = &config.paths;
        OwnFiles {
            plan: plan.to_path_buf(),
            folders: vec![
                ".baton".into(),
                ".claude/plans".into(),
                crate::coord::heartbeat::STATUS_DIR.into(),
                p.logs_dir.clone(),
                p.worktrees_dir.clone(),
            ]
            .into_iter()
            // An empty path would be the prefix of every path: everything would be baton's.
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
            files: vec![p.status_file.clone(), p.stop_file.clone()],
        }
    }

    pub(in crate::run::engine) fn contains(&self, rel: &Path) -> bool {
        if rel == self.plan || self.files.iter().any(|f| f == rel) || self.folders.iter().any(|d| rel.starts_with(d)) {
            return true;
        }
        let name = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();
        let plan_name = self.plan.file_name().map(OsStr::as_bytes).unwrap_or_default();
        // The plan's save temp files and rejected edits lie beside it; the claims file has a
        // lock and temp files beside it.
        let beside_plan = rel.parent() == self.plan.parent()
            && (name.starts_with(&[b".", plan_name, b".baton-tmp-"].concat()) || name.starts_with(&[plan_name, b".rejected-"].concat()));
        beside_plan || rel.as_os_str().as_bytes().starts_with(b".claude/agent-claims.json")
    }
}

/// Every path with uncommitted changes (tracked, or untracked and not ignored), relative to
/// the root, and whether it is a deletion already staged (then not on disk nor in the index:
/// `git add` would not know it, `git commit --only` does). One `git status` that reads only:
/// git takes no optional lock, so a refused start leaves even the index as it was.
fn tree_state(root: &Path) -> Result<BTreeMap<PathBuf, bool>, GitError> {
    let out = git::git_bytes(
        root,
        &["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"],
        &[("GIT_OPTIONAL_LOCKS", OsStr::new("0"))],
        None,
    )?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|entry| entry.len() > 3)
        .map(|entry| (PathBuf::from(OsStr::from_bytes(&entry[3..])), entry[0] == b'D'))
        .collect())
}

/// Paths with uncommitted changes, baton's own files left out.
pub(in crate::run::engine) fn uncommitted(root: &Path, own: &OwnFiles) -> Result<BTreeSet<PathBuf>, GitError> {
    Ok(tree_state(root)?.into_keys().filter(|p| !own.contains(p)).collect())
}

/// The message for a refused start.
pub(crate) fn refusal(paths: &BTreeSet<PathBuf>) -> String {
    const SHOWN: usize = 10;
    let mut list: Vec<String> = paths.iter().take(SHOWN).map(|p| format!("  {}", p.display())).collect();
    if paths.len() > SHOWN {
        list.push(format!("  … and {} more", paths.len() - SHOWN));
    }
    format!(
        "error: the working tree has uncommitted changes in {} path{}; baton will not start, or the agents' commits could take them:\n{}\n  help: commit or stash them (`git stash -u`), or run with --allow-dirty: baton then leaves these paths out of every commit it makes",
        paths.len(),
        if paths.len() == 1 { "" } else { "s" },
        list.join("\n")
    )
}

/// Why the run must not start.
pub(in crate::run::engine) enum NotStarted {
    Dirty(BTreeSet<PathBuf>),
    Git(GitError),
}

/// A task whose changes are in the working tree now.
#[derive(Debug, Clone)]
struct Current {
    task: TaskId,
    name: String,
    /// HEAD as it started: the agent's own commits are the ones after it.
    head: Option<String>,
    /// Paths that were already uncommitted as it started (not the user's: e.g. written by a
    /// hook), and their content then. They are the task's only if they change.
    before: HashMap<PathBuf, Option<u64>>,
}

/// Written as a task starts, removed once its changes are committed: after a crash, the next
/// start knows whose the uncommitted changes are. Paths are bytes: a file name need not be
/// UTF-8.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    task: String,
    name: String,
    /// The user's paths.
    user: Vec<Vec<u8>>,
    /// [`Current::before`].
    #[serde(default)]
    before: Vec<(Vec<u8>, Option<u64>)>,
    /// The plan as baton had saved it when the task started: if the run is killed, the fields
    /// baton owns that the agent changed meanwhile are put back from it, as a live run would.
    #[serde(default)]
    plan: Option<String>,
}

pub(in crate::run::engine) struct Workspace {
    root: PathBuf,
    own: OwnFiles,
    /// Paths the user had changed before the run (`--allow-dirty`); baton never commits them.
    user: BTreeSet<PathBuf>,
    /// Their content then, to tell when an agent changes one.
    user_content: HashMap<PathBuf, Option<u64>>,
    journal: PathBuf,
    current: Option<Current>,
    /// What was left uncommitted (not the user's) after the last task's commit, and its
    /// content: the next task's [`Current::before`].
    carried: Option<HashMap<PathBuf, Option<u64>>>,
    /// The plan file (absolute).
    plan: PathBuf,
    /// Opening put back fields an interrupted attempt's agent had changed in the plan.
    pub(in crate::run::engine) plan_restored: bool,
}

impl Workspace {
    /// At the start of a sequential run in git: commits what a crashed run's task left, then
    /// looks at the tree. `plan` is the plan file (absolute), `journal` where the task in
    /// progress is noted.
    pub(in crate::run::engine) fn open(
        root: &Path,
        plan: &Path,
        config: &Config,
        journal: PathBuf,
        dirty: DirtyTree,
        reporter: &Reporter,
    ) -> Result<Workspace, NotStarted> {
        let rel = plan.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| plan.to_path_buf());
        let mut w = Workspace {
            root: root.to_path_buf(),
            own: OwnFiles::new(&rel, config),
            user: BTreeSet::new(),
            user_content: HashMap::new(),
            journal,
            current: None,
            carried: None,
            plan: plan.to_path_buf(),
            plan_restored: false,
        };
        w.recover(reporter);
        let changed = uncommitted(root, &w.own).map_err(NotStarted::Git)?;
        if changed.is_empty() {
            return Ok(w);
        }
        if dirty == DirtyTree::Refuse {
            return Err(NotStarted::Dirty(changed));
        }
        let mut list: Vec<String> = changed.iter().take(5).map(|p| p.display().to_string()).collect();
        if changed.len() > 5 {
            list.push(format!("… {} in all", changed.len()));
        }
        reporter.warn(format!(
            "the working tree has uncommitted changes; baton leaves them out of every commit it makes ({}); an agent that commits everything may still take them, and baton says so if it does",
            list.join(", ")
        ));
        w.user_content = changed.iter().map(|p| (p.clone(), fingerprint(&root.join(p)))).collect();
        w.user = changed;
        Ok(w)
    }

    /// The journal of a run that ended without committing its task's changes (killed): those
    /// changes are committed as that task's partial work.
    fn recover(&mut self, reporter: &Reporter) {
        let Ok(text) = std::fs::read_to_string(&self.journal) else { return };
        let Ok(j) = serde_json::from_str::<Journal>(&text) else {
            let _ = std::fs::remove_file(&self.journal);
            return;
        };
        if let Some(snapshot) = &j.plan {
            self.restore_plan(snapshot, &j.task, reporter);
        }
        self.user = j.user.iter().map(|b| PathBuf::from(OsStr::from_bytes(b))).collect();
        let before = j.before.into_iter().map(|(b, print)| (PathBuf::from(OsStr::from_bytes(&b)), print)).collect();
        self.current = Some(Current { task: TaskId::from(j.task.as_str()), name: j.name, head: None, before });
        self.settle(reporter, "its run was interrupted");
        self.user.clear();
        self.carried = None;
    }

    /// The run was killed during an attempt: whatever changed the plan since (its agent, as a
    /// rule) may not have changed the fields baton owns — the statuses and attempts of other
    /// tasks. They are put back from the plan as baton had it when the task started, by the
    /// same rule as during a run (a pending task marked `skipped` stays so), and told. The
    /// task's own fields are the file's: baton may have recorded its end before the kill.
    fn restore_plan(&mut self, snapshot: &str, task: &str, reporter: &Reporter) {
        let mut ours = match PlanFile::from_saved(&self.plan, snapshot, task) {
            Ok(f) => f,
            Err(_) => return,
        };
        match ours.save() {
            Ok(SaveOutcome::Unchanged | SaveOutcome::Saved) => {}
            Ok(SaveOutcome::Rebased) => {
                let restored = ours.take_restored();
                if !restored.is_empty() {
                    self.plan_restored = true;
                    reporter.warn(format!(
                        "the plan was changed while baton was not there to keep its own fields (its run was killed during an attempt); put back: {}",
                        restored.join("; ")
                    ));
                }
            }
            Ok(SaveOutcome::RejectedEdit { kept_at, .. }) => {
                self.plan_restored = true;
                reporter.warn(format!(
                    "the plan was left invalid by an interrupted attempt; it was kept at {} and the plan as baton had saved it restored",
                    kept_at.display()
                ));
            }
            Err(e) => reporter.warn(format!("cannot put back the plan's own fields after an interrupted attempt: {}", e.render_in_run())),
        }
    }

    /// A task starts: what changes from now on is its own. Changes another task left (an
    /// attempt cut short, then a different task picked) are committed as that task's first.
    pub(in crate::run::engine) fn task_started(&mut self, id: &TaskId, name: &str, plan: &str, reporter: &Reporter) {
        if self.current.as_ref().is_some_and(|c| c.task != *id) {
            self.settle(reporter, "another task starts");
        }
        if self.current.is_none() {
            // HEAD only matters for telling whether the agent's commits took the user's files.
            let head = if self.user.is_empty() {
                None
            } else {
                git::git(&self.root, &["rev-parse", "-q", "--verify", "HEAD"]).ok().map(|h| h.trim().to_string())
            };
            // What was left uncommitted after the previous task's commit is known; only the
            // first task (after `before_command`) needs a look of its own.
            let before = match self.carried.take() {
                Some(b) => b,
                None => match tree_state(&self.root) {
                    Ok(state) => state
                        .into_keys()
                        .filter(|p| !self.own.contains(p) && !self.user.contains(p))
                        .map(|p| {
                            let print = fingerprint(&self.root.join(&p));
                            (p, print)
                        })
                        .collect(),
                    Err(e) => {
                        reporter.warn(format!("cannot read the working tree's state: {e}"));
                        HashMap::new()
                    }
                },
            };
            self.current = Some(Current { task: id.clone(), name: name.to_string(), head, before });
        }
        let before = self.current.as_ref().map(|c| c.before.iter().map(|(p, f)| (p.as_os_str().as_bytes().to_vec(), *f)).collect()).unwrap_or_default();
        let j = Journal {
            task: id.to_string(),
            name: name.to_string(),
            user: self.user.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect(),
            before,
            plan: Some(plan.to_string()),
        };
        // Read only after baton itself died (kill -9), never after a power cut: no fsync.
        let written = serde_json::to_string(&j).map_err(std::io::Error::other).and_then(|text| {
            if let Some(d) = self.journal.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&self.journal, text)
        });
        if let Err(e) = written {
            reporter.warn(format!("cannot note the running task in {}: {e}", self.journal.display()));
        }
    }

    /// The task reached its end (completed, failed, skipped): its changes and the plan are
    /// committed together as `message`, and anything the agent did with the user's changes is
    /// told.
    pub(in crate::run::engine) fn commit_task(&mut self, id: &TaskId, message: &str, reporter: &Reporter) -> Result<(), GitError> {
        let head = self.current.as_ref().filter(|c| c.task == *id).and_then(|c| c.head.clone());
        let state = tree_state(&self.root)?;
        let left = self.task_changes(&state);
        let mut paths: Vec<&Path> = left.iter().map(PathBuf::as_path).collect();
        if state.contains_key(&self.own.plan) {
            paths.push(&self.own.plan);
        }
        if !paths.is_empty() {
            self.commit(&paths, &state, message)?;
        }
        if !left.is_empty() {
            reporter.warn(format!(
                "{id} left {} file{} uncommitted ({}); committed {} as `{message}`",
                left.len(),
                if left.len() == 1 { "" } else { "s" },
                listed(&left),
                if left.len() == 1 { "it" } else { "them" },
            ));
        } else if !paths.is_empty() {
            reporter.note(Note::Committed { message: message.to_string(), plan: true });
        }
        self.tell_about_user_changes(id, head.as_deref(), reporter);
        self.done(&state, &left);
        Ok(())
    }

    /// At the end of the run (or before another task starts): a task whose attempt was cut
    /// short left changes; they are committed as its partial work, so that the tree is as the
    /// user left it and the task's retry starts from them.
    pub(in crate::run::engine) fn settle(&mut self, reporter: &Reporter, why: &str) {
        let Some(c) = self.current.clone() else { return };
        let state = match tree_state(&self.root) {
            Ok(s) => s,
            Err(e) => {
                reporter.warn(format!("cannot see what {} left in the working tree: {e}", c.task));
                return;
            }
        };
        let left = self.task_changes(&state);
        // The plan may already record the task as ended (its commit failed, or a kill came
        // between the save and the commit): then this is that task's work, done, with the plan.
        let ended = std::fs::read_to_string(self.root.join(&self.own.plan))
            .ok()
            .and_then(|text| crate::plan::parse_plan(&text).ok())
            .and_then(|plan| plan.task(c.task.as_str()).map(|t| t.status))
            .filter(|s| s.is_final());
        if !left.is_empty() {
            let message = match ended {
                Some(status) => format!("baton: {} {status} — {} (committed after {why})", c.task, c.name),
                None => format!("baton: {} partial work — {} ({why}; the task is not done)", c.task, c.name),
            };
            let mut paths: Vec<&Path> = left.iter().map(PathBuf::as_path).collect();
            if ended.is_some() && state.contains_key(&self.own.plan) {
                paths.push(&self.own.plan);
            }
            if let Err(e) = self.commit(&paths, &state, &message) {
                reporter.warn(format!("cannot commit the work {} left (it stays in the working tree): {e}", c.task));
                return;
            }
            reporter.note(Note::PartialWorkCommitted { task: c.task.clone(), files: left.iter().cloned().collect(), message });
        }
        self.tell_about_user_changes(&c.task, c.head.as_deref(), reporter);
        self.done(&state, &left);
    }

    /// Commits exactly `paths` (relative, all in `state`), whatever else is staged. Paths go
    /// to git NUL-separated on stdin: any file name, any number of them.
    fn commit(&self, paths: &[&Path], state: &BTreeMap<PathBuf, bool>, message: &str) -> Result<(), GitError> {
        let nul = |keep: &dyn Fn(&Path) -> bool| -> Vec<u8> {
            paths.iter().filter(|p| keep(p)).flat_map(|p| p.as_os_str().as_bytes().iter().copied().chain([0])).collect()
        };
        let add = nul(&|p| !state.get(p).copied().unwrap_or(false));
        if !add.is_empty() {
            git::git_bytes(&self.root, &["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"], &[], Some(&add))?;
        }
        let all = nul(&|_| true);
        git::git_bytes(
            &self.root,
            &["commit", "-q", "--no-verify", "-m", message, "--only", "--pathspec-from-file=-", "--pathspec-file-nul"],
            &[],
            Some(&all),
        )?;
        Ok(())
    }

    /// The current task's changes are committed: what stays uncommitted (not the user's) is
    /// known without asking git again, for the next task.
    fn done(&mut self, state: &BTreeMap<PathBuf, bool>, committed: &BTreeSet<PathBuf>) {
        let before = self.current.take().map(|c| c.before).unwrap_or_default();
        self.carried = Some(before.into_iter().filter(|(p, _)| state.contains_key(p) && !committed.contains(p)).collect());
        let _ = std::fs::remove_file(&self.journal);
    }

    /// Uncommitted paths that are neither the user's nor baton's, and were not already
    /// uncommitted, as they are now, when the current task started.
    fn task_changes(&self, state: &BTreeMap<PathBuf, bool>) -> BTreeSet<PathBuf> {
        let before = self.current.as_ref().map(|c| &c.before);
        state
            .keys()
            .filter(|p| !self.own.contains(p) && !self.user.contains(*p))
            .filter(|p| before.and_then(|b| b.get(*p)).is_none_or(|print| *print != fingerprint(&self.root.join(p))))
            .cloned()
            .collect()
    }

    /// The agent changed or committed a path that held the user's uncommitted change.
    fn tell_about_user_changes(&mut self, id: &TaskId, head: Option<&str>, reporter: &Reporter) {
        if self.user.is_empty() {
            return;
        }
        if let Some(head) = head {
            let range = format!("{head}..HEAD");
            if let Ok(out) = git::git_bytes(&self.root, &["log", "--format=", "--name-only", "-z", "--no-renames", &range], &[], None) {
                let taken: BTreeSet<PathBuf> = out
                    .split(|b| *b == 0 || *b == b'\n')
                    .filter(|p| !p.is_empty())
                    .map(|p| PathBuf::from(OsStr::from_bytes(p)))
                    .filter(|p| self.user.contains(p))
                    .collect();
                if !taken.is_empty() {
                    reporter.warn(format!(
                        "{id}: the agent's own commit took your uncommitted change{} in {}",
                        if taken.len() == 1 { "" } else { "s" },
                        listed(&taken)
                    ));
                }
            }
        }
        let mut changed = BTreeSet::new();
        for (p, before) in &mut self.user_content {
            let now = fingerprint(&self.root.join(p.as_path()));
            if now != *before {
                changed.insert(p.clone());
                *before = now;
            }
        }
        if !changed.is_empty() {
            reporter.warn(format!(
                "{id} changed {}, which held your uncommitted changes; baton did not commit {}",
                listed(&changed),
                if changed.len() == 1 { "it" } else { "them" }
            ));
        }
    }
}

fn listed(paths: &BTreeSet<PathBuf>) -> String {
    let mut list: Vec<String> = paths.iter().take(5).map(|p| p.display().to_string()).collect();
    if paths.len() > 5 {
        list.push(format!("… {} in all", paths.len()));
    }
    list.join(", ")
}

/// A path's content (a symlink's target), or `None` when it is gone or unreadable.
fn fingerprint(path: &Path) -> Option<u64> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if meta.file_type().is_symlink() {
        std::fs::read_link(path).ok()?.hash(&mut h);
    } else if meta.is_file() {
        let mut f = std::fs::File::open(path).ok()?;
        let mut buf = [0u8; 64 * 1024];
        loop {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => break,
                Ok(n) => buf[..n].hash(&mut h),
                Err(_) => return None,
            }
        }
    } else {
        return None;
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batons_own_files_are_told_apart_from_the_users() {
        let own = OwnFiles::new(Path::new("plans/p.yaml"), &Config::default());
        for p in [
            "plans/p.yaml",
            "plans/.p.yaml.baton-tmp-123",
            "plans/p.yaml.rejected-20260101T000000",
            ".baton/logs/p/run.log",
            ".claude/plans/task-status.json",
            ".claude/plans/other.yaml",
            ".claude/agent-claims.json.lock",
            ".claude/subagent-status/a.json",
            ".worktrees/p-1/x",
        ] {
            assert!(own.contains(Path::new(p)), "{p}");
        }
        for p in ["p.yaml", "plans/q.yaml", "plans/sub/p.yaml", "baton.toml", ".claude/settings.json", "src/.baton"] {
            assert!(!own.contains(Path::new(p)), "{p}");
        }
        let mut config = Config::default();
        config.paths.logs_dir = PathBuf::new();
        assert!(!OwnFiles::new(Path::new("p.yaml"), &config).contains(Path::new("src/x.rs")));
    }

    /// A repository with a plan and three tracked files, and a workspace over it.
    fn repo() -> (baton_testkit::TempRepo, Workspace, tempfile::TempDir) {
        let repo = baton_testkit::TempRepo::new();
        for f in ["plan.yaml", "keep.txt", "gone.txt", "staged-gone.txt"] {
            repo.write(f, "x\n");
        }
        repo.commit_all("start");
        let d = tempfile::tempdir().unwrap();
        let w = Workspace::open(repo.path(), &repo.join("plan.yaml"), &Config::default(), d.path().join("j.json"), DirtyTree::Protect, &Reporter::new(vec![]))
            .unwrap_or_else(|_| panic!("open"));
        (repo, w, d)
    }

    #[test]
    fn a_tasks_changes_of_every_kind_are_committed_and_nothing_else() {
        let (repo, mut w, _d) = repo();
        let reporter = Reporter::new(vec![]);
        let id = TaskId::from("1");
        w.task_started(&id, "One", "", &reporter);
        repo.write("plan.yaml", "y\n");
        repo.write("new.txt", "n\n");
        std::fs::write(repo.path().join(OsStr::from_bytes(b"caf\xe9.txt")), "latin-1 name\n").unwrap();
        std::fs::remove_file(repo.join("gone.txt")).unwrap();
        repo.git(&["rm", "-q", "staged-gone.txt"]);
        repo.write(".claude/plans/task-status.json", "{}");
        w.commit_task(&id, "baton: 1 completed — One", &reporter).unwrap();
        let files = repo.git(&["show", "--name-status", "--format=", "HEAD"]);
        assert_eq!(files, "A\t\"caf\\351.txt\"\nD\tgone.txt\nA\tnew.txt\nM\tplan.yaml\nD\tstaged-gone.txt\n");
        assert_eq!(repo.status_porcelain(), "?? .claude/\n", "baton's own status file is not the task's");
    }

    #[test]
    fn the_users_changes_and_what_was_there_before_the_task_stay_out() {
        let repo = baton_testkit::TempRepo::new();
        repo.write("plan.yaml", "x\n");
        repo.write("mine.txt", "x\n");
        repo.commit_all("start");
        repo.write("mine.txt", "my edit\n");
        let d = tempfile::tempdir().unwrap();
        let reporter = Reporter::new(vec![]);
        let mut w = Workspace::open(repo.path(), &repo.join("plan.yaml"), &Config::default(), d.path().join("j.json"), DirtyTree::Protect, &reporter)
            .unwrap_or_else(|_| panic!("open"));
        assert!(matches!(
            Workspace::open(repo.path(), &repo.join("plan.yaml"), &Config::default(), d.path().join("j.json"), DirtyTree::Refuse, &reporter),
            Err(NotStarted::Dirty(p)) if p.iter().eq([Path::new("mine.txt")])
        ));
        // Written between the start and the first task (a hook): not the task's.
        repo.write("hook-output.txt", "h\n");
        let id = TaskId::from("1");
        w.task_started(&id, "One", "", &reporter);
        repo.write("work.txt", "w\n");
        repo.write("mine.txt", "the agent's\n");
        w.commit_task(&id, "baton: 1 completed — One", &reporter).unwrap();
        assert_eq!(repo.git(&["show", "--name-only", "--format=", "HEAD"]), "work.txt\n");
        assert_eq!(repo.status_porcelain(), " M mine.txt\n?? hook-output.txt\n");
        // The next task changes the hook's file: now it is that task's.
        let id = TaskId::from("2");
        w.task_started(&id, "Two", "", &reporter);
        repo.write("hook-output.txt", "changed by task 2\n");
        w.commit_task(&id, "baton: 2 completed — Two", &reporter).unwrap();
        assert_eq!(repo.git(&["show", "--name-only", "--format=", "HEAD"]), "hook-output.txt\n");
    }

    #[test]
    fn the_refusal_names_the_files_and_the_way_out() {
        let paths: BTreeSet<PathBuf> = (0..12).map(|i| PathBuf::from(format!("f{i:02}.txt"))).collect();
        let text = refusal(&paths);
        assert!(text.contains("12 paths") && text.contains("  f00.txt\n") && text.contains("… and 2 more"), "{text}");
        assert!(text.contains("--allow-dirty") && text.contains("git stash -u"), "{text}");
    }
}
