//! Which ready tasks may run at the same time: parallel groups, file conflicts and exclusive
//! resources. Pure functions over the plan; the dispatcher asks, this module answers.

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

/// The tasks to start now, in plan order, so that at most `limit` run. A task without a group
/// runs alone; grouped tasks run beside running tasks of the same group unless their
/// footprints conflict. `skip` holds tasks that must not start now (running, delayed,
/// excluded).
pub fn pick(plan: &Plan, active: &[Active], limit: usize, skip: &HashSet<TaskId>) -> (Vec<TaskId>, Vec<Held>) {
    let mut started: Vec<TaskId> = Vec::new();
    let mut held = Vec::new();
    let mut taken: Vec<Active> = active.to_vec();
    for task in plan.tasks() {
        if skip.contains(&task.id) || !graph::is_ready(plan, task) {
            continue;
        }
        if taken.len() >= limit {
            held.push(Held { id: task.id.clone(), why: format!("all {limit} slots are busy") });
            continue;
        }
        let group = task.parallel_group.clone();
        if let Some(first) = taken.first() {
            match (&first.group, &group) {
                (None, _) => {
                    held.push(Held { id: task.id.clone(), why: format!("{} runs alone (no parallel_group)", first.id) });
                    continue;
                }
                (Some(_), None) => {
                    held.push(Held { id: task.id.clone(), why: "it has no parallel_group, so it runs alone".into() });
                    continue;
                }
                (Some(g), Some(h)) if g != h => {
                    held.push(Held { id: task.id.clone(), why: format!("group '{h}' waits for group '{g}' to finish") });
                    continue;
                }
                _ => {}
            }
        }
        let footprint = Footprint::of(task);
        if let Some((other, why)) = taken.iter().find_map(|a| a.footprint.conflict(&footprint).map(|w| (a.id.clone(), w))) {
            held.push(Held { id: task.id.clone(), why: format!("conflicts with {other}: {why}") });
            continue;
        }
        started.push(task.id.clone());
        taken.push(Active { id: task.id.clone(), group, footprint });
        if taken.len() == 1 && taken[0].group.is_none() {
            // Runs alone: nothing else joins it.
            limit_reached_for_ungrouped(&mut held, plan, skip, &taken[0]);
            break;
        }
    }
    (started, held)
}

fn limit_reached_for_ungrouped(held: &mut Vec<Held>, plan: &Plan, skip: &HashSet<TaskId>, alone: &Active) {
    for t in plan.tasks() {
        if t.id != alone.id && !skip.contains(&t.id) && graph::is_ready(plan, t) && !held.iter().any(|h| h.id == t.id) {
            held.push(Held { id: t.id.clone(), why: format!("{} runs alone (no parallel_group)", alone.id) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_group_runs_together_minus_conflicts() {
        let p = plan(GROUPED);
        let (start, held) = pick(&p, &[], 10, &HashSet::new());
        let ids: Vec<&str> = start.iter().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d"]);
        let why = |id: &str| held.iter().find(|h| h.id.as_str() == id).map(|h| h.why.clone()).unwrap();
        assert_eq!(why("c"), "conflicts with a: both touch src/a.ts");
        assert_eq!(why("e"), "conflicts with d: both need the exclusive resource 'db'");
        assert!(why("f").contains("no parallel_group"));
        assert_eq!(why("h"), "group 'other' waits for group 'g' to finish");
    }

    #[test]
    fn the_limit_is_kept_and_slots_refill() {
        let p = plan(GROUPED);
        let (start, _) = pick(&p, &[], 2, &HashSet::new());
        assert_eq!(start.len(), 2);
        // a finished; b still runs: the free slot goes to c (no conflict with b now).
        let active = [Active { id: "b".into(), group: Some("g".into()), footprint: Footprint::of(p.task("b").unwrap()) }];
        let skip: HashSet<TaskId> = ["a".into(), "b".into()].into_iter().collect();
        let (start, _) = pick(&p, &active, 2, &skip);
        assert_eq!(start, [TaskId::from("c")]);
    }

    #[test]
    fn an_ungrouped_task_runs_alone() {
        let p = plan("sections:\n- id: s\n  tasks:\n  - {id: a, name: A}\n  - {id: b, name: B, parallel_group: g}\n");
        let (start, held) = pick(&p, &[], 4, &HashSet::new());
        assert_eq!(start, [TaskId::from("a")]);
        assert_eq!(held[0].why, "a runs alone (no parallel_group)");
    }
}
