//! The typed plan: meta, sections and tasks read from the node tree, with every problem found
//! on the way reported as a [`Diagnostic`] (all of them, not just the first).
//!
//! This module reads; it never writes. Fields it does not know stay in the source text and are
//! never touched, which is how unknown fields are kept.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use super::yaml::Node;
use super::Diagnostic;

/// The longest time any setting in seconds may name (30 days): more is a typo, and would not
/// fit a timer.
pub const MAX_SECONDS: f64 = 30.0 * 24.0 * 3600.0;

/// A task id. Always the source text of the id, so `1.10` and `1.1` stay different tasks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

impl TaskId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        TaskId(s.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InProgress,
    Completed,
    /// Completed, and a reviewer passed it: a final success that baton never downgrades.
    Verified,
    Failed,
    Skipped,
    /// Waiting for a person (the original tool's word): never runs until someone makes it
    /// pending again; a plan left with only these ends blocked.
    Suspended,
    /// The reviewer gave up on it (the original tool's word): final, and not a success.
    ValidationExhausted,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::InProgress,
        Status::Completed,
        Status::Verified,
        Status::Failed,
        Status::Skipped,
        Status::Suspended,
        Status::ValidationExhausted,
    ];

    /// The words a plan may use, for error messages.
    pub const WORDS: &'static str = "pending, in_progress, completed, verified, failed, skipped, suspended, validation_exhausted";

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Verified => "verified",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Suspended => "suspended",
            Status::ValidationExhausted => "validation_exhausted",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The status a misspelt or foreign status word most likely means: `complete`, `done`,
    /// `finished` → `completed`; a different case, `-` for `_`, a typo of one or two letters.
    pub fn meant(word: &str) -> Option<Status> {
        let w = word.trim().to_lowercase().replace(['-', ' '], "_");
        if let Some(st) = Status::parse(&w) {
            return Some(st);
        }
        let by_meaning = match w.as_str() {
            "complete" | "done" | "finished" | "finish" | "success" | "succeeded" | "successful" | "passed" | "ok" | "closed" | "resolved" => Some(Status::Completed),
            "inprogress" | "running" | "started" | "active" | "doing" | "wip" | "in_process" => Some(Status::InProgress),
            "todo" | "to_do" | "open" | "new" | "not_started" | "queued" | "ready" | "waiting" => Some(Status::Pending),
            "fail" | "error" | "errored" | "failure" | "broken" => Some(Status::Failed),
            "skip" | "skiped" | "cancelled" | "canceled" | "ignored" | "wontfix" | "won't_do" => Some(Status::Skipped),
            "verify" | "validated" | "approved" | "reviewed" => Some(Status::Verified),
            "suspend" | "paused" | "on_hold" | "onhold" | "blocked" | "held" => Some(Status::Suspended),
            "exhausted" | "validation_failed" | "validationexhausted" => Some(Status::ValidationExhausted),
            _ => None,
        };
        by_meaning.or_else(|| {
            Status::ALL
                .into_iter()
                .map(|st| (edit_distance(&w, st.as_str()), st))
                .filter(|(d, st)| *d <= (st.as_str().len() / 4).clamp(1, 2))
                .min_by_key(|(d, _)| *d)
                .map(|(_, st)| st)
        })
    }

    /// Done for the purpose of the run: nothing more will happen to the task. A suspended task
    /// is not final — it waits for a person — but it never runs either.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Verified | Status::Failed | Status::Skipped | Status::ValidationExhausted)
    }

    /// A success: what a dependency must be for its dependents to run.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Completed | Status::Verified)
    }

    /// Ended without success: counts as a failure in the run's exit code.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::ValidationExhausted)
    }

    /// May be started by a run.
    pub fn is_runnable(self) -> bool {
        matches!(self, Status::Pending | Status::InProgress)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Meta {
    pub name: Option<String>,
    pub description: Option<String>,
    pub plan_doc: Option<String>,
    pub created: Option<String>,
    pub max_attempts_default: Option<u32>,
    pub notification_email: Option<String>,
    pub model: Option<String>,
    pub timeout_seconds: Option<f64>,
    pub idle_timeout_seconds: Option<f64>,
    pub smoke_command: Option<String>,
    /// Check commands for every task of the plan (`verify:`, a string or a list).
    pub verify: Vec<String>,
    /// The model ladder for every task: attempt n runs with `models[min(n, len) - 1]`.
    pub models: Vec<String>,
    /// The original tool's reviewer settings (`meta.validation`).
    pub validation: Option<Validation>,
    /// What the plan may cost over all its runs, in US dollars (`budget_usd`, also read as the
    /// original tool's `budget_limit_usd`).
    pub budget_usd: Option<f64>,
}

/// `meta.validation`, in the original tool's form.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Validation {
    pub enabled: bool,
    /// Agent names whose tasks are reviewed; `None`: every task.
    pub run_after: Option<Vec<String>>,
    /// Agent names; the first names the reviewer.
    pub validators: Vec<String>,
    pub max_validation_attempts: Option<u32>,
}

impl Validation {
    /// Whether a task with this `agent:` is reviewed.
    pub fn reviews(&self, agent: Option<&str>) -> bool {
        self.enabled
            && match &self.run_after {
                None => true,
                Some(names) => agent.is_some_and(|a| names.iter().any(|n| n == a)),
            }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<Status>,
    pub tasks: Vec<Task>,
    #[serde(skip)]
    pub line: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: TaskId,
    pub name: String,
    pub status: Status,
    pub description: Option<String>,
    pub attempts: u32,
    pub max_attempts: Option<u32>,
    pub depends_on: Vec<TaskId>,
    pub parallel_group: Option<String>,
    pub exclusive_resources: Vec<String>,
    pub files: Vec<String>,
    pub model: Option<String>,
    /// Check commands of this task (`verify:`, a string or a list), after the config's and
    /// the plan's.
    pub verify: Vec<String>,
    /// `expect_changes: false`: completing without a change is what the task is for.
    pub expect_changes: Option<bool>,
    /// The task's model ladder (see [`Meta::models`]).
    pub models: Vec<String>,
    /// The model baton last ran the task with (an owned field, as in the original tool).
    pub model_used: Option<String>,
    /// The named agent definition the task asks for (`agent: coder`, the original tool's
    /// field): a Claude Code `.claude/agents/<name>.md`.
    pub agent: Option<String>,
    pub timeout_seconds: Option<f64>,
    pub idle_timeout_seconds: Option<f64>,
    /// What the task's attempts ask of a cluster (`[executor] kind = "ray"`), over
    /// `[executor.resources]`; a local run does not use them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::exec::Resources>,
    pub last_error: Option<String>,
    pub completed_at: Option<String>,
    pub result_message: Option<String>,
    /// Where the task's mapping starts, for messages.
    #[serde(skip)]
    pub line: usize,
    /// Lines of each `depends_on` entry, parallel to `depends_on`.
    #[serde(skip)]
    pub depends_on_lines: Vec<usize>,
    /// Fields read under another name (the original tool's): `(written, read as)`, e.g.
    /// `("dependencies", "depends_on")`.
    #[serde(skip)]
    pub spelled: Vec<(&'static str, &'static str)>,
    /// Where `agent:` is written (line, column), for messages.
    #[serde(skip)]
    pub agent_at: (usize, usize),
    #[serde(skip)]
    pub id_line: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub meta: Meta,
    pub sections: Vec<Section>,
    /// What is probably a mistake but does not stop the plan: an unknown key close to a known
    /// one. `baton check` and the start of a run tell them.
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl Plan {
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.sections.iter().flat_map(|s| s.tasks.iter())
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks().find(|t| t.id.as_str() == id)
    }

    /// The section that holds a task.
    pub fn section_of(&self, id: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.tasks.iter().any(|t| t.id.as_str() == id))
    }

    /// The ids that look like `id` (a typo, a missing or extra character, a different case),
    /// closest first, at most three: for "no task 'x'" errors.
    pub fn similar_ids(&self, id: &str) -> Vec<&TaskId> {
        let want = id.to_lowercase();
        let mut near: Vec<(usize, &TaskId)> = self
            .tasks()
            .filter_map(|t| {
                let have = t.id.as_str().to_lowercase();
                let d = edit_distance(&want, &have);
                let close = d <= (want.chars().count() / 3).max(1) || (want.len() >= 2 && (have.starts_with(&want) || want.starts_with(&have)));
                close.then_some((d, &t.id))
            })
            .collect();
        near.sort_by_key(|(d, _)| *d);
        near.into_iter().take(3).map(|(_, id)| id).collect()
    }

    /// The fields read under another spelling, one line each: "tasks 1.2, 1.3 spell their
    /// dependencies `dependencies:`, read as `depends_on:`".
    pub fn spellings(&self) -> Vec<String> {
        let mut seen: Vec<((&str, &str), Vec<&str>)> = Vec::new();
        for t in self.tasks() {
            for pair in &t.spelled {
                match seen.iter_mut().find(|(p, _)| p == pair) {
                    Some((_, ids)) => ids.push(t.id.as_str()),
                    None => seen.push((*pair, vec![t.id.as_str()])),
                }
            }
        }
        seen.into_iter()
            .map(|((written, read), ids)| {
                let n = ids.len();
                let mut shown: Vec<&str> = ids.into_iter().take(8).collect();
                let more = if n > 8 { format!(" and {} more", n - 8) } else { String::new() };
                let who = if n == 1 { format!("task {}", shown.remove(0)) } else { format!("tasks {}{more}", shown.join(", ")) };
                format!("{who}: `{written}:` read as `{read}:`")
            })
            .collect()
    }

    /// The model attempt `attempt` (1-based) of a task runs with: the task's `models` ladder,
    /// else its `model`, else the plan's `models`, else its `model`, else `fallback` (the
    /// config's). On a ladder attempt n takes `models[min(n, len) - 1]`: a failed attempt —
    /// a failing check or a reviewer's FAIL among them — moves up a rung.
    pub fn model_for(&self, task: &Task, attempt: u32, fallback: Option<&str>) -> Option<String> {
        let rung = |ladder: &[String]| ladder.get((attempt.max(1) as usize).min(ladder.len()) - 1).cloned();
        if !task.models.is_empty() {
            return rung(&task.models);
        }
        if let Some(m) = &task.model {
            return Some(m.clone());
        }
        if !self.meta.models.is_empty() {
            return rung(&self.meta.models);
        }
        self.meta.model.clone().or_else(|| fallback.map(str::to_string))
    }

    pub fn max_attempts(&self, task: &Task, fallback: u32) -> u32 {
        task.max_attempts
            .or(self.meta.max_attempts_default)
            .unwrap_or(fallback)
            .max(1)
    }
}

/// Levenshtein distance in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(up + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// The status a section shows, derived from its tasks.
pub fn derived_section_status(tasks: &[Task]) -> Option<Status> {
    if tasks.is_empty() {
        return None;
    }
    let any = |f: &dyn Fn(Status) -> bool| tasks.iter().any(|t| f(t.status));
    let all = |f: &dyn Fn(Status) -> bool| tasks.iter().all(|t| f(t.status));
    Some(if any(&|s| s == Status::InProgress) {
        Status::InProgress
    } else if all(&|s| s == Status::Skipped) {
        Status::Skipped
    } else if all(&|s| matches!(s, Status::Verified | Status::Skipped)) {
        Status::Verified
    } else if all(&|s| s.is_done() || s == Status::Skipped) {
        Status::Completed
    } else if any(&Status::is_failure) {
        Status::Failed
    } else if all(&|s| s != Status::Pending) {
        // Nothing left to run but work that waits for a person.
        Status::Suspended
    } else if any(&|s| s.is_done() || s == Status::Skipped) {
        Status::InProgress
    } else {
        Status::Pending
    })
}

/// Reads the typed plan from the tree. Problems go to `diags`; what can be read is returned.
pub(crate) fn read_plan(root: &Node, diags: &mut Vec<Diagnostic>) -> Plan {
    let mut plan = Plan::default();
    let Some(entries) = root.entries() else {
        diags.push(Diagnostic::new(
            root.line,
            root.col,
            format!("the plan must be a mapping with `meta` and `sections`, found {}", root.kind_name()),
            "start the file with `meta:` and `sections:` at the left margin (see README.md, \"The plan file\")",
        ));
        return plan;
    };
    check_duplicate_keys(entries, diags);
    let mut warns = Vec::new();
    near_misses(root, keys::TOP, "the plan", &mut warns, diags);
    let aliased = root.aliased_anchors();
    match root.get("meta") {
        None => {}
        Some(meta) if meta.is_null() => {}
        Some(meta) => plan.meta = read_meta(meta, diags, &mut warns),
    }
    match root.entry("sections") {
        None => diags.push(Diagnostic::new(
            root.line,
            root.col,
            "the plan has no `sections` list",
            "add `sections:` with at least one section holding `tasks:`",
        )),
        Some((_, node)) => match node.items() {
            Some(items) => {
                for item in items {
                    if let Some(section) = read_section(item, &aliased, diags, &mut warns) {
                        plan.sections.push(section);
                    }
                }
            }
            None => diags.push(Diagnostic::new(
                node.line,
                node.col,
                format!("`sections` must be a list, found {}", node.kind_name()),
                "write each section as a list item: `- id: phase-1`",
            )),
        },
    }
    warns.sort_by_key(|d| (d.line, d.column));
    plan.warnings = warns;
    plan
}

fn read_meta(node: &Node, diags: &mut Vec<Diagnostic>, warns: &mut Vec<Diagnostic>) -> Meta {
    let mut meta = Meta::default();
    let Some(entries) = node.entries() else {
        diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("`meta` must be a mapping, found {}", node.kind_name()),
            "indent the meta fields under `meta:`, e.g. `  name: My plan`",
        ));
        return meta;
    };
    check_duplicate_keys(entries, diags);
    near_misses(node, keys::META, "meta", warns, diags);
    let f = Fields { node, what: "meta" };
    meta.name = f.string("name", diags);
    meta.description = f.string("description", diags);
    meta.plan_doc = f.string("plan_doc", diags);
    meta.created = f.string("created", diags);
    meta.max_attempts_default = f.count("max_attempts_default", 1, diags);
    meta.notification_email = f.string("notification_email", diags);
    meta.model = f.string("model", diags);
    meta.timeout_seconds = f.seconds("timeout_seconds", diags);
    meta.idle_timeout_seconds = f.seconds("idle_timeout_seconds", diags);
    meta.smoke_command = f.string("smoke_command", diags);
    meta.verify = f.commands("verify", diags);
    meta.models = f.models("models", diags);
    meta.validation = node.get("validation").filter(|n| !n.is_null()).and_then(|n| read_validation(n, diags));
    meta.budget_usd = f.either("budget_usd", "budget_limit_usd", &mut Vec::new(), diags, |f, key, d| f.usd(key, d), |a, b| a == b);
    meta
}

fn read_validation(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<Validation> {
    if node.entries().is_none() {
        diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("`validation` of meta must be a mapping, found {}", node.kind_name()),
            "write it as `validation:` with `enabled: true` and `validators: [code-reviewer]` under it",
        ));
        return None;
    }
    let f = Fields { node, what: "meta.validation" };
    Some(Validation {
        enabled: f.boolean("enabled", diags).unwrap_or(false),
        run_after: f.present("run_after").map(|_| f.string_list("run_after", diags)),
        validators: f.string_list("validators", diags),
        max_validation_attempts: f.count("max_validation_attempts", 1, diags),
    })
}

fn read_section(node: &Node, aliased: &HashSet<usize>, diags: &mut Vec<Diagnostic>, warns: &mut Vec<Diagnostic>) -> Option<Section> {
    let Some(entries) = node.entries() else {
        diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("a section must be a mapping, found {}", node.kind_name()),
            "write a section as `- id: phase-1` with `name:` and `tasks:` under it",
        ));
        return None;
    };
    check_duplicate_keys(entries, diags);
    let f = Fields {
        node,
        what: "section",
    };
    let id = f.required_id("id", diags);
    let what = format!("section '{}'", id.as_deref().unwrap_or("?"));
    near_misses(node, keys::SECTION, &what, warns, diags);
    let f = Fields { node, what: &what };
    let name = f.string("name", diags);
    check_owned(node, &["status"], &what, aliased, diags);
    let status = f.status("status", diags);
    let mut tasks = Vec::new();
    match node.get("tasks") {
        None => diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("{what} has no `tasks` list"),
            "add `tasks:` with at least one task (`- id: '1.1'`, `name: …`)",
        )),
        Some(t) => match t.items() {
            Some(items) => {
                for item in items {
                    if let Some(task) = read_task(item, aliased, diags, warns) {
                        tasks.push(task);
                    }
                }
            }
            None if t.is_null() => {}
            None => diags.push(Diagnostic::new(
                t.line,
                t.col,
                format!("`tasks` of {what} must be a list, found {}", t.kind_name()),
                "write each task as a list item: `- id: '1.1'`",
            )),
        },
    }
    Some(Section {
        id: id.unwrap_or_default(),
        name,
        status,
        tasks,
        line: node.line,
    })
}

fn read_task(node: &Node, aliased: &HashSet<usize>, diags: &mut Vec<Diagnostic>, warns: &mut Vec<Diagnostic>) -> Option<Task> {
    let Some(entries) = node.entries() else {
        diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("a task must be a mapping, found {}", node.kind_name()),
            "write a task as `- id: '1.1'` with `name:` and `status:` under it",
        ));
        return None;
    };
    check_duplicate_keys(entries, diags);
    let f = Fields { node, what: "task" };
    let id = f.required_id("id", diags);
    let id_line = node.get("id").map_or(node.line, |n| n.line);
    if let (Some(id), Some(id_node)) = (&id, node.get("id")) {
        check_task_id(id, id_node, diags);
    }
    let what = format!("task '{}'", id.as_deref().unwrap_or("?"));
    near_misses(node, keys::TASK, &what, warns, diags);
    let f = Fields { node, what: &what };
    check_owned(node, &OWNED_TASK_FIELDS, &what, aliased, diags);
    let name = match f.string("name", diags) {
        Some(n) if !n.trim().is_empty() => n,
        Some(_) | None => {
            if node.get("name").is_none() || node.get("name").is_some_and(|n| n.is_null()) {
                diags.push(Diagnostic::new(
                    node.line,
                    node.col,
                    format!("{what} has no `name`"),
                    "add `name:` with a short title for the task",
                ));
            }
            String::new()
        }
    };
    let mut spelled = Vec::new();
    let (depends_on, depends_on_lines) = f.either("depends_on", "dependencies", &mut spelled, diags, |f, key, d| f.id_list(key, d), |(a, _), (b, _)| same_set(a, b));
    let exclusive_resources = f.either("exclusive_resources", "exclusive_resource", &mut spelled, diags, |f, key, d| {
        let names = match f.present(key) {
            // The original tool's singular form holds one name; a list is taken as it is.
            Some(n) if key == "exclusive_resource" && n.as_scalar().is_some() => vec![n.as_scalar().unwrap_or_default().to_string()],
            Some(n) if key == "exclusive_resource" && n.items().is_none() => {
                f.wrong(n, key, "a resource name", "write e.g. `exclusive_resource: database`", d);
                Vec::new()
            }
            _ => f.string_list(key, d),
        };
        if let Some(n) = f.present(key).filter(|_| names.iter().any(|r| r.trim().is_empty())) {
            d.push(Diagnostic::new(n.line, n.col, format!("`{key}` of {} names an empty resource", f.what), "write a name such as `database`, or remove the entry"));
        }
        names.into_iter().filter(|r| !r.trim().is_empty()).collect::<Vec<String>>()
    }, |a: &Vec<String>, b: &Vec<String>| same_set(a, b));
    Some(Task {
        id: TaskId(id.unwrap_or_default()),
        name,
        status: f.status("status", diags).unwrap_or(Status::Pending),
        description: f.string("description", diags),
        attempts: f.count("attempts", 0, diags).unwrap_or(0),
        max_attempts: f.count("max_attempts", 1, diags),
        depends_on,
        parallel_group: f.string("parallel_group", diags),
        exclusive_resources,
        files: f.string_list("files", diags),
        model: f.string("model", diags),
        agent: f.agent_name("agent", diags),
        verify: f.commands("verify", diags),
        expect_changes: f.boolean("expect_changes", diags),
        models: f.models("models", diags),
        model_used: f.string("model_used", diags),
        timeout_seconds: f.seconds("timeout_seconds", diags),
        idle_timeout_seconds: f.seconds("idle_timeout_seconds", diags),
        resources: f.resources("resources", diags),
        last_error: f.string("last_error", diags),
        completed_at: f.string("completed_at", diags),
        result_message: f.string("result_message", diags),
        line: node.line,
        depends_on_lines,
        spelled,
        agent_at: node.get("agent").map_or((node.line, 0), |n| (n.line, n.col)),
        id_line,
    })
}

fn same_set<T: Ord + Clone>(a: &[T], b: &[T]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// The keys baton knows in each kind of mapping: its own, their other spellings, the ones a
/// later issue reads, and the ones the original tool's later versions wrote (kept, not warned
/// about). An unknown key close to one of baton's own gets a warning.
mod keys {
    /// Keys baton acts on: an unknown key close to one of these is probably a typo.
    pub const TASK_OWN: &[&str] = &[
        "id", "name", "status", "description", "attempts", "max_attempts", "depends_on", "dependencies", "parallel_group",
        "exclusive_resources", "exclusive_resource", "files", "model", "agent", "timeout_seconds", "idle_timeout_seconds",
        "last_error", "completed_at", "result_message", "verify", "expect_changes", "models", "model_used", "resources",
    ];
    /// Keys the original tool (claude-plan-orchestrator) wrote or read on a task, and keys of
    /// baton's own later features: known, kept, no warning.
    pub const TASK_OTHER: &[&str] = &[
        "model_used", "last_attempt", "validation_attempts", "validation_findings", "validation_status", "validation_verdict",
        "target_acs", "source_item", "requirements_path", "worker_pid", "started_at", "notes", "acceptance_criteria", "priority", "tags", "estimated_minutes", "cost_usd", "plan_modified",
        "suspended_reason", "suspended_at", "branch", "commit", "worktree",
    ];
    pub const META_OWN: &[&str] = &[
        "name", "description", "plan_doc", "created", "max_attempts_default", "notification_email", "model",
        "timeout_seconds", "idle_timeout_seconds", "smoke_command", "verify", "models", "validation", "budget_usd",
        "budget_limit_usd",
    ];
    pub const META_OTHER: &[&str] = &[
        "source_item", "requirements_path",
        "design_doc", "author", "version", "updated", "status", "project", "branch", "total_cost_usd", "worker_pid",
        "backlog_item", "source", "type", "tags", "priority",
    ];
    pub const SECTION_OWN: &[&str] = &["id", "name", "status", "tasks"];
    pub const SECTION_OTHER: &[&str] = &["description", "notes", "parallel_group"];
    pub const TOP_OWN: &[&str] = &["meta", "sections"];

    pub struct Known {
        pub own: &'static [&'static str],
        pub other: &'static [&'static str],
        /// Words that mean a known key but are far from it in spelling.
        pub meant: &'static [(&'static str, &'static str)],
    }

    pub const TASK: &Known = &Known {
        own: TASK_OWN,
        other: TASK_OTHER,
        meant: &[
            ("dependency", "depends_on"),
            ("deps", "depends_on"),
            ("depends", "depends_on"),
            ("dependson", "depends_on"),
            ("depend_on", "depends_on"),
            ("requires", "depends_on"),
            ("after", "depends_on"),
            ("blocked_by", "depends_on"),
            ("timeout", "timeout_seconds"),
            ("timeout_secs", "timeout_seconds"),
            ("idle_timeout", "idle_timeout_seconds"),
            ("max_attempt", "max_attempts"),
            ("maxattempts", "max_attempts"),
            ("retries", "max_attempts"),
            ("max_retries", "max_attempts"),
            ("group", "parallel_group"),
            ("title", "name"),
            ("state", "status"),
        ],
    };
    pub const META: &Known = &Known {
        own: META_OWN,
        other: META_OTHER,
        meant: &[
            ("max_attempts", "max_attempts_default"),
            ("max_attempt", "max_attempts_default"),
            ("max_retries", "max_attempts_default"),
            ("retries", "max_attempts_default"),
            ("timeout", "timeout_seconds"),
            ("idle_timeout", "idle_timeout_seconds"),
            ("smoke", "smoke_command"),
            ("smoke_test", "smoke_command"),
            ("smoke_tests", "smoke_command"),
            ("title", "name"),
            ("budget", "budget_usd"),
            ("max_budget", "budget_usd"),
            ("max_budget_usd", "budget_usd"),
            ("max_cost", "budget_usd"),
            ("max_cost_usd", "budget_usd"),
            ("cost_limit", "budget_usd"),
            ("budget_limit", "budget_usd"),
        ],
    };
    pub const SECTION: &Known = &Known { own: SECTION_OWN, other: SECTION_OTHER, meant: &[("task", "tasks"), ("title", "name")] };
    pub const TOP: &Known = &Known { own: TOP_OWN, other: &[], meant: &[("section", "sections"), ("phases", "sections"), ("metadata", "meta")] };
}

/// The known key an unknown one most likely means: the same words in another case or with
/// `-` for `_`, a word known to mean it (`timeout`), or a typo of a letter or two.
fn meant_key(key: &str, known: &keys::Known) -> Option<&'static str> {
    let norm = key.trim().to_lowercase().replace(['-', ' '], "_");
    let squashed = norm.replace('_', "");
    if let Some(k) = known.own.iter().chain(known.other).find(|k| **k == norm || k.replace('_', "") == squashed) {
        return Some(k);
    }
    if let Some((_, k)) = known.meant.iter().find(|(w, _)| *w == norm || w.replace('_', "") == squashed) {
        return Some(k);
    }
    known
        .own
        .iter()
        .map(|k| (edit_distance(&norm, k), *k))
        .filter(|(d, k)| *d <= if k.len() <= 5 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Warnings for the unknown keys of a mapping that look like known ones. Unknown keys are kept
/// as written and otherwise ignored, so `depends-on:` would silently not order anything.
fn near_misses(node: &Node, known: &keys::Known, what: &str, warns: &mut Vec<Diagnostic>, errors: &mut Vec<Diagnostic>) {
    let Some(entries) = node.entries() else { return };
    for (k, _) in entries {
        let Some(key) = k.as_scalar() else { continue };
        if key == "<<" || known.own.contains(&key) || known.other.contains(&key) {
            continue;
        }
        if let Some(meant) = meant_key(key, known) {
            let key = crate::report::safe::cut(key, 40);
            if meant == "budget_usd" {
                // A budget baton does not read would let the plan spend without one: refused.
                errors.push(Diagnostic::new(
                    k.line,
                    k.col,
                    format!("{what} has `{key}`, which is not a budget baton reads; did you mean `budget_usd`?"),
                    "rename it to `budget_usd` (US dollars over all the plan's runs); a budget baton does not read would let the plan run without one",
                ));
                continue;
            }
            warns.push(Diagnostic::new(
                k.line,
                k.col,
                format!("{what} has an unknown key `{key}`; did you mean `{meant}`?"),
                format!("baton ignores `{key}` (unknown keys are kept as written); rename it to `{meant}` if that is what it means"),
            ));
        }
    }
}

/// The task fields baton writes.
pub(crate) const OWNED_TASK_FIELDS: [&str; 6] = ["status", "attempts", "last_error", "completed_at", "result_message", "model_used"];

/// The longest task id, in characters and in bytes. Ids become parts of branch, folder and file
/// names, and a file name has at most 255 bytes.
pub const MAX_ID_CHARS: usize = 64;
pub const MAX_ID_BYTES: usize = 128;

/// A task id must fit in a file or branch name: not too long, no line breaks or other control
/// characters, no path separators. Other characters are fine (branch names replace them).
fn check_task_id(id: &str, node: &Node, diags: &mut Vec<Diagnostic>) {
    let chars = id.chars().count();
    let short: String = id.chars().take(20).collect();
    if chars > MAX_ID_CHARS || id.len() > MAX_ID_BYTES {
        diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("the task id '{short}…' is too long ({chars} characters; at most {MAX_ID_CHARS}, and {MAX_ID_BYTES} bytes)"),
            "use a short id such as `1.2` or `add-login`; put the description in `name`",
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control() || matches!(c, '/' | '\\')) {
        diags.push(Diagnostic::new(
            node.line,
            node.col,
            format!("the task id '{}' holds {}, which cannot be part of a file or branch name", short.escape_debug(), c.escape_debug()),
            "use letters, digits and `.`, `-`, `_` in ids",
        ));
    }
}

/// baton writes its own fields by rewriting their text in place. A value written as an alias
/// (`status: *s`), or carrying an anchor that aliases elsewhere repeat (`status: &s pending`),
/// or inherited through a `<<` merge, is shared with another place: rewriting it would change
/// what the other place reads (a task that never ran would read as completed). Such plans are
/// refused rather than edited into something the user did not write.
/// An anchor no alias repeats is harmless and allowed.
fn check_owned(node: &Node, keys: &[&str], what: &str, aliased: &HashSet<usize>, diags: &mut Vec<Diagnostic>) {
    for key in keys {
        let Some(((_, value), merged)) = node.get_entry(key) else { continue };
        if merged {
            diags.push(Diagnostic::new(
                node.line,
                node.col,
                format!("`{key}` of {what} comes from a `<<` merge; an owned field cannot be inherited, baton writes it in place"),
                format!("write `{key}:` in the mapping itself, or remove it from the merged one (e.g. `{key}: {}`)", example(key)),
            ));
        } else if value.alias_of != 0 || (value.anchor != 0 && aliased.contains(&value.anchor)) {
            diags.push(Diagnostic::new(
                value.line,
                value.col,
                format!("`{key}` of {what} is written as an alias or anchor; an owned field cannot be an alias or anchor"),
                format!("write the value itself (e.g. `{key}: {}`); baton rewrites `{key}`, and a shared value would change every place that uses it", example(key)),
            ));
        }
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "status" => "pending",
        "attempts" => "0",
        _ => "''",
    }
}

fn check_duplicate_keys(entries: &[(Node, Node)], diags: &mut Vec<Diagnostic>) {
    // A map, not a scan per key: a mapping of thousands of keys must not take quadratic time.
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(entries.len());
    for (k, _) in entries {
        let Some(key) = k.as_scalar() else { continue };
        match first.get(key) {
            Some(line) => diags.push(Diagnostic::new(
                k.line,
                k.col,
                format!("the key `{key}` appears twice (first on line {line})"),
                "keep one of them; YAML does not allow a key twice in one mapping",
            )),
            None => {
                first.insert(key, k.line);
            }
        }
    }
}

/// What a field of the wrong type holds, for its error: a value as written (cut short), so that
/// `attempts: many` reads "found `many`"; anything else by its kind ("a mapping").
fn found(n: &Node) -> String {
    match n.as_scalar() {
        Some(s) if !n.is_null() => format!("`{}`", crate::report::safe::cut(s, 40)),
        _ => n.kind_name().to_string(),
    }
}

/// Typed access to the fields of one mapping, reporting wrong types.
struct Fields<'a> {
    node: &'a Node,
    what: &'a str,
}

impl Fields<'_> {
    fn present(&self, key: &str) -> Option<&Node> {
        self.node.get(key).filter(|n| !n.is_null())
    }

    fn wrong(&self, n: &Node, key: &str, want: &str, help: &str, diags: &mut Vec<Diagnostic>) {
        diags.push(Diagnostic::new(
            n.line,
            n.col,
            format!("`{key}` of {} must be {want}, found {}", self.what, found(n)),
            help,
        ));
    }

    fn string(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
        let n = self.present(key)?;
        match n.as_scalar() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(n, key, "text", "write it on one line, or as a `|` block", diags);
                None
            }
        }
    }

    /// A field that may be written under either of two keys (baton's, and the original tool's
    /// other spelling): both with different values is an error; the other spelling is recorded.
    fn either<T: Default>(
        &self,
        key: &'static str,
        other: &'static str,
        spelled: &mut Vec<(&'static str, &'static str)>,
        diags: &mut Vec<Diagnostic>,
        read: impl Fn(&Self, &str, &mut Vec<Diagnostic>) -> T,
        same: impl Fn(&T, &T) -> bool,
    ) -> T {
        let ours = self.present(key).map(|_| read(self, key, diags));
        let theirs = self.present(other).map(|n| (n, read(self, other, diags)));
        match (ours, theirs) {
            (Some(ours), None) => ours,
            (None, Some((_, theirs))) => {
                spelled.push((other, key));
                theirs
            }
            (Some(ours), Some((n, theirs))) => {
                if !same(&ours, &theirs) {
                    diags.push(Diagnostic::new(
                        n.line,
                        n.col,
                        format!("{} has both `{key}` and `{other}`, and they differ", self.what),
                        format!("keep one of them: baton reads `{other}` as `{key}`"),
                    ));
                }
                ours
            }
            (None, None) => T::default(),
        }
    }

    /// An agent name: it names a file (`.claude/agents/<name>.md`), so it is one plain word.
    fn agent_name(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
        let n = self.present(key)?;
        let name = self.string(key, diags)?;
        let plain = !name.is_empty()
            && name.chars().count() <= 64
            && !name.starts_with(['.', '-'])
            && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if plain {
            return Some(name);
        }
        diags.push(Diagnostic::new(
            n.line,
            n.col,
            format!("`{key}` of {} must be an agent name, found {}", self.what, found(n)),
            "write a name such as `agent: coder` (letters, digits, `-`, `_`, `.`; it names .claude/agents/<name>.md)",
        ));
        None
    }

    fn required_id(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
        match self.node.get(key) {
            Some(n) if !n.is_null() => match n.as_scalar() {
                Some(s) if !s.trim().is_empty() => Some(s.to_string()),
                _ => {
                    self.wrong(n, key, "a non-empty id", "write an id such as `id: '1.1'`", diags);
                    None
                }
            },
            _ => {
                diags.push(Diagnostic::new(
                    self.node.line,
                    self.node.col,
                    format!("a {} has no `id`", self.what),
                    "add `id:` with a unique id, e.g. `id: '1.1'`",
                ));
                None
            }
        }
    }

    fn count(&self, key: &str, min: u32, diags: &mut Vec<Diagnostic>) -> Option<u32> {
        let n = self.present(key)?;
        match n.as_scalar().and_then(|s| s.trim().parse::<u32>().ok()) {
            Some(v) if v >= min => Some(v),
            _ => {
                let want = if min == 0 {
                    "a whole number (0 or more)".to_string()
                } else {
                    format!("a whole number of at least {min}")
                };
                self.wrong(n, key, &want, &format!("write e.g. `{key}: {}`", min.max(3)), diags);
                None
            }
        }
    }

    fn seconds(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<f64> {
        let n = self.present(key)?;
        match n.as_scalar().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(v) if v > 0.0 && v <= MAX_SECONDS => Some(v),
            _ => {
                self.wrong(n, key, "a number of seconds above 0 and at most 30 days", &format!("write e.g. `{key}: 600`"), diags);
                None
            }
        }
    }

    /// An amount of US dollars: a number, 0 to a million.
    fn usd(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<f64> {
        let n = self.present(key)?;
        match n.as_scalar().map(|s| s.trim().trim_start_matches('$')).and_then(|s| s.parse::<f64>().ok()) {
            Some(v) if v.is_finite() && (0.0..=crate::policy::budget::MAX_USD).contains(&v) => Some(v),
            _ => {
                self.wrong(n, key, "an amount of US dollars, 0 to 1,000,000", &format!("write e.g. `{key}: 25.00`"), diags);
                None
            }
        }
    }

    fn status(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Status> {
        let n = self.present(key)?;
        match n.as_scalar() {
            Some(s) => match Status::parse(s) {
                Some(st) => Some(st),
                None => {
                    let (message, help) = match Status::meant(s) {
                        Some(meant) => (
                            format!("unknown status `{s}` for {}; did you mean `{meant}`?", self.what),
                            format!("write `{key}: {meant}` (the statuses are: {})", Status::WORDS),
                        ),
                        None => (format!("unknown status `{s}` for {}", self.what), format!("use one of: {}", Status::WORDS)),
                    };
                    diags.push(Diagnostic::new(n.line, n.col, message, help));
                    None
                }
            },
            None => {
                self.wrong(n, key, "a status word", &format!("use one of: {}", Status::WORDS), diags);
                None
            }
        }
    }

    fn scalar_list(&self, key: &str, example: &str, diags: &mut Vec<Diagnostic>) -> Vec<(String, usize)> {
        let Some(n) = self.present(key) else {
            return Vec::new();
        };
        let Some(items) = n.items() else {
            self.wrong(n, key, "a list", &format!("write it as a list: `{key}: {example}`"), diags);
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match item.as_scalar() {
                Some(s) if !item.is_null() => out.push((s.to_string(), item.line)),
                _ => diags.push(Diagnostic::new(
                    item.line,
                    item.col,
                    format!("each entry of `{key}` of {} must be text, found {}", self.what, item.kind_name()),
                    format!("write it as a list of text: `{key}: {example}`"),
                )),
            }
        }
        out
    }

    fn boolean(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<bool> {
        let n = self.present(key)?;
        match n.as_scalar().map(|s| s.trim().to_ascii_lowercase()) {
            Some(s) if matches!(s.as_str(), "true" | "yes" | "on") => Some(true),
            Some(s) if matches!(s.as_str(), "false" | "no" | "off") => Some(false),
            _ => {
                self.wrong(n, key, "true or false", &format!("write `{key}: true` or `{key}: false`"), diags);
                None
            }
        }
    }

    /// Shell commands: one string, or a list of them; none may be empty.
    fn commands(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
        let Some(n) = self.present(key) else { return Vec::new() };
        let list = match n.as_scalar() {
            Some(s) => vec![(s.to_string(), n.line, n.col)],
            None if n.items().is_some() => {
                let mut out = Vec::new();
                for item in n.items().unwrap_or_default() {
                    match item.as_scalar() {
                        Some(s) if !item.is_null() => out.push((s.to_string(), item.line, item.col)),
                        _ => diags.push(Diagnostic::new(
                            item.line,
                            item.col,
                            format!("each entry of `{key}` of {} must be a command, found {}", self.what, item.kind_name()),
                            format!("write commands as text: `{key}: [cargo test, test -f out.txt]`"),
                        )),
                    }
                }
                out
            }
            None => {
                self.wrong(n, key, "a command or a list of commands", &format!("write e.g. `{key}: cargo test` or `{key}: [cargo build, cargo test]`"), diags);
                Vec::new()
            }
        };
        let mut out = Vec::new();
        for (cmd, line, col) in list {
            if cmd.trim().is_empty() {
                diags.push(Diagnostic::new(line, col, format!("a command of `{key}` of {} is empty", self.what), "remove it, or write the command"));
            } else {
                out.push(cmd);
            }
        }
        out
    }

    /// A model ladder: a list of model names (a single name is a ladder of one).
    fn models(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
        let Some(n) = self.present(key) else { return Vec::new() };
        let list = match n.as_scalar() {
            Some(s) => vec![s.to_string()],
            None => self.string_list(key, diags),
        };
        // A name goes on the agent's command line after `--model`: one word, not an option.
        if list.iter().any(|m| m.trim().is_empty() || m.starts_with('-') || m.chars().any(char::is_whitespace)) {
            diags.push(Diagnostic::new(
                n.line,
                n.col,
                format!("`{key}` of {} must list model names, one word each", self.what),
                format!("write e.g. `{key}: [haiku, sonnet, opus]`"),
            ));
            return Vec::new();
        }
        list
    }

    /// What a task asks of a cluster: `{num_cpus: 2, num_gpus: 1, memory: 8GiB, custom: {acct: 1}}`.
    fn resources(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<crate::exec::Resources> {
        let n = self.present(key)?;
        let example = "write e.g. `resources: {num_cpus: 2, memory: 8GiB, custom: {claude_account: 1}}`";
        let Some(entries) = n.entries() else {
            self.wrong(n, key, "a mapping of num_cpus, num_gpus, memory and custom", example, diags);
            return None;
        };
        let mut r = crate::exec::Resources::default();
        let amount = |v: &Node| v.as_scalar().and_then(|s| s.trim().parse::<f64>().ok()).filter(|x| x.is_finite() && *x >= 0.0);
        let mut bad = |node: &Node, message: String| diags.push(Diagnostic::new(node.line, node.col, message, example));
        for (k, v) in entries {
            let name = k.as_scalar().unwrap_or("");
            match name {
                "num_cpus" | "num_gpus" => match amount(v) {
                    Some(x) if name == "num_cpus" => r.num_cpus = Some(x),
                    Some(x) => r.num_gpus = Some(x),
                    None => bad(v, format!("`{key}.{name}` of {} must be a number of 0 or more, found {}", self.what, found(v))),
                },
                "memory" => match v.as_scalar().filter(|s| crate::exec::parse_size(s).is_some()) {
                    Some(s) => r.memory = Some(crate::exec::Memory::Size(s.trim().to_string())),
                    None => bad(v, format!("`{key}.memory` of {} must be bytes or a size such as 8GiB, found {}", self.what, found(v))),
                },
                "custom" => match v.entries() {
                    Some(custom) => {
                        for (ck, cv) in custom {
                            let cname = ck.as_scalar().unwrap_or("").trim();
                            match amount(cv) {
                                Some(x) if !cname.is_empty() => {
                                    r.custom.insert(cname.to_string(), x);
                                }
                                _ => bad(cv, format!("`{key}.custom.{cname}` of {} must be a number of 0 or more, found {}", self.what, found(cv))),
                            }
                        }
                    }
                    None => bad(v, format!("`{key}.custom` of {} must be a mapping of resource names to amounts, found {}", self.what, found(v))),
                },
                other => bad(k, format!("`{key}` of {} has an unknown key `{other}` (the keys are num_cpus, num_gpus, memory, custom)", self.what)),
            }
        }
        Some(r)
    }

    fn string_list(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<String> {
        self.scalar_list(key, "[a, b]", diags)
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    fn id_list(&self, key: &str, diags: &mut Vec<Diagnostic>) -> (Vec<TaskId>, Vec<usize>) {
        self.scalar_list(key, "['1.1', '1.2']", diags)
            .into_iter()
            .map(|(s, line)| (TaskId(s), line))
            .unzip()
    }
}
