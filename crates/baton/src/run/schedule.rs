//! Which ready tasks may start now: dependencies, plan order for tasks that keep it, slots,
//! file conflicts and exclusive resources. Pure functions over the plan; the dispatcher asks,
//! this module answers.

use std::collections::{BTreeSet, HashSet};

use crate::plan::graph;
use crate::plan::{Plan, Task, TaskId};

/// What a task will touch: files (named in its description or its `files:` list) and
/// exclusive resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    pub files: BTreeSet<String>,
    pub resources: BTreeSet<String>,
}

impl Footprint {
    pub fn of(task: &Task) -> Footprint {
        let mut files: BTreeSet<String> = task.files.iter().map(|f| normalise(f)).collect();
        if let Some(d) = &task.description {
            files.extend(paths_in(d));
        }
        Footprint {
            files,
            resources: task.exclusive_resources.iter().cloned().collect(),
        }
    }

    /// Why two tasks may not run at once, if they may not.
    pub fn conflict(&self, other: &Footprint) -> Option<String> {
        if let Some(r) = self.resources.intersection(&other.resources).next() {
            return Some(format!("both need the exclusive resource '{r}'"));
        }
        self.files
            .intersection(&other.files)
            .next()
            .map(|f| format!("both touch {f}"))
    }
}

/// Source folders and extensions that mark a word in a description as a file path (the
/// original tool's heuristic, widened).
const EXTENSIONS: &[&str] = &[
    "ts", "tsx", "js", "jsx", "mjs", "cjs", "py", "rs", "go", "java", "kt", "rb", "php", "cs", "c", "h", "cc",
    "cpp", "hpp", "swift", "vue", "svelte", "css", "scss", "sass", "less", "html", "json", "yaml", "yml", "toml",
    "md", "sql", "sh", "prisma", "graphql", "proto", "txt", "xml", "ex", "exs", "dart", "scala", "lua",
];
const FOLDERS: &[&str] = &[
    "src/", "lib/", "app/", "apps/", "tests/", "test/", "docs/", "components/", "pages/", "packages/",
    "crates/", "server/", "client/", "api/", "scripts/", "migrations/", "public/", "styles/",
];

/// File paths named in free text: words with a known extension, or under a common folder.
pub fn paths_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || ",;()[]{}\"'`<>|".contains(c)) {
        let word = raw.trim_end_matches(['.', ':', '!', '?']).trim_start_matches("./");
        if word.is_empty() || word.contains("://") || word.starts_with('-') || word.contains("..") {
            continue;
        }
        if !word.chars().all(|c| c.is_alphanumeric() || "/._-@+*".contains(c)) {
            continue;
        }
        let ext = word.rsplit_once('.').map(|(stem, e)| (stem, e.to_ascii_lowercase()));
        let has_ext = ext.as_ref().is_some_and(|(stem, e)| {
            !stem.is_empty() && !stem.ends_with('/') && EXTENSIONS.contains(&e.as_str())
        });
        let in_folder = FOLDERS.iter().any(|f| word.starts_with(f)) && word.len() > 4;
        // A version number like 1.2 is not a file; neither is a bare extension.
        if (has_ext || in_folder) && !word.chars().all(|c| c.is_ascii_digit() || c == '.') {
            let n = normalise(word);
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

fn normalise(p: &str) -> String {
    p.trim().trim_start_matches("./").trim_end_matches('/').to_string()
}

/// A task that is running now.
#[derive(Debug, Clone)]
pub struct Active {
    pub id: TaskId,
    pub group: Option<String>,
    pub footprint: Footprint,
}

/// A ready task that may not start now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub id: TaskId,
    pub why: String,
}

/// Whether a task keeps its place in plan order: it has neither `depends_on` nor
/// `parallel_group`, so the plan's order is the only order its author gave it.
pub fn keeps_plan_order(task: &Task) -> bool {
    task.depends_on.is_empty() && task.parallel_group.is_none()
}

/// The tasks to start now, in plan order, and why each other ready task waits.
///
/// The rule, task by task in plan order (a *candidate* is a task that is pending or in
/// progress, has every dependency completed, and is not in `skip`):
///
/// 1. A task with `depends_on` or a `parallel_group` starts as soon as its dependencies are
///    completed and a slot (at most `limit` run), its footprint (files, exclusive resources)
///    allow. Groups never wait for one another: `parallel_group` only says "may run beside
///    others".
/// 2. A task with neither keeps its place in the plan — a barrier in plan order:
///    - it starts only when no task before it runs or is left waiting — when nothing else
///      runs or starts — and it runs alone (nothing starts while it runs);
///    - every task after it in the plan waits until it is done (completed, failed or
///      skipped), whatever its own dependencies and group.
///
///    Tasks before it that cannot start — a dependency failed, was skipped or comes after it
///    in the plan — do not hold it, so plan order never deadlocks against `depends_on`.
/// 3. A task in `skip` that is not running (held back by the caller: waiting out a back-off,
///    left out by `--resume-from`, not the `--task` of the run) neither starts nor holds
///    others back. A running task (in `active`) counts as not done.
///
/// With `limit` 1 and nothing running this picks the first candidate in plan order, as a
/// sequential run does.
pub fn pick(plan: &Plan, active: &[Active], limit: usize, skip: &HashSet<TaskId>) -> (Vec<TaskId>, Vec<Held>) {
    let mut started: Vec<TaskId> = Vec::new();
    let mut held = Vec::new();
    let mut taken: Vec<Active> = active.to_vec();
    // A running task that keeps plan order runs alone: nothing starts beside it.
    let alone = active
        .iter()
        .find(|a| plan.task(a.id.as_str()).is_some_and(keeps_plan_order))
        .map(|a| a.id.clone());
    // The first task that keeps plan order and is not done: every task after it waits.
    let mut barrier: Option<TaskId> = None;
    for task in plan.tasks() {
        let running = active.iter().any(|a| a.id == task.id);
        let ordered = keeps_plan_order(task);
        if running {
            if ordered && barrier.is_none() {
                barrier = Some(task.id.clone());
            }
            continue;
        }
        if skip.contains(&task.id) || !graph::is_ready(plan, task) {
            continue;
        }
        let footprint = Footprint::of(task);
        let why = if let Some(a) = &alone {
            Some(format!("{a} runs alone (no depends_on or parallel_group)"))
        } else if let Some(b) = &barrier {
            Some(format!("waits for {b} to finish ({b} has no depends_on or parallel_group: it keeps its place in the plan)"))
        } else if ordered && !taken.is_empty() {
            // No candidate before it can be left waiting while nothing runs: one is held only
            // by a running or starting task, or by a barrier before this one.
            Some("runs alone once the tasks running now are done (no depends_on or parallel_group)".to_string())
        } else if taken.len() >= limit {
            Some(format!("all {limit} slots are busy"))
        } else {
            taken
                .iter()
                .find_map(|a| a.footprint.conflict(&footprint).map(|w| format!("conflicts with {}: {w}", a.id)))
        };
        if ordered && barrier.is_none() {
            barrier = Some(task.id.clone());
        }
        match why {
            Some(why) => held.push(Held { id: task.id.clone(), why }),
            None => {
                started.push(task.id.clone());
                taken.push(Active { id: task.id.clone(), group: task.parallel_group.clone(), footprint });
            }
        }
    }
    (started, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Status;

    fn plan(src: &str) -> Plan {
        crate::plan::parse_plan(src).unwrap()
    }

    #[test]
    fn paths_are_found_in_descriptions() {
        let p = paths_in("Add the table. Files: src/db/schema.ts, docs/x.md and README.md; see https://x.io/a.ts, v1.2, ./lib/util.py.");
        assert_eq!(p, ["src/db/schema.ts", "docs/x.md", "README.md", "lib/util.py"]);
        assert!(paths_in("Bump to 1.2.3 and retry").is_empty());
    }

    const GROUPED: &str = "sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g, description: 'Edit src/a.ts'}\n  - {id: b, name: B, parallel_group: g, description: 'Edit src/b.ts'}\n  - {id: c, name: C, parallel_group: g, description: 'Edit src/a.ts too'}\n  - {id: d, name: D, parallel_group: g, exclusive_resources: [db]}\n  - {id: e, name: E, parallel_group: g, exclusive_resources: [db]}\n  - {id: f, name: F}\n  - {id: h, name: H, parallel_group: other}\n";

    fn ids(v: &[TaskId]) -> Vec<&str> {
        v.iter().map(TaskId::as_str).collect()
    }

    fn why(held: &[Held], id: &str) -> String {
        held.iter().find(|h| h.id.as_str() == id).map(|h| h.why.clone()).unwrap_or_else(|| format!("{id} is not held"))
    }

    fn running(p: &Plan, id: &str) -> Active {
        let t = p.task(id).unwrap();
        Active { id: t.id.clone(), group: t.parallel_group.clone(), footprint: Footprint::of(t) }
    }

    fn set(p: &mut Plan, id: &str, status: Status) {
        for t in p.sections.iter_mut().flat_map(|s| s.tasks.iter_mut()) {
            if t.id.as_str() == id {
                t.status = status;
            }
        }
    }

    fn skip(v: &[&str]) -> HashSet<TaskId> {
        v.iter().map(|s| TaskId::from(*s)).collect()
    }

    #[test]
    fn a_group_runs_together_minus_conflicts() {
        let p = plan(GROUPED);
        let (start, held) = pick(&p, &[], 10, &HashSet::new());
        assert_eq!(ids(&start), ["a", "b", "d"]);
        assert_eq!(why(&held, "c"), "conflicts with a: both touch src/a.ts");
        assert_eq!(why(&held, "e"), "conflicts with d: both need the exclusive resource 'db'");
        assert_eq!(why(&held, "f"), "runs alone once the tasks running now are done (no depends_on or parallel_group)");
        assert_eq!(why(&held, "h"), "waits for f to finish (f has no depends_on or parallel_group: it keeps its place in the plan)");
    }

    #[test]
    fn groups_do_not_wait_for_one_another() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: one}\n  - {id: b, name: B, parallel_group: one}\n- id: t\n  tasks:\n  - {id: c, name: C, parallel_group: two}\n  - {id: d, name: D, parallel_group: three}\n");
        let (start, held) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["a", "b", "c", "d"]);
        assert!(held.is_empty());
        // With b of group one still running, a free slot goes to the next group at once.
        let (start, _) = pick(&p, &[running(&p, "b")], 2, &skip(&["a", "b"]));
        assert_eq!(ids(&start), ["c"]);
    }

    #[test]
    fn a_dependent_starts_when_its_dependencies_are_done_not_when_their_group_is() {
        let mut p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: g1}\n  - {id: slow, name: Slow, parallel_group: g1}\n  - {id: b, name: B, parallel_group: g2, depends_on: [a]}\n  - {id: c, name: C, depends_on: [a, slow]}\n  - {id: d, name: D, parallel_group: g2, depends_on: [c]}\n");
        let (start, held) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["a", "slow"]);
        assert!(held.is_empty(), "tasks whose dependencies are not done are not held, just not ready: {held:?}");
        set(&mut p, "a", Status::Completed);
        let (start, _) = pick(&p, &[running(&p, "slow")], 4, &skip(&["slow"]));
        assert_eq!(ids(&start), ["b"]);
        // c has depends_on and no group: it does not keep plan order, so it runs beside b.
        set(&mut p, "slow", Status::Completed);
        let (start, _) = pick(&p, &[running(&p, "b")], 4, &skip(&["b"]));
        assert_eq!(ids(&start), ["c"]);
        set(&mut p, "c", Status::Completed);
        let (start, _) = pick(&p, &[running(&p, "b")], 4, &skip(&["b"]));
        assert_eq!(ids(&start), ["d"]);
    }

    #[test]
    fn the_limit_is_kept_and_slots_refill() {
        let p = plan(GROUPED);
        let (start, held) = pick(&p, &[], 2, &HashSet::new());
        assert_eq!(ids(&start), ["a", "b"]);
        assert_eq!(why(&held, "d"), "all 2 slots are busy");
        // a finished; b still runs: the free slot goes to c (no conflict with b now).
        let (start, _) = pick(&p, &[running(&p, "b")], 2, &skip(&["a", "b"]));
        assert_eq!(ids(&start), ["c"]);
        // A conflict does not take a slot: d starts beside b although c waits for a.
        let (start, held) = pick(&p, &[running(&p, "a"), running(&p, "b")], 3, &skip(&["a", "b"]));
        assert_eq!(ids(&start), ["d"]);
        assert_eq!(why(&held, "c"), "conflicts with a: both touch src/a.ts");
    }

    #[test]
    fn conflicts_hold_against_running_and_just_started_tasks_of_any_group() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A, parallel_group: one, files: [src/x.rs]}\n  - {id: b, name: B, parallel_group: two, description: 'Fix src/x.rs'}\n  - {id: c, name: C, parallel_group: three, exclusive_resources: [port-8080]}\n  - {id: d, name: D, depends_on: [a], exclusive_resources: [port-8080]}\n");
        let (start, held) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["a", "c"]);
        assert_eq!(why(&held, "b"), "conflicts with a: both touch src/x.rs");
        let mut p = p;
        set(&mut p, "a", Status::Completed);
        let (start, held) = pick(&p, &[running(&p, "c")], 4, &skip(&["c"]));
        assert_eq!(ids(&start), ["b"]);
        assert_eq!(why(&held, "d"), "conflicts with c: both need the exclusive resource 'port-8080'");
    }

    #[test]
    fn a_task_without_dependencies_or_group_is_a_barrier_in_plan_order() {
        let mut p = plan("sections:\n- id: s\n  tasks:\n  - {id: x, name: X, parallel_group: g}\n  - {id: y, name: Y, parallel_group: h}\n  - {id: bar, name: Bar}\n  - {id: z, name: Z, parallel_group: g}\n  - {id: w, name: W, depends_on: [x]}\n");
        let (start, held) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["x", "y"]);
        assert_eq!(why(&held, "bar"), "runs alone once the tasks running now are done (no depends_on or parallel_group)");
        assert_eq!(why(&held, "z"), "waits for bar to finish (bar has no depends_on or parallel_group: it keeps its place in the plan)");
        // x is done and y runs: bar still waits for y; w (ready now) still waits for bar.
        set(&mut p, "x", Status::Completed);
        let (start, held) = pick(&p, &[running(&p, "y")], 4, &skip(&["y"]));
        assert!(start.is_empty());
        assert!(why(&held, "w").starts_with("waits for bar"), "{held:?}");
        // Everything before it is done (failed counts as done): bar starts, alone.
        set(&mut p, "y", Status::Failed);
        let (start, held) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["bar"]);
        assert!(why(&held, "z").starts_with("waits for bar to finish"));
        let (start, held) = pick(&p, &[running(&p, "bar")], 4, &skip(&["bar"]));
        assert!(start.is_empty());
        assert_eq!(why(&held, "z"), "bar runs alone (no depends_on or parallel_group)");
        // bar done: the tasks after it start together.
        set(&mut p, "bar", Status::Completed);
        let (start, _) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["z", "w"]);
    }

    #[test]
    fn tasks_that_keep_plan_order_run_one_after_another() {
        let mut p = plan("sections:\n- id: s\n  tasks:\n  - {id: '1', name: A}\n  - {id: '2', name: B}\n  - {id: '3', name: C}\n");
        for id in ["1", "2", "3"] {
            let (start, held) = pick(&p, &[], 4, &HashSet::new());
            assert_eq!(ids(&start), [id]);
            let (start, _) = pick(&p, &[running(&p, id)], 4, &skip(&[id]));
            assert!(start.is_empty(), "{held:?}");
            set(&mut p, id, Status::Completed);
        }
    }

    #[test]
    fn a_running_barrier_lets_nothing_start_beside_it() {
        // x came back from its back-off while bar runs (bar started while x was held back).
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: x, name: X, parallel_group: g}\n  - {id: bar, name: Bar}\n");
        let (start, held) = pick(&p, &[running(&p, "bar")], 4, &skip(&["bar"]));
        assert!(start.is_empty());
        assert_eq!(why(&held, "x"), "bar runs alone (no depends_on or parallel_group)");
    }

    #[test]
    fn a_task_held_back_by_the_caller_neither_starts_nor_holds_others() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: x, name: X, parallel_group: g}\n  - {id: bar, name: Bar}\n  - {id: z, name: Z, parallel_group: g}\n");
        // x waits out a back-off (or comes before --resume-from): bar does not wait for it.
        let (start, _) = pick(&p, &[], 4, &skip(&["x"]));
        assert_eq!(ids(&start), ["bar"]);
        // bar is held back: z does not wait for it.
        let (start, _) = pick(&p, &[], 4, &skip(&["bar"]));
        assert_eq!(ids(&start), ["x", "z"]);
        // --task z: only z may start, and nothing before it holds it.
        let (start, held) = pick(&p, &[], 4, &skip(&["x", "bar"]));
        assert_eq!(ids(&start), ["z"]);
        assert!(held.is_empty());
    }

    #[test]
    fn plan_order_never_deadlocks_against_depends_on() {
        // t comes before bar but depends on u, which comes after it: t cannot come first, so
        // bar does not wait for it; u waits for bar; t runs last.
        let mut p = plan("sections:\n- id: s\n  tasks:\n  - {id: t, name: T, depends_on: [u]}\n  - {id: bar, name: Bar}\n  - {id: u, name: U, parallel_group: g}\n");
        for id in ["bar", "u", "t"] {
            let (start, _) = pick(&p, &[], 4, &HashSet::new());
            assert_eq!(ids(&start), [id]);
            set(&mut p, id, Status::Completed);
        }
        // A task that can never run (its dependency failed) does not hold a barrier either.
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: f, name: F, status: failed, parallel_group: g}\n  - {id: doomed, name: D, depends_on: [f]}\n  - {id: bar, name: Bar}\n");
        let (start, _) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(ids(&start), ["bar"]);
    }

    /// Deterministic pseudo-random numbers (splitmix64) for the generated plans below.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        }
    }

    /// A random valid plan: dependencies follow a hidden random order (so they point forward
    /// and backward in the plan), some tasks have groups, some share files or a resource,
    /// some are already completed or failed.
    fn random_plan(rng: &mut Rng) -> Plan {
        let n = 2 + rng.below(11);
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut src = String::from("sections:\n- id: s\n  tasks:\n");
        for i in 0..n {
            src.push_str(&format!("  - id: t{i}\n    name: T{i}\n"));
            let rank = order.iter().position(|&x| x == i).unwrap();
            let deps: Vec<String> = order[..rank].iter().filter(|_| rng.below(4) == 0).map(|d| format!("t{d}")).collect();
            if !deps.is_empty() {
                src.push_str(&format!("    depends_on: [{}]\n", deps.join(", ")));
            }
            if rng.below(3) > 0 {
                src.push_str(&format!("    parallel_group: g{}\n", rng.below(3)));
            }
            if rng.below(4) == 0 {
                src.push_str(&format!("    files: [src/f{}.rs]\n", rng.below(3)));
            }
            if rng.below(6) == 0 {
                src.push_str("    exclusive_resources: [db]\n");
            }
            match rng.below(10) {
                0 => src.push_str("    status: completed\n"),
                1 => src.push_str("    status: failed\n"),
                _ => {}
            }
        }
        plan(&src)
    }

    #[test]
    fn with_one_slot_and_nothing_running_the_first_ready_task_in_plan_order_starts() {
        let mut rng = Rng(11);
        for _ in 0..300 {
            let p = random_plan(&mut rng);
            let held_back: HashSet<TaskId> = p.tasks().filter(|_| rng.below(5) == 0).map(|t| t.id.clone()).collect();
            let (start, _) = pick(&p, &[], 1, &held_back);
            let first = graph::next_ready(&p, &held_back).map(|t| t.id.clone());
            assert_eq!(start, first.into_iter().collect::<Vec<_>>(), "{p:?}");
        }
    }

    /// Runs generated plans to their end, finishing one running task at a time in a random
    /// order (some fail), and checks every start against the rule; every task that can run
    /// must have run when nothing more starts.
    #[test]
    fn generated_plans_keep_the_rule_and_always_finish() {
        let mut rng = Rng(7);
        for _ in 0..400 {
            let mut p = random_plan(&mut rng);
            let limit = 1 + rng.below(4);
            let mut active: Vec<Active> = Vec::new();
            loop {
                let busy: HashSet<TaskId> = active.iter().map(|a| a.id.clone()).collect();
                let (start, held) = pick(&p, &active, limit, &busy);
                for h in &held {
                    assert!(!start.contains(&h.id) && !h.why.is_empty());
                }
                for id in &start {
                    let t = p.task(id.as_str()).unwrap();
                    let pos = p.tasks().position(|x| x.id == *id).unwrap();
                    assert!(graph::is_ready(&p, t), "{id} started before its dependencies: {p:?}");
                    assert!(active.len() < limit, "more than {limit} run: {p:?}");
                    assert!(active.iter().all(|a| a.footprint.conflict(&Footprint::of(t)).is_none()), "{id} conflicts: {p:?}");
                    assert!(!active.iter().any(|a| keeps_plan_order(p.task(a.id.as_str()).unwrap())), "{id} beside a barrier: {p:?}");
                    for before in p.tasks().take(pos) {
                        if keeps_plan_order(before) {
                            assert!(before.status.is_final(), "{id} started before {} was done: {p:?}", before.id);
                        }
                        if keeps_plan_order(t) {
                            assert!(before.status.is_final() || !graph::is_ready(&p, before), "{id} started before {}: {p:?}", before.id);
                        }
                    }
                    if keeps_plan_order(t) {
                        assert!(active.is_empty(), "barrier {id} started beside others: {p:?}");
                    }
                    active.push(running(&p, id.as_str()));
                    set(&mut p, id.as_str(), Status::InProgress);
                }
                if active.is_empty() {
                    break;
                }
                let done = active.remove(rng.below(active.len()));
                let outcome = if rng.below(8) == 0 { Status::Failed } else { Status::Completed };
                set(&mut p, done.id.as_str(), outcome);
            }
            let never: HashSet<TaskId> = graph::blocked(&p).into_iter().map(|(id, _)| id).collect();
            for t in p.tasks() {
                assert!(t.status.is_final() || never.contains(&t.id), "{} never ran: {p:?}", t.id);
            }
        }
    }
}
