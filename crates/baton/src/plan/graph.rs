//! The dependency graph: which ids exist, which dependencies are broken, which tasks form a
//! cycle, which task runs next, and why pending work can never run.
//!
//! Pure functions over a [`Plan`]; nothing here touches the file system.

use std::collections::{HashMap, HashSet};

use super::model::{Plan, Status, Task, TaskId};
use super::Diagnostic;

/// Cross-task checks: duplicate ids, unknown or self dependencies, cycles.
pub(crate) fn check(plan: &Plan, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for task in plan.tasks() {
        if task.id.as_str().is_empty() {
            continue;
        }
        if let Some(first) = seen.get(task.id.as_str()) {
            diags.push(Diagnostic::new(
                task.id_line,
                0,
                format!("duplicate task id '{}' (first used on line {first})", task.id),
                "give every task its own id; ids are text, so '1.1' and '1.10' are different",
            ));
        } else {
            seen.insert(task.id.as_str(), task.id_line);
        }
    }
    let mut sections: HashMap<&str, usize> = HashMap::new();
    for s in &plan.sections {
        if s.id.is_empty() {
            continue;
        }
        if let Some(first) = sections.get(s.id.as_str()) {
            diags.push(Diagnostic::new(
                s.line,
                0,
                format!("duplicate section id '{}' (first used on line {first})", s.id),
                "give every section its own id",
            ));
        } else {
            sections.insert(&s.id, s.line);
        }
    }
    for task in plan.tasks() {
        for (dep, line) in task.depends_on.iter().zip(&task.depends_on_lines) {
            if dep == &task.id {
                diags.push(Diagnostic::new(
                    *line,
                    0,
                    format!("task '{}' depends on itself", task.id),
                    "remove its own id from its `depends_on`",
                ));
            } else if !seen.contains_key(dep.as_str()) {
                let hint = near_id(dep.as_str(), seen.keys().copied());
                diags.push(Diagnostic::new(
                    *line,
                    0,
                    format!("task '{}' depends on '{}', which is not a task in this plan", task.id, dep),
                    match hint {
                        Some(h) => format!("did you mean '{h}'? Ids are text: '1.1' and '1.10' differ"),
                        None => "fix the id in `depends_on`, or add the missing task".to_string(),
                    },
                ));
            }
        }
    }
    for cycle in cycles(plan) {
        let first = plan.task(cycle[0].as_str());
        let line = first.map_or(0, |t| t.id_line);
        diags.push(Diagnostic::new(
            line,
            0,
            format!("dependency cycle: {}", cycle_text(&cycle)),
            "remove one of these `depends_on` entries so the tasks can run in some order",
        ));
    }
}

/// A cycle as `a → b → a`; a long one shows its first tasks and how many there are.
fn cycle_text(cycle: &[TaskId]) -> String {
    const SHOWN: usize = 10;
    let mut ids: Vec<&str> = cycle.iter().take(SHOWN).map(TaskId::as_str).collect();
    if cycle.len() > SHOWN {
        ids.push("…");
        return format!("{} ({} tasks)", ids.join(" → "), cycle.len());
    }
    ids.extend(cycle.first().map(TaskId::as_str));
    ids.join(" → ")
}

/// A close id, for "did you mean".
fn near_id<'a>(wanted: &str, ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.trim().trim_matches('\'').trim_matches('"').to_string();
    let w = norm(wanted);
    ids.filter(|id| *id != wanted)
        .find(|id| norm(id) == w || id.trim_end_matches('0') == wanted.trim_end_matches('0'))
}

/// The most dependency cycles named.
const MAX_CYCLES: usize = 64;

/// Every elementary cycle found by a depth-first walk, each reported once, in plan order.
/// The walk keeps its own stack: a plan decides how long its dependency chains are, and a
/// chain of thousands of tasks must not exhaust the thread's stack. What is kept is bounded
/// (a few times the plan's size in all, [`MAX_CYCLES`] cycles): a plan whose last task depends
/// on every one of a long chain has as many cycles as tasks, of every length, and keeping them
/// all took memory in the square of the plan. Every task of a cycle left out still waits on
/// one that is in a cycle kept, so none is taken for runnable.
pub(crate) fn cycles(plan: &Plan) -> Vec<Vec<TaskId>> {
    let index: HashMap<&str, &Task> = plan.tasks().map(|t| (t.id.as_str(), t)).collect();
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on the path, 2 = done
    let mut found = Vec::new();
    let mut kept = 0usize;
    let budget = 4 * index.len() + 64;
    let mut reported: HashSet<Vec<TaskId>> = HashSet::new();
    for task in plan.tasks() {
        if state.contains_key(task.id.as_str()) {
            continue;
        }
        // The path from the walk's root: each task with the index of its next dependency.
        let mut path: Vec<(&str, usize)> = Vec::new();
        let mut on_path: HashMap<&str, usize> = HashMap::new();
        state.insert(task.id.as_str(), 1);
        on_path.insert(task.id.as_str(), 0);
        path.push((task.id.as_str(), 0));
        while let Some((id, next)) = path.last_mut() {
            let id: &str = id;
            let deps = index.get(id).map_or(&[][..], |t| &t.depends_on[..]);
            let Some(dep) = deps.get(*next) else {
                path.pop();
                on_path.remove(id);
                state.insert(id, 2);
                continue;
            };
            *next += 1;
            let dep = dep.as_str();
            if dep == id {
                continue;
            }
            match state.get(dep) {
                Some(2) => {}
                Some(_) => {
                    if let Some(&pos) = on_path.get(dep).filter(|&&pos| found.len() < MAX_CYCLES && kept + (path.len() - pos) <= budget) {
                        let cycle: Vec<TaskId> = path[pos..].iter().map(|(s, _)| TaskId::from(*s)).collect();
                        kept += 2 * cycle.len();
                        let mut key = cycle.clone();
                        key.sort();
                        if reported.insert(key) {
                            found.push(cycle);
                        }
                    }
                }
                None => {
                    let Some((&dep, _)) = index.get_key_value(dep) else { continue };
                    state.insert(dep, 1);
                    on_path.insert(dep, path.len());
                    path.push((dep, 0));
                }
            }
        }
    }
    found
}

/// Why a pending task cannot run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// A dependency is still to be done (it may run later).
    On(TaskId),
    /// A dependency failed; this task can never run in this run.
    FailedDependency(TaskId),
    /// A dependency is not in the plan.
    MissingDependency(TaskId),
    /// A dependency ran out of validation attempts (`validation_exhausted`).
    ExhaustedDependency(TaskId),
    /// The task itself is `suspended`: it waits for a person.
    Suspended,
    /// A dependency was skipped; skipped work does not satisfy a dependency.
    SkippedDependency(TaskId),
    /// The task is part of a dependency cycle.
    Cycle(std::sync::Arc<Vec<TaskId>>),
    /// A dependency is before the task `--resume-from` started at, and not completed.
    LeftOut(TaskId),
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::On(d) => write!(f, "waits for '{d}'"),
            Wait::FailedDependency(d) => write!(f, "its dependency '{d}' failed"),
            Wait::ExhaustedDependency(d) => write!(f, "its dependency '{d}' ran out of validation attempts (validation_exhausted)"),
            Wait::Suspended => write!(f, "it is suspended: it waits for a person (`baton retry` makes it pending)"),
            Wait::MissingDependency(d) => write!(f, "its dependency '{d}' is not in the plan"),
            Wait::SkippedDependency(d) => write!(f, "its dependency '{d}' was skipped"),
            Wait::LeftOut(d) => write!(f, "its dependency '{d}' is not completed and comes before --resume-from"),
            Wait::Cycle(c) => write!(f, "it is in the dependency cycle {}", cycle_text(c)),
        }
    }
}

/// Whether a task can start now: pending or in progress, every dependency completed.
pub fn is_ready(plan: &Plan, task: &Task) -> bool {
    task.status.is_runnable()
        && task
            .depends_on
            .iter()
            .all(|d| plan.task(d.as_str()).is_some_and(|t| t.status.is_done()))
}

/// The first task in plan order that can run now.
pub fn next_ready<'a>(plan: &'a Plan, exclude: &HashSet<TaskId>) -> Option<&'a Task> {
    plan.tasks()
        .find(|t| !exclude.contains(&t.id) && is_ready(plan, t))
}

/// Pending tasks that can never run, each with the reason. Empty when every unfinished task
/// can still run eventually (or there is none).
pub fn blocked(plan: &Plan) -> Vec<(TaskId, Wait)> {
    // Shared: every task of a cycle of thousands names the same one.
    let cycles: Vec<std::sync::Arc<Vec<TaskId>>> = cycles(plan).into_iter().map(std::sync::Arc::new).collect();
    let mut cycle_of: HashMap<&TaskId, usize> = HashMap::new();
    for (i, c) in cycles.iter().enumerate() {
        for id in c.iter() {
            cycle_of.entry(id).or_insert(i);
        }
    }
    let in_cycle = |id: &TaskId| cycle_of.get(id).map(|&i| &cycles[i]);
    let index: HashMap<&str, &Task> = plan.tasks().map(|t| (t.id.as_str(), t)).collect();
    // Fixed point: a task is doomed if it is in a cycle, or a dependency is failed, skipped,
    // missing or itself doomed.
    let mut doomed: HashMap<TaskId, Wait> = HashMap::new();
    loop {
        let mut changed = false;
        for t in plan.tasks() {
            if t.status.is_final() || doomed.contains_key(&t.id) {
                continue;
            }
            let reason = if t.status == Status::Suspended {
                Some(Wait::Suspended)
            } else if let Some(c) = in_cycle(&t.id) {
                Some(Wait::Cycle(c.clone()))
            } else {
                t.depends_on.iter().find_map(|d| match index.get(d.as_str()) {
                    None => Some(Wait::MissingDependency(d.clone())),
                    Some(dt) if dt.status == Status::Failed => Some(Wait::FailedDependency(d.clone())),
                    Some(dt) if dt.status == Status::ValidationExhausted => Some(Wait::ExhaustedDependency(d.clone())),
                    Some(dt) if dt.status == Status::Skipped => Some(Wait::SkippedDependency(d.clone())),
                    Some(_) if doomed.contains_key(d) => Some(Wait::On(d.clone())),
                    Some(_) => None,
                })
            };
            if let Some(r) = reason {
                doomed.insert(t.id.clone(), r);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    plan.tasks()
        .filter_map(|t| doomed.get(&t.id).map(|w| (t.id.clone(), w.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_plan;

    fn plan(src: &str) -> Plan {
        parse_plan(src).map_err(|d| format!("{d:?}")).unwrap()
    }

    fn unchecked(src: &str) -> Plan {
        let root = crate::plan::yaml::parse(src).unwrap();
        let mut d = Vec::new();
        crate::plan::model::read_plan(&root, &mut d)
    }

    const CHAIN: &str = "sections:\n- id: s\n  tasks:\n  - {id: '1', name: a, status: completed}\n  - {id: '2', name: b, status: pending, depends_on: ['1']}\n  - {id: '3', name: c, status: pending, depends_on: ['2']}\n";

    #[test]
    fn next_task_is_first_ready_in_plan_order() {
        let p = plan(CHAIN);
        assert_eq!(next_ready(&p, &HashSet::new()).unwrap().id.as_str(), "2");
        let mut ex = HashSet::new();
        ex.insert(TaskId::from("2"));
        assert!(next_ready(&p, &ex).is_none());
        assert!(blocked(&p).is_empty());
    }

    #[test]
    fn failed_dependency_blocks_transitively() {
        let p = plan(&CHAIN.replace("status: completed", "status: failed"));
        let b = blocked(&p);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], (TaskId::from("2"), Wait::FailedDependency(TaskId::from("1"))));
        assert_eq!(b[1], (TaskId::from("3"), Wait::On(TaskId::from("2"))));
    }

    #[test]
    fn cycles_are_named_in_order() {
        let src = "sections:\n- id: s\n  tasks:\n  - {id: '1.1', name: a, depends_on: ['1.3']}\n  - {id: '1.2', name: b, depends_on: ['1.1']}\n  - {id: '1.3', name: c, depends_on: ['1.2']}\n";
        let p = unchecked(src);
        let c = cycles(&p);
        assert_eq!(c.len(), 1);
        let ids: Vec<&str> = c[0].iter().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["1.1", "1.3", "1.2"]);
        assert_eq!(blocked(&p).len(), 3);
    }

    #[test]
    fn a_plan_of_as_many_cycles_as_tasks_is_told_in_bounded_memory() {
        // t_i depends on t_{i+1}; the last on every other: a cycle through each back edge.
        let n = 3000;
        let mut src = String::from("sections:\n- id: s\n  tasks:\n");
        for i in 1..n {
            src.push_str(&format!("  - {{id: 't{i}', name: x, depends_on: ['t{}']}}\n", i + 1));
        }
        let all: Vec<String> = (1..n).map(|i| format!("'t{i}'")).collect();
        src.push_str(&format!("  - {{id: 't{n}', name: x, depends_on: [{}]}}\n", all.join(", ")));
        let p = unchecked(&src);
        let c = cycles(&p);
        let kept: usize = c.iter().map(Vec::len).sum();
        assert!(!c.is_empty() && c.len() <= MAX_CYCLES && kept <= 4 * n + 64, "{} cycles, {kept} ids", c.len());
        // Every task still waits for ever.
        assert_eq!(blocked(&p).len(), n);
    }

    #[test]
    fn ids_are_text() {
        let src = "sections:\n- id: s\n  tasks:\n  - {id: 1.1, name: a, status: completed}\n  - {id: 1.10, name: b, depends_on: [1.1]}\n";
        let p = plan(src);
        assert_eq!(next_ready(&p, &HashSet::new()).unwrap().id.as_str(), "1.10");
    }
}
