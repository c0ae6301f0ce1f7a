//! The soak's plan(s) and the fake agent's scenario, both drawn from the seed.
//!
//! Every task leaves work that names it: the file `work/<id>.txt` holding `task <id>`, and
//! sometimes a line `slot <n>: task <id>` in a shared file. The checks look for exactly those.
//! Every edit an agent makes is idempotent (a rerun after a kill changes nothing twice), as a
//! careful agent's would be; what is left to go wrong is baton's.

use serde_json::{json, Map, Value};

use crate::rng::Rng;

/// The shared files tasks edit lines of.
pub const SHARED_FILES: usize = 3;
/// The line of each shared file that several (declared) tasks overwrite in turn.
pub const HOT_LINE: usize = 0;
/// Lines edited by different tasks are this far apart: git's three-way merge takes changes to
/// adjacent lines for a conflict, which would be a fair one.
const LINE_GAP: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Run,
    Parallel,
    Pipeline,
}

/// How one invocation of the fake agent goes wrong before the task's successful invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A `failed` status file.
    Fail,
    /// Exit 2 without a result.
    Crash,
    /// A normal ending without any status file.
    NoStatus,
    /// No output, a grandchild in its group, until the task's timeout ends it.
    Hang,
    /// A usage limit (reset already past): must spend no attempt.
    Limit,
    /// Server-side throttling: must spend no attempt.
    Throttle,
}

impl Fault {
    /// Whether baton must count this invocation as a failed attempt.
    pub fn spends(self) -> bool {
        !matches!(self, Fault::Limit | Fault::Throttle)
    }

    fn pick(rng: &mut Rng) -> Fault {
        match rng.below(100) {
            0..=29 => Fault::Fail,
            30..=39 => Fault::Crash,
            40..=49 => Fault::NoStatus,
            50..=59 => Fault::Hang,
            60..=79 => Fault::Limit,
            _ => Fault::Throttle,
        }
    }

    fn step(self) -> Value {
        match self {
            Fault::Fail => json!({"status": "failed", "message": "scripted failure"}),
            Fault::Crash => json!({"crash": true}),
            Fault::NoStatus => json!({"status": "none"}),
            Fault::Hang => json!({"hang": true}),
            // A reset instant long past: baton waits only its margin, then retries.
            Fault::Limit => json!({"limit": "You've hit your limit", "limit_resets_at": 1_700_000_000}),
            Fault::Throttle => json!({"throttle":
                "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"}),
        }
    }
}

/// A process the agent leaves behind in a session of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Detached from everything (a `setsid … &` daemon).
    Detached,
    /// Detached but holding the agent's stdout open (baton's pipe).
    HoldingStdout,
}

#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub id: String,
    /// Index into [`Design::plans`].
    pub plan: usize,
    pub section: String,
    pub group: Option<String>,
    pub depends_on: Vec<String>,
    /// `max_attempts` written in the plan (`None`: the plan default).
    pub max_attempts: Option<u32>,
    /// Invocations that go wrong, in order, before the one that succeeds.
    pub faults: Vec<Fault>,
    /// Every invocation fails: the task must end `failed` after `max_attempts`.
    pub permanent: bool,
    /// The agent commits its work itself (otherwise baton must).
    pub commit: bool,
    /// A line of a shared file the task sets to `slot <n>: task <id>`.
    pub slot: Option<(String, usize)>,
    /// `files:` of the task (declared shared files: such tasks never overlap).
    pub files: Vec<String>,
    /// The id of the task this task's agent appends to the plan.
    pub adds: Option<String>,
    /// The task whose description this task's agent revises.
    pub revises: Option<String>,
    /// The task that revises this task's description.
    pub revised_by: Option<String>,
    /// Whether the status file announces the plan edit.
    pub plan_modified: bool,
    pub escape: Option<Escape>,
    pub timeout_seconds: Option<u32>,
    /// Appended by the agent of this task (not in the plan at the start).
    pub added_by: Option<String>,
}

impl TaskSpec {
    fn new(id: String, plan: usize, section: String) -> TaskSpec {
        TaskSpec {
            id,
            plan,
            section,
            group: None,
            depends_on: Vec::new(),
            max_attempts: None,
            faults: Vec::new(),
            permanent: false,
            commit: true,
            slot: None,
            files: Vec::new(),
            adds: None,
            revises: None,
            revised_by: None,
            plan_modified: false,
            escape: None,
            timeout_seconds: None,
            added_by: None,
        }
    }

    pub fn name(&self) -> String {
        match &self.added_by {
            Some(by) => format!("Added by {by}"),
            None => format!("Task {}", self.id),
        }
    }

    pub fn description(&self) -> String {
        match &self.added_by {
            Some(by) => format!("Task added by {by}"),
            None => format!("Task number {} of the soak", self.id),
        }
    }

    pub fn revised_description(&self) -> Option<String> {
        self.revised_by
            .as_ref()
            .map(|by| format!("{}, revised by {by}", self.description()))
    }

    pub fn work_file(&self) -> String {
        format!("work/{}.txt", self.id)
    }

    pub fn work_line(&self) -> String {
        format!("task {}", self.id)
    }

    pub fn slot_line(&self) -> Option<String> {
        self.slot.as_ref().map(|(_, n)| format!("slot {n}: task {}", self.id))
    }

    pub fn effective_max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// The scripted step of invocation `n` (1-based; the last step repeats), as fake-claude
    /// picks it; `None` for the successful step.
    pub fn fault_of_invocation(&self, n: u64) -> Option<Fault> {
        if self.permanent {
            return Some(Fault::Fail);
        }
        let index = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
        self.faults.get(index).copied()
    }
}

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The total timeout of tasks that hang once: long enough that their other runs (a few
/// milliseconds of work) never reach it on a loaded machine.
const HANG_TIMEOUT_SECONDS: u32 = 5;
/// How long an escaped process lives when nobody ends it (more than [`crate::SETTLE`]).
const ESCAPE_SECONDS: u32 = 12;

#[derive(Clone, Debug)]
pub struct PlanSpec {
    /// Relative to the repository root.
    pub path: String,
    pub name: String,
    /// The backlog item (pipeline mode): its path relative to the root, and its slug.
    pub item: Option<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Design {
    pub seed: u64,
    pub mode: Mode,
    pub plans: Vec<PlanSpec>,
    /// Every task, the agent-added ones included, in plan order.
    pub tasks: Vec<TaskSpec>,
    /// Lines of each shared file (`slot 0` .. `slot lines-1`).
    pub shared_lines: usize,
}

pub const ADDED_SECTION: &str = "added";

impl Design {
    pub fn generate(seed: u64, mode: Mode, n_tasks: usize) -> Design {
        let mut rng = Rng::new(seed).fork(1);
        let n_tasks = n_tasks.max(2);
        // Pipeline: a few items, each with a small plan; run modes: one plan.
        let per_plan: Vec<usize> = if mode == Mode::Pipeline {
            let mut sizes = Vec::new();
            let mut left = n_tasks;
            while left > 0 {
                let size = (rng.range(4, 10) as usize).min(left);
                sizes.push(size);
                left -= size;
            }
            sizes
        } else {
            vec![n_tasks]
        };
        let mut plans = Vec::new();
        let mut tasks: Vec<TaskSpec> = Vec::new();
        let mut next_line = vec![HOT_LINE + LINE_GAP; SHARED_FILES];
        for (p, &size) in per_plan.iter().enumerate() {
            let (prefix, spec) = if mode == Mode::Pipeline {
                let slug = format!("item-{}", p + 1);
                (
                    format!("i{}.", p + 1),
                    PlanSpec {
                        path: format!(".claude/plans/{slug}.yaml"),
                        name: format!("Backlog item {}", p + 1),
                        item: Some((format!("docs/feature-backlog/{slug}.md"), slug)),
                    },
                )
            } else {
                (
                    String::new(),
                    PlanSpec { path: "plan.yaml".into(), name: format!("soak {seed}"), item: None },
                )
            };
            plans.push(spec);
            let first = tasks.len();
            // One task of the plan is the seed of the section agents append to.
            let regular = size.saturating_sub(1).max(1);
            let mut made = 0;
            let mut section = 1;
            while made < regular {
                let len = (rng.range(4, 12) as usize).min(regular - made);
                let mut j = 0;
                while j < len {
                    let (glen, group) = if len - j >= 2 && rng.chance(0.45) {
                        let glen = (rng.range(2, 4) as usize).min(len - j);
                        (glen, Some(format!("g{section}-{}", j + 1)))
                    } else {
                        (1, None)
                    };
                    for _ in 0..glen {
                        let mut t = TaskSpec::new(
                            format!("{prefix}{section}.{}", j + 1),
                            p,
                            format!("sec-{section}"),
                        );
                        t.group = group.clone();
                        tasks.push(t);
                        j += 1;
                        made += 1;
                    }
                }
                section += 1;
            }
            let mut seed_task = TaskSpec::new(format!("{prefix}added.0"), p, ADDED_SECTION.into());
            seed_task.commit = true;
            tasks.push(seed_task);
            let last = tasks.len();
            Self::decorate(&mut rng, mode, &mut tasks[first..last], &mut next_line);
            // Agent-added tasks come last, in the order their adders appear.
            let added: Vec<TaskSpec> = tasks[first..last]
                .iter()
                .filter_map(|t| t.adds.clone().map(|id| (id, t.id.clone())))
                .map(|(id, by)| {
                    let mut a = TaskSpec::new(id, p, ADDED_SECTION.into());
                    a.added_by = Some(by);
                    a
                })
                .collect();
            tasks.extend(added);
        }
        let shared_lines = next_line.iter().copied().max().unwrap_or(1);
        Design { seed, mode, plans, tasks, shared_lines }
    }

    /// Dependencies, faults and effects of one plan's tasks.
    fn decorate(rng: &mut Rng, mode: Mode, tasks: &mut [TaskSpec], next_line: &mut [usize]) {
        let n = tasks.len();
        for i in 0..n {
            if tasks[i].section == ADDED_SECTION {
                continue;
            }
            if i > 0 && rng.chance(0.25) {
                let d = rng.below(i as u64) as usize;
                if tasks[d].group.is_none() || tasks[d].group != tasks[i].group {
                    let dep = tasks[d].id.clone();
                    tasks[i].depends_on.push(dep);
                }
            }
            if rng.chance(0.2) {
                tasks[i].max_attempts = Some(rng.range(2, 4) as u32);
            }
            let max = tasks[i].effective_max_attempts();
            let mut spent = 0;
            while tasks[i].faults.len() < 4
                && rng.chance(0.35)
            {
                let fault = Fault::pick(rng);
                if fault.spends() {
                    if spent + 1 >= max {
                        break;
                    }
                    spent += 1;
                }
                tasks[i].faults.push(fault);
            }
            if tasks[i].faults.contains(&Fault::Hang) {
                tasks[i].timeout_seconds = Some(HANG_TIMEOUT_SECONDS);
            }
            tasks[i].commit = rng.chance(0.6);
            match rng.below(10) {
                0..=2 => {
                    let f = rng.below(SHARED_FILES as u64) as usize;
                    tasks[i].slot = Some((shared_file(f), next_line[f]));
                    next_line[f] += LINE_GAP;
                }
                3 => {
                    // The same line as other tasks: declared, so baton never runs them at once.
                    let f = rng.below(SHARED_FILES as u64) as usize;
                    tasks[i].slot = Some((shared_file(f), HOT_LINE));
                    tasks[i].files = vec![shared_file(f)];
                }
                _ => {}
            }
            if rng.chance(0.07) {
                tasks[i].adds = Some(format!("add-{}", tasks[i].id));
                tasks[i].plan_modified = rng.chance(0.5);
            }
            if rng.chance(0.05) && i + 2 < n {
                let q = rng.range(i as u64 + 1, n as u64 - 1) as usize;
                let ok = tasks[q].section != ADDED_SECTION
                    && tasks[q].revised_by.is_none()
                    && (tasks[q].group.is_none() || tasks[q].group != tasks[i].group);
                if ok {
                    let (p_id, q_id) = (tasks[i].id.clone(), tasks[q].id.clone());
                    tasks[i].revises = Some(q_id);
                    tasks[i].plan_modified = rng.chance(0.5);
                    tasks[q].revised_by = Some(p_id.clone());
                    // Not before the reviser: the revision must be in place when it runs.
                    if !tasks[q].depends_on.contains(&p_id) {
                        tasks[q].depends_on.push(p_id);
                    }
                }
            }
            if rng.chance(0.03) {
                tasks[i].escape =
                    Some(if rng.chance(0.33) { Escape::HoldingStdout } else { Escape::Detached });
            }
        }
        // Tasks that fail for good: nobody depends on them and they edit nothing else (a
        // pipeline item with a failed task would be retried for ever by `--once`).
        if mode != Mode::Pipeline {
            for i in 0..n {
                let depended = tasks.iter().any(|t| t.depends_on.contains(&tasks[i].id));
                let t = &tasks[i];
                if !depended
                    && t.section != ADDED_SECTION
                    && t.adds.is_none()
                    && t.revises.is_none()
                    && t.revised_by.is_none()
                    && rng.chance(0.03)
                {
                    let t = &mut tasks[i];
                    t.permanent = true;
                    t.faults.clear();
                    t.slot = None;
                    t.files.clear();
                    t.escape = None;
                    t.timeout_seconds = None;
                }
            }
        }
        Self::cover(rng, tasks);
    }

    /// Makes sure a plan of any size holds every kind of fault at least once, so that a short
    /// soak exercises all of them whatever the seed.
    fn cover(rng: &mut Rng, tasks: &mut [TaskSpec]) {
        let eligible: Vec<usize> =
            (0..tasks.len()).filter(|&i| tasks[i].section != ADDED_SECTION && !tasks[i].permanent).collect();
        if eligible.len() < 8 {
            return;
        }
        let pick = |rng: &mut Rng| eligible[rng.below(eligible.len() as u64) as usize];
        for fault in [Fault::Fail, Fault::Crash, Fault::NoStatus, Fault::Hang, Fault::Limit, Fault::Throttle] {
            if tasks.iter().any(|t| t.faults.contains(&fault)) {
                continue;
            }
            // A task with an attempt to spare (a few tries; a plan of failing tasks may have none).
            for _ in 0..20 {
                let i = pick(rng);
                let spent = tasks[i].faults.iter().filter(|f| f.spends()).count() as u32;
                if !fault.spends() || spent + 1 < tasks[i].effective_max_attempts() {
                    tasks[i].faults.insert(0, fault);
                    if fault == Fault::Hang {
                        tasks[i].timeout_seconds = Some(HANG_TIMEOUT_SECONDS);
                    }
                    break;
                }
            }
        }
        for escape in [Escape::Detached, Escape::HoldingStdout] {
            if !tasks.iter().any(|t| t.escape == Some(escape)) {
                for _ in 0..20 {
                    let i = pick(rng);
                    if tasks[i].escape.is_none() {
                        tasks[i].escape = Some(escape);
                        break;
                    }
                }
            }
        }
        if tasks.iter().all(|t| t.commit) {
            let i = pick(rng);
            tasks[i].commit = false;
        }
    }

    pub fn task(&self, id: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn plan_tasks(&self, plan: usize) -> impl Iterator<Item = &TaskSpec> {
        self.tasks.iter().filter(move |t| t.plan == plan)
    }

    /// The plan's text at the start (without agent-added tasks).
    pub fn plan_yaml(&self, plan: usize) -> String {
        let spec = &self.plans[plan];
        let mut out = format!(
            "# Written by baton-soak, seed {}.\nmeta:\n  name: {}\n  description: A soak plan\n  max_attempts_default: {DEFAULT_MAX_ATTEMPTS}\nsections:\n",
            self.seed, spec.name
        );
        let mut section = String::new();
        for t in self.plan_tasks(plan).filter(|t| t.added_by.is_none()) {
            if t.section != section {
                section = t.section.clone();
                out.push_str(&format!(
                    "- id: {section}\n  name: Section {section}\n  status: pending\n  tasks:\n"
                ));
            }
            out.push_str(&task_yaml(t));
        }
        out
    }

    /// The fake agent's scenario for every task (planning steps of pipeline items included).
    pub fn scenario(&self) -> Value {
        let mut tasks = Map::new();
        for t in &self.tasks {
            let plan_path = &self.plans[t.plan].path;
            let steps: Vec<Value> = if t.permanent {
                vec![Fault::Fail.step()]
            } else {
                t.faults
                    .iter()
                    .map(|f| f.step())
                    .chain(std::iter::once(self.success_step(t, plan_path)))
                    .collect()
            };
            tasks.insert(t.id.clone(), Value::Array(steps));
        }
        for (p, spec) in self.plans.iter().enumerate() {
            if let Some((_, slug)) = &spec.item {
                tasks.insert(
                    format!("plan:{slug}"),
                    json!([{"write": {spec.path.clone(): self.plan_yaml(p)}, "plan_modified": true}]),
                );
            }
        }
        json!({ "tasks": tasks })
    }

    fn success_step(&self, t: &TaskSpec, plan_path: &str) -> Value {
        let mut shell = Vec::new();
        if let Some((file, n)) = &t.slot {
            shell.push(format!("sed -i 's/^slot {n}: .*$/slot {n}: task {}/' {file}", t.id));
        }
        if let Some(added) = t.adds.as_ref().and_then(|id| self.task(id)) {
            let lines: Vec<String> = task_yaml(added).lines().map(|l| format!("'{l}'")).collect();
            shell.push(format!(
                "grep -qxF '  - id: {}' {plan_path} || printf '%s\\n' {} >> {plan_path}",
                added.id,
                lines.join(" ")
            ));
        }
        if let Some(q) = t.revises.as_ref().and_then(|id| self.task(id)) {
            if let Some(revised) = q.revised_description() {
                shell.push(format!(
                    "sed -i 's/^    description: {}$/    description: {revised}/' {plan_path}",
                    q.description()
                ));
            }
        }
        if let Some(escape) = t.escape {
            let out = match escape {
                Escape::Detached => "/dev/null",
                Escape::HoldingStdout => "/proc/$PPID/fd/1",
            };
            // Once per soak (the pid file says it happened), so that reruns after kills do not
            // multiply the cost of a leak; long enough to outlive the supervisor's grace time.
            let pid_file = format!("\"$BATON_FAKE_STATE/escaped-{}.pid\"", t.id);
            shell.push(format!(
                "[ -e {pid_file} ] || setsid sh -c 'echo $$ > {pid_file}; exec sleep {ESCAPE_SECONDS}' </dev/null >{out} 2>/dev/null &"
            ));
        }
        let mut step = Map::new();
        step.insert("write".into(), json!({ t.work_file(): format!("{}\n", t.work_line()) }));
        if !shell.is_empty() {
            step.insert("shell".into(), json!(shell.join("; ")));
        }
        if t.commit {
            step.insert("commit".into(), json!(format!("task {}", t.id)));
        }
        step.insert("plan_modified".into(), json!(t.plan_modified));
        step.insert("message".into(), json!(format!("done {}", t.id)));
        Value::Object(step)
    }

    /// A shared file's content at the start.
    pub fn shared_file_text(&self) -> String {
        (0..self.shared_lines).map(|n| format!("slot {n}: free\n")).collect()
    }

    /// The backlog item's text (pipeline mode).
    pub fn item_text(&self, plan: usize) -> String {
        format!("# {}\n\nDo the soak's work number {}.\n", self.plans[plan].name, plan + 1)
    }
}

pub fn shared_file(n: usize) -> String {
    format!("shared/s{n}.txt")
}

fn task_yaml(t: &TaskSpec) -> String {
    let mut out = format!(
        "  - id: {}\n    name: {}\n    status: pending\n    description: {}\n",
        t.id,
        t.name(),
        t.description()
    );
    if !t.depends_on.is_empty() {
        let deps: Vec<String> = t.depends_on.iter().map(|d| format!("'{d}'")).collect();
        out.push_str(&format!("    depends_on: [{}]\n", deps.join(", ")));
    }
    if let Some(g) = &t.group {
        out.push_str(&format!("    parallel_group: {g}\n"));
    }
    if let Some(m) = t.max_attempts {
        out.push_str(&format!("    max_attempts: {m}\n"));
    }
    if let Some(s) = t.timeout_seconds {
        out.push_str(&format!("    timeout_seconds: {s}\n"));
    }
    if !t.files.is_empty() {
        out.push_str(&format!("    files: [{}]\n", t.files.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_design() {
        let a = Design::generate(42, Mode::Run, 60);
        let b = Design::generate(42, Mode::Run, 60);
        assert_eq!(a.plan_yaml(0), b.plan_yaml(0));
        assert_eq!(a.scenario(), b.scenario());
        assert_ne!(a.plan_yaml(0), Design::generate(43, Mode::Run, 60).plan_yaml(0));
    }

    #[test]
    fn the_plan_is_valid_for_baton_and_holds_every_original_task() {
        for (seed, mode) in [(1, Mode::Run), (2, Mode::Parallel), (3, Mode::Pipeline)] {
            let d = Design::generate(seed, mode, 80);
            let mut count = 0;
            for p in 0..d.plans.len() {
                let plan = baton::plan::parse_plan(&d.plan_yaml(p))
                    .unwrap_or_else(|e| panic!("seed {seed}: {e:?}\n{}", d.plan_yaml(p)));
                count += plan.sections.iter().map(|s| s.tasks.len()).sum::<usize>();
            }
            assert_eq!(count, d.tasks.iter().filter(|t| t.added_by.is_none()).count());
            assert!(count >= 80, "{count}");
        }
    }

    #[test]
    fn no_task_is_scripted_to_spend_all_its_attempts_unless_permanent() {
        let d = Design::generate(9, Mode::Run, 200);
        for t in &d.tasks {
            let spent = t.faults.iter().filter(|f| f.spends()).count() as u32;
            assert!(t.permanent || spent < t.effective_max_attempts(), "{t:?}");
        }
        assert!(d.tasks.iter().any(|t| !t.faults.is_empty()));
    }

    #[test]
    fn every_kind_of_fault_is_in_a_small_plan() {
        for seed in 0..20 {
            let d = Design::generate(seed, Mode::Run, 24);
            for fault in [Fault::Fail, Fault::Crash, Fault::NoStatus, Fault::Hang, Fault::Limit, Fault::Throttle] {
                assert!(d.tasks.iter().any(|t| t.faults.contains(&fault)), "seed {seed}: no {fault:?}");
            }
            assert!(d.tasks.iter().any(|t| t.escape == Some(Escape::Detached)), "seed {seed}");
            assert!(d.tasks.iter().any(|t| t.escape == Some(Escape::HoldingStdout)), "seed {seed}");
        }
    }
}
