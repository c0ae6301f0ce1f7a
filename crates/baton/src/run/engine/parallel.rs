//! The parallel side of the dispatcher: each task's git worktree, landing its work in the main
//! checkout with copy-back, the round commit, and the coordination files its agent uses.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::dispatch::Engine;
use crate::git;
use crate::plan::{Task, TaskId};

/// Paths that belong to the coordination protocol, never copied back from a worktree.
pub(super) const COORDINATION: [&str; 3] = [".claude/plans/", ".claude/subagent-status/", ".claude/agent-claims.json"];

/// Why a finished task's work did not land.
pub(super) enum NotLanded {
    /// Main moved under it: the task fails, its branch is kept.
    Conflict(String),
    /// It would overwrite the user's uncommitted change, or its journaled landing could not be
    /// completed: the run stops, the task waits.
    Protected(String),
}

/// Where a task's agent works, what its prompt adds, and the environment that names it.
pub(super) struct Workplace {
    pub cwd: PathBuf,
    pub prompt_extra: String,
    pub env: Vec<(OsString, OsString)>,
}

impl Engine {
    /// The plan's path relative to the repository root.
    fn plan_rel(&self) -> PathBuf {
        let abs = std::path::absolute(self.file.path()).unwrap_or_else(|_| self.file.path().to_path_buf());
        abs.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or(abs)
    }

    fn plan_stem(&self) -> String {
        self.opts.plan.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into())
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
    fn finish_interrupted_landings(&mut self) -> HashSet<PathBuf> {
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
                self.reporter.decision("RECOVER", format!("finished and committed the landing of {} an interrupted run had begun ({} file(s))", ids.join(", "), files.len()));
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
                self.complete_from_record(&e.task);
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
        self.commit("baton: plan state after an interrupted landing");
        ours
    }

    /// A task whose landing an interrupted run finished: completed as its last attempt record
    /// says, when the plan still shows it unfinished.
    fn complete_from_record(&mut self, task: &str) {
        let Some(t) = self.file.plan().task(task) else { return };
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
            self.file.set_attempts(task, attempt)?;
            self.file.set_status(task, status)?;
            if !rec.message.is_empty() {
                self.file.set_text(task, crate::plan::TaskField::ResultMessage, &rec.message)?;
            }
            self.file.set_text(task, crate::plan::TaskField::CompletedAt, &rec.ended_at)?;
            self.file.save().map(|_| ())
        })();
        match r {
            Ok(()) => self.reporter.decision("RECOVER", format!("{task}: its work had landed before the interruption; recorded {status}")),
            Err(e) => self.reporter.warn(e.render()),
        }
    }

    /// Paths never copied back from a worktree: the coordination files and the plan (merged
    /// task by task instead).
    fn landing_skip(&self) -> Vec<String> {
        let mut skip: Vec<String> = COORDINATION.iter().map(|s| s.to_string()).collect();
        skip.push(self.plan_rel().to_string_lossy().into_owned());
        skip
    }

    /// Before the first round: work landed by a crashed run is committed, stale worktrees and
    /// branches are reported, and the files the user has changed in the main checkout are noted
    /// (never overwritten).
    pub(super) fn prepare_parallel(&mut self) -> Result<(), String> {
        let journaled = self.finish_interrupted_landings();
        let status = git::git_bytes(&self.root, &["status", "--porcelain=v1", "-z", "--untracked-files=all"], &[], None)
            .map_err(|e| e.to_string())?;
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
                    && !journaled.contains(&p)
                    && !COORDINATION.iter().any(|c| p.as_os_str().as_bytes().starts_with(c.as_bytes()))
                    && !p.starts_with(".baton");
                if keep {
                    self.protected.insert(p);
                }
            }
        }
        if !self.protected.is_empty() {
            let mut list: Vec<String> = self.protected.iter().map(|p| p.display().to_string()).collect();
            list.sort();
            let more = if list.len() > 5 { ", …" } else { "" };
            list.truncate(5);
            self.reporter.decision(
                "WORKTREE",
                format!("your uncommitted changes are protected: a task that would overwrite them stops the run ({}{more})", list.join(", ")),
            );
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
        let done: Vec<crate::plan::TaskId> = self.file.plan().tasks().filter(|t| t.status == crate::plan::Status::Completed).map(|t| t.id.clone()).collect();
        let skip = self.landing_skip();
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        for id in &done {
            let (dir, branch) = self.worktree_place(id);
            match git::worktree::clear_leftover(&self.root, &dir, &branch, &skip) {
                Ok(rescued) => {
                    for r in rescued {
                        self.reporter.decision("CLEANUP", format!("{id}: {r}"));
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
                    self.reporter.decision("CLEANUP", format!("found {s} from an earlier run; it is replaced (or its unlanded work rescued) when its task runs"));
                }
            }
            Err(e) => self.reporter.warn(format!("cannot list stale worktrees: {e}")),
        }
        Ok(())
    }

    /// Where a task's worktree goes, and its branch.
    fn worktree_place(&self, id: &TaskId) -> (PathBuf, String) {
        let name = git::worktree::ref_component(&format!("{}-{}", self.plan_stem(), id));
        let dir = self.root.join(&self.config.paths.worktrees_dir).join(&name);
        (dir, format!("{}{name}", git::worktree::BRANCH_PREFIX))
    }

    /// The task's worktree (made fresh, or kept from its previous attempt), the coordination
    /// text for its prompt, and the environment that names it.
    pub(super) fn worktree_for(&mut self, task: &Task) -> Result<Workplace, String> {
        let id = &task.id;
        if !self.worktrees.contains_key(id) {
            // A new worktree forks from HEAD: what has landed must be in HEAD first, or a task
            // that depends on it would not see it.
            self.commit_round();
            let (dir, branch) = self.worktree_place(id);
            let skip = self.landing_skip();
            let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
            let made = git::worktree::create(&self.root, &dir, &branch, &self.config.paths.status_file, &skip)
                .map_err(|e| format!("{id}: cannot create its worktree: {e}"))?;
            for r in &made.rescued {
                self.reporter.decision("CLEANUP", r.to_string());
            }
            self.reporter.decision("WORKTREE", format!("{id}: worktree {} on {} from {}", made.worktree.path.display(), made.worktree.branch, short(&made.worktree.fork)));
            self.give_plan_to(id, &made.worktree);
            self.worktrees.insert(id.clone(), made.worktree);
        }
        let wt = &self.worktrees[id];
        let siblings: Vec<String> = self
            .file
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
        Ok(Workplace { cwd, prompt_extra: format!("\n{extra}"), env })
    }

    /// Where the plan as a task's worktree got it is kept: the base of merging its edits.
    fn plan_at_fork(&self, id: &TaskId) -> PathBuf {
        self.records.task_dir(id.as_str()).join("plan-at-fork.yaml")
    }

    /// The worktree gets the plan as main has it now — committed or not, with this run's
    /// states — at the same relative path, and a copy is kept as the base for merging the
    /// agent's edits of it.
    fn give_plan_to(&self, id: &TaskId, wt: &git::worktree::Worktree) {
        let rel = self.plan_rel();
        if rel.is_absolute() {
            return;
        }
        let text = self.file.text().as_bytes();
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
    fn take_worktree_plan(&mut self, id: &TaskId, wt: &git::worktree::Worktree) {
        let rel = self.plan_rel();
        let Ok(theirs) = std::fs::read_to_string(wt.path.join(&rel)) else { return };
        let base = std::fs::read_to_string(self.plan_at_fork(id)).ok();
        if base.as_deref() == Some(theirs.as_str()) {
            return;
        }
        let ours = self.file.text().to_string();
        if let Some(base) = &base {
            match git::copyback::merge_three(&self.root, &rel, base.as_bytes(), ours.as_bytes(), theirs.as_bytes()) {
                Ok(Some(merged)) if merged == ours.as_bytes() => return,
                Ok(Some(merged)) if crate::plan::parse_plan(&String::from_utf8_lossy(&merged)).is_ok() => {
                    let r = crate::plan::write_atomic(self.file.path(), &merged).map_err(|e| e.to_string())
                        .and_then(|()| self.file.reload().map_err(|e| e.render()));
                    match r {
                        Ok(()) => {
                            self.reporter.decision("PLAN", format!("{id}: merged the agent's edits of the plan into the main plan"));
                            // Owned fields the edit changed were put back in memory: on disk too.
                            if let Err(e) = self.save() {
                                self.reporter.warn(e.render_in_run());
                            }
                            let _ = std::fs::write(self.plan_at_fork(id), &theirs);
                            return;
                        }
                        Err(e) => {
                            // The main plan goes back to what baton holds.
                            let _ = crate::plan::write_atomic(self.file.path(), ours.as_bytes());
                            self.reporter.warn(format!("{id}: the agent's plan edits could not be taken: {e}"));
                        }
                    }
                }
                _ => {}
            }
        }
        match self.file.merge_added_tasks(&theirs) {
            Ok(added) if added.is_empty() => self.reporter.warn(format!(
                "{id}: the agent's edits of the plan do not merge with the main plan and are not taken; its copy is {}",
                wt.path.join(&rel).display()
            )),
            Ok(added) => {
                let ids: Vec<String> = added.iter().map(|t| t.to_string()).collect();
                self.reporter.decision("PLAN", format!("{id}: the agent added task(s) {}; merged into the main plan", ids.join(", ")));
                if let Err(e) = self.file.save() {
                    self.reporter.warn(e.render());
                }
            }
            Err(e) => self.reporter.warn(format!("{id}: the agent's plan edit could not be merged: {}", e.render())),
        }
    }

    /// Brings a finished task's work from its worktree into the main checkout: checked and
    /// decided first, journaled (synced), then copied. Its worktree and branch go only once
    /// everything that differs in it from its fork is in main.
    pub(super) fn land(&mut self, id: &TaskId) -> Result<(), NotLanded> {
        let Some(wt) = self.worktrees.get(id).cloned() else { return Ok(()) };
        let agent = self.agent_id(id);
        let _ = crate::coord::heartbeat::finish(&self.root, &agent, crate::coord::heartbeat::AgentState::Completed);
        let _ = crate::coord::claims::release(&self.root, &agent, None);
        self.take_worktree_plan(id, &wt);
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
                return Err(NotLanded::Protected(format!(
                    "its landing could not be completed ({e}); the next run finishes it from the landing journal"
                )));
            }
            Err(e) => return Err(self.not_landed(id, &wt, e)),
        };
        let rel: Vec<PathBuf> = landing.paths().cloned().collect();
        let merged = if landing.merged.is_empty() { String::new() } else { format!(" ({} merged three-way)", landing.merged.len()) };
        self.reporter.decision("WORKTREE", format!("{id}: landed {} file(s){merged}", rel.len()));
        self.landed.push((id.clone(), rel.iter().map(|p| self.root.join(p)).collect()));
        let merged: HashSet<PathBuf> = landing.merged.iter().cloned().collect();
        match git::copyback::unlanded(&self.root, &wt, &skip, &merged) {
            Ok(left) if left.is_empty() => match git::worktree::remove(&self.root, &wt) {
                Ok(()) => {
                    self.worktrees.remove(id);
                }
                Err(e) => self.reporter.warn(format!("{id}: landed, but its worktree could not be removed: {e}")),
            },
            Ok(left) => {
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
                self.reporter.decision("WORKTREE", format!("{id}: merge conflict in {}; main is untouched. {hint}", list.join(", ")));
                NotLanded::Conflict(format!(
                    "merge conflict in {}; its work is kept on branch {} ({})",
                    list.join(", "),
                    wt.branch,
                    wt.path.display()
                ))
            }
            git::copyback::CopyBackError::ProtectedFile { path } => {
                eprintln!(
                    "error: {id} changed {}, which has your uncommitted changes in the main checkout; baton will not overwrite them.\n  help: commit or stash your change, then run again: the task goes back to pending without spending an attempt, and the work it did is kept on a branch (now {}, {})",
                    path.display(),
                    wt.branch,
                    wt.path.display()
                );
                NotLanded::Protected(format!("would overwrite your uncommitted change in {}", path.display()))
            }
            e => NotLanded::Conflict(format!("could not land its work: {e}; it is kept on branch {} ({})", wt.branch, wt.path.display())),
        }
    }

    /// Rescued branches of these tasks whose work is all in HEAD now go; the others stay (they
    /// hold work main does not have, such as the partial work of an attempt that was killed and
    /// then done over).
    fn prune_rescued(&mut self, ids: &[String]) {
        let skip = self.landing_skip();
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        let names: Vec<String> = ids.iter().map(|id| git::worktree::ref_component(&format!("{}-{}", self.plan_stem(), id))).collect();
        match git::worktree::prune_rescued(&self.root, &names, &skip) {
            Ok(gone) => {
                for p in gone {
                    let why = if p.landed {
                        "everything on it has landed".to_string()
                    } else {
                        format!("an interrupted attempt's work, replaced by the attempt that completed the task (it was {}; `git branch {} {}` brings it back until git's garbage collection)", p.tip, p.branch, p.tip)
                    };
                    self.reporter.decision("CLEANUP", format!("deleted {}: {why}", p.branch));
                }
            }
            Err(e) => self.reporter.warn(format!("cannot check the rescued branches: {e}")),
        }
    }

    /// Claims older than an hour, held by this run's agents that no longer run, or made under
    /// a run that has ended (a crash leaves its claims behind) are dropped before new agents
    /// start. Claims of another running run's agents are left alone.
    pub(super) fn remove_stale_claims(&self) {
        crate::coord::heartbeat::remove_dead_temps(&self.root);
        let ended = |c: &crate::coord::Claim| c.run.as_deref().is_some_and(crate::coord::claims::run_has_ended);
        match crate::coord::claims::remove_orphaned(&self.root, &ended) {
            Ok(removed) => {
                for c in removed {
                    self.reporter.decision("CLEANUP", format!("removed the claim of {} on {}: the run it belonged to has ended", c.agent_id, c.path));
                }
            }
            Err(e) => self.reporter.warn(format!("cannot clean the claims file: {e}")),
        }
        let live: HashSet<String> = self.running.keys().map(|id| self.agent_id(id)).collect();
        let ours = &self.agents;
        let is_live = |a: &str| live.contains(a) || !ours.contains(a);
        match crate::coord::claims::remove_stale(&self.root, jiff::Timestamp::now(), crate::coord::claims::DEFAULT_MAX_AGE, &is_live) {
            Ok(removed) => {
                for c in removed {
                    self.reporter.decision("CLEANUP", format!("removed the stale claim of {} on {}", c.agent_id, c.path));
                }
            }
            Err(e) => self.reporter.warn(format!("cannot clean the claims file: {e}")),
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
    pub(super) fn commit_round(&mut self) {
        if self.landed.is_empty() {
            return;
        }
        let landed = std::mem::take(&mut self.landed);
        let ids: Vec<String> = landed.iter().map(|(id, _)| id.to_string()).collect();
        let files: Vec<PathBuf> = landed.into_iter().flat_map(|(_, f)| f).collect();
        let mut committed = true;
        if !files.is_empty() {
            let message = format!("plan: land task{} {}", if ids.len() == 1 { "" } else { "s" }, ids.join(", "));
            match git::commit_paths(&self.root, &files, &message) {
                Ok(git::Committed::Yes) => self.reporter.decision("GIT", format!("committed: {message}")),
                Ok(git::Committed::NothingToCommit) => {}
                Err(e) => {
                    committed = false;
                    self.commit_failed(format!("could not commit the landed files of {}: {e}", ids.join(", ")));
                }
            }
        }
        if committed {
            let mut entries = self.read_journal();
            entries.retain(|e| !ids.contains(&e.task));
            if let Err(e) = self.write_journal(&entries) {
                self.reporter.warn(format!("cannot update the landing journal: {e}"));
            }
            self.prune_rescued(&ids);
        }
        self.commit(&format!("baton: plan state after {}", ids.join(", ")));
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

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
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
