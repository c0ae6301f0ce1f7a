//! The parallel side of the dispatcher: each task's git worktree, landing its work in the main
//! checkout with copy-back, the round commit, and the coordination files its agent uses.

use std::collections::HashSet;
use std::ffi::OsString;
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
    /// It would overwrite the user's uncommitted change: the run stops, the task waits.
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

    /// The landing journal: files landed but not yet committed, so that a crash in between
    /// does not leave them looking like the user's own changes.
    fn journal(&self) -> PathBuf {
        self.records.dir().join("landed-uncommitted.json")
    }

    /// Before the first round: work landed by a crashed run is committed, stale worktrees and
    /// branches are reported, and the files the user has changed in the main checkout are noted
    /// (never overwritten).
    pub(super) fn prepare_parallel(&mut self) -> Result<(), String> {
        if let Ok(text) = std::fs::read_to_string(self.journal()) {
            let files: Vec<PathBuf> = serde_json::from_str(&text).unwrap_or_default();
            let files: Vec<PathBuf> = files.into_iter().map(|f| self.root.join(f)).collect();
            match git::commit_paths(&self.root, &files, "plan: land tasks (committed after an interrupted run)") {
                Ok(_) => {
                    self.reporter.decision("RECOVER", format!("committed {} file(s) an interrupted run had landed", files.len()));
                    let _ = std::fs::remove_file(self.journal());
                }
                Err(e) => self.reporter.warn(format!("cannot commit the files an interrupted run landed: {e}")),
            }
        }
        let status = git::git(&self.root, &["status", "--porcelain=v1", "-z", "--untracked-files=all"]).map_err(|e| e.to_string())?;
        let plan_rel = self.plan_rel();
        let mut fields = status.split('\0').filter(|e| !e.is_empty());
        while let Some(entry) = fields.next() {
            let (Some(xy), Some(path)) = (entry.get(..2), entry.get(3..)) else { continue };
            let mut paths = vec![path.to_string()];
            if xy.contains('R') || xy.contains('C') {
                // A rename's or copy's original path follows as a field of its own.
                paths.extend(fields.next().map(str::to_string));
            }
            for p in paths {
                let keep = Path::new(&p) != plan_rel
                    && !COORDINATION.iter().any(|c| p.starts_with(c))
                    && !p.starts_with(".baton/");
                if keep {
                    self.protected.insert(PathBuf::from(p));
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

    /// The task's worktree (made fresh, or kept from its previous attempt), the coordination
    /// text for its prompt, and the environment that names it.
    pub(super) fn worktree_for(&mut self, task: &Task) -> Result<Workplace, String> {
        let id = &task.id;
        if !self.worktrees.contains_key(id) {
            // A new worktree forks from HEAD: what has landed must be in HEAD first, or a task
            // that depends on it would not see it.
            self.commit_round();
            let name = git::worktree::ref_component(&format!("{}-{}", self.plan_stem(), id));
            let dir = self.root.join(&self.config.paths.worktrees_dir).join(&name);
            let branch = format!("{}{name}", git::worktree::BRANCH_PREFIX);
            let made = git::worktree::create(&self.root, &dir, &branch, &self.config.paths.status_file)
                .map_err(|e| format!("{id}: cannot create its worktree: {e}"))?;
            for r in &made.rescued {
                self.reporter.decision("CLEANUP", r.to_string());
            }
            self.reporter.decision("WORKTREE", format!("{id}: worktree {} on {} from {}", made.worktree.path.display(), made.worktree.branch, short(&made.worktree.fork)));
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
        ];
        Ok(Workplace { cwd, prompt_extra: format!("\n{extra}"), env })
    }

    /// Brings a finished task's work from its worktree into the main checkout.
    pub(super) fn land(&mut self, id: &TaskId) -> Result<(), NotLanded> {
        let Some(wt) = self.worktrees.get(id).cloned() else { return Ok(()) };
        let agent = self.agent_id(id);
        let _ = crate::coord::heartbeat::finish(&self.root, &agent, crate::coord::heartbeat::AgentState::Completed);
        let _ = crate::coord::claims::release(&self.root, &agent, None);
        let plan_rel = self.plan_rel().to_string_lossy().into_owned();
        // The plan is merged task by task (take_plan_edit), never copied over main's.
        let mut skip: Vec<&str> = COORDINATION.to_vec();
        skip.push(&plan_rel);
        match git::copyback::copy_back(&self.root, &wt, &skip, &self.protected) {
            Ok(landing) => {
                let rel: Vec<PathBuf> = landing.paths().cloned().collect();
                let merged = if landing.merged.is_empty() { String::new() } else { format!(" ({} merged three-way)", landing.merged.len()) };
                self.reporter.decision("WORKTREE", format!("{id}: landed {} file(s){merged}", rel.len()));
                self.landed.push((id.clone(), rel.iter().map(|p| self.root.join(p)).collect()));
                self.write_journal();
                match git::worktree::remove(&self.root, &wt) {
                    Ok(()) => {
                        self.worktrees.remove(id);
                    }
                    Err(e) => self.reporter.warn(format!("{id}: landed, but its worktree could not be removed: {e}")),
                }
                Ok(())
            }
            Err(git::copyback::CopyBackError::Conflict { paths }) => {
                let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                let hint = git::copyback::recovery_hint(&self.root, &wt);
                self.reporter.decision("WORKTREE", format!("{id}: merge conflict in {}; main is untouched. {hint}", list.join(", ")));
                Err(NotLanded::Conflict(format!(
                    "merge conflict in {}; its work is kept on branch {} ({})",
                    list.join(", "),
                    wt.branch,
                    wt.path.display()
                )))
            }
            Err(git::copyback::CopyBackError::ProtectedFile { path }) => {
                eprintln!(
                    "error: {id} changed {}, which has your uncommitted changes in the main checkout; baton will not overwrite them.\n  help: commit or stash your change, then run again: the task goes back to pending without spending an attempt, and the work it did is kept on a branch (now {}, {})",
                    path.display(),
                    wt.branch,
                    wt.path.display()
                );
                Err(NotLanded::Protected(format!("would overwrite your uncommitted change in {}", path.display())))
            }
            Err(e) => Err(NotLanded::Conflict(format!("could not land its work: {e}; it is kept on branch {} ({})", wt.branch, wt.path.display()))),
        }
    }

    fn write_journal(&self) {
        let files: Vec<PathBuf> = self
            .landed
            .iter()
            .flat_map(|(_, f)| f.iter())
            .map(|f| f.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or_else(|_| f.clone()))
            .collect();
        if let Ok(text) = serde_json::to_string(&files) {
            if let Err(e) = crate::plan::write_atomic(&self.journal(), text.as_bytes()) {
                self.reporter.warn(format!("cannot write the landing journal: {e}"));
            }
        }
    }

    /// Claims older than an hour, or held by this run's agents that no longer run, are dropped
    /// before new agents start. Claims of another run's agents are left alone.
    pub(super) fn remove_stale_claims(&self) {
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
        if !files.is_empty() {
            let message = format!("plan: land task{} {}", if ids.len() == 1 { "" } else { "s" }, ids.join(", "));
            match git::commit_paths(&self.root, &files, &message) {
                Ok(git::Committed::Yes) => self.reporter.decision("GIT", format!("committed: {message}")),
                Ok(git::Committed::NothingToCommit) => {}
                Err(e) => self.reporter.warn(format!("could not commit the landed files (they are in the working tree): {e}")),
            }
        }
        let _ = std::fs::remove_file(self.journal());
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
