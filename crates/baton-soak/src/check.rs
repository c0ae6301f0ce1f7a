//! The invariants, checked after every interruption and at the end.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use baton::plan::{Plan, Status};

use crate::design::Design;

/// One broken invariant: what is wrong, and where (file, task, commit, process).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The invariant it breaks, in a few words (the report counts by it).
    pub kind: &'static str,
    pub what: String,
    pub at: String,
}

pub fn finding(kind: &'static str, what: impl Into<String>, at: impl Into<String>) -> Finding {
    Finding { kind, what: what.into(), at: at.into() }
}

pub const PLAN_INVALID: &str = "plan invalid";
pub const PLAN_CHANGED: &str = "plan changed beyond owned fields";
pub const PLAN_EDIT_LOST: &str = "agent's plan edit lost";
pub const ATTEMPT_SPENT: &str = "attempt spent without a scripted failure";
pub const OVER_MAX: &str = "attempts > max_attempts";
pub const END_STATUS: &str = "wrong final status";
pub const WRONG_NAME: &str = "work committed under another task's name";
pub const TWICE: &str = "work landed more than once";
pub const MISSING: &str = "completed work not in main's history";
pub const LEFTOVER: &str = "left behind after the final run";
pub const PROCESS: &str = "process outlived baton";
pub const EXIT: &str = "baton ended wrongly";
pub const HISTORY: &str = "run history lost or left open";

/// When a check runs: after an interruption (work may be half done) or after the final run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Interrupted,
    Final,
}

pub struct Checker<'a> {
    pub design: &'a Design,
    pub root: &'a Path,
    pub state: &'a Path,
    pub baton: &'a Path,
    /// The supervisor saw the plan done (false: it gave up).
    pub finished: bool,
}

impl Checker<'_> {
    pub fn check(&self, phase: Phase) -> Vec<Finding> {
        let mut out = Vec::new();
        let invocations = self.invocations();
        let history = match History::read(self.root) {
            Ok(h) => Some(h),
            Err(e) => {
                out.push(finding(MISSING, format!("git history unreadable: {e}"), "main branch"));
                None
            }
        };
        for (p, spec) in self.design.plans.iter().enumerate() {
            let path = self.root.join(&spec.path);
            let Ok(text) = std::fs::read_to_string(&path) else {
                // A pipeline plan appears only once its item was planned.
                if phase == Phase::Final || spec.item.is_none() {
                    out.push(finding(PLAN_INVALID, "the plan file is missing", &spec.path));
                }
                continue;
            };
            self.baton_check(&spec.path, &mut out);
            let plan = match baton::plan::parse_plan(&text) {
                Ok(plan) => plan,
                Err(diags) => {
                    out.push(finding(PLAN_INVALID, format!("the plan does not parse: {diags:?}"), &spec.path));
                    continue;
                }
            };
            self.plan_shape(p, &plan, phase, &mut out);
            self.plan_layout(p, &text, &mut out);
            self.attempts(p, &plan, &invocations, phase, &mut out);
            if let Some(history) = &history {
                // Completion counts once it is committed: the plan at HEAD (or, at the end, the
                // plan on disk, which must be committed as well) claims the work is in history.
                let claimed = if phase == Phase::Final {
                    Some(plan.clone())
                } else {
                    git_show(self.root, &spec.path).and_then(|t| baton::plan::parse_plan(&t).ok())
                };
                self.work(p, claimed.as_ref(), history, phase, &mut out);
            }
        }
        self.history(&invocations, phase, &mut out);
        if phase == Phase::Final {
            // A task that failed for good keeps its worktree and branch, for a person to look
            // at (baton says where): those are not leftovers.
            let failed: Vec<String> = self
                .design
                .plans
                .iter()
                .filter_map(|spec| std::fs::read_to_string(self.root.join(&spec.path)).ok())
                .filter_map(|text| baton::plan::parse_plan(&text).ok())
                .flat_map(|plan| plan.tasks().filter(|t| t.status == Status::Failed).map(|t| t.id.to_string()).collect::<Vec<_>>())
                .collect();
            self.leftovers(&failed, &mut out);
        }
        out
    }

    fn baton_check(&self, rel: &str, out: &mut Vec<Finding>) {
        let result = Command::new(self.baton)
            .args(["check", rel])
            .current_dir(self.root)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output();
        match result {
            Ok(o) if o.status.success() => {}
            Ok(o) => out.push(finding(
                PLAN_INVALID,
                format!(
                    "`baton check` fails ({}): {}",
                    o.status,
                    crate::procs::shorten(
                        &format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
                            .replace('\n', " | "),
                        400
                    )
                ),
                rel,
            )),
            Err(e) => out.push(finding(PLAN_INVALID, format!("cannot run `baton check`: {e}"), rel)),
        }
    }

    /// Only owned fields differ from the plan as written plus the agents' own edits.
    fn plan_shape(&self, p: usize, plan: &Plan, phase: Phase, out: &mut Vec<Finding>) {
        let rel = &self.design.plans[p].path;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for section in &plan.sections {
            for task in &section.tasks {
                let id = task.id.0.as_str();
                *seen.entry(id).or_default() += 1;
                let at = format!("{rel}, task {id}");
                let Some(spec) = self.design.task(id).filter(|s| s.plan == p) else {
                    out.push(finding(PLAN_CHANGED, format!("a task nobody wrote appeared (section {})", section.id), at));
                    continue;
                };
                if section.id != spec.section {
                    out.push(finding(PLAN_CHANGED, format!("moved to section {} (was {})", section.id, spec.section), &at));
                }
                if task.name != spec.name() {
                    out.push(finding(PLAN_CHANGED, format!("name changed to {:?}", task.name), &at));
                }
                let description = task.description.clone().unwrap_or_default();
                let allowed = [Some(spec.description()), spec.revised_description()];
                if !allowed.iter().flatten().any(|d| *d == description) {
                    out.push(finding(PLAN_CHANGED, format!("description changed to {description:?}"), &at));
                }
                let deps: Vec<&str> = task.depends_on.iter().map(|d| d.0.as_str()).collect();
                if deps != spec.depends_on.iter().map(String::as_str).collect::<Vec<_>>() {
                    out.push(finding(PLAN_CHANGED, format!("depends_on changed to {deps:?}"), &at));
                }
                if task.parallel_group != spec.group {
                    out.push(finding(PLAN_CHANGED, format!("parallel_group changed to {:?}", task.parallel_group), &at));
                }
                if task.max_attempts != spec.max_attempts {
                    out.push(finding(PLAN_CHANGED, format!("max_attempts changed to {:?}", task.max_attempts), &at));
                }
                if task.files != spec.files {
                    out.push(finding(PLAN_CHANGED, format!("files changed to {:?}", task.files), &at));
                }
                if task.timeout_seconds != spec.timeout_seconds.map(f64::from) {
                    out.push(finding(PLAN_CHANGED, format!("timeout_seconds changed to {:?}", task.timeout_seconds), &at));
                }
            }
        }
        for (id, n) in &seen {
            if *n > 1 {
                out.push(finding(PLAN_CHANGED, format!("the task appears {n} times"), format!("{rel}, task {id}")));
            }
        }
        for spec in self.design.plan_tasks(p) {
            let at = format!("{rel}, task {}", spec.id);
            let present = seen.contains_key(spec.id.as_str());
            match &spec.added_by {
                None if !present => out.push(finding(PLAN_CHANGED, "a task of the plan vanished", &at)),
                Some(by) if !present && phase == Phase::Final && status_of(plan, by) == Some(Status::Completed) => {
                    out.push(finding(PLAN_EDIT_LOST, format!("the task added by {by}'s agent was dropped (plan_modified: {})", self.adder_announced(by)), &at));
                }
                _ => {}
            }
            if phase == Phase::Final {
                if let (Some(by), Some(revised)) = (&spec.revised_by, spec.revised_description()) {
                    let now = plan.task(&spec.id).and_then(|t| t.description.clone());
                    if status_of(plan, by) == Some(Status::Completed) && now.as_deref() != Some(revised.as_str()) {
                        out.push(finding(
                            PLAN_EDIT_LOST,
                            format!("{by}'s agent revised the description (plan_modified: {}), the plan lost it", self.adder_announced(by)),
                            at,
                        ));
                    }
                }
            }
        }
        if plan.meta.name.as_deref() != Some(self.design.plans[p].name.as_str()) {
            out.push(finding(PLAN_CHANGED, format!("meta.name changed to {:?}", plan.meta.name), rel));
        }
    }

    /// Everything baton does not own keeps its text and order: the lines of the plan as written
    /// (other than owned fields, and descriptions an agent may revise) are all still there, in
    /// the same order.
    fn plan_layout(&self, p: usize, text: &str, out: &mut Vec<Finding>) {
        const OWNED: [&str; 5] = ["status:", "attempts:", "last_error:", "completed_at:", "result_message:"];
        let original = self.design.plan_yaml(p);
        let revisable: Vec<(String, String)> = self
            .design
            .plan_tasks(p)
            .filter_map(|t| t.revised_description().map(|r| (t.description(), r)))
            .collect();
        let mut now = text.lines().enumerate();
        for (n, line) in original.lines().enumerate() {
            let key = line.trim_start().trim_start_matches("- ");
            if OWNED.iter().any(|k| key.starts_with(k)) {
                continue;
            }
            let revised = key
                .strip_prefix("description: ")
                .and_then(|d| revisable.iter().find(|(orig, _)| orig == d))
                .map(|(_, r)| line.replace(key, &format!("description: {r}")));
            let found = now.any(|(_, l)| l == line || Some(l) == revised.as_deref());
            if !found {
                out.push(finding(
                    PLAN_CHANGED,
                    format!("line {} of the plan as written is gone, changed or out of order: {line:?}", n + 1),
                    &self.design.plans[p].path,
                ));
                return;
            }
        }
    }

    fn adder_announced(&self, id: &str) -> bool {
        self.design.task(id).is_some_and(|t| t.plan_modified)
    }

    /// attempts ≤ max_attempts; limits, throttling and kills spend no attempt; the end state.
    fn attempts(&self, p: usize, plan: &Plan, invocations: &HashMap<String, Vec<u64>>, phase: Phase, out: &mut Vec<Finding>) {
        let rel = &self.design.plans[p].path;
        let default_max = plan.meta.max_attempts_default.unwrap_or(crate::design::DEFAULT_MAX_ATTEMPTS);
        let mut unfinished = Vec::new();
        for section in &plan.sections {
            for task in &section.tasks {
                let Some(spec) = self.design.task(&task.id.0) else { continue };
                let at = format!("{rel}, task {}", spec.id);
                let max = task.max_attempts.unwrap_or(default_max);
                if task.attempts > max {
                    out.push(finding(OVER_MAX, format!("attempts {} > max_attempts {max}", task.attempts), &at));
                }
                let runs = invocations.get(&spec.id).map(Vec::as_slice).unwrap_or_default();
                let failing = runs
                    .iter()
                    .filter(|n| spec.fault_of_invocation(**n).is_some_and(|f| f.spends()))
                    .count() as u32;
                let allowed = failing + u32::from(task.status == Status::Completed);
                if task.attempts > allowed {
                    let faults: Vec<String> = runs
                        .iter()
                        .map(|n| match spec.fault_of_invocation(*n) {
                            Some(f) => format!("#{n} {f:?}"),
                            None => format!("#{n} ok"),
                        })
                        .collect();
                    out.push(finding(
                        ATTEMPT_SPENT,
                        format!(
                            "attempts {} but only {allowed} agent run(s) could count (status {:?}; agent runs: {}): an attempt was spent on a limit, throttling, a kill or baton's own trouble",
                            task.attempts,
                            task.status,
                            faults.join(", ")
                        ),
                        &at,
                    ));
                }
                if phase == Phase::Final {
                    let want = if spec.permanent { Status::Failed } else { Status::Completed };
                    // A soak given up on leaves pending work: one finding for all of it, so
                    // the report shows the cause rather than forty echoes of it.
                    if !self.finished && matches!(task.status, Status::Pending | Status::InProgress) {
                        unfinished.push(spec.id.clone());
                    } else if task.status != want {
                        out.push(finding(
                            END_STATUS,
                            format!(
                                "ended {:?}, expected {want:?} (attempts {}, last_error {:?})",
                                task.status,
                                task.attempts,
                                task.last_error.as_deref().map(|e| crate::procs::shorten(e, 200))
                            ),
                            &at,
                        ));
                    }
                }
            }
        }
        if !unfinished.is_empty() {
            out.push(finding(
                END_STATUS,
                format!("the soak gave up with {} task(s) not done: {}", unfinished.len(), list(&unfinished, 8)),
                rel,
            ));
        }
    }

    /// Every completed task's work is in the main branch's history exactly once, under its name.
    fn work(&self, p: usize, claimed: Option<&Plan>, history: &History, phase: Phase, out: &mut Vec<Finding>) {
        for spec in self.design.plan_tasks(p) {
            let completed = claimed.and_then(|plan| status_of(plan, &spec.id)) == Some(Status::Completed);
            let at = format!("task {}", spec.id);
            let mut lines = vec![(spec.work_file(), spec.work_line())];
            if let (Some((file, _)), Some(line)) = (&spec.slot, spec.slot_line()) {
                lines.push((file.clone(), line));
            }
            // One finding per wrong commit, per duplicate and per missing piece of work, naming
            // every file it concerns.
            let mut wrong: Vec<(String, String, Vec<String>)> = Vec::new();
            let mut twice = Vec::new();
            let mut missing = Vec::new();
            for (file, line) in &lines {
                let adds = history.additions(file, line);
                for (hash, message) in adds {
                    if names(message, &spec.id) {
                        continue;
                    }
                    match wrong.iter_mut().find(|(h, _, _)| h == hash) {
                        Some((_, _, files)) => files.push(file.clone()),
                        None => wrong.push((hash.clone(), first_line(message).to_owned(), vec![file.clone()])),
                    }
                }
                if adds.len() > 1 {
                    let hashes: Vec<&str> = adds.iter().map(|(h, _)| &h[..h.len().min(10)]).collect();
                    twice.push(format!("{file} ({})", hashes.join(", ")));
                }
                if completed && adds.is_empty() {
                    let on_disk = std::fs::read_to_string(self.root.join(file)).unwrap_or_default();
                    let place = if on_disk.lines().any(|l| l == line) { "in the working tree only" } else { "nowhere" };
                    missing.push(format!("{file} ({place})"));
                }
            }
            for (hash, message, files) in wrong {
                out.push(finding(
                    WRONG_NAME,
                    format!("its work ({}) was committed as {message:?}", files.join(", ")),
                    format!("{at}, commit {}", &hash[..hash.len().min(10)]),
                ));
            }
            if !twice.is_empty() {
                out.push(finding(TWICE, format!("its work was added more than once: {}", twice.join("; ")), &at));
            }
            if !missing.is_empty() {
                let claim = if phase == Phase::Final { "completed" } else { "completed in the committed plan" };
                out.push(finding(
                    MISSING,
                    format!("{claim}, but its work is not in the main branch's history: {}", missing.join("; ")),
                    &at,
                ));
            } else if phase == Phase::Final && completed {
                let head = git_show(self.root, &spec.work_file());
                if head.as_deref() != Some(format!("{}\n", spec.work_line()).as_str()) {
                    out.push(finding(MISSING, format!("{} at HEAD is {head:?}", spec.work_file()), &at));
                }
            }
        }
    }

    fn leftovers(&self, failed: &[String], out: &mut Vec<Finding>) {
        let git = |args: &[&str]| git_output(self.root, args).unwrap_or_default();
        // `plan-<id>`: the worktree folder and branch name of a task of the plan `plan.yaml`.
        let kept = |name: &str| failed.iter().any(|id| name.ends_with(&format!("plan-{id}")));
        let worktrees = git(&["worktree", "list", "--porcelain"]);
        for wt in worktrees.lines().filter_map(|l| l.strip_prefix("worktree ")).skip(1).filter(|w| !kept(w)) {
            out.push(finding(LEFTOVER, "a worktree is left after the final run", wt));
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join(".worktrees")) {
            for e in entries.flatten().filter(|e| !kept(&e.file_name().to_string_lossy())) {
                out.push(finding(LEFTOVER, "a folder is left in .worktrees", e.path().display().to_string()));
            }
        }
        let branches = git(&["for-each-ref", "--format=%(refname:short)", "refs/heads/parallel", "refs/heads/parallel-rescued"]);
        for b in branches.lines().filter(|l| !l.is_empty()).filter(|b| !(b.starts_with("parallel/") && kept(b))) {
            out.push(finding(LEFTOVER, "a branch is left after the final run", b));
        }
        let status = git(&["status", "--porcelain=v1", "--untracked-files=all"]);
        let dirty: Vec<String> = status.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        if !dirty.is_empty() {
            out.push(finding(
                LEFTOVER,
                format!("{} path(s) left uncommitted after the final run: {}", dirty.len(), list(&dirty, 6)),
                "git status",
            ));
        }
        if self.root.join(".git/index.lock").exists() {
            out.push(finding(LEFTOVER, "git's index.lock is left", ".git/index.lock"));
        }
        let mut stack = vec![self.root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = e.path();
                if path.is_dir() && !path.is_symlink() {
                    if name != ".git" {
                        stack.push(path);
                    }
                } else if name.contains("baton-tmp") || (name.starts_with(".baton-") && name.ends_with(".tmp")) || name.ends_with(".tmp") {
                    let rel = path.strip_prefix(self.root).unwrap_or(&path).display().to_string();
                    out.push(finding(LEFTOVER, "a temporary file is left", rel));
                }
            }
        }
        for spec in &self.design.plans {
            if let Some((item, slug)) = &spec.item {
                if self.root.join(item).exists() {
                    out.push(finding(LEFTOVER, "the backlog item was not archived", item));
                }
                let archived = format!("docs/feature-backlog/completed/{slug}.md");
                if !self.root.join(&archived).exists() {
                    out.push(finding(LEFTOVER, "the archived backlog item is missing", archived));
                }
            }
        }
    }

    /// The run history (`.baton/baton.db`): every agent run of a task has its row — also
    /// across `kill -9`s, since the row is written before the agent starts — and after the
    /// final run none is left `running` and every run has its ending.
    fn history(&self, invocations: &HashMap<String, Vec<u64>>, phase: Phase, out: &mut Vec<Finding>) {
        let store = match baton::store::Store::open_existing(self.root) {
            Ok(Some(s)) => s,
            Ok(None) if invocations.is_empty() => return,
            Ok(None) => return out.push(finding(HISTORY, "agents ran but there is no .baton/baton.db", ".baton")),
            Err(e) => return out.push(finding(HISTORY, format!("the store cannot be read: {e}"), ".baton/baton.db")),
        };
        for (p, spec) in self.design.plans.iter().enumerate() {
            let runs = match store.runs(Some(&spec.path), usize::MAX) {
                Ok(r) => r,
                Err(e) => return out.push(finding(HISTORY, format!("cannot read the runs: {e}"), &spec.path)),
            };
            let rows: Vec<&baton::store::query::AttemptRow> = runs.iter().flat_map(|r| &r.attempts).filter(|a| a.kind == "task" && a.plan == spec.path).collect();
            for task in self.design.plan_tasks(p).map(|t| t.id.as_str()) {
                let ran = invocations.get(task).map_or(0, Vec::len);
                let recorded = rows.iter().filter(|a| a.task == task).count();
                if recorded < ran {
                    out.push(finding(HISTORY, format!("{ran} agent run(s) but {recorded} attempt row(s)"), format!("{}, task {task}", spec.path)));
                }
            }
            if phase == Phase::Final {
                let open: Vec<String> = rows.iter().filter(|a| a.outcome == "running").map(|a| format!("{} session {}", a.task, a.session)).collect();
                if !open.is_empty() {
                    out.push(finding(HISTORY, format!("attempts still `running` after the final run: {}", list(&open, 5)), &spec.path));
                }
                let unended = runs.iter().filter(|r| r.kind == "run" && r.plan == spec.path && r.ending.is_none()).count();
                if unended > 0 {
                    out.push(finding(HISTORY, format!("{unended} run(s) without an ending after the final run"), &spec.path));
                }
            }
        }
    }

    /// Agent runs per task: the invocation numbers fake-claude logged.
    fn invocations(&self) -> HashMap<String, Vec<u64>> {
        let mut map: HashMap<String, Vec<u64>> = HashMap::new();
        let text = std::fs::read_to_string(self.state.join("invocations.jsonl")).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if let (Some(id), Some(n)) = (v["task_id"].as_str(), v["attempt"].as_u64()) {
                map.entry(id.to_owned()).or_default().push(n);
            }
        }
        map
    }
}

/// The first `max` items, and how many more.
fn list(items: &[String], max: usize) -> String {
    let shown = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        format!("{shown} … and {} more", items.len() - max)
    } else {
        shown
    }
}

fn status_of(plan: &Plan, id: &str) -> Option<Status> {
    plan.task(id).map(|t| t.status)
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

/// Whether a commit message names the task id as a word.
pub fn names(message: &str, id: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .map(|w| w.trim_end_matches('.'))
        .any(|w| w == id)
}

fn git_output(root: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!("git {args:?}: {}", String::from_utf8_lossy(&o.stderr).trim()))
    }
}

fn git_show(root: &Path, rel: &str) -> Option<String> {
    git_output(root, &["show", &format!("HEAD:{rel}")]).ok()
}

/// Lines added to `work/` and `shared/` files by each commit of the main branch.
pub struct History {
    /// (file, added line) → commits (hash, message) that added it.
    added: HashMap<(String, String), Vec<(String, String)>>,
}

impl History {
    pub fn read(root: &Path) -> Result<History, String> {
        let log = git_output(
            root,
            &["log", "-p", "--unified=0", "--no-renames", "--no-color", "--format=%x1e%H%x1f%B%x1f", "HEAD", "--", "work", "shared"],
        )?;
        let mut added: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        for chunk in log.split('\x1e').filter(|c| !c.trim().is_empty()) {
            let mut parts = chunk.splitn(3, '\x1f');
            let (Some(hash), Some(message), Some(diff)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let mut file = String::new();
            for line in diff.lines() {
                if let Some(path) = line.strip_prefix("+++ ") {
                    file = path.strip_prefix("b/").unwrap_or(path).to_owned();
                } else if let Some(text) = line.strip_prefix('+') {
                    let entry = added.entry((file.clone(), text.to_owned())).or_default();
                    if !entry.iter().any(|(h, _)| h == hash) {
                        entry.push((hash.trim().to_owned(), message.trim().to_owned()));
                    }
                }
            }
        }
        Ok(History { added })
    }

    fn additions(&self, file: &str, line: &str) -> &[(String, String)] {
        self.added
            .get(&(file.to_owned(), line.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_check_allows_owned_fields_and_revisions_only() {
        let design = crate::design::Design::generate(3, crate::design::Mode::Run, 30);
        let dir = Path::new("/nonexistent");
        let checker = Checker { design: &design, root: dir, state: dir, baton: dir, finished: true };
        let original = design.plan_yaml(0);
        let layout = |text: &str| {
            let mut out = Vec::new();
            checker.plan_layout(0, text, &mut out);
            out
        };
        assert!(layout(&original).is_empty());
        let owned = original
            .replace("    status: pending\n", "    status: completed\n    attempts: 2\n    result_message: 'a, b'\n");
        assert!(layout(&owned).is_empty(), "{:?}", layout(&owned));
        let comment_lost = original.replacen("# Written by baton-soak", "# Written by someone", 1);
        assert_eq!(layout(&comment_lost).len(), 1);
        let reordered = original.replacen(
            "    name: Task 1.1\n    status: pending\n    description: Task number 1.1 of the soak\n",
            "    description: Task number 1.1 of the soak\n    status: pending\n    name: Task 1.1\n",
            1,
        );
        assert!(reordered != original);
        assert_eq!(layout(&reordered).len(), 1, "{reordered}");
    }

    #[test]
    fn a_message_names_a_task_as_a_word() {
        assert!(names("plan: land tasks 1.1, 1.12", "1.1"));
        assert!(names("task 1.12", "1.12"));
        assert!(!names("task 1.12", "1.1"));
        assert!(!names("task add-1.1", "1.1"));
        assert!(names("baton: plan state after 2.3.", "2.3"));
    }
}
