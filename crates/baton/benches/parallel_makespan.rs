//! Benchmark (not a test) of parallel runs.
//!
//! (a) Makespan: a synthetic plan of 40 tasks with known durations (0.5–3 s, made by the fake
//!     agent's `events` × `interval_ms`), a dependency DAG and several parallel groups (a
//!     group's tasks depend only on tasks of earlier groups), run with
//!     `baton run plan.yaml --parallel --jobs 4`. Printed next to the makespan (wall time of the
//!     run): the lower bound max(critical path, total work / 4) and the ratio (target ≤ 1.05).
//!     baton starts a task as soon as its dependencies are done and a slot is free, the first
//!     ready task in plan order first (groups do not wait for one another), so the bench also
//!     prints what a zero-overhead list scheduler with that rule achieves — the best baton can
//!     do without knowing durations — and, for comparison, the old one-group-at-a-time rule:
//!     its bound Σ over groups of max(longest task, group work / 4) and its zero-overhead
//!     schedule. Every bound is computed twice: from the nominal durations, and from the agent
//!     durations baton measured (the attempt records), which include the fake agent's start-up.
//!     baton's own share is the makespan minus that zero-overhead schedule; the latencies
//!     behind it are printed: from a task's last dependency's end to its start, and from a
//!     task's end to the next start.
//! (b) Worktree cost: on a repository of ~20k small files (one commit), the time baton spends
//!     creating a worktree and landing a one-file change (a one-task `--parallel` plan whose agent
//!     writes one file: baton's wall time − the agent's time from
//!     `.baton/logs/<plan>/<task>/attempt-1.json`), next to the same task run without
//!     `--parallel` (no worktree), and a plain `git worktree add` + `git worktree remove` on the
//!     same repository; and the same on a one-file repository.
//!
//! `cargo bench -p baton --bench parallel_makespan [-- makespan|worktree]` (no name: both parts)
//!
//! It never asserts on timings; it fails loudly only when a run itself goes wrong (non-zero exit,
//! a task not completed, a record missing, the change not landed).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use baton::plan::Status;
use baton_testkit::TempRepo;

const BATON: &str = env!("CARGO_BIN_EXE_baton");
const JOBS: usize = 4;
const GROUP_SIZES: [usize; 6] = [5, 8, 6, 9, 7, 5];
const SEED: u64 = 0x5eed_ba70;
/// One fake-agent event per this many ms; a task of d tenths of a second emits d events.
const INTERVAL_MS: u64 = 100;
const MAKESPAN_RUNS: usize = 2;
const SMALL_FILES: usize = 20_000;
const WORKTREE_RUNS: usize = 3;
const GIT_RUNS: usize = 5;
const RUN_DEADLINE: Duration = Duration::from_secs(600);
const TARGET_RATIO: f64 = 1.05;


struct Task {
    id: String,
    group: usize,
    /// Nominal duration, tenths of a second (5..=30).
    tenths: u64,
    /// Indices of the tasks it depends on (all in earlier groups).
    deps: Vec<usize>,
}

fn main() {
    let fake = baton_testkit::fake_claude_bin();
    println!("parallel bench: baton {BATON}");
    println!("fake agent:     {}", fake.display());
    // cargo passes `--bench`; any other word picks a part.
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wants("makespan") {
        println!();
        makespan(&fake);
    }
    if wants("worktree") {
        println!();
        worktree_cost(&fake);
    }
}

// ---------------------------------------------------------------------------------------------
// (a) makespan

fn makespan(fake: &Path) {
    let tasks = synthetic_tasks();
    let nominal: Vec<f64> = tasks.iter().map(|t| t.tenths as f64 / 10.0).collect();
    let edges: usize = tasks.iter().map(|t| t.deps.len()).sum();
    println!(
        "(a) makespan: {} tasks in {} groups {:?}, {} dependency edges, durations {:.1}–{:.1} s (total {:.1} s), --jobs {JOBS}, {MAKESPAN_RUNS} runs",
        tasks.len(),
        GROUP_SIZES.len(),
        GROUP_SIZES,
        edges,
        nominal.iter().cloned().fold(f64::MAX, f64::min),
        nominal.iter().cloned().fold(0.0, f64::max),
        nominal.iter().sum::<f64>(),
    );
    let nb = Bounds::of(&tasks, &nominal);
    println!();
    println!("{:<62} {:>9}", "figure (nominal durations)", "s");
    nb.print();

    let mut rows = Vec::new();
    for i in 1..=MAKESPAN_RUNS {
        let r = run_makespan(fake, &tasks);
        let mb = Bounds::of(&tasks, &r.agent);
        println!();
        println!(
            "run {i}: makespan {:.2} s (baton's wall time); first agent start → last agent end {:.2} s",
            r.wall.as_secs_f64(),
            r.span
        );
        println!("{:<62} {:>9}", "figure (durations measured by baton, per task)", "s");
        mb.print();
        let wall = r.wall.as_secs_f64();
        println!("{:<62} {:>9.3}", "ratio makespan / lower bound (nominal)", wall / nb.lower());
        println!("{:<62} {:>9.3}", "ratio makespan / lower bound (measured)", wall / mb.lower());
        println!("{:<62} {:>9.3}", "ratio makespan / plan-order schedule, no overhead (measured)", wall / mb.greedy_free);
        println!("{:<62} {:>9.2}", "baton's own share: makespan − that schedule (s)", wall - mb.greedy_free);
        let (dep_gap, refill) = gaps(&tasks, &r.spans);
        for (name, v) in [("last dependency's end → the task's start (ms)", &dep_gap), ("a task's end → the next start, slots full before (ms)", &refill)] {
            println!(
                "{:<62} {:>9}",
                name,
                format!("{:.0} mean, {:.0} max, n={}", mean(v) * 1000.0, v.iter().cloned().fold(0.0, f64::max) * 1000.0, v.len())
            );
        }
        rows.push((wall, nb.lower(), mb.lower(), mb.greedy_free, mb.greedy_barrier));
    }
    println!();
    println!(
        "{:<6} {:>10} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "run", "makespan", "LB nominal", "LB measured", "list sched.", "old barrier", "ratio"
    );
    for (i, (w, ln, lm, b, g)) in rows.iter().enumerate() {
        println!(
            "{:<6} {:>10.2} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>8.3}",
            i + 1,
            w,
            ln,
            lm,
            b,
            g,
            w / ln
        );
    }
    let best = rows.iter().map(|r| r.0 / r.1).fold(f64::MAX, f64::min);
    println!(
        "target: makespan / max(critical path, work/{JOBS}) ≤ {TARGET_RATIO}; measured (best run, nominal bound): {best:.3} — {}",
        if best <= TARGET_RATIO { "within the target" } else { "ABOVE the target" }
    );
    println!(
        "a zero-overhead scheduler with baton's rule (plan order among ready tasks, durations unknown) gives {:.3}; the old one-group-at-a-time rule gave {:.3}",
        nb.greedy_free / nb.lower(),
        nb.greedy_barrier / nb.lower()
    );
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 40 tasks; each task of group g > 0 depends on one or two tasks of group g − 1 and sometimes
/// one of group g − 2.
fn synthetic_tasks() -> Vec<Task> {
    let mut rng = Rng(SEED);
    let mut tasks: Vec<Task> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (g, &size) in GROUP_SIZES.iter().enumerate() {
        let mut members = Vec::new();
        for k in 1..=size {
            let mut deps = Vec::new();
            if g > 0 {
                let prev = &groups[g - 1];
                let n = 1 + rng.below(2) as usize;
                for _ in 0..n {
                    let d = prev[rng.below(prev.len() as u64) as usize];
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
                if g > 1 && rng.below(3) == 0 {
                    let older = &groups[g - 2];
                    let d = older[rng.below(older.len() as u64) as usize];
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
                deps.sort();
            }
            members.push(tasks.len());
            tasks.push(Task { id: format!("g{}.{k}", g + 1), group: g, tenths: 5 + rng.below(26), deps });
        }
        groups.push(members);
    }
    tasks
}

fn plan_yaml(tasks: &[Task]) -> String {
    let mut s = String::from("meta:\n  name: Parallel makespan bench\n  max_attempts_default: 1\nsections:\n");
    for g in 0..GROUP_SIZES.len() {
        s.push_str(&format!("- id: s{}\n  name: Group {}\n  status: pending\n  tasks:\n", g + 1, g + 1));
        for t in tasks.iter().filter(|t| t.group == g) {
            s.push_str(&format!(
                "  - id: '{}'\n    name: Step {}\n    status: pending\n    parallel_group: group-{}\n    description: 'Synthetic step {} of about {} tenths of a second'\n    attempts: 0\n",
                t.id,
                t.id,
                g + 1,
                t.id,
                t.tenths
            ));
            if !t.deps.is_empty() {
                let d: Vec<String> = t.deps.iter().map(|&i| format!("'{}'", tasks[i].id)).collect();
                s.push_str(&format!("    depends_on: [{}]\n", d.join(", ")));
            }
        }
    }
    s
}

fn scenario(tasks: &[Task]) -> String {
    let entries: Vec<String> = tasks
        .iter()
        .map(|t| format!("\"{}\": [{{\"events\": {}, \"interval_ms\": {INTERVAL_MS}}}]", t.id, t.tenths))
        .collect();
    format!("{{\"tasks\": {{{}}}}}", entries.join(", "))
}

struct Bounds {
    work: f64,
    critical: f64,
    /// Σ over groups of max(longest task, group work / jobs).
    barrier: f64,
    /// A zero-overhead list scheduler, plan order, one group at a time.
    greedy_barrier: f64,
    /// A zero-overhead list scheduler, plan order, dependencies only.
    greedy_free: f64,
}

impl Bounds {
    fn of(tasks: &[Task], dur: &[f64]) -> Bounds {
        let work: f64 = dur.iter().sum();
        // Tasks are in a topological order (dependencies only point to earlier groups).
        let mut finish = vec![0.0f64; tasks.len()];
        for (i, t) in tasks.iter().enumerate() {
            let ready = t.deps.iter().map(|&d| finish[d]).fold(0.0, f64::max);
            finish[i] = ready + dur[i];
        }
        let critical = finish.iter().cloned().fold(0.0, f64::max);
        let mut barrier = 0.0;
        let mut greedy_barrier = 0.0;
        for g in 0..GROUP_SIZES.len() {
            let d: Vec<f64> = tasks.iter().enumerate().filter(|(_, t)| t.group == g).map(|(i, _)| dur[i]).collect();
            let longest = d.iter().cloned().fold(0.0, f64::max);
            barrier += longest.max(d.iter().sum::<f64>() / JOBS as f64);
            greedy_barrier += list_schedule(&d);
        }
        Bounds { work, critical, barrier, greedy_barrier, greedy_free: dag_list_schedule(tasks, dur) }
    }

    fn lower(&self) -> f64 {
        self.critical.max(self.work / JOBS as f64)
    }

    fn print(&self) {
        println!("{:<62} {:>9.2}", "total work", self.work);
        println!("{:<62} {:>9.2}", format!("total work / {JOBS}"), self.work / JOBS as f64);
        println!("{:<62} {:>9.2}", "critical path", self.critical);
        println!("{:<62} {:>9.2}", "lower bound max(critical path, work / jobs)", self.lower());
        println!("{:<62} {:>9.2}", "old rule: group-barrier bound Σ max(longest, group work / jobs)", self.barrier);
        println!("{:<62} {:>9.2}", "old rule: list schedule, one group at a time, no overhead", self.greedy_barrier);
        println!("{:<62} {:>9.2}", "plan-order list schedule, dependencies only, no overhead", self.greedy_free);
    }
}

/// Makespan of independent tasks started in order on `JOBS` slots, each as soon as one frees.
fn list_schedule(d: &[f64]) -> f64 {
    let mut slots = vec![0.0f64; JOBS];
    for &x in d {
        let (i, _) = slots.iter().enumerate().min_by(|a, b| a.1.partial_cmp(b.1).unwrap()).unwrap();
        slots[i] += x;
    }
    slots.into_iter().fold(0.0, f64::max)
}

/// Event-driven list schedule over the DAG: whenever a slot is free, start the first ready
/// task in plan order.
fn dag_list_schedule(tasks: &[Task], dur: &[f64]) -> f64 {
    let n = tasks.len();
    let mut done = vec![f64::INFINITY; n];
    let mut started = vec![false; n];
    let mut running: Vec<(f64, usize)> = Vec::new();
    let mut now = 0.0f64;
    let mut finished = 0;
    while finished < n {
        for i in 0..n {
            if running.len() >= JOBS {
                break;
            }
            if !started[i] && tasks[i].deps.iter().all(|&d| done[d] <= now) {
                started[i] = true;
                running.push((now + dur[i], i));
            }
        }
        running.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let (t, i) = running.remove(0);
        now = t;
        done[i] = t;
        finished += 1;
    }
    now
}

struct MakespanRun {
    wall: Duration,
    /// Per task, the agent time baton recorded.
    agent: Vec<f64>,
    /// First attempt start to last attempt end, from the records.
    span: f64,
    /// Per task, (start, end) in seconds since the first start.
    spans: Vec<(f64, f64)>,
}

/// Latencies baton adds, from the records: for each task with dependencies, its start minus
/// the latest end among them; and for each start once all slots had been taken, its start
/// minus the latest end before it (how long a freed slot stayed empty — also when nothing was
/// ready, so an upper bound on baton's part).
fn gaps(tasks: &[Task], spans: &[(f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let dep_gap = tasks
        .iter()
        .zip(spans)
        .filter(|(t, _)| !t.deps.is_empty())
        .map(|(t, s)| s.0 - t.deps.iter().map(|&d| spans[d].1).fold(f64::MIN, f64::max))
        .collect();
    let mut starts: Vec<f64> = spans.iter().map(|s| s.0).collect();
    starts.sort_by(|a, b| a.total_cmp(b));
    let refill = starts
        .iter()
        .skip(JOBS)
        .filter_map(|&s| {
            let last_end = spans.iter().map(|x| x.1).filter(|&e| e <= s).fold(f64::MIN, f64::max);
            (last_end > f64::MIN).then_some(s - last_end)
        })
        .collect();
    (dep_gap, refill)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn run_makespan(fake: &Path, tasks: &[Task]) -> MakespanRun {
    let repo = TempRepo::new();
    repo.write("plan.yaml", &plan_yaml(tasks));
    repo.write("baton.toml", baton_testkit::FAST_CONFIG);
    repo.commit_all("plan");
    let state = tempfile::tempdir().expect("state dir");
    let scen = state.path().join("scenario.json");
    std::fs::write(&scen, scenario(tasks)).expect("write scenario");
    let jobs = JOBS.to_string();
    let (wall, out) = run_baton(repo.path(), fake, &scen, state.path(), &["run", "plan.yaml", "--parallel", "--jobs", &jobs]);
    let plan = baton::plan::parse_plan(&repo.read("plan.yaml")).unwrap_or_else(|d| panic!("plan invalid after the run: {d:?}\n{out}"));
    let not_done: Vec<String> =
        plan.tasks().filter(|t| t.status != Status::Completed).map(|t| format!("{} ({})", t.id, t.status)).collect();
    assert!(not_done.is_empty(), "tasks not completed after exit 0: {}\n{out}", not_done.join(", "));
    let mut agent = Vec::new();
    let mut first = None::<jiff::Timestamp>;
    let mut last = None::<jiff::Timestamp>;
    let mut stamps = Vec::new();
    for t in tasks {
        let rec = record(repo.path(), "plan", &t.id, 1);
        assert_eq!(rec["outcome"], "completed", "{}: {rec}", t.id);
        agent.push(rec["duration_seconds"].as_f64().unwrap_or_else(|| panic!("{}: no duration_seconds", t.id)));
        let s: jiff::Timestamp = rec["started_at"].as_str().unwrap().parse().unwrap();
        let e: jiff::Timestamp = rec["ended_at"].as_str().unwrap().parse().unwrap();
        stamps.push((s, e));
        first = Some(first.map_or(s, |f| f.min(s)));
        last = Some(last.map_or(e, |l| l.max(e)));
    }
    let (first, last) = (first.unwrap(), last.unwrap());
    let span = last.duration_since(first).as_secs_f64();
    let spans = stamps
        .iter()
        .map(|(s, e)| (s.duration_since(first).as_secs_f64(), e.duration_since(first).as_secs_f64()))
        .collect();
    MakespanRun { wall, agent, span, spans }
}

/// Runs baton to its end in `root` with the fake agent; (wall time, output). Panics unless it
/// exits 0 within the deadline.
fn run_baton(root: &Path, fake: &Path, scenario: &Path, state: &Path, args: &[&str]) -> (Duration, String) {
    let mut cmd = Command::new(BATON);
    cmd.args(args)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .env("BATON_CLAUDE_BIN", fake)
        .env("BATON_FAKE_SCENARIO", scenario)
        .env("BATON_FAKE_STATE", state)
        .env("IS_SANDBOX", "1");
    let start = Instant::now();
    let out = baton_testkit::run_with_deadline(&mut cmd, RUN_DEADLINE).expect("start baton");
    let wall = start.elapsed();
    let text = format!("--- stdout (tail) ---\n{}\n--- stderr ---\n{}", tail(&out.stdout, 40), out.stderr);
    assert!(!out.timed_out, "baton {args:?} did not finish within {} s; killed\n{text}", RUN_DEADLINE.as_secs());
    assert_eq!(out.status.code(), Some(0), "baton {args:?} did not exit 0\n{text}");
    (wall, text)
}

fn record(root: &Path, plan: &str, task: &str, n: u32) -> serde_json::Value {
    let path = root.join(format!(".baton/logs/{plan}/{task}/attempt-{n}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no attempt record {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// (b) worktree + landing on a large repository

struct Figures {
    git_add: Vec<f64>,
    git_remove: Vec<f64>,
    baton_parallel: Vec<f64>,
    baton_sequential: Vec<f64>,
    timeline: Vec<String>,
}

fn worktree_cost(fake: &Path) {
    println!("(b) creating a worktree and landing a one-file change");
    let t = Instant::now();
    let big = big_repo(SMALL_FILES);
    let files = big.git(&["ls-files"]).lines().count();
    println!("generated a repository of {files} files in one commit in {:.1} s", t.elapsed().as_secs_f64());
    let big_f = measure(fake, &big);
    let small = big_repo(1);
    let small_files = small.git(&["ls-files"]).lines().count();
    let small_f = measure(fake, &small);

    println!();
    println!("median of {GIT_RUNS} (git) / {WORKTREE_RUNS} (baton) runs, ms:");
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>14} {:>14} {:>14}",
        "repo files", "git wt add", "git wt rm", "git both", "baton parallel", "baton sequent.", "parallel−seq."
    );
    for (n, f) in [(files, &big_f), (small_files, &small_f)] {
        let (add, rm) = (median(f.git_add.clone()), median(f.git_remove.clone()));
        let (par, seq) = (median(f.baton_parallel.clone()), median(f.baton_sequential.clone()));
        println!("{n:<10} {add:>10.1} {rm:>10.1} {:>10.1} {par:>14.1} {seq:>14.1} {:>14.1}", add + rm, par - seq);
    }
    println!();
    println!("baton parallel / sequential = baton's wall time − the agent's time (attempt record) for a one-task plan whose");
    println!("agent writes one file; parallel creates the worktree, lands the file, commits the round and removes the worktree.");
    println!("raw (ms): {:<22} parallel {:?}", format!("{files} files"), rounded(&big_f.baton_parallel));
    println!("          {:<22} sequential {:?}", "", rounded(&big_f.baton_sequential));
    println!("          {:<22} parallel {:?}", format!("{small_files} file(s)"), rounded(&small_f.baton_parallel));
    println!("          {:<22} sequential {:?}", "", rounded(&small_f.baton_sequential));
    if !big_f.timeline.is_empty() {
        println!();
        println!("timeline of the last parallel run on the {files}-file repository (run log, ms since its first line):");
        for l in &big_f.timeline {
            println!("  {l}");
        }
    }
}

/// A repository of `n` small files in 200-file folders, one commit, plus the bench's config.
fn big_repo(n: usize) -> TempRepo {
    let repo = TempRepo::new();
    for i in 0..n {
        let dir = repo.path().join(format!("src/d{:03}", i / 200));
        if i % 200 == 0 {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        std::fs::write(dir.join(format!("f{i:05}.txt")), format!("file {i}\nsome content\n")).expect("write file");
    }
    repo.write("baton.toml", baton_testkit::FAST_CONFIG);
    repo.commit_all("many small files");
    repo
}

fn measure(fake: &Path, repo: &TempRepo) -> Figures {
    let mut f = Figures { git_add: vec![], git_remove: vec![], baton_parallel: vec![], baton_sequential: vec![], timeline: vec![] };
    // Warm the caches once (the first checkout of a fresh repository reads every blob).
    repo.git(&["worktree", "add", "-q", "-b", "bench/warm", ".bench-wt/warm", "HEAD"]);
    repo.git(&["worktree", "remove", "--force", ".bench-wt/warm"]);
    repo.git(&["branch", "-q", "-D", "bench/warm"]);
    for i in 0..GIT_RUNS {
        let (branch, dir) = (format!("bench/{i}"), format!(".bench-wt/{i}"));
        let t = Instant::now();
        repo.git(&["worktree", "add", "-q", "-b", &branch, &dir, "HEAD"]);
        f.git_add.push(ms(t.elapsed()));
        let t = Instant::now();
        repo.git(&["worktree", "remove", "--force", &dir]);
        repo.git(&["branch", "-q", "-D", &branch]);
        f.git_remove.push(ms(t.elapsed()));
    }
    assert_eq!(repo.status_porcelain(), "", "git's worktrees left something behind");

    let state = tempfile::tempdir().expect("state dir");
    let scen = state.path().join("scenario.json");
    let mut entries = Vec::new();
    for mode in ["p", "s"] {
        for i in 0..WORKTREE_RUNS {
            entries.push(format!("\"{mode}{i}\": [{{\"write\": {{\"landed/{mode}{i}.txt\": \"one change\\n\"}}}}]"));
        }
    }
    std::fs::write(&scen, format!("{{\"tasks\": {{{}}}}}", entries.join(", "))).expect("write scenario");
    for i in 0..WORKTREE_RUNS {
        for (mode, parallel) in [("p", true), ("s", false)] {
            let id = format!("{mode}{i}");
            let plan = format!("land-{id}.yaml");
            repo.write(
                &plan,
                &format!(
                    "meta:\n  name: Land one file\nsections:\n- id: s\n  name: One\n  tasks:\n  - id: '{id}'\n    name: Write one file\n    status: pending\n    parallel_group: g\n    description: 'Write one new file'\n"
                ),
            );
            repo.commit_all(&format!("plan {id}"));
            let mut args = vec!["run", plan.as_str()];
            if parallel {
                args.push("--parallel");
            }
            let (wall, out) = run_baton(repo.path(), fake, &scen, state.path(), &args);
            let rec = record(repo.path(), &format!("land-{id}"), &id, 1);
            assert_eq!(rec["outcome"], "completed", "{rec}\n{out}");
            let agent = rec["duration_seconds"].as_f64().expect("duration_seconds");
            assert_eq!(repo.read(&format!("landed/{id}.txt")), "one change\n", "the change did not land\n{out}");
            let overhead = ms(wall) - agent * 1000.0;
            if parallel {
                assert_eq!(repo.status_porcelain(), "", "the landed change was left uncommitted\n{out}");
                assert!(!repo.path().join(format!(".worktrees/land-{id}-{id}")).exists(), "the worktree was not removed\n{out}");
                f.baton_parallel.push(overhead);
                f.timeline = timeline(&repo.path().join(format!(".baton/logs/land-{id}/run.log")));
            } else {
                // Sequential runs leave the agent's own changes to the agent (it commits them);
                // commit the file so the next run starts from a clean tree.
                f.baton_sequential.push(overhead);
                repo.commit_all(&format!("agent's change {id}"));
            }
        }
    }
    f
}

/// The run log's lines with ms since the first, the text cut short (best effort: it is baton's
/// log, not an interface).
fn timeline(run_log: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(run_log) else { return Vec::new() };
    let mut out = Vec::new();
    let mut first: Option<jiff::Timestamp> = None;
    for line in text.lines() {
        let Some((ts, rest)) = line.strip_prefix('[').and_then(|r| r.split_once("] ")) else { continue };
        let Ok(t) = ts.parse::<jiff::Timestamp>() else { continue };
        let f = *first.get_or_insert(t);
        let rest: String = rest.chars().take(110).collect();
        out.push(format!("{:>8.1}  {rest}", t.duration_since(f).as_secs_f64() * 1000.0));
    }
    out
}

// ---------------------------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rounded(v: &[f64]) -> Vec<i64> {
    v.iter().map(|x| x.round() as i64).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
