//! Tasks in worktrees (`--parallel`): each task's git worktree, landing its work in the main
//! checkout with copy-back (journaled), the round commit, and the coordination files its agent
//! uses. Worktrees are pooled: one whose work has all landed is reset to the new base for the
//! next task instead of being removed and added again.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{commit_plan, NotLanded, Workplace};
use crate::config::Config;
use crate::error::Error;
use crate::git;
use crate::plan::{PlanFile, Task, TaskId};
use crate::report::event::{Note, Reporter};
use crate::run::record::Records;

/// Paths that belong to the coordination protocol, never copied back from a worktree.
pub(super) const COORDINATION: [&str; 2] = [".claude/subagent-status/", ".claude/agent-claims.json"];

/// Paths never copied back from a worktree: the coordination files, the plan (merged task by
/// task instead), the status file and the stop file. Everything else a task changed lands —
/// another plan file or a note beside the plan too.
fn never_landed(plan_rel: &Path, config: &Config) -> Vec<String> {
    let mut skip: Vec<String> = COORDINATION.iter().map(|s| s.to_string()).collect();
    skip.push(plan_rel.to_string_lossy().into_owned());
    skip.extend([&config.paths.status_file, &config.paths.stop_file].map(|p| p.to_string_lossy().into_owned()));
    skip
}

/// The worktrees of a parallel run.
pub(in crate::run::engine) struct Worktrees {
    root: PathBuf,
    /// The plan file (absolute), and relative to the root.
    plan: PathBuf,
    plan_rel: PathBuf,
    worktrees_dir: PathBuf,
    /// The status file and the stop file (relative to a working copy).
    own_files: [PathBuf; 2],
    /// Paths never copied back from a worktree ([`never_landed`]).
    never_landed: Vec<String>,
    guard_exe: PathBuf,
    records: Records,
    reporter: Reporter,
    /// Each task's worktree, kept across its retries until its work lands.
    worktrees: HashMap<TaskId, git::worktree::Worktree>,
    /// Tasks landed since the last round commit, and the files they wrote.
    landed: Vec<(TaskId, Vec<PathBuf>)>,
    /// Files the user had changed in the main checkout before the run.
    protected: HashSet<PathBuf>,
    /// The agent ids this run gave out (its claims and heartbeats are its own).
    agents: HashSet<String>,
    /// Worktrees whose work has landed, reused by the next tasks instead of added anew.
    pool: git::worktree::Pool,
    /// Added to the plan's name in worktree and branch names when the run's checkout is a
    /// linked worktree: branches are shared by every checkout of a repository, and the same
    /// plan may run at once in another one.
    scope: String,
}

impl Worktrees {
    pub(super) fn new(root: &Path, plan: &Path, config: &Config, records: Records, reporter: Reporter, guard_exe: PathBuf, jobs: usize) -> Worktrees {
        let plan_rel = plan.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| plan.to_path_buf());
        let never = never_landed(&plan_rel, config);
        let skip: Vec<&str> = never.iter().map(String::as_str).collect();
        // As many wait as can run at once: more are never needed together.
        let pool = git::worktree::Pool::new(root, &config.paths.status_file, &skip, jobs.max(1));
        Worktrees {
            pool,
            scope: checkout_scope(root),
            root: root.to_path_buf(),
            plan: plan.to_path_buf(),
            plan_rel,
            worktrees_dir: config.paths.worktrees_dir.clone(),
            own_files: [config.paths.status_file.clone(), config.paths.stop_file.clone()],
            never_landed: never,
            guard_exe,
            records,
            reporter,
            worktrees: HashMap::new(),
            landed: Vec::new(),
            protected: HashSet::new(),
            agents: HashSet::new(),
        }
    }

    /// The plan's path relative to the repository root.
    fn plan_rel(&self) -> PathBuf {
        self.plan_rel.clone()
    }

    fn plan_stem(&self) -> String {
        self.plan.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into())
    }

    /// A task's worktree and branch name: `<plan>-<task>`, the plan's name scoped to the
    /// checkout when that is a linked worktree (see `scope`).
    fn worktree_name(&self, id: &str) -> String {
        git::worktree::ref_component(&format!("{}{}-{}", self.plan_stem(), self.scope, id))
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// The user's uncommitted changes (a parallel run protects them).
    pub(super) fn protected(&self) -> &HashSet<PathBuf> {
        &self.protected
    }

    /// The id of a task's agent; unique per plan and task, and a valid file name.
    pub(super) fn agent_id(&self, id: &TaskId) -> String {
        format!("agent-{}", unique_name(&format!("{}-{}", self.plan_stem(), id)))
    }

    /// The landing journal: for each task whose landing has begun but is not committed yet,
    /// every path it changes with main's content before and after, and its worktree. Written
    /// (and synced) before the first file is copied, so that a crash at any point can be
    /// finished at the next start rather than leave files that look like the user's own.
    fn journal(&self) -> PathBuf {
        self.records.dir().join("landing-journal.json")
    }

    fn read_journal(&self) -> Vec<JournalEntry> {
        match std::fs::read(self.journal()) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                self.reporter.warn(format!("cannot read the landing journal {}: {e}", self.journal().display()));
                Vec::new()
            }),
            Err(_) => Vec::new(),
        }
    }

    /// Writes the journal (synced), or removes it when empty.
    fn write_journal(&self, entries: &[JournalEntry]) -> std::io::Result<()> {
        if entries.is_empty() {
            return match std::fs::remove_file(self.journal()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let text = serde_json::to_vec_pretty(entries).map_err(std::io::Error::other)?;
        if let Some(dir) = self.journal().parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::plan::write_atomic(&self.journal(), &text)
    }

    /// Landings an interrupted run had begun are finished and committed; a task whose landing
    /// is finished is recorded completed (its attempt record says how it ended), and its
    /// worktree goes once everything in it is in main. Returns the journaled paths, which are
    /// baton's, never the user's changes.
    fn finish_interrupted_landings(&mut self, file: &mut PlanFile) -> HashSet<PathBuf> {
        let entries = self.read_journal();
        let mut ours = HashSet::new();
        if entries.is_empty() {
            return ours;
        }
        let mut files = Vec::new();
        // Per entry, the paths that hold what the landing meant.
        let mut finished: Vec<HashSet<PathBuf>> = Vec::new();
        for e in &entries {
            match git::copyback::finish(&self.root, &e.intents) {
                Ok(done) => {
                    finished.push(done.landed.iter().cloned().collect());
                    for d in &done.diverged {
                        self.reporter.warn(format!(
                            "{}: {} changed since an interrupted run began landing it; left as it is",
                            e.task,
                            d.display()
                        ));
                    }
                    files.extend(done.landed.iter().map(|p| self.root.join(p)));
                }
                Err(err) => {
                    finished.push(HashSet::new());
                    self.reporter.warn(format!("{}: cannot finish the landing an interrupted run began: {err}", e.task));
                }
            }
            ours.extend(e.intents.iter().map(git::copyback::Intent::path));
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.task.as_str()).collect();
        let message = format!("plan: land task{} {} (finished after an interrupted run)", if ids.len() == 1 { "" } else { "s" }, ids.join(", "));
        match git::commit_paths(&self.root, &files, &message) {
            Ok(_) => {
                self.reporter.note(Note::LandingFinished { tasks: ids.iter().map(|s| s.to_string()).collect(), files: files.len() });
                if let Err(e) = self.write_journal(&[]) {
                    self.reporter.warn(format!("cannot remove the landing journal: {e}"));
                }
            }
            Err(e) => {
                self.reporter.warn(format!("cannot commit the files an interrupted run landed (kept in the journal for the next start): {e}"));
                return ours;
            }
        }
        for (e, landed) in entries.iter().zip(&finished) {
            if landed.len() == e.intents.len() {
                self.complete_from_record(file, &e.task);
            }
            let wt = e.worktree();
            let skip = self.landing_skip();
            let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
            if let Ok(left) = git::copyback::unlanded(&self.root, &wt, &skip, &HashSet::new()) {
                // A path merged three-way differs from the worktree's: it is in the journal,
                // and landed. A path someone changed since did not land: the worktree stays.
                if left.iter().all(|p| landed.contains(p)) && wt.path.exists() {
                    let _ = git::worktree::remove(&self.root, &wt);
                }
            }
        }
        if let Err(e) = commit_plan(&self.root, file, "baton: plan state after an interrupted landing", &self.reporter) {
            self.reporter.warn(e.to_string());
        }
        ours
    }

    /// A task whose landing an interrupted run finished: completed as its last attempt record
    /// says, when the plan still shows it unfinished.
    fn complete_from_record(&mut self, file: &mut PlanFile, task: &str) {
        let Some(t) = file.plan().task(task) else { return };
        if t.status.is_final() {
            return;
        }
        let Some(rec) = self.records.sessions(task).into_iter().max().and_then(|s| self.records.read(task, s)) else { return };
        let status = match rec.outcome.as_str() {
            "completed" => crate::plan::Status::Completed,
            "skipped" => crate::plan::Status::Skipped,
            _ => return,
        };
        let Some(attempt) = rec.attempt else { return };
        let r = (|| {
            file.set_attempts(task, attempt)?;
            file.set_status(task, status)?;
            if !rec.message.is_empty() {
                file.set_text(task, crate::plan::TaskField::ResultMessage, &rec.message)?;
            }
            file.set_text(task, crate::plan::TaskField::CompletedAt, &rec.ended_at)?;
            file.save().map(|_| ())
        })();
        match r {
            Ok(()) => self.reporter.note(Note::LandedBeforeInterruption { task: task.into(), status }),
            Err(e) => self.reporter.warn(e.render()),
        }
    }

    /// Paths never copied back from a worktree (see [`never_landed`]).
    fn landing_skip(&self) -> Vec<String> {
        self.never_landed.clone()
    }

    /// Before the first round: work landed by a crashed run is committed, stale worktrees and
    /// branches are reported, and the files the user has changed in the main checkout are noted
    /// (never overwritten).
    pub(super) fn prepare(&mut self, file: &mut PlanFile) -> Result<(), Error> {
        let journaled = self.finish_interrupted_landings(file);
        let status = git::git_bytes(&self.root, &["status", "--porcelain=v1", "-z", "--untracked-files=all"], &[], None)
            .map_err(|e| Error::TreeState(crate::exit::render_chain(&e)))?;
        let plan_rel = self.plan_rel();
        // Bytes, not text: a file name need not be UTF-8, and must be protected all the same.
        let mut fields = status.split(|b| *b == 0).filter(|e| !e.is_empty());
        while let Some(entry) = fields.next() {
            let (Some(xy), Some(path)) = (entry.get(..2), entry.get(3..)) else { continue };
            let mut paths = vec![path];
            if xy.contains(&b'R') || xy.contains(&b'C') {
                // A rename's or copy's original path follows as a field of its own.
                paths.extend(fields.next());
            }
            for p in paths {
                let p = PathBuf::from(std::ffi::OsStr::from_bytes(p));
                let keep = p != plan_rel
                    && !self.own_files.contains(&p)
                    && !journaled.contains(&p)
                    && !COORDINATION.iter().any(|c| p.as_os_str().as_bytes().starts_with(c.as_bytes()))
                    && !p.starts_with(".baton");
                if keep {
                    self.protected.insert(p);
                }
            }
        }
        if let Err(e) = git::exclude_locally(
            &self.root,
            &["/.claude/agent-claims.json*", "/.claude/subagent-status/"],
            "coordination files of baton's parallel runs",
        ) {
            self.reporter.warn(format!("cannot keep the coordination files out of git status: {e}"));
        }
        // What an interrupted run left for tasks completed since (a worktree or branch whose
        // removal a kill cut short): unlanded work is rescued, then the task's rescued branches
        // go like those of any completed task.
        let done: Vec<crate::plan::TaskId> = file.plan().tasks().filter(|t| t.status.is_done()).map(|t| t.id.clone()).collect();
        let skip = self.landing_skip();
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        for id in &done {
            let (dir, branch) = self.worktree_place(id);
            match git::worktree::clear_leftover(&self.root, &dir, &branch, &skip) {
                Ok(rescued) => {
                    for r in rescued {
                        self.reporter.note(Note::Cleared { task: Some(id.clone()), what: r.to_string() });
                    }
                }
                Err(e) => self.reporter.warn(format!("{id}: cannot clear what an earlier run left in {}: {e}", dir.display())),
            }
        }
        if !done.is_empty() {
            let done: Vec<String> = done.iter().map(ToString::to_string).collect();
            self.prune_rescued(&done);
        }
        match git::worktree::list_stale(&self.root, "parallel/") {
            Ok(stale) => {
                for s in stale {
                    self.reporter.note(Note::Cleared {
                        task: None,
                        what: format!("found {s} from an earlier run; it is replaced (or its unlanded work rescued) when its task runs"),
                    });
                }
            }
            Err(e) => self.reporter.warn(format!("cannot list stale worktrees: {e}")),
        }
        Ok(())
    }

    /// Where a task's worktree goes, and its branch.
    fn worktree_place(&self, id: &TaskId) -> (PathBuf, String) {
        let name = self.worktree_name(id.as_str());
        let dir = self.root.join(&self.worktrees_dir).join(&name);
        (dir, format!("{}{name}", git::worktree::BRANCH_PREFIX))
    }

    /// The task's worktree (made fresh, or kept from its previous attempt), the coordination
    /// text for its prompt, and the environment that names it.
    pub(super) fn workplace_for(&mut self, task: &Task, file: &mut PlanFile) -> Result<Workplace, Error> {
        let id = &task.id;
        if !self.worktrees.contains_key(id) {
            // A new worktree forks from HEAD: what has landed must be in HEAD first, or a task
            // that depends on it would not see it.
            self.commit_round(file)?;
            let (dir, branch) = self.worktree_place(id);
            let made = self.pool.take(&dir, &branch, "HEAD").map_err(|e| Error::Worktree(format!("{id}: cannot create its worktree: {e}")))?;
            for r in &made.rescued {
                self.reporter.note(Note::Cleared { task: None, what: r.to_string() });
            }
            if let git::worktree::Origin::FreshAfterFailedReuse { from, error } = &made.origin {
                self.reporter.warn(format!("{id}: the worktree {} could not be reused ({error}); made a fresh one", from.display()));
            }
            self.reporter.note(Note::WorktreeReady {
                task: id.clone(),
                path: made.worktree.path.clone(),
                branch: made.worktree.branch.clone(),
                fork: made.worktree.fork.clone(),
                reused: matches!(made.origin, git::worktree::Origin::Reused { .. }),
            });
            self.give_plan_to(file, id, &made.worktree);
            self.worktrees.insert(id.clone(), made.worktree);
        }
        let wt = &self.worktrees[id];
        let siblings: Vec<String> = file
            .plan()
            .tasks()
            .filter(|t| t.id != *id && t.parallel_group.is_some() && t.parallel_group == task.parallel_group && !t.status.is_final())
            .map(|t| t.id.to_string())
            .collect();
        let agent = self.agent_id(id);
        let extra = crate::coord::protocol_text(
            &agent,
            id.as_str(),
            &wt.path,
            task.parallel_group.as_deref().unwrap_or(""),
            &siblings,
            &self.guard_exe.display().to_string(),
        );
        let cwd = wt.path.clone();
        let _ = crate::coord::heartbeat::beat(&self.root, &agent, id.as_str(), None, Some("starting"));
        self.agents.insert(agent.clone());
        let env = vec![
            (OsString::from("BATON_MAIN_ROOT"), self.root.clone().into_os_string()),
            (OsString::from("BATON_AGENT_ID"), OsString::from(&agent)),
            (OsString::from("BATON_TASK_ID"), OsString::from(id.as_str())),
            (OsString::from(crate::coord::claims::ENV_RUN_ID), OsString::from(crate::coord::claims::run_id())),
        ];
        let heartbeat = Some(self.root.join(crate::coord::heartbeat::STATUS_DIR).join(format!("{agent}.json")));
        Ok(Workplace { cwd, prompt_extra: format!("\n{extra}"), env, heartbeat })
    }

    /// Where the plan as a task's worktree got it is kept: the base of merging its edits.
    fn plan_at_fork(&self, id: &TaskId) -> PathBuf {
        self.records.task_dir(id.as_str()).join("plan-at-fork.yaml")
    }

    /// The worktree gets the plan as main has it now — committed or not, with this run's
    /// states — at the same relative path, and a copy is kept as the base for merging the
    /// agent's edits of it.
    fn give_plan_to(&self, file: &PlanFile, id: &TaskId, wt: &git::worktree::Worktree) {
        let rel = self.plan_rel();
        if rel.is_absolute() {
            return;
        }
        let text = file.text().as_bytes();
        let copy = wt.path.join(&rel);
        let base = self.plan_at_fork(id);
        let r = [&copy, &base].into_iter().try_for_each(|f| {
            if let Some(dir) = f.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::plan::write_atomic(f, text)
        });
        if let Err(e) = r {
            self.reporter.warn(format!("{id}: cannot put the plan in its worktree: {e}"));
        }
    }

    /// Whatever the agent changed in its worktree's plan goes into the main plan, announced
    /// with `plan_modified` or not (as in a sequential run): a three-way merge against the plan
    /// it was given, re-validated; if that does not merge cleanly, the tasks it added.
    fn take_worktree_plan(&mut self, file: &mut PlanFile, id: &TaskId, wt: &git::worktree::Worktree) {
        let rel = self.plan_rel();
        let Ok(theirs) = std::fs::read_to_string(wt.path.join(&rel)) else { return };
        let base = std::fs::read_to_string(self.plan_at_fork(id)).ok();
        if base.as_deref() == Some(theirs.as_str()) {
            return;
        }
        let ours = file.text().to_string();
        if let Some(base) = &base {
            match git::copyback::merge_three(&self.root, &rel, base.as_bytes(), ours.as_bytes(), theirs.as_bytes()) {
                Ok(Some(merged)) if merged == ours.as_bytes() => return,
                Ok(Some(merged)) if crate::plan::parse_plan(&String::from_utf8_lossy(&merged)).is_ok() => {
                    let r = crate::plan::write_atomic(file.path(), &merged).map_err(|e| e.to_string())
                        .and_then(|()| file.reload().map_err(|e| e.render()));
                    match r {
                        Ok(()) => {
                            self.reporter.note(Note::PlanMerged { task: id.clone() });
                            // Owned fields the edit changed were put back in memory: on disk too.
                            if let Err(e) = crate::run::engine::record::save(file, &self.reporter) {
                                self.reporter.warn(e.render_in_run());
                            }
                            let _ = std::fs::write(self.plan_at_fork(id), &theirs);
                            return;
                        }
                        Err(e) => {
                            // The main plan goes back to what baton holds.
                            let _ = crate::plan::write_atomic(file.path(), ours.as_bytes());
                            self.reporter.warn(format!("{id}: the agent's plan edits could not be taken: {e}"));
                        }
                    }
                }
                _ => {}
            }
        }
        match file.merge_added_tasks(&theirs) {
            Ok(added) if added.is_empty() => self.reporter.warn(format!(
                "{id}: the agent's edits of the plan do not merge with the main plan and are not taken; its copy is {}",
                wt.path.join(&rel).display()
            )),
            Ok(added) => {
                self.reporter.note(Note::TasksAdded { task: id.clone(), added });
                if let Err(e) = file.save() {
                    self.reporter.warn(e.render());
                }
            }
            Err(e) => self.reporter.warn(format!("{id}: the agent's plan edit could not be merged: {}", e.render())),
        }
    }

    /// Brings a finished task's work from its worktree into the main checkout: checked and
    /// decided first, journaled (synced), then copied. Its worktree and branch go only once
    /// everything that differs in it from its fork is in main.
    pub(super) fn land(&mut self, file: &mut PlanFile, id: &TaskId) -> Result<(), NotLanded> {
        let Some(wt) = self.worktrees.get(id).cloned() else { return Ok(()) };
        let agent = self.agent_id(id);
        let _ = crate::coord::heartbeat::finish(&self.root, &agent, crate::coord::heartbeat::AgentState::Completed);
        let _ = crate::coord::claims::release(&self.root, &agent, None);
        self.take_worktree_plan(file, id, &wt);
        let skip = self.landing_skip();
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        let landing = git::copyback::prepare(&self.root, &wt, &skip, &self.protected).and_then(|prepared| {
            if !prepared.is_empty() {
                let intents = prepared.intents(&self.root)?;
                let mut entries = self.read_journal();
                entries.retain(|e| e.task != id.as_str());
                entries.push(JournalEntry::new(id.as_str(), &wt, intents));
                self.write_journal(&entries).map_err(|source| git::copyback::CopyBackError::Io {
                    what: "write the landing journal",
                    path: self.journal(),
                    source,
                })?;
            }
            git::copyback::apply(&self.root, prepared)
        });
        let landing = match landing {
            Ok(landing) => landing,
            Err(e) if self.read_journal().iter().any(|j| j.task == id.as_str()) => {
                // Journaled, then cut short (disk full…): not the task's fault, and half of it
                // may be in main. The next start finishes it from the journal.
                return Err(NotLanded::Protected(Error::Protected {
                    what: format!("{id}: its landing could not be completed ({e}); the run stops"),
                    help: "run again once the cause is fixed: the next run finishes the landing from the landing journal".into(),
                }));
            }
            Err(e) => return Err(self.not_landed(id, &wt, e)),
        };
        let rel: Vec<PathBuf> = landing.paths().cloned().collect();
        self.reporter.note(Note::Landed { task: id.clone(), files: rel.len(), merged: landing.merged.len() });
        self.landed.push((id.clone(), rel.iter().map(|p| self.root.join(p)).collect()));
        let merged: HashSet<PathBuf> = landing.merged.iter().cloned().collect();
        match git::worktree::check_landed(&self.root, wt.clone(), &skip, &merged) {
            Ok(Ok(landed)) => {
                // Everything in it is in main: the next task may reuse it.
                self.worktrees.remove(id);
                if let Err(e) = self.pool.give_back(landed) {
                    self.reporter.warn(format!("{id}: landed, but its worktree could not be removed: {e}"));
                }
            }
            Ok(Err(left)) => {
                let list: Vec<String> = left.iter().take(5).map(|p| p.display().to_string()).collect();
                let more = if left.len() > 5 { ", …" } else { "" };
                self.reporter.warn(format!(
                    "{id}: {} path(s) of its worktree are not in the main checkout ({}{more}), changed after its landing was decided; its worktree {} and branch {} are kept",
                    left.len(),
                    list.join(", "),
                    wt.path.display(),
                    wt.branch
                ));
            }
            Err(e) => self.reporter.warn(format!(
                "{id}: cannot check that all of its work landed ({e}); its worktree {} and branch {} are kept",
                wt.path.display(),
                wt.branch
            )),
        }
        Ok(())
    }

    fn not_landed(&self, id: &TaskId, wt: &git::worktree::Worktree, e: git::copyback::CopyBackError) -> NotLanded {
        match e {
            git::copyback::CopyBackError::Conflict { paths } => {
                let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                let hint = git::copyback::recovery_hint(&self.root, wt);
                self.reporter.note(Note::MergeConflict { task: id.clone(), paths: paths.clone(), hint });
                NotLanded::Conflict(format!(
                    "merge conflict in {}; its work is kept on branch {} ({})",
                    list.join(", "),
                    wt.branch,
                    wt.path.display()
                ))
            }
            git::copyback::CopyBackError::ProtectedFile { path } => NotLanded::Protected(Error::Protected {
                what: format!("{id} changed {}, which has your uncommitted changes in the main checkout; baton will not overwrite them", path.display()),
                help: format!(
                    "commit or stash your change, then run again: the task goes back to pending without spending an attempt, and the work it did is kept on a branch (now {}, {})",
                    wt.branch,
                    wt.path.display()
                ),
            }),
            e => NotLanded::Conflict(format!("could not land its work: {e}; it is kept on branch {} ({})", wt.branch, wt.path.display())),
        }
    }

    /// Rescued branches of these tasks whose work is all in HEAD now go; the others stay (they
    /// hold work main does not have, such as the partial work of an attempt that was killed and
    /// then done over).
    fn prune_rescued(&mut self, ids: &[String]) {
        let skip = self.landing_skip();
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        let names: Vec<String> = ids.iter().map(|id| self.worktree_name(id)).collect();
        match git::worktree::prune_rescued(&self.root, &names, &skip) {
            Ok(gone) => {
                for p in gone {
                    self.reporter.note(Note::RescuedBranchDeleted { branch: p.branch, tip: p.tip, landed: p.landed });
                }
            }
            Err(e) => self.reporter.warn(format!("cannot check the rescued branches: {e}")),
        }
    }

    /// Claims older than an hour, held by this run's agents that no longer run, or made under
    /// a run that has ended (a crash leaves its claims behind) are dropped before new agents
    /// start. Claims of another running run's agents are left alone.
    pub(super) fn remove_stale_claims<'a>(&self, running: impl Iterator<Item = &'a TaskId>) {
        crate::coord::heartbeat::remove_dead_temps(&self.root);
        let ended = |c: &crate::coord::Claim| c.run.as_deref().is_some_and(crate::coord::claims::run_has_ended);
        match crate::coord::claims::remove_orphaned(&self.root, &ended) {
            Ok(removed) => {
                for c in removed {
                    self.reporter.note(Note::ClaimRemoved { agent: c.agent_id, path: c.path, run_ended: true });
                }
            }
            Err(e) => self.reporter.warn(format!("cannot clean the claims file: {e}")),
        }
        let live: HashSet<String> = running.map(|id| self.agent_id(id)).collect();
        let ours = &self.agents;
        let is_live = |a: &str| live.contains(a) || !ours.contains(a);
        match crate::coord::claims::remove_stale(&self.root, jiff::Timestamp::now(), crate::coord::claims::DEFAULT_MAX_AGE, &is_live) {
            Ok(removed) => {
                for c in removed {
                    self.reporter.note(Note::ClaimRemoved { agent: c.agent_id, path: c.path, run_ended: false });
                }
            }
            Err(e) => self.reporter.warn(format!("cannot clean the claims file: {e}")),
        }
    }

    /// At the end of the run: the worktrees waiting for reuse go (their work is in main).
    pub(super) fn close_pool(&mut self) {
        if let Err(e) = self.pool.close() {
            self.reporter.warn(format!("cannot remove a worktree whose work has landed: {e}"));
        }
    }

    /// At the end of the run: this run's claims and heartbeat files go; another run's stay.
    pub(super) fn clear_coordination(&self) {
        crate::coord::heartbeat::remove_dead_temps(&self.root);
        for agent in &self.agents {
            let _ = crate::coord::claims::release(&self.root, agent, None);
            let _ = std::fs::remove_file(self.root.join(crate::coord::heartbeat::STATUS_DIR).join(format!("{agent}.json")));
        }
    }

    /// One commit for the files landed since the last one, then the plan-state commit.
    pub(super) fn commit_round(&mut self, file: &mut PlanFile) -> Result<(), Error> {
        if self.landed.is_empty() {
            return Ok(());
        }
        let landed = std::mem::take(&mut self.landed);
        let ids: Vec<String> = landed.iter().map(|(id, _)| id.to_string()).collect();
        let files: Vec<PathBuf> = landed.into_iter().flat_map(|(_, f)| f).collect();
        if !files.is_empty() {
            let message = format!("plan: land task{} {}", if ids.len() == 1 { "" } else { "s" }, ids.join(", "));
            match git::commit_paths(&self.root, &files, &message) {
                Ok(git::Committed::Yes) => self.reporter.note(Note::Committed { message, plan: false }),
                Ok(git::Committed::NothingToCommit) => {}
                Err(e) => {
                    // The plan state is still committed: it says which tasks are done.
                    let _ = commit_plan(&self.root, file, &format!("baton: plan state after {}", ids.join(", ")), &self.reporter);
                    return Err(Error::Commit(format!("could not commit the landed files of {}: {e}", ids.join(", "))));
                }
            }
        }
        let mut entries = self.read_journal();
        entries.retain(|e| !ids.contains(&e.task));
        if let Err(e) = self.write_journal(&entries) {
            self.reporter.warn(format!("cannot update the landing journal: {e}"));
        }
        self.prune_rescued(&ids);
        commit_plan(&self.root, file, &format!("baton: plan state after {}", ids.join(", ")), &self.reporter)
    }

    /// A task failed for good: its worktree stays, and says where.
    pub(super) fn failed(&self, id: &TaskId) {
        if let Some(wt) = self.worktrees.get(id) {
            self.reporter.note(Note::WorkKept { task: id.clone(), path: wt.path.clone(), branch: wt.branch.clone() });
        }
    }
}

/// `.<hash of the checkout's path>` when `root` is a linked worktree of its repository (its git
/// dir is not the common one), else empty: the main working tree keeps the plain names.
fn checkout_scope(root: &Path) -> String {
    let Ok(out) = git::git(root, &["rev-parse", "--git-dir", "--git-common-dir"]) else { return String::new() };
    let mut dirs = out.lines().map(|l| std::fs::canonicalize(root.join(l)).unwrap_or_else(|_| root.join(l)));
    match (dirs.next(), dirs.next()) {
        (Some(git_dir), Some(common)) if git_dir != common => {
            let at = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            let hash = at.as_os_str().as_bytes().iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
            format!(".{hash:08x}")
        }
        _ => String::new(),
    }
}

/// `s` with anything but letters, digits, `.`, `_` and `-` replaced, and then a short hash of
/// `s` appended so that two different names never meet.
fn unique_name(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    if clean == s && !s.starts_with('.') {
        return clean;
    }
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{}-{:08x}", clean.trim_start_matches('.'), hash as u32)
}

/// One task's landing in the journal (see `Engine::journal`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct JournalEntry {
    task: String,
    /// The worktree's path, as bytes.
    worktree: Vec<u8>,
    branch: String,
    fork: String,
    intents: Vec<git::copyback::Intent>,
}

impl JournalEntry {
    fn new(task: &str, wt: &git::worktree::Worktree, intents: Vec<git::copyback::Intent>) -> JournalEntry {
        use std::os::unix::ffi::OsStrExt;
        JournalEntry {
            task: task.to_string(),
            worktree: wt.path.as_os_str().as_bytes().to_vec(),
            branch: wt.branch.clone(),
            fork: wt.fork.clone(),
            intents,
        }
    }

    fn worktree(&self) -> git::worktree::Worktree {
        use std::os::unix::ffi::OsStrExt;
        git::worktree::Worktree {
            path: PathBuf::from(std::ffi::OsStr::from_bytes(&self.worktree)),
            branch: self.branch.clone(),
            fork: self.fork.clone(),
        }
    }
}
