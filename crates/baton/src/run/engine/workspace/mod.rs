//! Where tasks run, as one seam: in the folder without git, in place in the user's checkout
//! (sequential), or each in a git worktree of its own (`--parallel`). The dispatcher calls it
//! one way — `prepare`, `workplace_for`, `land`, `task_final`, `commit_round`, `finish` — and
//! never asks which it is; a remote executor would be one more variant here.

mod in_place;
mod worktrees;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use in_place::DirtyTree;
pub(crate) use in_place::refusal;
pub(super) use in_place::{uncommitted, OwnFiles};

use crate::config::Config;
use crate::error::Error;
use crate::git;
use crate::plan::{PlanFile, Status, Task, TaskId};
use crate::report::event::{Note, Reporter};
use crate::run::record::Records;

/// Where a task's agent works, what its prompt adds, and the environment that names it.
pub(super) struct Workplace {
    pub cwd: PathBuf,
    pub prompt_extra: String,
    pub env: Vec<(OsString, OsString)>,
    /// The heartbeat file the attempt keeps fresh while the agent runs (worktrees only).
    pub heartbeat: Option<PathBuf>,
}

/// Why a finished task's work did not land.
pub(super) enum NotLanded {
    /// Main moved under it: the task fails, its branch is kept.
    Conflict(String),
    /// It would overwrite the user's uncommitted change, or its journaled landing could not be
    /// completed: the run stops, the task waits.
    Protected(Error),
}

pub(super) enum Workspace {
    /// No git (`[run] commit = false`): tasks run in the folder; nothing is committed.
    Folder { root: PathBuf },
    /// A sequential run in git: the user's checkout, each task's changes committed under its
    /// name.
    InPlace { root: PathBuf, tree: Box<in_place::Workspace>, reporter: Reporter, broken: bool },
    /// A parallel run: a worktree per task, landed with copy-back.
    Worktrees { tree: Box<worktrees::Worktrees>, broken: bool },
}

/// What a workspace is made from.
pub(super) struct Place<'a> {
    pub root: &'a Path,
    /// The plan file, absolute.
    pub plan: &'a Path,
    pub config: &'a Config,
    pub records: &'a Records,
    pub reporter: &'a Reporter,
    pub guard_exe: &'a Path,
    pub dirty: DirtyTree,
    /// How many tasks run at once.
    pub jobs: usize,
}

impl Workspace {
    /// The workspace of a run: `git` says whether the run commits; `parallel`, worktrees. A
    /// sequential run in git commits what a crashed run's task left and refuses a dirty tree
    /// (unless `--allow-dirty`) here.
    pub(super) fn open(p: Place<'_>, git: bool, parallel: bool) -> Result<Workspace, Error> {
        if !git {
            return Ok(Workspace::Folder { root: p.root.to_path_buf() });
        }
        if parallel {
            let tree = worktrees::Worktrees::new(p.root, p.plan, p.config, p.records.clone(), p.reporter.clone(), p.guard_exe.to_path_buf(), p.jobs);
            return Ok(Workspace::Worktrees { tree: Box::new(tree), broken: false });
        }
        let journal = p.records.dir().join("task-in-progress.json");
        match in_place::Workspace::open(p.root, p.plan, p.config, journal, p.dirty, p.reporter) {
            Ok(tree) => Ok(Workspace::InPlace { root: p.root.to_path_buf(), tree: Box::new(tree), reporter: p.reporter.clone(), broken: false }),
            Err(in_place::NotStarted::Dirty(paths)) => Err(Error::Dirty(paths)),
            Err(in_place::NotStarted::Git(e)) => Err(Error::TreeState(crate::exit::render_chain(&e))),
        }
    }

    /// Whether tasks run in git (what an attempt changed can be asked).
    pub(super) fn uses_git(&self) -> bool {
        !matches!(self, Workspace::Folder { .. })
    }

    /// Whether opening the workspace wrote the plan (an interrupted attempt's agent had changed
    /// fields baton owns; they were put back): the plan must be read again.
    pub(super) fn plan_restored(&self) -> bool {
        matches!(self, Workspace::InPlace { tree, .. } if tree.plan_restored)
    }

    /// Before the first task: a parallel run finishes interrupted landings, clears what
    /// earlier runs left and notes (or, without `--allow-dirty`, refuses) the user's changes.
    pub(super) fn prepare(&mut self, file: &mut PlanFile, own: &OwnFiles, dirty: DirtyTree) -> Result<(), Error> {
        let Workspace::Worktrees { tree, .. } = self else { return Ok(()) };
        tree.prepare(file)?;
        if dirty == DirtyTree::Refuse {
            let changed: std::collections::BTreeSet<PathBuf> = tree.protected().iter().filter(|p| !own.contains(p)).cloned().collect();
            if !changed.is_empty() {
                return Err(Error::Dirty(changed));
            }
        }
        if !tree.protected().is_empty() {
            let mut paths: Vec<PathBuf> = tree.protected().iter().cloned().collect();
            paths.sort();
            tree.reporter().note(Note::UserChangesProtected { paths });
        }
        Ok(())
    }

    /// Ready tasks are about to be looked at: claims of agents that are gone are dropped.
    pub(super) fn before_starts<'a>(&self, running: impl Iterator<Item = &'a TaskId>) {
        if let Workspace::Worktrees { tree, .. } = self {
            tree.remove_stale_claims(running);
        }
    }

    /// The working copy a task's agent runs in, made ready for it.
    pub(super) fn workplace_for(&mut self, task: &Task, file: &mut PlanFile) -> Result<Workplace, Error> {
        match self {
            Workspace::Folder { root } => Ok(Workplace { cwd: root.clone(), prompt_extra: String::new(), env: Vec::new(), heartbeat: None }),
            Workspace::InPlace { root, tree, reporter, broken } => {
                if !*broken {
                    tree.task_started(&task.id, &task.name, file.text(), reporter);
                }
                Ok(Workplace { cwd: root.clone(), prompt_extra: String::new(), env: Vec::new(), heartbeat: None })
            }
            Workspace::Worktrees { tree, .. } => tree.workplace_for(task, file),
        }
    }

    /// A task the agent finished: its work goes to the main checkout (worktrees), or is there
    /// already. The agent's edits of its plan copy are merged first.
    pub(super) fn land(&mut self, id: &TaskId, file: &mut PlanFile) -> Result<(), NotLanded> {
        match self {
            Workspace::Worktrees { tree, .. } => tree.land(file, id),
            _ => Ok(()),
        }
    }

    /// A task reached a final state, recorded in the plan: in place, its changes and the plan
    /// are committed under its name; in worktrees, a failed task's work is kept and said where,
    /// and the plan state committed (a completed one's goes with the round's commit).
    pub(super) fn task_final(&mut self, file: &mut PlanFile, id: &TaskId, name: &str, status: Status, attempts: u32) -> Result<(), Error> {
        let message = match status {
            Status::Failed => format!("baton: {id} failed after {attempts} attempt{} — {name}", if attempts == 1 { "" } else { "s" }),
            Status::ValidationExhausted => format!("baton: {id} validation exhausted after {attempts} attempt{} — {name}", if attempts == 1 { "" } else { "s" }),
            _ => format!("baton: {id} {status} — {name}"),
        };
        match self {
            Workspace::Folder { .. } => Ok(()),
            Workspace::InPlace { broken: true, .. } | Workspace::Worktrees { broken: true, .. } => Ok(()),
            Workspace::InPlace { tree, reporter, broken, .. } => tree.commit_task(id, &message, reporter).map_err(|e| {
                *broken = true;
                Error::Commit(format!("could not commit {id}'s work and the plan state: {e}"))
            }),
            Workspace::Worktrees { tree, broken } => {
                if !status.is_failure() {
                    // Its files and the plan state go in the round's commit, once it landed.
                    return Ok(());
                }
                tree.failed(id);
                // What landed before it is committed first, under its own names: the plan state
                // committed now says those tasks are done, and the history must say so too.
                tree.commit_round(file).inspect_err(|_| *broken = true)?;
                // Nothing of it lands: the plan state alone says it failed.
                commit_plan(tree.root(), file, &message, tree.reporter()).inspect_err(|_| *broken = true)
            }
        }
    }

    /// Nothing runs: what landed since the last round is committed, then the plan state.
    pub(super) fn commit_round(&mut self, file: &mut PlanFile) -> Result<(), Error> {
        let r = match self {
            Workspace::Worktrees { tree, broken: false } => tree.commit_round(file),
            _ => Ok(()),
        };
        if r.is_err() {
            self.broke();
        }
        r
    }

    /// A commit failed: no more commits this run (the next start commits what is left).
    fn broke(&mut self) {
        match self {
            Workspace::InPlace { broken, .. } | Workspace::Worktrees { broken, .. } => *broken = true,
            Workspace::Folder { .. } => {}
        }
    }

    /// The run ends: what landed is committed, a task cut short has its partial work
    /// committed, a stopped run commits the plan state, and a parallel run's coordination
    /// files go.
    pub(super) fn finish(&mut self, file: &mut PlanFile, stopped: bool) -> Result<(), Error> {
        let round = self.commit_round(file);
        let root = match self {
            Workspace::Folder { .. } => return round,
            Workspace::InPlace { broken: true, .. } | Workspace::Worktrees { broken: true, .. } => None,
            Workspace::InPlace { root, tree, reporter, .. } => {
                tree.settle(reporter, "the run ended before the task did");
                Some(root.clone())
            }
            Workspace::Worktrees { tree, .. } => Some(tree.root().to_path_buf()),
        };
        if let Workspace::Worktrees { tree, .. } = self {
            tree.close_pool();
            // The coordination files belong to this run; leave none behind.
            tree.clear_coordination();
        }
        round?;
        // The plan state is committed whatever the end: also what an earlier run saved but
        // could not commit (killed between the two) — nothing when HEAD has it already.
        let Some(root) = root else { return Ok(()) };
        let message = if stopped { "baton: plan state at stop" } else { "baton: plan state at the end of the run" };
        commit_plan(&root, file, message, &self.reporter())
    }

    fn reporter(&self) -> Reporter {
        match self {
            Workspace::InPlace { reporter, .. } => reporter.clone(),
            Workspace::Worktrees { tree, .. } => tree.reporter().clone(),
            Workspace::Folder { .. } => Reporter::default(),
        }
    }
}

/// Commits the plan file alone as `message` (nothing when it has not changed).
pub(super) fn commit_plan(root: &Path, file: &PlanFile, message: &str, reporter: &Reporter) -> Result<(), Error> {
    let path = std::path::absolute(file.path()).unwrap_or_else(|_| file.path().to_path_buf());
    if std::fs::symlink_metadata(&path).is_err() {
        // The plan was deleted under the run (its save then failed, and said so): committing
        // "the plan state" now would commit the plan's deletion.
        reporter.warn(format!(
            "the plan file {} is gone; its state was not committed (restore it with `git checkout -- {}`)",
            file.path().display(),
            path.strip_prefix(root).unwrap_or(&path).display()
        ));
        return Ok(());
    }
    match git::commit_file(root, &path, message) {
        Ok(git::Committed::Yes) => {
            reporter.note(Note::Committed { message: message.to_string(), plan: true });
            Ok(())
        }
        Ok(git::Committed::NothingToCommit) => Ok(()),
        Err(e) => Err(Error::Commit(format!("could not commit the plan state (the plan file is saved): {e}"))),
    }
}
