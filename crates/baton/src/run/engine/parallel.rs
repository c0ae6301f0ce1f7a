//! The parallel side of the dispatcher: each task's git worktree, landing its work in the main
//! checkout with copy-back, the round commit, and the coordination files its agent uses.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::dispatch::Engine;
use crate::exit::Exit;
use crate::git;
use crate::plan::{Task, TaskId};

/// Paths that belong to the coordination protocol, never copied back from a worktree.
pub(super) const COORDINATION: [&str; 3] = [".claude/plans/", ".claude/subagent-status/", ".claude/agent-claims.json"];

/// Where a task's agent works, what its prompt adds, and the environment that names it.
pub(super) struct Workplace {
    pub cwd: PathBuf,
    pub prompt_extra: String,
    pub env: Vec<(OsString, OsString)>,
}

impl Engine {

    /// Before the first round: stale worktrees and branches from a crashed run are dealt with,
    /// and the files the user has changed in the main checkout are noted (never overwritten).
    pub(super) fn prepare_parallel(&mut self) -> Result<(), String> {
        let status = git::git(&self.root, &["status", "--porcelain", "-z", "--untracked-files=all"]).map_err(|e| e.to_string())?;
        let plan_rel = self.file.path().strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or_default();
        for entry in status.split('\0').filter(|e| e.len() > 3) {
            let path = PathBuf::from(&entry[3..]);
            if path != plan_rel && !COORDINATION.iter().any(|c| entry[3..].starts_with(c)) && !entry[3..].starts_with(".baton/") {
                self.protected.insert(path);
            }
        }
        if !self.protected.is_empty() {
            let list: Vec<String> = self.protected.iter().take(5).map(|p| p.display().to_string()).collect();
            self.reporter.decision(
                "WORKTREE",
                format!("your uncommitted changes are protected: a task that would overwrite them stops the run ({}{})", list.join(", "), if self.protected.len() > 5 { ", …" } else { "" }),
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
            let stem = self.opts.plan.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
            let dir = self.root.join(&self.config.paths.worktrees_dir).join(format!("{stem}-{}", safe_name(id.as_str())));
            let branch = format!("parallel/{}", safe_name(id.as_str()));
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
        let agent = agent_id(id);
        let extra = crate::coord::protocol_text(
            &agent,
            id.as_str(),
            &wt.path,
            task.parallel_group.as_deref().unwrap_or(""),
            &siblings,
            &self.guard_exe.display().to_string(),
        );
        let _ = crate::coord::heartbeat::beat(&self.root, &agent, id.as_str(), None, Some("starting"));
        let env = vec![
            (OsString::from("BATON_MAIN_ROOT"), self.root.clone().into_os_string()),
            (OsString::from("BATON_AGENT_ID"), OsString::from(&agent)),
            (OsString::from("BATON_TASK_ID"), OsString::from(id.as_str())),
        ];
        Ok(Workplace { cwd: wt.path.clone(), prompt_extra: format!("\n{extra}"), env })
    }

    /// Brings a finished task's work from its worktree into the main checkout.
    pub(super) fn land(&mut self, id: &TaskId) -> Result<(), String> {
        let Some(wt) = self.worktrees.get(id).cloned() else { return Ok(()) };
        let agent = agent_id(id);
        let _ = crate::coord::heartbeat::finish(&self.root, &agent, crate::coord::heartbeat::AgentState::Completed);
        let _ = crate::coord::claims::release(&self.root, &agent, None);
        match git::copyback::copy_back(&self.root, &wt, &COORDINATION, &self.protected) {
            Ok(landing) => {
                let files: Vec<PathBuf> = landing.paths().map(|p| self.root.join(p)).collect();
                let merged = if landing.merged.is_empty() { String::new() } else { format!(" ({} merged three-way)", landing.merged.len()) };
                self.reporter.decision("WORKTREE", format!("{id}: landed {} file(s){merged}", files.len()));
                self.landed.push((id.clone(), files));
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
                Err(format!("merge conflict in {}; its work is kept on branch {} ({})", list.join(", "), wt.branch, wt.path.display()))
            }
            Err(git::copyback::CopyBackError::ProtectedFile { path }) => {
                eprintln!(
                    "error: {id} changed {}, which has your uncommitted changes in the main checkout; baton will not overwrite them.\n  help: commit or stash your change, then run again; the task's work is kept on branch {} ({})",
                    path.display(),
                    wt.branch,
                    wt.path.display()
                );
                self.finishing = Some(Exit::Stopped);
                Err(format!("would overwrite your uncommitted change in {}; its work is kept on branch {}", path.display(), wt.branch))
            }
            Err(e) => Err(format!("could not land its work: {e}; it is kept on branch {} ({})", wt.branch, wt.path.display())),
        }
    }

    /// Claims older than an hour, or held by agents that no longer run, are dropped before
    /// new agents start.
    pub(super) fn remove_stale_claims(&self) {
        let live: HashSet<String> = self.running.keys().map(agent_id).collect();
        let is_live = |a: &str| live.contains(a);
        match crate::coord::claims::remove_stale(&self.root, jiff::Timestamp::now(), crate::coord::claims::DEFAULT_MAX_AGE, &is_live) {
            Ok(removed) => {
                for c in removed {
                    self.reporter.decision("CLEANUP", format!("removed the stale claim of {} on {}", c.agent_id, c.path));
                }
            }
            Err(e) => self.reporter.warn(format!("cannot clean the claims file: {e}")),
        }
    }

    /// One commit for the files landed in a round, then the plan-state commit.
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
        self.commit(&format!("baton: plan state after {}", ids.join(", ")));
    }
}

/// The agent id of a task's agent in a parallel run.
pub(super) fn agent_id(id: &TaskId) -> String {
    format!("agent-{}", safe_name(id.as_str()))
}

fn safe_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}
